//! Parameters: from raw strings (path segments, query pairs, headers, cookies) to JSON values
//! of the schema's type, following the parameter's style and explode.
//!
//! Coercion never fails: a value that does not parse as the schema's type is kept as a string,
//! so the schema validator reports it (`"abc" is not of type "integer"`) like any other error.

use klue_spec::{ParamStyle, ref_name};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// The JSON type a parameter (or an array's items) decodes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    Array(Box<Kind>),
    /// Objects, with the kinds of their declared properties.
    Object(BTreeMap<String, Kind>),
    /// No declared type: kept as a string.
    Any,
}

impl Kind {
    /// The kind of `schema`, following `$ref`s into `defs` (bounded, for recursive schemas).
    pub fn of(schema: &Value, defs: &BTreeMap<String, Value>) -> Kind {
        Self::of_depth(schema, defs, 0)
    }

    fn of_depth(schema: &Value, defs: &BTreeMap<String, Value>, depth: usize) -> Kind {
        if depth > 16 {
            return Kind::Any;
        }
        if let Some(target) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(ref_name)
            .and_then(|name| defs.get(name))
        {
            return Self::of_depth(target, defs, depth + 1);
        }
        let declared = match schema.get("type") {
            Some(Value::String(t)) => Some(t.as_str()),
            // ["integer", "null"]: the first non-null type decides.
            Some(Value::Array(types)) => types
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null"),
            _ => None,
        };
        match declared {
            Some("string") => Kind::String,
            Some("integer") => Kind::Integer,
            Some("number") => Kind::Number,
            Some("boolean") => Kind::Boolean,
            Some("array") => Kind::Array(Box::new(
                schema
                    .get("items")
                    .map(|items| Self::of_depth(items, defs, depth + 1))
                    .unwrap_or(Kind::Any),
            )),
            Some("object") => Kind::Object(
                schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|props| {
                        props
                            .iter()
                            .map(|(k, v)| (k.clone(), Self::of_depth(v, defs, depth + 1)))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => {
                // allOf / anyOf / oneOf of one typed branch: use it.
                for key in ["allOf", "anyOf", "oneOf"] {
                    if let Some(kind) =
                        schema
                            .get(key)
                            .and_then(Value::as_array)
                            .and_then(|branches| {
                                branches
                                    .iter()
                                    .map(|b| Self::of_depth(b, defs, depth + 1))
                                    .find(|k| *k != Kind::Any)
                            })
                    {
                        return kind;
                    }
                }
                Kind::Any
            }
        }
    }

    /// Whether an empty value means "absent" (true for everything but strings).
    pub fn empty_is_absent(&self) -> bool {
        !matches!(self, Kind::String | Kind::Any)
    }
}

/// A scalar from its string form.
pub fn coerce_scalar(raw: &str, kind: &Kind) -> Value {
    match kind {
        Kind::Integer => raw
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| raw.parse::<u64>().map(Value::from))
            // `3.0`, `1e3`, or beyond 64 bits: a JSON number, so the schema judges it (an
            // integral one is an integer to JSON Schema; the range check refuses the rest).
            .or_else(|_| {
                raw.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .and_then(Number::from_f64)
                    .map(|n| {
                        let mut v = Value::Number(n);
                        crate::validate::integral_floats_to_integers(&mut v);
                        v
                    })
                    .ok_or(())
            })
            .unwrap_or_else(|()| Value::String(raw.to_owned())),
        Kind::Number => raw
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(Number::from_f64)
            .map(|n| {
                // Keep integers integral so `type: integer` inside a number schema validates.
                raw.parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::Number(n))
            })
            .unwrap_or_else(|| Value::String(raw.to_owned())),
        Kind::Boolean => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw.to_owned()),
        },
        _ => Value::String(raw.to_owned()),
    }
}

/// The separator of a non-exploded array in this style.
fn separator(style: ParamStyle) -> char {
    match style {
        ParamStyle::SpaceDelimited => ' ',
        ParamStyle::PipeDelimited => '|',
        _ => ',',
    }
}

/// A parameter's value from all the raw values sent for its name (query parameters may repeat;
/// path, header and cookie parameters have one). `None` when absent.
pub fn decode(raw_values: &[&str], kind: &Kind, style: ParamStyle, explode: bool) -> Option<Value> {
    match kind {
        Kind::Array(item) => {
            let items: Vec<Value> = if explode && style == ParamStyle::Form {
                raw_values
                    .iter()
                    .flat_map(|v| split_nonempty(v, None))
                    .map(|v| coerce_scalar(v, item))
                    .collect()
            } else {
                let sep = separator(style);
                raw_values
                    .iter()
                    .flat_map(|v| split_nonempty(v, Some(sep)))
                    .map(|v| coerce_scalar(v, item))
                    .collect()
            };
            if items.is_empty() && raw_values.iter().all(|v| v.is_empty()) {
                None
            } else {
                Some(Value::Array(items))
            }
        }
        Kind::Object(props) => {
            let raw = raw_values.last()?;
            // Non-exploded form / simple: `k1,v1,k2,v2`.
            let parts: Vec<&str> = raw.split(',').collect();
            let mut object = Map::new();
            for pair in parts.chunks(2) {
                if let [k, v] = pair {
                    let kind = props.get(*k).unwrap_or(&Kind::Any);
                    object.insert((*k).to_owned(), coerce_scalar(v, kind));
                }
            }
            Some(Value::Object(object))
        }
        scalar => {
            let raw = raw_values.last()?;
            if raw.is_empty() && scalar.empty_is_absent() {
                None
            } else {
                Some(coerce_scalar(raw, scalar))
            }
        }
    }
}

