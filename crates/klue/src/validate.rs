//! Schema validators, compiled once at startup. The fast `is_valid` path runs first; detailed
//! errors are computed only when it fails.

use crate::error::{FieldError, FieldLocation};
use jsonschema::error::ValidationErrorKind;
use klue_spec::Api;
use serde_json::Value;

/// At most this many errors are reported for one value (a huge invalid body stays cheap).
const MAX_ERRORS: usize = 20;

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
                let mut pointer = error.instance_path().as_str().to_owned();
                if let ValidationErrorKind::Required {
                    property: Value::String(name),
                } = error.kind()
                {
                    pointer.push('/');
                    pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                }
                Violation {
                    pointer,
                    message: error.to_string(),
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
}
