//! Typed access to one section's values: expansion, quote stripping, parsing and error
//! collection in one place, so section builders read like a list of keys and defaults.

use std::path::PathBuf;

use super::error::ConfigError;
use super::expand::{Scope, expand};
use super::ini::{Entry, Section};
use super::values::{self, Problem};

/// Reads keys of `section`, expanding with `scope`; errors go to `errors`.
pub(crate) struct Reader<'a, 'e> {
    pub section: &'a Section,
    pub scope: Scope<'a>,
    pub errors: &'e mut Vec<ConfigError>,
}

/// Strip one pair of surrounding double quotes.
pub(crate) fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// Build an error located at a section (and optionally a key line).
pub(crate) fn located(section: &Section, entry: Option<&Entry>, problem: Problem) -> ConfigError {
    ConfigError {
        file: section.file.clone(),
        line: entry.map_or(section.line, |e| e.line),
        section: Some(section.name.clone()),
        key: entry.map(|e| e.key.clone()),
        message: problem.message,
        hint: problem.hint,
    }
}

impl Reader<'_, '_> {
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.section.get(key)
    }

    /// Record a problem with `key` (or with the section when the key is absent).
    pub fn error(&mut self, key: &str, problem: Problem) {
        let err = located(self.section, self.section.get(key), problem);
        self.errors.push(err);
    }

    /// Record a problem about a key that is missing.
    pub fn missing(&mut self, key: &str, hint: &str) {
        let mut err = located(
            self.section,
            None,
            Problem::new(format!("'{key}' is required")).hint(hint),
        );
        err.key = Some(key.to_string());
        self.errors.push(err);
    }

    /// The expanded value of `key`, without stripping quotes.
    pub fn raw_expanded(&mut self, key: &str) -> Option<String> {
        let entry = self.section.get(key)?;
        match expand(&entry.value, &self.scope) {
            Ok(v) => Some(v),
            Err(p) => {
                self.errors.push(located(self.section, Some(entry), p));
                None
            }
        }
    }

    /// The value of `key`, surrounding double quotes stripped, then expanded.
    pub fn string(&mut self, key: &str) -> Option<String> {
        let entry = self.section.get(key)?;
        match expand(unquote(&entry.value), &self.scope) {
            Ok(v) => Some(v),
            Err(p) => {
                self.errors.push(located(self.section, Some(entry), p));
                None
            }
        }
    }

    /// Like [`Reader::string`], but an empty value counts as unset.
    pub fn non_empty(&mut self, key: &str) -> Option<String> {
        self.string(key).filter(|v| !v.is_empty())
    }

    pub fn path(&mut self, key: &str) -> Option<PathBuf> {
        self.non_empty(key).map(PathBuf::from)
    }

    /// The value of `key` parsed by `parse`; `None` when absent or invalid (error recorded).
    pub fn typed<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        let value = self.string(key)?;
        match parse(&value) {
            Ok(v) => Some(v),
            Err(p) => {
                self.error(key, p);
                None
            }
        }
    }

    pub fn or<T>(
        &mut self,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> T {
        self.typed(key, parse).unwrap_or(default)
    }

    pub fn bool_or(&mut self, key: &str, default: bool) -> bool {
        self.or(key, default, values::boolean)
    }

    /// `environment=` items, each value expanded (earlier items of the same list visible when
    /// `chain` is set, as for `[supervisord] environment`).
    pub fn environment(&mut self, chain: bool) -> Vec<(String, String)> {
        let Some(entry) = self.section.get("environment") else {
            return Vec::new();
        };
        let items = match values::environment(&entry.value) {
            Ok(items) => items,
            Err(p) => {
                self.errors.push(located(self.section, Some(entry), p));
                return Vec::new();
            }
        };
        let mut vars = self.scope.vars.clone();
        let mut out = Vec::new();
        for (key, raw) in items {
            let scope = Scope {
                vars: &vars,
                ..self.scope
            };
            match expand(&raw, &scope) {
                Ok(value) => {
                    if chain {
                        vars.insert(key.clone(), value.clone());
                    }
                    out.push((key, value));
                }
                Err(p) => self.errors.push(located(self.section, Some(entry), p)),
            }
        }
        out
    }
}
