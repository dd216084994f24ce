//! YAML (and JSON, a subset of YAML 1.2) text -> `serde_json::Value` plus a JSON pointer ->
//! 1-based line index, built in one pass over yaml-rust2's parser events.
//!
//! Scalars follow the YAML 1.2 core schema (`null`, booleans, integers, floats, else strings);
//! quoted scalars are always strings. Mapping keys are always strings: a plain `200:` key
//! becomes `"200"`. Duplicate keys are reported. Anchors, aliases and `<<` merge keys work.

use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A parsed file: its value and the line of each node (keyed by escaped JSON pointer).
#[derive(Debug, Clone, Default)]
pub(crate) struct Parsed {
    pub value: Value,
    pub lines: HashMap<String, usize>,
}

/// A problem found while parsing (syntax error, duplicate key, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlProblem {
    pub pointer: String,
    pub line: usize,
    pub message: String,
}

/// Escapes one reference token of a JSON pointer (`~` -> `~0`, `/` -> `~1`).
pub(crate) fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `pointer` extended by one token.
pub(crate) fn child(pointer: &str, token: &str) -> String {
    format!("{pointer}/{}", escape_token(token))
}

/// Parses `text`. The value is `None` when the text is not valid YAML; problems that do not
/// prevent building a value (duplicate keys) come with a value.
pub(crate) fn parse(text: &str) -> (Option<Parsed>, Vec<YamlProblem>) {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let mark = e.marker();
        builder.problems.push(YamlProblem {
            pointer: String::new(),
            line: mark.line(),
            message: format!(
                "YAML syntax error: {} (column {})",
                e.info(),
                mark.col() + 1
            ),
        });
        return (None, builder.problems);
    }
    let mut problems = builder.problems;
    match builder.docs.len() {
        0 => {
            problems.push(YamlProblem {
                pointer: String::new(),
                line: 1,
                message: "the file is empty".into(),
            });
            (None, problems)
        }
        1 => {
            let value = builder.docs.pop().unwrap_or(Value::Null);
            let mut lines = builder.lines;
            lines.entry(String::new()).or_insert(1);
            (Some(Parsed { value, lines }), problems)
        }
        n => {
            problems.push(YamlProblem {
                pointer: String::new(),
                line: builder.second_doc_line.unwrap_or(1),
                message: format!("the file holds {n} YAML documents; a spec file must hold one"),
            });
            (None, problems)
        }
    }
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        pointer: String,
    },
    Map {
        map: Map<String, Value>,
        anchor: usize,
        pointer: String,
        /// The key waiting for its value, with whether it is a `<<` merge key.
        key: Option<(String, bool)>,
        /// Mappings merged in with `<<` (applied at the end: explicit keys win).
        merges: Vec<Map<String, Value>>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Value>,
    anchors: HashMap<usize, Value>,
    lines: HashMap<String, usize>,
    problems: Vec<YamlProblem>,
    second_doc_line: Option<usize>,
}

