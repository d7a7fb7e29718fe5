//! `fild --exec-etcd FILE`: start the etcd member or gateway that a settings file describes,
//! as the kit's `apps/etcd/launch.sh` asks. The settings come from [`super::settings`], the
//! evaluator fild itself uses, so the argv fild reports is the argv etcd runs.
//!
//! Before the exec it takes the runtime layer's next-start flags (durably removed first, so a
//! rescue's `--force-new-cluster` never applies twice), raises the open-files soft limit as far
//! as the hard limit allows, creates the data dir 0700 (its root too, when missing), and drops
//! every `ETCD_*` variable from the environment (etcd reads them as flags and refuses a
//! setting given twice).

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;

use super::runtime;
use super::settings::{self, Kind};

/// Exec etcd; returns only with the reason it could not.
pub fn exec(file: &Path) -> String {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut s = match settings::evaluate(file, &env) {
        Ok(s) => s,
        Err(e) => return e.to_string(),
    };
    raise_nofile(s.get("nofile"));
    if s.kind == Kind::Member
        && let Err(e) = data_dir(Path::new(s.get("data_dir")))
    {
        return format!("{}: data_dir {}: {e}", file.display(), s.get("data_dir"));
    }
    // Last before the exec, so nothing that can still fail uses the flags up.
    s.once = match runtime::take_once(&s.runtime_file, &s.file) {
        Ok(f) => f,
        Err(e) => return e,
    };
    if !s.once.is_empty() {
        eprintln!(
            "fild --exec-etcd: using the next-start flags {} (now removed from {})",
            s.once.join(" "),
            s.runtime_file.display()
        );
    }
    if let Some(p) = &s.version_problem {
        eprintln!("fild --exec-etcd: warning: {p}");
    }
    for n in &s.flag_notes {
        eprintln!("fild --exec-etcd: note: {n}");
    }
    reap_helpers();
    let argv = s.launch_argv();
    eprintln!("fild --exec-etcd: {}: {}", file.display(), argv.join(" "));
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    for k in env.keys().filter(|k| k.starts_with("ETCD_")) {
        cmd.env_remove(k);
    }
    let e = cmd.exec();
    format!("{}: exec {}: {e}", file.display(), argv[0])
}

/// The version probe's helper processes ([`super::binary_probe`]) report their status on a
/// pipe and are not waited for; here, with no loop to reap them and nothing else started,
/// wait for them all, so etcd (this pid after the exec) inherits no zombies.
fn reap_helpers() {
    while nix::sys::wait::waitpid(None, None).is_ok() {}
}

/// Data dirs are private: the root is created 0700 when missing, the member's dir is 0700.
fn data_dir(dir: &Path) -> std::io::Result<()> {
    if let Some(root) = dir.parent()
        && !root.is_dir()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// etcd wants many open files: take what the hard limit allows, and say so when it is short.
fn raise_nofile(want: &str) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok(want) = want.parse::<u64>() else {
        eprintln!("fild --exec-etcd: warning: nofile={want:?} is not a number; limit unchanged");
        return;
    };
    let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let soft = want.min(hard);
    if soft < want {
        eprintln!(
            "fild --exec-etcd: warning: open-files hard limit is {hard}, below the wanted {want}"
        );
    }
    let _ = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
}
