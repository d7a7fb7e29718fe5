//! `[group:g]` and `[program:x]` sections: one [`ProgramSpec`] per process, with groups
//! resolved, names checked for uniqueness and every key typed.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::Env;
use super::error::{ConfigError, Warning};
use super::expand::Scope;
use super::ini::Section;
use super::keys;
use super::model::*;
use super::reader::{Reader, located};
use super::values::{self, Problem};

const DEFAULT_LOG_MAXBYTES: u64 = 50 << 20;
/// A guard against typos such as `numprocs=10000000`.
const MAX_NUMPROCS: u32 = 10_000;

fn directory_of(section: &Section) -> PathBuf {
    section
        .file
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

/// Program, group and process names: non-empty, no whitespace, `:` or `/`.
fn check_name(kind: &str, name: &str) -> Result<(), Problem> {
    let bad = name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ':' || c == '/');
    if bad {
        return Err(Problem::new(format!("invalid {kind} name '{name}'"))
            .hint("names must be non-empty and hold no whitespace, ':' or '/'"));
    }
    Ok(())
}

/// Build every process of every `[program:x]`, in section order.
pub(crate) fn build(
    sections: &[Section],
    vars: &Env,
    daemon: &DaemonSettings,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<Warning>,
) -> Vec<ProgramSpec> {
    let programs: Vec<(&str, &Section)> = sections
        .iter()
        .filter_map(|s| s.name.strip_prefix("program:").map(|n| (n, s)))
        .collect();
    let groups = group_map(sections, &programs, vars, errors, warnings);
    let mut specs = Vec::new();
    let mut places: BTreeMap<String, String> = BTreeMap::new();
    for (program, section) in &programs {
        keys::check(section, keys::PROGRAM, errors, warnings);
        let group = groups.get(*program).map_or(*program, String::as_str);
        for (spec, line) in program_specs(program, group, section, vars, daemon, errors) {
            let place = format!("{}:{line}", section.file.display());
            if let Some(first) = places.get(&spec.name) {
                let problem = Problem::new(format!(
                    "duplicate process name '{}'; first used at {first}",
                    spec.name
                ))
                .hint("give one of them a different process_name");
                errors.push(located(section, section.get("process_name"), problem));
            } else {
                places.insert(spec.name.clone(), place);
                specs.push(spec);
            }
        }
    }
    specs
}

/// Program name → the group listing it. Reports unknown and twice-grouped programs.
fn group_map(
    sections: &[Section],
    programs: &[(&str, &Section)],
    vars: &Env,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<Warning>,
) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, (String, String)> = BTreeMap::new();
    for section in sections {
        let Some(group) = section.name.strip_prefix("group:") else {
            continue;
        };
        keys::check(section, keys::GROUP, errors, warnings);
        if let Err(p) = check_name("group", group) {
            errors.push(located(section, None, p));
        }
        let here = directory_of(section);
        let mut r = Reader {
            section,
            scope: Scope::plain(vars, &here),
            errors,
        };
        r.typed("priority", values::integer::<i32>);
        let Some(list) = r.string("programs") else {
            if r.entry("programs").is_none() {
                r.missing("programs", "list the group's programs, e.g. programs=a,b");
            }
            continue;
        };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !programs.iter().any(|(p, _)| *p == name) {
                let p = Problem::new(format!("unknown program '{name}'")).hint(format!(
                    "define [program:{name}] or remove it from the list"
                ));
                r.error("programs", p);
            } else if let Some((other, place)) = map.get(name) {
                let p = Problem::new(format!(
                    "program '{name}' is already in [group:{other}] at {place}"
                ))
                .hint("a program may belong to one group only");
                r.error("programs", p);
            } else {
                let line = section.get("programs").map_or(section.line, |e| e.line);
                let place = format!("{}:{line}", section.file.display());
                map.insert(name.to_string(), (group.to_string(), place));
            }
        }
    }
    map.into_iter().map(|(p, (g, _))| (p, g)).collect()
}

