//! Names as typed (`all`, `group:*`, `group:name`, `name`) to process names.

use super::*;

pub(super) fn spec_name(spec: &ProgramSpec) -> String {
    spec.name.clone()
}

/// Names as typed (`all`, `group:*`, `group:name`, `name`, a group's name) to process
/// names, given every process's (name, group) in table order. Any unknown name fails the
/// whole request (returned as the list of unknown names), so nothing is half done.
pub fn resolve_names(
    programs: &[(&str, &str)],
    names: &[String],
) -> Result<Vec<String>, Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    for n in names {
        let pick = |f: &dyn Fn(&str, &str) -> bool| -> Vec<String> {
            programs
                .iter()
                .filter(|(name, group)| f(name, group))
                .map(|(name, _)| name.to_string())
                .collect()
        };
        let found = if n == "all" {
            pick(&|_, _| true)
        } else if let Some((g, p)) = n.split_once(':') {
            pick(&|name, group| group == g && (p == "*" || name == p))
        } else if programs.iter().any(|(name, _)| name == n) {
            vec![n.clone()]
        } else {
            pick(&|_, group| group == n)
        };
        if found.is_empty() {
            unknown.push(n.clone());
        }
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(unknown)
    }
}

impl ProgramsView {
    /// Resolve names exactly as the supervisor does; see [`resolve_names`].
    pub fn resolve(&self, names: &[String]) -> Result<Vec<String>, Vec<String>> {
        let programs: Vec<(&str, &str)> = self
            .programs
            .iter()
            .map(|p| (p.spec.name.as_str(), p.spec.group.as_str()))
            .collect();
        resolve_names(&programs, names)
    }
}

impl Supervisor {
    /// Names as typed (`all`, `group:*`, `group:name`, `name`, a group's name) to process
    /// names. Any unknown name fails the whole request, so nothing is half done.
    pub(super) fn resolve(&self, names: &[String]) -> Result<Vec<String>, ApiError> {
        if names.is_empty() {
            return Err(ApiError::new(
                ErrorKind::BadRequest,
                "no process named (use a name, group:*, or all)",
            ));
        }
        let programs: Vec<(&str, &str)> = self
            .table
            .iter()
            .map(|(n, e)| (n.as_str(), e.spec.group.as_str()))
            .collect();
        resolve_names(&programs, names).map_err(|unknown| {
            ApiError::new(
                ErrorKind::NotFound,
                format!("no such process: {}", unknown.join(", ")),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_names;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_resolve_like_supervisorctl() {
        let programs = [
            ("etcd-0", "etcd"),
            ("etcd-1", "etcd"),
            ("gw", "gw"),
            ("x", "x"),
        ];
        let r = |n: &[&str]| resolve_names(&programs, &names(n));
        assert_eq!(
            r(&["all"]).unwrap(),
            names(&["etcd-0", "etcd-1", "gw", "x"])
        );
        assert_eq!(r(&["etcd:*"]).unwrap(), names(&["etcd-0", "etcd-1"]));
        assert_eq!(r(&["etcd:etcd-1"]).unwrap(), names(&["etcd-1"]));
        assert_eq!(r(&["etcd"]).unwrap(), names(&["etcd-0", "etcd-1"]));
        assert_eq!(
            r(&["etcd-1", "etcd:*"]).unwrap(),
            names(&["etcd-1", "etcd-0"])
        );
        assert_eq!(
            r(&["x", "nope", "g:*"]).unwrap_err(),
            names(&["nope", "g:*"])
        );
    }
}
