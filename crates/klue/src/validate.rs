//! Schema validators, compiled once at startup. The fast `is_valid` path runs first; detailed
//! errors are computed only when it fails.

use crate::error::{ECHO_LIMIT, FieldError, FieldLocation, truncate_chars, truncate_input};
use jsonschema::error::ValidationErrorKind;
use klue_spec::Api;
use serde_json::Value;

/// At most this many errors are reported for one value (a huge invalid body stays cheap).
const MAX_ERRORS: usize = 20;

/// The longest message of one violation. The client's value in it is cut to
/// [`ECHO_LIMIT`] already; this bounds the rest (words from the schema, and anything a
/// message might repeat that is not handled here).
const MAX_MESSAGE_CHARS: usize = 10 * ECHO_LIMIT;

/// The longest JSON pointer reported, after each of its keys is cut to [`ECHO_LIMIT`].
const MAX_POINTER_CHARS: usize = 4 * ECHO_LIMIT;

/// How many unexpected property names a message lists.
const SHOWN_NAMES: usize = 3;

/// A compiled JSON Schema 2020-12 (formats validated; no remote references).
pub struct SchemaValidator {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SchemaValidator")
    }
}

/// Adds `minimum`/`maximum` to every integer schema whose `format` is `int32` or `int64`.
fn bound_integer_formats(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let bounds = match map.get("format").and_then(Value::as_str) {
                Some("int32") => Some((Value::from(i32::MIN), Value::from(i32::MAX))),
                Some("int64") => Some((Value::from(i64::MIN), Value::from(i64::MAX))),
                _ => None,
            };
            if let Some((min, max)) = bounds {
                map.entry("minimum").or_insert(min);
                map.entry("maximum").or_insert(max);
            }
            map.values_mut().for_each(bound_integer_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integer_formats),
        _ => {}
    }
}

/// Rewrites numbers written as floats with no fraction (`3.0`, `1e3`) as integers, in place.
/// JSON Schema counts them as integers, so a validated `integer` field may hold one; typed
/// handlers deserialize integers, and an integer still reads as an `f64` where one is wanted.
pub fn integral_floats_to_integers(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                // |f| < 2^53: exactly representable, so the cast is exact.
                #[allow(clippy::cast_possible_truncation)]
                let integer = f as i64;
                *value = Value::from(integer);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// A failed validation inside a value: where (JSON pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub pointer: String,
    pub message: String,
}

impl SchemaValidator {
    /// Compiles `schema` with the API's named schemas available under `$defs`. Integers with
    /// `format: int32` / `int64` get the bounds of their format (where the schema sets none),
    /// so an out-of-range value is refused naming its field instead of failing later.
    pub fn compile(api: &Api, schema: &Value) -> Result<Self, String> {
        let mut bundled = api.bundle_schema(schema);
        bound_integer_formats(&mut bundled);
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&bundled)
            .map(|validator| SchemaValidator { validator })
            .map_err(|e| e.to_string())
    }

    pub fn is_valid(&self, instance: &Value) -> bool {
        self.validator.is_valid(instance)
    }

    /// Every violation (up to a bound), empty when `instance` is valid.
    pub fn violations(&self, instance: &Value) -> Vec<Violation> {
        if self.validator.is_valid(instance) {
            return Vec::new();
        }
        self.validator
            .iter_errors(instance)
            .take(MAX_ERRORS)
            .map(|error| {
                let mut pointer = bounded_pointer(error.instance_path().as_str());
                if let ValidationErrorKind::Required {
                    property: Value::String(name),
                } = error.kind()
                {
                    pointer.push('/');
                    pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                }
                Violation {
                    pointer,
                    message: message(&error),
                }
            })
            .collect()
    }

    /// Violations of a parameter's value, as field errors naming the parameter.
    pub fn parameter_errors(
        &self,
        location: FieldLocation,
        name: &str,
        value: &Value,
    ) -> Vec<FieldError> {
        self.violations(value)
            .into_iter()
            .map(|v| FieldError {
                location,
                name: Some(name.to_owned()),
                pointer: (!v.pointer.is_empty()).then_some(v.pointer),
                message: v.message,
            })
            .collect()
    }

    /// Violations of a body, as field errors with JSON pointers.
    pub fn body_errors(&self, body: &Value) -> Vec<FieldError> {
        self.violations(body)
            .into_iter()
            .map(|v| FieldError {
                location: FieldLocation::Body,
                name: None,
                pointer: Some(v.pointer),
                message: v.message,
            })
            .collect()
    }
}

