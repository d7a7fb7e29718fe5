//! `fild --check` and `--check --strict` on real files: a near miss of a known key fails with
//! the key meant, a far unknown key only warns unless strict, and the kit's own files pass
//! strict.
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::etcd::{activate, assert_kit_clean, lay_out_kit};
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

#[test]
fn strict_fails_on_a_far_key_that_plain_check_lets_pass() {
    let dir = TestDir::new("check-strict");
    let far = "bogus_key=1";
    let main = config(&dir, far);
    let place = format!("fild.ini:{}:", line_of(&main, far));

    let plain = check(&main, &[], &[]);
    assert_eq!(code(&plain), 0, "{}", text(&plain));
    let out = stdout(&plain);
    assert!(
        out.lines().any(|l| l.starts_with("warning:")
            && l.contains(&place)
            && l.contains("bogus_key: unknown key (ignored)")),
        "plain --check must warn about {place}:\n{out}"
    );
    assert!(out.contains("a (group a): sleep 1001"), "{out}");

    let strict = check(&main, &["--strict"], &[]);
    assert_eq!(code(&strict), 2, "{}", text(&strict));
    let said = stderr(&strict);
    assert!(
        said.starts_with("fild --strict: 1 configuration error:"),
        "{said}"
    );
    assert!(
        said.lines()
            .any(|l| l.contains(&place) && l.trim_end().ends_with("bogus_key: unknown key")),
        "--strict must report the warning as an error at {place}:\n{said}"
    );
    assert!(!said.contains("(ignored)"), "{said}");
}

#[test]
fn strict_needs_check() {
    let dir = TestDir::new("check-strict-alone");
    let main = config(&dir, "");
    let o = Command::new(FILD)
        .arg("-c")
        .arg(&main)
        .arg("--strict")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(stderr(&o).contains("--check"), "{}", text(&o));
    assert!(
        !dir.join("fild.sock").exists(),
        "fild must not have started"
    );
}

#[test]
fn the_kits_files_pass_check_strict() {
    let dir = TestDir::new("check-kit");
    let root = dir.path();
    lay_out_kit(root);
    let main = root.join("etc/fild/fild.ini");
    let env = [("PRJ_ROOT", root)];

    let o = check(&main, &["--strict"], &env);
    assert_eq!(code(&o), 0, "etc/fild/fild.ini alone:\n{}", text(&o));
    assert!(!text(&o).contains("warning"), "{}", text(&o));

    // Every template at once, as an operator activates them.
    let mut templates: Vec<String> = std::fs::read_dir(root.join("tpl"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".ini").map(str::to_string)
        })
        .collect();
    templates.sort();
    assert!(templates.len() >= 4, "{templates:?}");
    for t in &templates {
        activate(root, t);
    }
    let o = check(&main, &["--strict"], &env);
    assert_eq!(code(&o), 0, "with every template:\n{}", text(&o));
    assert!(!text(&o).contains("warning"), "{}", text(&o));
    let out = stdout(&o);
    for t in &templates {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{t} (group "))),
            "{t} not listed:\n{out}"
        );
    }
    assert_kit_clean(root, "fild --check --strict");
}

#[test]
fn a_bad_cluster_host_fails_with_its_file_line_and_key() {
    let dir = TestDir::new("check-cluster");
    let bad = "hosts=h0=http://10.0.0.1:9001 h1=10.0.0.2:9001";
    let main = config(
        &dir,
        &format!("[cluster]\n{bad}\nusername=fild\npassword=pw\n"),
    );
    let o = check(&main, &[], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let place = format!("fild.ini:{}:", line_of(&main, bad));
    let said = stderr(&o);
    assert!(
        said.lines().any(|l| l.contains(&place)
            && l.contains("[cluster] hosts:")
            && l.contains("'10.0.0.2:9001' is not an http(s)://host:port URL")),
        "stderr must name {place}, the key and the bad URL:\n{said}"
    );
    // Fixed, it loads (and a fild with it would start).
    std::fs::write(
        &main,
        std::fs::read_to_string(&main)
            .unwrap()
            .replace("h1=10", "h1=http://10"),
    )
    .unwrap();
    let o = check(&main, &[], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
}