fn split_nonempty(value: &str, sep: Option<char>) -> Vec<&str> {
    match sep {
        None if value.is_empty() => Vec::new(),
        None => vec![value],
        Some(sep) => value.split(sep).filter(|s| !s.is_empty()).collect(),
    }
}

/// A `deepObject` query parameter (`filter[color]=red&filter[size]=2`) from all query pairs.
pub fn decode_deep_object(name: &str, pairs: &[(String, String)], kind: &Kind) -> Option<Value> {
    let props = match kind {
        Kind::Object(props) => Some(props),
        _ => None,
    };
    let prefix = format!("{name}[");
    let mut object = Map::new();
    for (key, value) in pairs {
        if let Some(prop) = key
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(']'))
        {
            let kind = props.and_then(|p| p.get(prop)).unwrap_or(&Kind::Any);
            object.insert(prop.to_owned(), coerce_scalar(value, kind));
        }
    }
    (!object.is_empty()).then_some(Value::Object(object))
}

/// An exploded `form` object parameter: each declared property is its own query key.
pub fn decode_exploded_object(pairs: &[(String, String)], kind: &Kind) -> Option<Value> {
    let Kind::Object(props) = kind else {
        return None;
    };
    let mut object = Map::new();
    for (key, value) in pairs {
        if let Some(prop_kind) = props.get(key) {
            object.insert(key.clone(), coerce_scalar(value, prop_kind));
        }
    }
    (!object.is_empty()).then_some(Value::Object(object))
}

/// The cookies of a `Cookie` header, percent-decoded.
pub fn parse_cookies(header: &str) -> Vec<(String, String)> {
    header
        .split(';')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let v = v.trim().trim_matches('"');
            let decoded = percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned();
            Some((k.trim().to_owned(), decoded))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(schema: Value) -> Kind {
        Kind::of(&schema, &BTreeMap::new())
    }

    #[test]
    fn scalars_coerce_or_stay_strings() {
        assert_eq!(coerce_scalar("42", &Kind::Integer), json!(42));
        assert_eq!(coerce_scalar("4x", &Kind::Integer), json!("4x"));
        assert_eq!(coerce_scalar("3.0", &Kind::Integer), json!(3));
        assert_eq!(
            coerce_scalar("99999999999999999999", &Kind::Integer),
            json!(1e20)
        );
        assert_eq!(coerce_scalar("1.5", &Kind::Number), json!(1.5));
        assert_eq!(coerce_scalar("NaN", &Kind::Number), json!("NaN"));
        assert_eq!(coerce_scalar("true", &Kind::Boolean), json!(true));
        assert_eq!(coerce_scalar("yes", &Kind::Boolean), json!("yes"));
    }

    #[test]
    fn nullable_types_use_the_non_null_type() {
        assert_eq!(kind(json!({"type": ["null", "integer"]})), Kind::Integer);
    }

    #[test]
    fn arrays_follow_style_and_explode() {
        let k = kind(json!({"type": "array", "items": {"type": "integer"}}));
        assert_eq!(
            decode(&["1", "2"], &k, ParamStyle::Form, true),
            Some(json!([1, 2]))
        );
        assert_eq!(
            decode(&["1,2"], &k, ParamStyle::Form, false),
            Some(json!([1, 2]))
        );
        assert_eq!(
            decode(&["1 2"], &k, ParamStyle::SpaceDelimited, false),
            Some(json!([1, 2]))
        );
        assert_eq!(
            decode(&["1|x"], &k, ParamStyle::PipeDelimited, false),
            Some(json!([1, "x"]))
        );
        assert_eq!(
            decode(&["1,2"], &k, ParamStyle::Simple, false),
            Some(json!([1, 2]))
        );
    }

    #[test]
    fn empty_non_string_values_are_absent() {
        assert_eq!(decode(&[""], &Kind::Integer, ParamStyle::Form, true), None);
        assert_eq!(
            decode(&[""], &Kind::String, ParamStyle::Form, true),
            Some(json!(""))
        );
    }

    #[test]
    fn objects_decode_from_deep_object_and_form() {
        let k = kind(json!({"type": "object", "properties": {"n": {"type": "integer"}}}));
        let pairs = vec![
            ("f[n]".to_owned(), "3".to_owned()),
            ("f[s]".to_owned(), "x".to_owned()),
        ];
        assert_eq!(
            decode_deep_object("f", &pairs, &k),
            Some(json!({"n": 3, "s": "x"}))
        );
        assert_eq!(
            decode(&["n,4"], &k, ParamStyle::Form, false),
            Some(json!({"n": 4}))
        );
    }

    #[test]
    fn cookies_are_split_and_decoded() {
        assert_eq!(
            parse_cookies("a=1; token=Bearer%20abc"),
            vec![
                ("a".into(), "1".into()),
                ("token".into(), "Bearer abc".into())
            ]
        );
    }
}
