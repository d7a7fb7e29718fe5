//! Configuration: supervisord-style ini text in, a checked [`Config`] out.
//!
//! Pure: this module reads files (the main file and its includes) and nothing else. It never
//! spawns, signals or listens. The environment used for expansion is passed in, so a load is a
//! function of (files, environment).
//!
//! Layout: [`ini`] reads text into sections with line numbers, [`expand`] substitutes
//! variables, [`values`] types single values, [`reader`] ties those together per section,
//! [`keys`] knows each section's keys and decides what an unknown one is, [`load`] builds
//! the main sections and [`program`] the programs and groups.

mod error;
mod expand;
mod ini;
mod keys;
mod load;
mod model;
mod program;
mod reader;
mod tls;
mod values;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, ConfigErrors, Warning};
pub use load::AUTO_LOG_KEY;
pub use model::*;
pub use program::auto_log_path;
pub use values::{MAX_BACKUPS, MAX_SECS};

/// The process environment snapshot used for expansion (fild's own start-up environment).
pub type Env = std::collections::BTreeMap<String, String>;

/// Load the main file and its includes into a checked Config. All errors of one load are
/// returned together.
pub fn load(path: &Path, env: &Env) -> Result<Config, ConfigErrors> {
    load::load(path, env, load::Strict::AsConfigured)
}

/// [`load`], with every warning (an unknown key or section) an error: `fild --check --strict`.
pub fn load_strict(path: &Path, env: &Env) -> Result<Config, ConfigErrors> {
    load::load(path, env, load::Strict::Always)
}

/// The socket fild serves when `[unix_http_server]` names none: `fild.sock` beside the config.
pub fn default_socket(config_path: &Path) -> PathBuf {
    config_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("fild.sock")
}

/// Load only what a client needs (`[unix_http_server]`, `[inet_http_server]`,
/// `[supervisorctl]`); program sections are not expanded or validated, includes are not read.
pub fn load_client(path: &Path, env: &Env) -> Result<ClientSettings, ConfigErrors> {
    load::load_client(path, env)
}

/// Parse a byte size: bare bytes, KB/MB/GB or K/M/G in any case (1024-based).
pub fn parse_size(s: &str) -> Result<u64, String> {
    values::size(s).map_err(problem_text)
}

/// Parse a signal name (`TERM`, `SIGTERM`, `term`, `HUP`, `USR1`, ...) or number, to its number.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    values::signal(s).map_err(problem_text)
}

fn problem_text(p: values::Problem) -> String {
    match p.hint {
        Some(hint) => format!("{} (hint: {hint})", p.message),
        None => p.message,
    }
}

/// The CA certificates of PEM file `path` (filc's `--ca-file`), each a valid trust anchor.
pub fn read_ca(path: &Path) -> Result<CaBundle, String> {
    tls::ca(path).map_err(problem_text)
}

/// The certificates of PEM text `bytes`, or why there are none (the fuzz target's way in).
pub fn pem_certs(bytes: &[u8]) -> Result<usize, String> {
    tls::certs_from(Path::new("input"), bytes)
        .map(|c| c.len())
        .map_err(problem_text)
}

/// Whether PEM text `bytes` holds a private key (the fuzz target's way in).
pub fn pem_key(bytes: &[u8]) -> Result<(), String> {
    tls::key_from(Path::new("input"), bytes)
        .map(drop)
        .map_err(problem_text)
}

/// The default config search: `$FILD_CONFIG`, `$PRJ_ROOT/etc/fild/fild.ini`,
/// `$PRJ_ROOT/etc/supd/supd.ini`, `./fild.ini`, `/etc/fild/fild.ini`; the first that exists.
pub fn find_config(env: &Env, cwd: &Path) -> Option<PathBuf> {
    let from_env = |var: &str| env.get(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    let prj = from_env("PRJ_ROOT");
    let candidates = [
        from_env("FILD_CONFIG").map(|p| cwd.join(p)),
        prj.as_ref().map(|p| cwd.join(p).join("etc/fild/fild.ini")),
        prj.as_ref().map(|p| cwd.join(p).join("etc/supd/supd.ini")),
        Some(cwd.join("fild.ini")),
        Some(PathBuf::from("/etc/fild/fild.ini")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}
