//! The kit's settings files (`apps/etcd/etcd-N.env`): `key=value` lines in sh syntax. fild
//! reads them without a shell (only `etcdctl.sh` sources the gateway's, for its address and
//! TLS files, which no operation learns), understanding the subset
//! they use (`$VAR`, `${VAR}`, `${VAR:-default}` with nested defaults, earlier keys). fild
//! never writes them: what operations learn goes to the runtime layer ([`super::runtime`]);
//! The evaluation itself is [`super::settings`]'s.

use std::collections::BTreeMap;

/// One `key=value` line as written: its 1-based line number and its text after `key=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub raw: String,
}

/// An evaluated env file: the values, and for each key the line that set it (the last one,
/// as in sh).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluated {
    pub values: BTreeMap<String, String>,
    pub lines: BTreeMap<String, Line>,
}

/// Parse and evaluate an env file's text. Variables resolve to earlier keys of the file
/// first, then to `env`; an unset variable without a default is empty, as in sh.
pub fn evaluate(
    text: &str,
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    evaluate_layered(text, env, &|_, _| None).map(|e| e.values)
}

/// [`evaluate`], with a layer over the file: `layer(key, raw)` may give a key's value instead
/// of its line's expansion (later lines then see that value). Keys the layer gives for lines
/// the file does not have are not added here: the caller appends them.
pub fn evaluate_layered(
    text: &str,
    env: &BTreeMap<String, String>,
    layer: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<Evaluated, String> {
    let mut out = Evaluated::default();
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
        let value_raw = value.trim();
        let expanded = match layer(key, value_raw) {
            Some(v) => v,
            None => expand(unquote(value_raw), &|name: &str| {
                out.values
                    .get(name)
                    .cloned()
                    .or_else(|| env.get(name).cloned())
            })
            .map_err(|e| format!("line {}: {key}: {e}", i + 1))?,
        };
        out.values.insert(key.to_string(), expanded);
        out.lines.insert(
            key.to_string(),
            Line {
                number: i + 1,
                raw: value_raw.to_string(),
            },
        );
    }
    Ok(out)
}

/// Each key's value as written (the last line setting it), unevaluated; lines that are not
/// `key=value` are passed over.
pub fn raw_lines(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for l in text.lines() {
        let t = l.trim();
        let t = t.strip_prefix("export ").unwrap_or(t);
        if t.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = t.split_once('=')
            && is_name(k)
        {
            out.insert(k.to_string(), v.trim().to_string());
        }
    }
    out
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
    fn raw_lines_are_as_written_and_the_last_wins() {
        let r = raw_lines("# c\nname=a\nx=${A:-b}\nexport x='q'\nnot a line\n");
        assert_eq!(r["name"], "a");
        assert_eq!(r["x"], "'q'");
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn a_layer_replaces_a_line_and_later_lines_see_it() {
        let e = evaluate_layered("a=1\nb=$a-x\n", &BTreeMap::new(), &|k, raw| {
            (k == "a" && raw == "1").then(|| "9".to_string())
        })
        .unwrap();
        assert_eq!(e.values["a"], "9");
        assert_eq!(e.values["b"], "9-x");
        assert_eq!(e.lines["b"].number, 2);
    }

    #[test]
    fn errors_name_the_line() {
        let e = evaluate("a=1\nthis is wrong\n", &BTreeMap::new()).unwrap_err();
        assert!(e.starts_with("line 2"), "{e}");
        let e = evaluate("a=${b\n", &BTreeMap::new()).unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }

    // The kit's own files, with and without TLS settings from the environment.
    fn kit(file: &str, env: &[(&str, &str)]) -> BTreeMap<String, String> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        evaluate(&std::fs::read_to_string(&path).unwrap(), &env).unwrap()
    }

    #[test]
    fn kit_env_files_are_plain_http_by_default() {
        let v = kit("apps/etcd/etcd-0.env", &[("ETCD_DATA_ROOT", "/d")]);
        assert_eq!(v["tls"], "off");
        assert_eq!(v["client_url"], "http://127.0.0.1:2079");
        assert_eq!(v["peer_url"], "http://127.0.0.1:2080");
        assert!(v["initial_cluster"].starts_with("boot0=http://127.0.0.1:2080,"));
        for k in [
            "cert_file",
            "key_file",
            "trusted_ca_file",
            "client_cert_file",
        ] {
            assert_eq!(v[k], "", "{k}");
        }
        let g = kit("apps/etcd/etcd-gw.env", &[]);
        assert_eq!(g["scheme"], "http");
        assert_eq!(g["cacert"], "");
    }

    #[test]
    fn kit_env_files_with_tls_files() {
        let env = [
            ("ETCD_DATA_ROOT", "/d"),
            ("ETCD_TLS", "files"),
            ("ETCD_SCHEME", "https"),
            ("ETCD_CERT_FILE", "/pki/m.crt"),
            ("ETCD_KEY_FILE", "/pki/m.key"),
            ("ETCD_TRUSTED_CA_FILE", "/pki/ca.crt"),
            ("ETCD2_CERT_FILE", "/pki/m2.crt"),
        ];
        let v = kit("apps/etcd/etcd-2.env", &env);
        assert_eq!(v["tls"], "files");
        assert_eq!(v["client_url"], "https://127.0.0.1:2279");
        assert_eq!(v["peer_url"], "https://127.0.0.1:2280");
        assert!(
            v["initial_cluster"]
                .split(',')
                .all(|m| m.contains("=https://"))
        );
        assert_eq!(v["cert_file"], "/pki/m2.crt");
        assert_eq!(v["peer_cert_file"], "/pki/m2.crt");
        assert_eq!(v["peer_key_file"], "/pki/m.key");
        assert_eq!(v["peer_trusted_ca_file"], "/pki/ca.crt");
        assert_eq!(v["client_trusted_ca_file"], "/pki/ca.crt");
        assert_eq!(v["client_cert_file"], "/pki/m2.crt");
        assert_eq!(v["client_key_file"], "/pki/m.key");
        let g = kit("apps/etcd/etcd-gw.env", &env);
        assert_eq!(g["scheme"], "https");
        assert_eq!(g["cacert"], "/pki/ca.crt");
        assert_eq!(g["cert"], "/pki/m.crt");
        // Peer-only TLS (tls=auto): clients stay on http.
        let v = kit(
            "apps/etcd/etcd-0.env",
            &[("ETCD_TLS", "auto"), ("ETCD_PEER_SCHEME", "https")],
        );
        assert_eq!(v["client_url"], "http://127.0.0.1:2079");
        assert_eq!(v["peer_url"], "https://127.0.0.1:2080");
    }
}