impl Builder {
    /// The pointer of the node starting now, or `None` when it is a mapping key.
    fn next_pointer(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Seq { items, pointer, .. }) => Some(format!("{pointer}/{}", items.len())),
            Some(Frame::Map {
                key: Some((k, _)),
                pointer,
                ..
            }) => Some(child(pointer, k)),
            Some(Frame::Map { key: None, .. }) => None,
        }
    }

    /// Attaches a finished node to its parent (or makes it a document).
    fn attach(&mut self, value: Value, anchor: usize, line: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => {
                if !self.docs.is_empty() && self.second_doc_line.is_none() {
                    self.second_doc_line = Some(line);
                }
                self.docs.push(value);
            }
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                map,
                pointer,
                key,
                merges,
                ..
            }) => match key.take() {
                None => {
                    // A collection or alias used as a mapping key.
                    let text = value.to_string();
                    self.problems.push(YamlProblem {
                        pointer: pointer.clone(),
                        line,
                        message: format!("complex mapping key {text} is not supported"),
                    });
                    *key = Some((text, false));
                }
                Some((_, true)) => match value {
                    Value::Object(m) => merges.push(m),
                    Value::Array(items) => {
                        merges.extend(items.into_iter().filter_map(|v| match v {
                            Value::Object(m) => Some(m),
                            _ => None,
                        }))
                    }
                    _ => self.problems.push(YamlProblem {
                        pointer: child(pointer, "<<"),
                        line,
                        message: "a `<<` merge key needs a mapping or a list of mappings".into(),
                    }),
                },
                Some((k, false)) => {
                    map.insert(k, value);
                }
            },
        }
    }

    fn on_key(&mut self, text: String, plain: bool, line: usize) {
        if let Some(Frame::Map {
            map, pointer, key, ..
        }) = self.stack.last_mut()
        {
            let merge = plain && text == "<<";
            let p = child(pointer, &text);
            if !merge && map.contains_key(&text) {
                self.problems.push(YamlProblem {
                    pointer: p.clone(),
                    line,
                    message: format!("duplicate mapping key `{text}`"),
                });
                // The value that follows replaces nothing: it goes under a key nobody reads.
                *key = Some((format!("\u{0}duplicate:{text}"), false));
                return;
            }
            self.lines.entry(p).or_insert(line);
            *key = Some((text, merge));
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if self.next_pointer().is_none() {
                    self.on_key(text, style == TScalarStyle::Plain, line);
                    return;
                }
                if let Some(p) = self.next_pointer() {
                    self.lines.entry(p).or_insert(line);
                }
                let value = scalar(text, style, tag.as_ref());
                self.attach(value, anchor, line);
            }
            Event::SequenceStart(anchor, _) => {
                let pointer = self.start_collection(line);
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    pointer,
                });
            }
            Event::MappingStart(anchor, _) => {
                let pointer = self.start_collection(line);
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    anchor,
                    pointer,
                    key: None,
                    merges: Vec::new(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq { items, anchor, .. }) => {
                    self.attach(Value::Array(items), anchor, line)
                }
                Some(Frame::Map {
                    mut map,
                    anchor,
                    merges,
                    ..
                }) => {
                    map.retain(|k, _| !k.starts_with("\u{0}duplicate:"));
                    for merged in merges {
                        for (k, v) in merged {
                            map.entry(k).or_insert(v);
                        }
                    }
                    self.attach(Value::Object(map), anchor, line)
                }
                None => {}
            },
            Event::Alias(id) => {
                let value = match self.anchors.get(&id) {
                    Some(v) => v.clone(),
                    None => {
                        self.problems.push(YamlProblem {
                            pointer: self.next_pointer().unwrap_or_default(),
                            line,
                            message: "alias to an unknown anchor".into(),
                        });
                        Value::Null
                    }
                };
                if self.next_pointer().is_none()
                    && let Value::String(s) = value
                {
                    self.on_key(s, false, line);
                    return;
                }
                self.attach(value, 0, line);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

impl Builder {
    /// Records the line of a collection that starts now and returns its pointer.
    fn start_collection(&mut self, line: usize) -> String {
        match self.next_pointer() {
            Some(p) => {
                self.lines.entry(p.clone()).or_insert(line);
                p
            }
            // A collection as a mapping key: reported when it is attached.
            None => match self.stack.last() {
                Some(Frame::Map { pointer, .. }) => format!("{pointer}/?"),
                _ => String::new(),
            },
        }
    }
}

fn scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag
        && tag.handle == "tag:yaml.org,2002:"
    {
        return match tag.suffix.as_str() {
            "str" => Value::String(text),
            _ => resolve_plain(text),
        };
    }
    if style == TScalarStyle::Plain {
        resolve_plain(text)
    } else {
        Value::String(text)
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(&text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.trim_start_matches('+').parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(u) = text.trim_start_matches('+').parse::<u64>() {
            return Value::Number(u.into());
        }
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Number(i.into());
    }
    if let Some(oct) = text.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Value::Number(i.into());
    }
    let float_chars = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if float_chars
        && text.bytes().any(|b| b.is_ascii_digit())
        && let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(text: &str) -> Parsed {
        let (parsed, problems) = parse(text);
        assert!(problems.is_empty(), "{problems:?}");
        parsed.unwrap()
    }

    #[test]
    fn values_and_lines() {
        let p = ok(
            "a: 1\nb:\n  200:\n    d: x\n  c: [1, 'two', 3.5, null, true]\nlist:\n  - k: v\n  - w\n",
        );
        assert_eq!(
            p.value,
            json!({"a": 1, "b": {"200": {"d": "x"}, "c": [1, "two", 3.5, null, true]}, "list": [{"k": "v"}, "w"]})
        );
        assert_eq!(p.lines["/a"], 1);
        assert_eq!(p.lines["/b/200"], 3);
        assert_eq!(p.lines["/b/200/d"], 4);
        assert_eq!(p.lines["/b/c"], 5);
        assert_eq!(p.lines["/list/0"], 7);
        assert_eq!(p.lines["/list/1"], 8);
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let p = ok(
            "a: '1'\nb: 1.0\nc: ~\nd: 0x10\ne: yes\nf: !!str 12\ng: -3\nh: 1e3\ni: .inf\nj: \"true\"\n",
        );
        assert_eq!(
            p.value,
            json!({"a": "1", "b": 1.0, "c": null, "d": 16, "e": "yes", "f": "12", "g": -3, "h": 1000.0, "i": ".inf", "j": "true"})
        );
    }

    #[test]
    fn json_text_parses() {
        let p = ok("{\"a\": {\"b\": [1, 2]},\n \"c\": \"d\"}");
        assert_eq!(p.value, json!({"a": {"b": [1, 2]}, "c": "d"}));
        assert_eq!(p.lines["/c"], 2);
    }

    #[test]
    fn keys_with_slashes_are_escaped() {
        let p = ok("paths:\n  /v1/items:\n    get: {}\n");
        assert_eq!(p.lines["/paths/~1v1~1items/get"], 3);
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let (parsed, problems) = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(parsed.unwrap().value, json!({"a": 1, "b": 2}));
        assert_eq!(
            problems,
            vec![YamlProblem {
                pointer: "/a".into(),
                line: 3,
                message: "duplicate mapping key `a`".into()
            }]
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let p = ok("base: &b\n  x: 1\n  y: 2\nother:\n  <<: *b\n  y: 3\ncopy: *b\n");
        assert_eq!(
            p.value,
            json!({"base": {"x": 1, "y": 2}, "other": {"y": 3, "x": 1}, "copy": {"x": 1, "y": 2}})
        );
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let (parsed, problems) = parse("a: 1\nb: [1, 2\nc: 3\n");
        assert!(parsed.is_none());
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.starts_with("YAML syntax error"),
            "{problems:?}"
        );
    }

    #[test]
    fn empty_and_multi_document_files_are_reported() {
        assert_eq!(parse("").1[0].message, "the file is empty");
        let (parsed, problems) = parse("a: 1\n---\nb: 2\n");
        assert!(parsed.is_none());
        assert!(problems[0].message.contains("2 YAML documents"));
    }
}
