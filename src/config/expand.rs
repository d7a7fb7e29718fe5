//! Variable expansion applied to every value before it is typed.
//!
//! Forms: `$VAR`, `${VAR}`, `$$` (a literal `$`); `%(ENV_VAR)s`, `%(here)s`,
//! `%(program_name)s`, `%(process_num)d` (with an optional zero-pad width, `%(process_num)02d`),
//! `%(group_name)s`, `%(host_node_name)s` and `%%` (a literal `%`). A `$` or `%` not starting
//! one of these forms is kept as is. An unset variable or an unknown `%(name)` is an error.

use std::path::Path;

use super::Env;
use super::values::Problem;

/// What names mean where a value is expanded.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// fild's environment plus `[supervisord] environment`.
    pub vars: &'a Env,
    /// Directory of the file holding the section (`%(here)s`).
    pub here: &'a Path,
    pub program: Option<&'a str>,
    pub group: Option<&'a str>,
    pub process_num: Option<u32>,
}

impl<'a> Scope<'a> {
    /// A scope for a non-program section.
    pub fn plain(vars: &'a Env, here: &'a Path) -> Self {
        Scope {
            vars,
            here,
            program: None,
            group: None,
            process_num: None,
        }
    }
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Expand every variable in `s`.
pub(crate) fn expand(s: &str, scope: &Scope) -> Result<String, Problem> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let (text, next) = match bytes[i] {
            b'$' => dollar(s, i, scope)?,
            b'%' => percent(s, i, scope)?,
            _ => {
                let end = s[i..].find(['$', '%']).map_or(s.len(), |n| i + n);
                (s[i..end].to_string(), end)
            }
        };
        out.push_str(&text);
        i = next;
    }
    Ok(out)
}

/// `$$`, `${NAME}` or `$NAME` at `i`; returns the replacement and the index after it.
fn dollar(s: &str, i: usize, scope: &Scope) -> Result<(String, usize), Problem> {
    let bytes = s.as_bytes();
    match bytes.get(i + 1) {
        Some(b'$') => Ok(("$".into(), i + 2)),
        Some(b'{') => {
            let Some(close) = s[i + 2..].find('}').map(|n| i + 2 + n) else {
                return Err(
                    Problem::new(format!("unterminated '${{' in '{s}'")).hint("close it: ${NAME}")
                );
            };
            let name = &s[i + 2..close];
            let valid =
                name.bytes().next().is_some_and(is_name_start) && name.bytes().all(is_name_char);
            if !valid {
                return Err(Problem::new(format!("invalid variable name '${{{name}}}'"))
                    .hint("names are letters, digits and _, not starting with a digit; write $$ for a literal $"));
            }
            Ok((lookup_var(name, scope)?, close + 1))
        }
        Some(&b) if is_name_start(b) => {
            let end = s[i + 1..]
                .find(|c: char| !c.is_ascii() || !is_name_char(c as u8))
                .map_or(s.len(), |n| i + 1 + n);
            Ok((lookup_var(&s[i + 1..end], scope)?, end))
        }
        _ => Ok(("$".into(), i + 1)),
    }
}

fn lookup_var(name: &str, scope: &Scope) -> Result<String, Problem> {
    scope.vars.get(name).cloned().ok_or_else(|| {
        Problem::new(format!("environment variable '{name}' is not set")).hint(format!(
            "export {name} before starting fild, or set it in [supervisord] environment"
        ))
    })
}