/// What a violation says, with the client's value (or property names) cut to
/// [`ECHO_LIMIT`] characters: jsonschema's own messages repeat the whole value.
fn message(error: &jsonschema::ValidationError<'_>) -> String {
    let text = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            unexpected_names("Additional", unexpected)
        }
        ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            unexpected_names("Unevaluated", unexpected)
        }
        // The value in question is a property name.
        ValidationErrorKind::PropertyNames { error } => message(error),
        _ => error
            .masked_with(render_value(error.instance()))
            .to_string(),
    };
    truncate_chars(&text, MAX_MESSAGE_CHARS).into_owned()
}

/// jsonschema's wording for unexpected properties, naming at most [`SHOWN_NAMES`] of them,
/// each cut to [`ECHO_LIMIT`].
fn unexpected_names(what: &str, names: &[String]) -> String {
    let mut text = format!("{what} properties are not allowed (");
    for (i, name) in names.iter().take(SHOWN_NAMES).enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push('\'');
        text.push_str(&truncate_input(name));
        text.push('\'');
    }
    if names.len() > SHOWN_NAMES {
        text.push_str(&format!(" and {} more", names.len() - SHOWN_NAMES));
    }
    text.push_str(if names.len() == 1 {
        " was unexpected)"
    } else {
        " were unexpected)"
    });
    text
}

/// A value as JSON, cut to [`ECHO_LIMIT`] characters. A string is cut before it is quoted
/// (so the quotes stay); anything else is serialized only as far as the cut needs.
fn render_value(value: &Value) -> String {
    if let Value::String(text) = value {
        return Value::String(truncate_input(text).into_owned()).to_string();
    }
    let mut out = Bounded(Vec::new());
    // Stops with an error once `Bounded` is full: the start is all that is kept.
    let _ = serde_json::to_writer(&mut out, value);
    let bytes = &out.0;
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        // Cut inside a character: the characters before it.
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    };
    truncate_input(text).into_owned()
}