/// The processes of one `[program:x]`, each with the line its name comes from.
fn program_specs(
    program: &str,
    group: &str,
    section: &Section,
    vars: &Env,
    daemon: &DaemonSettings,
    errors: &mut Vec<ConfigError>,
) -> Vec<(ProgramSpec, usize)> {
    if let Err(p) = check_name("program", program) {
        errors.push(located(section, None, p));
    }
    let here = directory_of(section);
    let base = Scope {
        vars,
        here: &here,
        program: Some(program),
        group: Some(group),
        process_num: None,
    };
    let (start, count) = process_range(&mut Reader {
        section,
        scope: base,
        errors,
    });
    (start..start.saturating_add(count))
        .map(|n| {
            let scope = Scope {
                process_num: Some(n),
                ..base
            };
            let mut r = Reader {
                section,
                scope,
                errors,
            };
            let line = section.get("process_name").map_or(section.line, |e| e.line);
            (process(&mut r, daemon), line)
        })
        .collect()
}

/// `numprocs_start` and how many processes to build (1 when numprocs is in error).
fn process_range(r: &mut Reader) -> (u32, u32) {
    let numprocs = r.or("numprocs", 1, |s| match values::integer::<u32>(s)? {
        n if (1..=MAX_NUMPROCS).contains(&n) => Ok(n),
        _ => Err(Problem::new(format!(
            "numprocs must be 1 to {MAX_NUMPROCS}, not {s}"
        ))),
    });
    let start = r.or("numprocs_start", 0, values::integer::<u32>);
    let names_differ = r
        .entry("process_name")
        .is_some_and(|e| e.value.contains("%(process_num)"));
    if numprocs > 1 && !names_differ {
        let key = if r.entry("process_name").is_some() {
            "process_name"
        } else {
            "numprocs"
        };
        let p = Problem::new(format!(
            "numprocs={numprocs} needs a process_name containing %(process_num)"
        ))
        .hint("e.g. process_name=%(program_name)s-%(process_num)d");
        r.error(key, p);
        return (start, 1);
    }
    (start, numprocs)
}

/// One process of a program, its scope's `process_num` set.
fn process(r: &mut Reader, daemon: &DaemonSettings) -> ProgramSpec {
    let program = r.scope.program.unwrap_or_default().to_string();
    let name = r.string("process_name").unwrap_or_else(|| program.clone());
    if let Err(p) = check_name("process", &name) {
        r.error("process_name", p);
    }
    let directory = r.path("directory");
    let base = directory
        .clone()
        .unwrap_or_else(|| r.scope.here.to_path_buf());
    let command = command(r, &base);
    let mut environment = daemon.environment.clone();
    environment.extend(r.environment(false));
    let stopasgroup = r.bool_or("stopasgroup", false);
    let killasgroup = r.bool_or("killasgroup", stopasgroup);
    if stopasgroup && !killasgroup {
        let p = Problem::new("stopasgroup=true needs killasgroup=true")
            .hint("remove killasgroup (it follows stopasgroup) or set it to true");
        r.error("killasgroup", p);
    }
    ProgramSpec {
        stdout: log_spec(r, "stdout", &name, daemon),
        stderr: log_spec(r, "stderr", &name, daemon),
        name,
        program,
        group: r.scope.group.unwrap_or_default().to_string(),
        command,
        directory,
        environment,
        user: r.non_empty("user"),
        umask: r.typed("umask", |s| values::octal(s, 0o777)),
        priority: r.or("priority", 999, values::integer),
        autostart: r.bool_or("autostart", true),
        autorestart: r.or("autorestart", AutoRestart::Unexpected, values::autorestart),
        startsecs: r.or("startsecs", 1, values::seconds),
        startretries: r.or("startretries", StartRetries::Count(3), values::startretries),
        exitcodes: r.or("exitcodes", vec![0], values::exitcodes),
        stopsignals: r.or("stopsignal", vec![libc::SIGTERM], values::signals),
        stopwaitsecs: r.or("stopwaitsecs", 10, values::seconds),
        stopasgroup,
        killasgroup,
        redirect_stderr: r.bool_or("redirect_stderr", false),
        restart_when_binary_changed: r.bool_or("restart_when_binary_changed", false),
        restart_directory_monitor: r.path("restart_directory_monitor"),
        restart_file_pattern: r.non_empty("restart_file_pattern"),
    }
}

