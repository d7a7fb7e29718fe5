//! Loader tests: fixtures written to temporary directories, loaded through the public API.

mod keys;
mod malformed;
mod valid;

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{ConfigError, Env};

/// A temporary directory to write configuration files into.
pub(super) struct Fixture {
    dir: TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, bytes).expect("write");
        path
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        self.write_bytes(rel, text.as_bytes())
    }
}

pub(super) fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Load `path`, expecting failure; the errors.
pub(super) fn errors_of(path: &Path, env: &Env) -> Vec<ConfigError> {
    match super::load(path, env) {
        Ok(c) => panic!("expected errors, loaded {c:#?}"),
        Err(e) => e.0,
    }
}

/// Assert some error's Display names `path:line` and `key`.
pub(super) fn assert_error_at(errors: &[ConfigError], path: &Path, line: usize, key: &str) {
    let place = format!("{}:{line}:", path.display());
    let found = errors.iter().any(|e| {
        let text = e.to_string();
        text.contains(&place) && text.contains(key)
    });
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(found, "no error at {place} naming {key}; got {all:#?}");
}

/// Write `text` as the main file, load it with `env`, and assert an error at `line` naming `key`.
pub(super) fn assert_single_file_error(text: &str, env: &Env, line: usize, key: &str) {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", text);
    let errors = errors_of(&main, env);
    assert_error_at(&errors, &main, line, key);
}
