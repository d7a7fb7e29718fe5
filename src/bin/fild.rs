//! fild: the supervisor daemon. Runs in the foreground; `filc` talks to it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fild::{config, daemon, etcd, supervisor::guard};

#[derive(Parser)]
#[command(
    name = "fild",
    version,
    about = "Supervise programs from supervisord-style ini files"
)]
struct Args {
    /// The main config file (default: $FILD_CONFIG, $PRJ_ROOT/etc/fild/fild.ini,
    /// $PRJ_ROOT/etc/supd/supd.ini, ./fild.ini, /etc/fild/fild.ini).
    #[arg(short = 'c', long = "configuration")]
    config: Option<PathBuf>,
    /// Check the configuration, print what it defines, and exit.
    #[arg(long)]
    check: bool,
    /// With --check: every warning (an unknown key or section) is an error.
    #[arg(long, requires = "check")]
    strict: bool,
    /// Start the etcd member or gateway a settings file describes (what the kit's
    /// apps/etcd/launch.sh runs): evaluate it as fild does, then exec etcd.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["check", "guard"])]
    exec_etcd: Option<PathBuf>,
    /// Internal: run as fild's guard process.
    #[arg(long, hide = true)]
    guard: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.guard {
        guard::run_guard();
    }
    if let Some(file) = &args.exec_etcd {
        eprintln!("fild --exec-etcd: {}", etcd::launch::exec(file));
        return ExitCode::from(78);
    }
    let env = daemon::daemon_env();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let Some(path) = args.config.or_else(|| config::find_config(&env, &cwd)) else {
        eprintln!(
            "fild: no configuration file found; pass -c FILE or set FILD_CONFIG (searched $PRJ_ROOT/etc/fild/fild.ini, $PRJ_ROOT/etc/supd/supd.ini, ./fild.ini, /etc/fild/fild.ini)"
        );
        return ExitCode::from(2);
    };
    let path = if path.is_absolute() {
        path
    } else {
        cwd.join(path)
    };
    let loaded = if args.strict {
        config::load_strict(&path, &env)
    } else {
        config::load(&path, &env)
    };
    let cfg = match loaded {
        Ok(c) => c,
        Err(e) => {
            let who = if args.strict { "fild --strict" } else { "fild" };
            eprint!("{who}: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        for w in &cfg.warnings {
            println!("warning: {w}");
        }
        for p in &cfg.programs {
            println!("{} (group {}): {}", p.name, p.group, p.command.join(" "));
        }
        return ExitCode::SUCCESS;
    }
    daemon::init_logging(&cfg);
    match daemon::run(path, env, cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("fild: {e:#}");
            ExitCode::from(1)
        }
    }
}