/// `%%` or `%(name)[0][width](s|d)` at `i`.
fn percent(s: &str, i: usize, scope: &Scope) -> Result<(String, usize), Problem> {
    let bytes = s.as_bytes();
    match bytes.get(i + 1) {
        Some(b'%') => return Ok(("%".into(), i + 2)),
        Some(b'(') => {}
        _ => return Ok(("%".into(), i + 1)),
    }
    let Some(close) = s[i + 2..].find(')').map(|n| i + 2 + n) else {
        return Err(Problem::new(format!("unterminated '%(' in '{s}'"))
            .hint("write %(name)s, or %% for a literal %"));
    };
    let name = &s[i + 2..close];
    let spec_start = close + 1;
    let spec_len = s[spec_start..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(s.len() - spec_start);
    let width = &s[spec_start..spec_start + spec_len];
    let conv_at = spec_start + spec_len;
    let conversion = bytes.get(conv_at).copied();
    if !matches!(conversion, Some(b's' | b'd')) {
        return Err(
            Problem::new(format!("'%({name})' must be followed by s or d"))
                .hint(format!("write %({name})s")),
        );
    }
    let value = lookup_percent(name, scope)?;
    let text = format_value(name, &value, width, conversion == Some(b'd'))?;
    Ok((text, conv_at + 1))
}

/// The widest `%(name)NNs` padding accepted (guards against huge allocations).
const MAX_WIDTH: usize = 256;

/// Apply a Python-style `%[0][width](s|d)` conversion.
fn format_value(name: &str, value: &str, width: &str, numeric: bool) -> Result<String, Problem> {
    let zero = width.starts_with('0');
    let width: usize = if width.is_empty() {
        0
    } else {
        width
            .parse()
            .ok()
            .filter(|w| *w <= MAX_WIDTH)
            .ok_or_else(|| Problem::new(format!("invalid width in '%({name})'")))?
    };
    if !numeric {
        return Ok(format!("{value:>width$}"));
    }
    let n: i64 = value.parse().map_err(|_| {
        Problem::new(format!(
            "'%({name})d' needs a number, but the value is '{value}'"
        ))
        .hint(format!("write %({name})s"))
    })?;
    Ok(if zero {
        format!("{n:0width$}")
    } else {
        format!("{n:width$}")
    })
}

fn lookup_percent(name: &str, scope: &Scope) -> Result<String, Problem> {
    let only_programs = || {
        Problem::new(format!(
            "'%({name})' is only available in [program:x] sections"
        ))
    };
    match name {
        "here" => Ok(scope.here.display().to_string()),
        "program_name" => scope.program.map(str::to_string).ok_or_else(only_programs),
        "group_name" => scope.group.map(str::to_string).ok_or_else(only_programs),
        "process_num" => scope
            .process_num
            .map(|n| n.to_string())
            .ok_or_else(only_programs),
        "host_node_name" => hostname(),
        _ => match name.strip_prefix("ENV_") {
            Some(var) => lookup_var(var, scope),
            None => Err(Problem::new(format!("unknown name '%({name})'")).hint(
                "known names: ENV_X, here, program_name, process_num, group_name, host_node_name",
            )),
        },
    }
}

fn hostname() -> Result<String, Problem> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .ok_or_else(|| Problem::new("cannot read the host name for %(host_node_name)s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        [("A", "1"), ("PRJ_ROOT", "/prj"), ("E", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn program_scope(vars: &Env) -> Scope<'_> {
        Scope {
            vars,
            here: Path::new("/etc/fild"),
            program: Some("web"),
            group: Some("g"),
            process_num: Some(3),
        }
    }

    #[test]
    fn dollar_forms() {
        let vars = env();
        let s = Scope::plain(&vars, Path::new("/h"));
        assert_eq!(expand("$PRJ_ROOT/x", &s).unwrap(), "/prj/x");
        assert_eq!(expand("${A}b", &s).unwrap(), "1b");
        assert_eq!(expand("a$$b", &s).unwrap(), "a$b");
        assert_eq!(expand("$1 $ $-x$", &s).unwrap(), "$1 $ $-x$");
        assert_eq!(expand("[$E]", &s).unwrap(), "[]");
        assert_eq!(expand("é$A", &s).unwrap(), "é1");
        assert!(expand("$NOPE", &s).is_err());
        assert!(expand("${A", &s).is_err());
        assert!(expand("${1x}", &s).is_err());
    }

    #[test]
    fn percent_forms() {
        let vars = env();
        let s = program_scope(&vars);
        assert_eq!(expand("%(ENV_A)s", &s).unwrap(), "1");
        assert_eq!(expand("%(here)s/x", &s).unwrap(), "/etc/fild/x");
        assert_eq!(
            expand("%(program_name)s-%(group_name)s", &s).unwrap(),
            "web-g"
        );
        assert_eq!(expand("%(process_num)d", &s).unwrap(), "3");
        assert_eq!(expand("%(process_num)02d", &s).unwrap(), "03");
        assert_eq!(expand("100%% %d", &s).unwrap(), "100% %d");
        assert!(!expand("%(host_node_name)s", &s).unwrap().is_empty());
        assert!(expand("%(nope)s", &s).is_err());
        assert!(expand("%(here", &s).is_err());
        assert!(expand("%(here)x", &s).is_err());
        assert!(expand("%(program_name)d", &s).is_err());
        let plain = Scope::plain(&vars, Path::new("/h"));
        assert!(expand("%(program_name)s", &plain).is_err());
    }
}
