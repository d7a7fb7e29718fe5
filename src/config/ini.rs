//! A small ini reader in the manner of Python's ConfigParser (as supervisord uses it) that keeps
//! the file and line of every section and key, so later errors can point at them.
//!
//! Rules: `[section]` headers; `key = value` or `key: value` split at the first `=` or `:`;
//! keys trimmed and lower-cased, values trimmed; full-line comments start with `;` or `#`; an
//! inline comment is `;` preceded by whitespace; a line indented deeper than its key continues
//! that key's value (joined with `\n`); a blank line ends a value. Anything else is an error.

use std::path::{Path, PathBuf};

use super::error::ConfigError;

/// One `key = value`, with the line the key is on.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// One `[section]` of one file.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub name: String,
    pub file: PathBuf,
    pub line: usize,
    pub entries: Vec<Entry>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// A `file:line` reference to the header, for messages naming two places.
    pub fn place(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// The result of reading one file: its sections, and every syntax error found.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub sections: Vec<Section>,
    pub errors: Vec<ConfigError>,
}

/// The key whose value continuation lines extend, and how deep its line was indented.
struct Open {
    indent: usize,
}

struct Reader<'a> {
    file: &'a Path,
    out: Parsed,
    open: Option<Open>,
}

/// Parse one file's bytes. Never fails as a whole: errors are collected line by line.
pub(crate) fn parse(file: &Path, bytes: &[u8]) -> Parsed {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = Reader {
        file,
        out: Parsed::default(),
        open: None,
    };
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        reader.line(index + 1, raw);
    }
    reader.out
}

/// Drop an inline comment: `;` preceded by whitespace, to the end of the line.
fn strip_inline_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b';' && i > 0 && bytes[i - 1].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

impl Reader<'_> {
    fn error(&mut self, line: usize, message: String, hint: Option<&str>) {
        let section = self.out.sections.last().map(|s| s.name.clone());
        self.out.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            section,
            key: None,
            message,
            hint: hint.map(str::to_string),
        });
    }

    fn line(&mut self, number: usize, raw: &[u8]) {
        let Ok(text) = std::str::from_utf8(raw) else {
            self.open = None;
            let hint = Some("save the file as UTF-8");
            self.error(number, "line is not valid UTF-8".into(), hint);
            return;
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            self.open = None;
            return;
        }
        if trimmed.starts_with(';') || trimmed.starts_with('#') {
            return;
        }
        let indent = text.len() - text.trim_start().len();
        let content = strip_inline_comment(text).trim();
        if self.open.as_ref().is_some_and(|o| indent > o.indent) {
            self.continuation(content);
        } else if content.starts_with('[') {
            self.header(number, content);
        } else {
            self.key_value(number, indent, content);
        }
    }

    fn continuation(&mut self, content: &str) {
        let entry = self
            .out
            .sections
            .last_mut()
            .and_then(|s| s.entries.last_mut());
        if let Some(entry) = entry.filter(|_| !content.is_empty()) {
            entry.value.push('\n');
            entry.value.push_str(content);
            entry.value = entry.value.trim().to_string();
        }
    }

    fn header(&mut self, number: usize, content: &str) {
        self.open = None;
        let name = content
            .strip_prefix('[')
            .and_then(|c| c.strip_suffix(']'))
            .map(str::trim);
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            let hint = Some("a section header looks like [program:name]");
            self.error(
                number,
                format!("malformed section header '{content}'"),
                hint,
            );
            return;
        };
        if let Some(first) = self.out.sections.iter().find(|s| s.name == name) {
            let message = format!(
                "duplicate section [{name}]; first defined at {}",
                first.place()
            );
            self.out.errors.push(ConfigError {
                file: self.file.to_path_buf(),
                line: number,
                section: Some(name.to_string()),
                key: None,
                message,
                hint: Some("merge the two sections or rename one".into()),
            });
        }
        self.out.sections.push(Section {
            name: name.to_string(),
            file: self.file.to_path_buf(),
            line: number,
            entries: Vec::new(),
        });
    }

    fn key_value(&mut self, number: usize, indent: usize, content: &str) {
        self.open = None;
        let Some(split) = content.find(['=', ':']) else {
            let hint = Some("expected `key = value`, a [section] header or a ; comment");
            self.error(number, format!("cannot parse line '{content}'"), hint);
            return;
        };
        let key = content[..split].trim().to_ascii_lowercase();
        let value = content[split + 1..].trim().to_string();
        if key.is_empty() {
            self.error(number, format!("missing key in '{content}'"), None);
            return;
        }
        let file = self.file.to_path_buf();
        let Some(section) = self.out.sections.last_mut() else {
            let hint = Some("put it under a [section] header");
            self.error(number, format!("key '{key}' outside any section"), hint);
            return;
        };
        if let Some(first) = section.get(&key) {
            let message = format!("duplicate key; first set on line {}", first.line);
            let section_name = section.name.clone();
            self.out.errors.push(ConfigError {
                file,
                line: number,
                section: Some(section_name),
                key: Some(key),
                message,
                hint: Some("remove one of the two lines".into()),
            });
            return;
        }
        section.entries.push(Entry {
            key,
            value,
            line: number,
        });
        self.open = Some(Open { indent });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Parsed {
        parse(Path::new("/t.ini"), text.as_bytes())
    }

    #[test]
    fn sections_keys_comments() {
        let p =
            parse_str("; top\n[a]\nKey = v ; inline\nother: x;y\n# c\n[b] ; c\nk=\"q\"\nh=a #b\n");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.sections.len(), 2);
        let a = &p.sections[0];
        assert_eq!(a.get("key").map(|e| e.value.as_str()), Some("v"));
        assert_eq!(a.get("key").map(|e| e.line), Some(3));
        assert_eq!(a.get("other").map(|e| e.value.as_str()), Some("x;y"));
        let b = &p.sections[1];
        assert_eq!(b.name, "b");
        assert_eq!(b.get("h").map(|e| e.value.as_str()), Some("a #b"));
    }

    #[test]
    fn continuation_lines() {
        let p = parse_str("[a]\nenv =\n  A=1,\n  ; comment\n  B=2\nnext=3\n  [x]\n");
        let a = &p.sections[0];
        assert_eq!(a.get("env").map(|e| e.value.as_str()), Some("A=1,\nB=2"));
        assert_eq!(a.get("next").map(|e| e.value.as_str()), Some("3\n[x]"));
    }

    #[test]
    fn indented_keys_are_keys() {
        let p = parse_str("[a]\n  x=1\n  y=2\n");
        assert!(p.errors.is_empty());
        assert_eq!(p.sections[0].entries.len(), 2);
    }

    #[test]
    fn errors_have_lines() {
        let p = parse_str("x=1\n[a]\ngarbage\n[]\nk=1\nk=2\n");
        let lines: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 3, 4, 6]);
        let p = parse(Path::new("/t.ini"), b"[a]\nk=\xff\xfe\n");
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].line, 2);
    }
}
