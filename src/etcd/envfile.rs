//! The kit's member env files (`apps/etcd/etcd-N.env`): `key=value` lines that the launch
//! script sources with `/bin/sh`. fild reads them without a shell, understanding the subset
//! they use (`$VAR`, `${VAR}`, `${VAR:-default}` with nested defaults, earlier keys), and
//! rewrites single keys in place so the file stays the operator's.

use std::collections::BTreeMap;
use std::path::Path;

/// Parse and evaluate an env file's text. Variables resolve to earlier keys of the file
/// first, then to `env`; an unset variable without a default is empty, as in sh.
pub fn evaluate(
    text: &str,
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected key=value, found {raw:?}", i + 1));
        };
        if !is_name(key) {
            return Err(format!("line {}: {key:?} is not a variable name", i + 1));
        }
        let value = unquote(value);
        let expanded = expand(value, &|name: &str| {
            out.get(name).cloned().or_else(|| env.get(name).cloned())
        })
        .map_err(|e| format!("line {}: {e}", i + 1))?;
        out.insert(key.to_string(), expanded);
    }
    Ok(out)
}

/// Read and evaluate an env file.
pub fn read(
    path: &Path,
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    evaluate(&text, env).map_err(|e| format!("{}: {e}", path.display()))
}

/// Set `key=value` (a literal) in the file's text: the key's first line is replaced, any later
/// line setting the same key (which would win when sourced) is dropped, or a line is appended.
pub fn set(text: &str, key: &str, value: &str) -> String {
    let mut found = false;
    let mut out: Vec<String> = Vec::new();
    for l in text.lines() {
        let t = l.trim_start();
        let t = t.strip_prefix("export ").unwrap_or(t);
        if t.split_once('=').is_some_and(|(k, _)| k == key) {
            if !found {
                out.push(format!("{key}={}", quote(value)));
            }
            found = true;
        } else {
            out.push(l.to_string());
        }
    }
    if !found {
        out.push(format!("{key}={}", quote(value)));
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// Rewrite keys of an env file atomically (temp file, fsync, rename).
pub fn update(path: &Path, changes: &[(&str, &str)]) -> std::io::Result<()> {
    use std::io::Write;
    let mut text = std::fs::read_to_string(path)?;
    for (k, v) in changes {
        text = set(&text, k, v);
    }
    let tmp = path.with_extension("env.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Quote a literal for sh when it holds anything special.
fn quote(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:,=@+%".contains(c))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

/// Expand `$VAR`, `${VAR}`, `${VAR:-word}` (word expanded in turn).
fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let b: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != '$' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        if i + 1 < b.len() && b[i + 1] == '{' {
            // Find the matching brace, allowing nesting in the default.
            let mut depth = 0;
            let mut j = i + 1;
            let mut end = None;
            while j < b.len() {
                match b[j] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            let end = end.ok_or_else(|| format!("unterminated ${{ in {s:?}"))?;
            let inner: String = b[i + 2..end].iter().collect();
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (inner.clone(), None),
            };
            if !is_name(&name) {
                return Err(format!("unsupported expansion ${{{inner}}}"));
            }
            match (lookup(&name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(&expand(&d, lookup)?),
                (None, None) => {}
            }
            i = end + 1;
        } else {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == '_') {
                j += 1;
            }
            if j == i + 1 {
                out.push('$');
                i += 1;
                continue;
            }
            let name: String = b[i + 1..j].iter().collect();
            out.push_str(&lookup(&name).unwrap_or_default());
            i = j;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn evaluates_the_kit_member_file() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/apps/etcd/etcd-1.env"))
                .unwrap();
        let v = evaluate(
            &text,
            &env(&[("ETCD_DATA_ROOT", "/data"), ("ETCD1_CLIENT_PORT", "3000")]),
        )
        .unwrap();
        assert_eq!(v["name"], "boot1");
        assert_eq!(v["data_dir"], "/data/boot1.etcd");
        assert_eq!(v["client_url"], "http://127.0.0.1:3000");
        assert_eq!(v["peer_url"], "http://127.0.0.1:2180");
        assert_eq!(
            v["initial_cluster"],
            "boot0=http://127.0.0.1:2080,boot1=http://127.0.0.1:2180,boot2=http://127.0.0.1:2280"
        );
        assert_eq!(v["cluster_state"], "new");
    }

    #[test]
    fn set_replaces_one_key_and_keeps_the_rest() {
        let text = "# c\nname=a\ncluster_state=new\n";
        let t = set(text, "cluster_state", "existing");
        assert_eq!(t, "# c\nname=a\ncluster_state=existing\n");
        let t = set(&t, "initial_cluster", "a=http://x:1,b=http://y:2");
        assert!(t.ends_with("initial_cluster=a=http://x:1,b=http://y:2\n"));
        let t = set(
            &format!("{t}cluster_state=new\n"),
            "cluster_state",
            "existing",
        );
        assert_eq!(t.matches("cluster_state=").count(), 1, "{t}");
        let t = set(&t, "odd", "has space");
        assert!(t.contains("odd='has space'"));
        assert_eq!(evaluate(&t, &BTreeMap::new()).unwrap()["odd"], "has space");
    }

    #[test]
    fn errors_name_the_line() {
        let e = evaluate("a=1\nthis is wrong\n", &BTreeMap::new()).unwrap_err();
        assert!(e.starts_with("line 2"), "{e}");
        let e = evaluate("a=${b\n", &BTreeMap::new()).unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}
