//! The imported configuration as TOML text, with a comment naming the keepalived
//! line of every table and key. Written by hand because serializers drop comments;
//! values go through `toml::Value`'s own formatting, so quoting is TOML's.

use std::fmt::Write;

/// One `[table]` and its keys.
#[derive(Clone, Debug, Default)]
pub struct Section {
    /// Comment lines above the header (without `# `).
    pub comments: Vec<String>,
    /// Dotted table path (`vrrp.instances.vi_1`); its parts are bare keys.
    pub path: String,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    /// Trailing comment (without `# `).
    pub comment: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Value {
    One(toml::Value),
    /// An array written one element a line, each with its own comment.
    List(Vec<(toml::Value, Option<String>)>),
}

impl Section {
    pub fn new(path: impl Into<String>) -> Section {
        Section {
            path: path.into(),
            ..Section::default()
        }
    }

    /// Sets `key` (replacing an earlier value: in keepalived the last one wins).
    pub fn set(&mut self, key: &str, value: impl Into<toml::Value>, comment: Option<String>) {
        self.put(key, Value::One(value.into()), comment);
    }

    pub fn put(&mut self, key: &str, value: Value, comment: Option<String>) {
        self.entries.retain(|e| e.key != key);
        self.entries.push(Entry {
            key: key.to_string(),
            value,
            comment,
        });
    }

    /// The value of a one-value key.
    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        self.entries.iter().find_map(|e| match &e.value {
            Value::One(v) if e.key == key => Some(v),
            _ => None,
        })
    }

    pub fn remove(&mut self, key: &str) {
        self.entries.retain(|e| e.key != key);
    }

    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key == key)
    }
}

/// The document: a header comment and the sections in order.
pub fn emit(header: &[String], sections: &[Section]) -> String {
    let mut out = String::new();
    for line in header {
        comment_line(&mut out, "", line);
    }
    for s in sections {
        out.push('\n');
        for c in &s.comments {
            comment_line(&mut out, "", c);
        }
        let _ = writeln!(out, "[{}]", s.path);
        for e in &s.entries {
            match &e.value {
                Value::One(v) => {
                    let _ = write!(out, "{} = {}", e.key, v);
                    trailing(&mut out, e.comment.as_deref());
                }
                Value::List(items) => {
                    let _ = write!(out, "{} = [", e.key);
                    trailing(&mut out, e.comment.as_deref());
                    for (v, c) in items {
                        if let Some(c) = c {
                            comment_line(&mut out, "  ", c);
                        }
                        let _ = writeln!(out, "  {v},");
                    }
                    out.push_str("]\n");
                }
            }
        }
    }
    out
}

fn trailing(out: &mut String, comment: Option<&str>) {
    match comment {
        Some(c) => {
            let _ = writeln!(out, "  # {}", one_line(c));
        }
        None => out.push('\n'),
    }
}

fn comment_line(out: &mut String, indent: &str, text: &str) {
    let _ = writeln!(out, "{indent}# {}", one_line(text));
}

/// A comment must stay on its line: keepalived words cannot hold a newline, but
/// keep the output valid whatever the input.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_toml_with_comments() {
        let mut s = Section::new("vrrp.instances.vi_1");
        s.comments.push("k.conf:3 vrrp_instance VI_1\nnext".into());
        s.set("interface", "eth0", Some("line 4".into()));
        s.set("vrid", 51i64, None);
        s.set("vrid", 52i64, None);
        let mut t = toml::Table::new();
        t.insert("name".into(), "chk \"x\"".into());
        t.insert("weight".into(), (-20i64).into());
        s.put(
            "track_scripts",
            Value::List(vec![(toml::Value::Table(t), Some("line 9".into()))]),
            None,
        );
        let text = emit(&["header".into()], &[s]);
        let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
        let inst = &doc["vrrp"]["instances"]["vi_1"];
        assert_eq!(inst["interface"].as_str(), Some("eth0"));
        assert_eq!(inst["vrid"].as_integer(), Some(52));
        assert_eq!(inst["track_scripts"][0]["name"].as_str(), Some("chk \"x\""));
        assert!(text.contains("# k.conf:3 vrrp_instance VI_1 next\n"), "{text}");
        assert!(text.contains("interface = \"eth0\"  # line 4\n"), "{text}");
    }
}