/// `command=`: expanded, shell-split; a relative `argv[0]` with a `/` resolved against `base`.
fn command(r: &mut Reader, base: &Path) -> Vec<String> {
    let hint = "e.g. command=/usr/local/bin/etcd --name node1";
    if r.entry("command").is_none() {
        r.missing("command", hint);
        return Vec::new();
    }
    let Some(text) = r.raw_expanded("command") else {
        return Vec::new();
    };
    let Some(mut argv) = shlex::split(&text) else {
        let p = Problem::new(format!(
            "cannot split command '{text}' (unbalanced quotes?)"
        ))
        .hint("close every quote; the command is split like a shell would, without a shell");
        r.error("command", p);
        return Vec::new();
    };
    match argv.first_mut() {
        Some(first) if !first.is_empty() => *first = resolve_argv0(first, base),
        _ => r.error("command", Problem::new("empty command").hint(hint)),
    }
    argv
}

/// `./x.sh` or `bin/x` → `<base>/x.sh`, normalized; absolute paths and bare names unchanged.
fn resolve_argv0(argv0: &str, base: &Path) -> String {
    if argv0.starts_with('/') || !argv0.contains('/') {
        return argv0.to_string();
    }
    let mut out = PathBuf::new();
    for component in base.join(argv0).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.push("..");
                } else {
                    out.pop();
                }
            }
            other => out.push(other),
        }
    }
    out.to_string_lossy().into_owned()
}

/// The file `AUTO` names: `<childlogdir>/<name>-<stream>---fild-<token>.log`, the token
/// a keyed hash no other user can guess (as supervisord's random suffix), the same for the
/// same program through every reload of one fild.
pub fn auto_log_path(daemon: &DaemonSettings, name: &str, stream: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [daemon.auto_log_key.as_str(), name, stream] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let token = hex::encode(&h.finalize()[..5]);
    daemon
        .childlogdir
        .join(format!("{name}-{stream}---fild-{token}.log"))
}

/// `<stream>_logfile` (AUTO, NONE or a path), `_maxbytes` and `_backups`.
fn log_spec(r: &mut Reader, stream: &str, name: &str, daemon: &DaemonSettings) -> LogSpec {
    let key = format!("{stream}_logfile");
    let auto = || LogTarget::File(auto_log_path(daemon, name, stream));
    let target = r.or(&key, auto(), |v| {
        if v.eq_ignore_ascii_case("auto") {
            Ok(auto())
        } else if v.eq_ignore_ascii_case("none") {
            Ok(LogTarget::Discard)
        } else if v.is_empty() {
            Err(Problem::new("empty log file").hint("use AUTO, NONE or a path"))
        } else {
            Ok(LogTarget::File(PathBuf::from(v)))
        }
    });
    LogSpec {
        target,
        maxbytes: r.or(
            &format!("{key}_maxbytes"),
            DEFAULT_LOG_MAXBYTES,
            values::size,
        ),
        backups: r.or(&format!("{key}_backups"), 10, values::backups),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_resolution() {
        let base = Path::new("/prj/apps/lotus");
        assert_eq!(
            resolve_argv0("./etcd-0.sh", base),
            "/prj/apps/lotus/etcd-0.sh"
        );
        assert_eq!(resolve_argv0("../bin/x", base), "/prj/apps/bin/x");
        assert_eq!(resolve_argv0("bin/./x", base), "/prj/apps/lotus/bin/x");
        assert_eq!(resolve_argv0("etcd", base), "etcd");
        assert_eq!(resolve_argv0("/usr/bin/etcd", base), "/usr/bin/etcd");
        assert_eq!(resolve_argv0("../../x", Path::new("rel")), "../x");
    }
}