/// A writer that keeps the first bytes written, enough for one more character than
/// [`ECHO_LIMIT`] (so that a cut is seen), and then refuses.
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        const CAPACITY: usize = 4 * (ECHO_LIMIT + 1);
        let room = CAPACITY.saturating_sub(self.0.len());
        if room == 0 {
            return Err(std::io::Error::other("enough of the value is kept"));
        }
        let n = buf.len().min(room);
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A JSON pointer into the client's body with each key cut to [`ECHO_LIMIT`] characters,
/// and the whole to [`MAX_POINTER_CHARS`].
fn bounded_pointer(pointer: &str) -> String {
    if pointer.len() <= ECHO_LIMIT {
        return pointer.to_owned();
    }
    let mut bounded = String::new();
    for key in pointer.split('/').skip(1) {
        bounded.push('/');
        bounded.push_str(&truncate_input(key));
        if bounded.len() > 4 * MAX_POINTER_CHARS {
            break;
        }
    }
    truncate_chars(&bounded, MAX_POINTER_CHARS).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integer_formats_get_their_bounds_unless_set() {
        let mut schema = json!({"properties": {
            "a": {"type": "integer", "format": "int32"},
            "b": {"type": "integer", "format": "int64", "minimum": 0},
            "c": {"type": "integer"}
        }});
        bound_integer_formats(&mut schema);
        assert_eq!(schema["properties"]["a"]["maximum"], json!(i32::MAX));
        assert_eq!(schema["properties"]["a"]["minimum"], json!(i32::MIN));
        assert_eq!(schema["properties"]["b"]["minimum"], json!(0));
        assert_eq!(schema["properties"]["b"]["maximum"], json!(i64::MAX));
        assert!(schema["properties"]["c"].get("maximum").is_none());
    }

    #[test]
    fn integral_floats_become_integers() {
        let mut value = json!({"a": 3.0, "b": [1.5, -2.0, 1e3], "c": 7, "d": 1e300});
        integral_floats_to_integers(&mut value);
        assert_eq!(
            value,
            json!({"a": 3, "b": [1.5, -2, 1000], "c": 7, "d": 1e300})
        );
    }

    fn validator(schema: Value) -> SchemaValidator {
        let api = klue_spec::load_sources(&[klue_spec::Source {
            path: "t.yaml".into(),
            text: "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n".into(),
        }]);
        let Some(api) = api.ok().and_then(|apis| apis.into_iter().next()) else {
            panic!("the test spec does not load");
        };
        match SchemaValidator::compile(&api, &schema) {
            Ok(validator) => validator,
            Err(e) => panic!("{e}"),
        }
    }

    fn longest_echo(violations: &[Violation]) -> usize {
        violations
            .iter()
            .map(|v| v.message.chars().count().max(v.pointer.chars().count()))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn echoed_values_are_cut() {
        let long = "x".repeat(100_000);
        let v = validator(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 3},
                "kind": {"enum": ["a", "b"]},
                "code": {"type": "string", "pattern": "^[a-z]{2}$"},
                "list": {"type": "array", "maxItems": 1},
                "n": {"type": "integer"},
                "labels": {"type": "object", "propertyNames": {"maxLength": 5}}
            },
            "additionalProperties": false
        }));
        let mut labels = serde_json::Map::new();
        labels.insert(long.clone(), json!(1));
        let mut body = json!({
            "name": long, "kind": long, "code": long,
            "list": [long, long], "n": {"deep": long}, "labels": labels,
        });
        for i in 0..10 {
            body[format!("{long}{i}")] = json!(1);
        }
        let violations = v.violations(&body);
        assert!(violations.len() >= 7, "{violations:?}");
        for violation in &violations {
            assert!(
                violation.message.contains('…') || violation.pointer.contains('…'),
                "{violation:?}"
            );
        }
        assert!(longest_echo(&violations) < 400, "{violations:?}");
        let additional = violations
            .iter()
            .find(|v| v.message.starts_with("Additional properties"))
            .map(|v| v.message.as_str());
        assert!(
            additional.is_some_and(|m| m.ends_with(" and 7 more were unexpected)")),
            "{additional:?}"
        );
    }

    #[test]
    fn short_values_are_shown_whole() {
        let v = validator(json!({"type": "string", "enum": ["a", "b"]}));
        let violations = v.violations(&json!("été"));
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].message, r#""été" is not one of "a" or "b""#);
        let v = validator(json!({"type": "integer"}));
        assert_eq!(
            v.violations(&json!([1, "two"]))[0].message,
            r#"[1,"two"] is not of type "integer""#
        );
    }

    #[test]
    fn long_pointers_keep_their_shape() {
        let key = "k".repeat(500);
        let pointer = format!("/a/{key}/0");
        let bounded = bounded_pointer(&pointer);
        assert_eq!(bounded, format!("/a/{}…/0", "k".repeat(ECHO_LIMIT)));
        assert_eq!(bounded_pointer("/a/b"), "/a/b");
        let deep = format!("/{key}").repeat(50);
        assert!(bounded_pointer(&deep).chars().count() <= MAX_POINTER_CHARS + 1);
    }
}
