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

/// A failed validation inside a value: where (JSON pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub pointer: String,
    pub message: String,
}

impl SchemaValidator {
    /// Compiles `schema` with the API's named schemas available under `$defs`.
    pub fn compile(api: &Api, schema: &Value) -> Result<Self, String> {
        let bundled = api.bundle_schema(schema);
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
                if let ValidationErrorKind::Required { property: Value::String(name) } = error.kind() {
                    pointer.push('/');
                    pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                }
                Violation { pointer, message: error.to_string() }
            })
            .collect()
    }

    /// Violations of a parameter's value, as field errors naming the parameter.
    pub fn parameter_errors(&self, location: FieldLocation, name: &str, value: &Value) -> Vec<FieldError> {
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
