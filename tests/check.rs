//! `fild --check` on real files: a near miss of a known key fails with the key meant.
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

/// `fild -c CONFIG --check [extra]` with `env`.
fn check(config: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Output {
    Command::new(FILD)
        .arg("-c")
        .arg(config)
        .arg("--check")
        .args(extra)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run fild --check")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The 1-based line of `config` that is `line`.
fn line_of(config: &Path, line: &str) -> usize {
    let text = std::fs::read_to_string(config).unwrap();
    text.lines()
        .position(|l| l == line)
        .expect("line in config")
        + 1
}

/// A main file in `dir`: the harness's preamble and one program with `extra`.
fn config(dir: &TestDir, extra: &str) -> std::path::PathBuf {
    let program = format!("[program:a]\ncommand=sleep 1001\nstartsecs=0\n{extra}\n");
    dir.write("fild.ini", &(preamble(dir.path()) + &program))
}

#[test]
fn check_refuses_a_near_miss_and_names_the_key_meant() {
    let dir = TestDir::new("check-near");
    let typo = "stdout_logfile_maxbyte=10MB";
    let main = config(&dir, typo);
    let o = check(&main, &[], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let place = format!("fild.ini:{}:", line_of(&main, typo));
    let said = stderr(&o);
    assert!(
        said.lines().any(|l| l.contains(&place)
            && l.contains("[program:a] stdout_logfile_maxbyte:")
            && l.contains("did you mean `stdout_logfile_maxbytes`?")),
        "stderr must name {place}, the key and the key meant:\n{said}"
    );
    // The program list is printed only for a config that loads.
    assert!(!stdout(&o).contains("a (group a)"), "{}", text(&o));
}
