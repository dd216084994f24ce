//! OpenAPI 3.0 / Swagger 2.0 schema keywords -> JSON Schema 2020-12, one schema object at a
//! time (the caller walks subschemas first and has already rewritten `$ref`s).
//!
//! - `nullable: true` (2.0: `x-nullable: true`) adds `"null"` to `type` and to `enum`; where
//!   the value is a `$ref` or a composition (`allOf`/`anyOf`/`oneOf`, which would reject null)
//!   the schema becomes `anyOf: [<it>, {type: null}]`;
//! - boolean `exclusiveMinimum`/`exclusiveMaximum` take the numeric form (draft 6+);
//! - `example` becomes `examples: [example]`;
//! - 2.0 `type: file` becomes `type: string, format: binary`.
//!
//! Other keywords (`discriminator`, `xml`, `readOnly`, `externalDocs`, `x-*`) are kept: JSON
//! Schema ignores unknown keywords and codegen reads `discriminator`.

use serde_json::{Map, Value, json};

/// A keyword that could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub keyword: String,
    pub message: String,
}

const COMPOSITIONS: [&str; 3] = ["allOf", "anyOf", "oneOf"];

/// Normalizes one 3.0 (or, with `swagger2`, 2.0) schema object in place.
pub(crate) fn openapi30(schema: &mut Map<String, Value>, swagger2: bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    if swagger2 {
        if let Some(v) = schema.remove("x-nullable") {
            schema.insert("nullable".into(), v);
        }
        if schema.get("type").and_then(Value::as_str) == Some("file") {
            schema.insert("type".into(), json!("string"));
            schema.insert("format".into(), json!("binary"));
        }
    }
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(Value::Bool(flag)) = schema.get(exclusive).cloned() {
            schema.remove(exclusive);
            if flag {
                match schema.remove(bound) {
                    Some(limit) => {
                        schema.insert(exclusive.into(), limit);
                    }
                    None => problems.push(Problem {
                        keyword: exclusive.into(),
                        message: format!("`{exclusive}: true` without `{bound}`"),
                    }),
                }
            }
        }
    }
    if let Some(example) = schema.remove("example") {
        schema.entry("examples").or_insert_with(|| json!([example]));
    }
    match schema.remove("nullable") {
        Some(Value::Bool(true)) => make_nullable(schema),
        Some(Value::Bool(false)) | None => {}
        Some(_) => problems.push(Problem {
            keyword: "nullable".into(),
            message: "`nullable` must be a boolean".into(),
        }),
    }
    problems
}

fn make_nullable(schema: &mut Map<String, Value>) {
    let null_schema = json!({"type": "null"});
    if let Some(reference) = schema.remove("$ref") {
        let any_of = json!([{"$ref": reference}, null_schema]);
        wrap_any_of(schema, any_of);
        return;
    }
    match schema.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            if t != "null" {
                schema.insert("type".into(), json!([t, "null"]));
            }
        }
        Some(Value::Array(types)) if !types.iter().any(|t| t == "null") => {
            types.push(json!("null"));
        }
        _ => {}
    }
    if let Some(Value::Array(values)) = schema.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
    if COMPOSITIONS.iter().any(|k| schema.contains_key(*k)) {
        let mut inner = Map::new();
        for k in COMPOSITIONS {
            if let Some(v) = schema.remove(k) {
                inner.insert(k.into(), v);
            }
        }
        wrap_any_of(schema, json!([inner, null_schema]));
    }
}

/// Puts `any_of` on `schema`, keeping an `anyOf` already there (both must then hold).
fn wrap_any_of(schema: &mut Map<String, Value>, any_of: Value) {
    match schema.remove("anyOf") {
        None => {
            schema.insert("anyOf".into(), any_of);
        }
        Some(existing) => {
            let all_of = schema.entry("allOf").or_insert_with(|| json!([]));
            if let Value::Array(list) = all_of {
                list.push(json!({"anyOf": existing}));
                list.push(json!({"anyOf": any_of}));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn norm(v: Value, swagger2: bool) -> (Value, Vec<Problem>) {
        let mut map = v.as_object().cloned().unwrap();
        let problems = openapi30(&mut map, swagger2);
        (Value::Object(map), problems)
    }

    fn ok(v: Value) -> Value {
        let (out, problems) = norm(v, false);
        assert!(problems.is_empty(), "{problems:?}");
        out
    }

    #[test]
    fn nullable_adds_null_to_type_and_enum() {
        assert_eq!(
            ok(json!({"type": "string", "nullable": true})),
            json!({"type": ["string", "null"]})
        );
        assert_eq!(
            ok(json!({"type": "string", "enum": ["a", "b"], "nullable": true})),
            json!({"type": ["string", "null"], "enum": ["a", "b", null]})
        );
        assert_eq!(
            ok(json!({"type": "integer", "nullable": false})),
            json!({"type": "integer"})
        );
    }

    #[test]
    fn nullable_ref_becomes_any_of() {
        assert_eq!(
            ok(json!({"$ref": "#/$defs/Pet", "nullable": true, "description": "d"})),
            json!({"anyOf": [{"$ref": "#/$defs/Pet"}, {"type": "null"}], "description": "d"})
        );
    }

    #[test]
    fn nullable_composition_is_wrapped() {
        assert_eq!(
            ok(json!({"oneOf": [{"$ref": "#/$defs/A"}, {"$ref": "#/$defs/B"}], "nullable": true})),
            json!({"anyOf": [{"oneOf": [{"$ref": "#/$defs/A"}, {"$ref": "#/$defs/B"}]}, {"type": "null"}]})
        );
    }

    #[test]
    fn x_nullable_and_file_in_swagger2() {
        let (out, _) = norm(json!({"type": "integer", "x-nullable": true}), true);
        assert_eq!(out, json!({"type": ["integer", "null"]}));
        let (out, _) = norm(json!({"type": "file"}), true);
        assert_eq!(out, json!({"type": "string", "format": "binary"}));
        // Not in 3.0: x-nullable is just an extension there.
        let (out, _) = norm(json!({"type": "integer", "x-nullable": true}), false);
        assert_eq!(out, json!({"type": "integer", "x-nullable": true}));
    }

    #[test]
    fn boolean_exclusive_bounds_become_numbers() {
        assert_eq!(
            ok(
                json!({"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 10, "exclusiveMaximum": false})
            ),
            json!({"type": "number", "exclusiveMinimum": 0, "maximum": 10})
        );
        let (_, problems) = norm(json!({"exclusiveMaximum": true}), false);
        assert_eq!(problems[0].keyword, "exclusiveMaximum");
    }

    #[test]
    fn example_becomes_examples() {
        assert_eq!(
            ok(json!({"type": "string", "example": "x"})),
            json!({"type": "string", "examples": ["x"]})
        );
    }

    #[test]
    fn other_keywords_are_kept() {
        let v = json!({"type": "object", "discriminator": {"propertyName": "kind"}, "xml": {"name": "x"}, "readOnly": true});
        assert_eq!(ok(v.clone()), v);
    }
}
