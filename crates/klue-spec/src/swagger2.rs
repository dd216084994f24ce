//! Swagger 2.0 -> the OpenAPI 3 shapes of the IR: `body` and `formData` parameters become the
//! request body (media types from `consumes`), simple parameters get a `schema`,
//! `collectionFormat` becomes style/explode, response `schema`s go under each `produces` type.

use crate::ctx::Ctx;
use crate::yaml::child;
use crate::{MediaType, ParamLocation, ParamStyle, Parameter, RequestBody};
use serde_json::{Map, Value, json};

/// A 2.0 parameter, before body and form parameters are gathered into the request body.
pub(crate) enum Param2 {
    Plain(Parameter),
    Body {
        name: String,
        required: bool,
        description: Option<String>,
        schema: Value,
    },
    Form {
        name: String,
        required: bool,
        schema: Value,
        file: bool,
    },
}

impl Param2 {
    /// Name and `in`, the key under which operation parameters override path ones.
    pub fn key(&self) -> (String, String) {
        match self {
            Param2::Plain(p) => (p.name.clone(), p.location.as_str().to_string()),
            Param2::Body { name, .. } => (name.clone(), "body".into()),
            Param2::Form { name, .. } => (name.clone(), "formData".into()),
        }
    }
}

/// Keywords of a 2.0 non-body parameter that describe its value (they move into `schema`).
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "items",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "enum",
    "multipleOf",
    "x-nullable",
];

/// A 2.0 `items` object as a schema (nested `collectionFormat` is not supported).
fn items_schema(ctx: &mut Ctx, doc: usize, pointer: &str, items: &Value) -> Value {
    let Some(map) = items.as_object() else {
        return items.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "collectionFormat" => {
                if map.get("type").and_then(Value::as_str) == Some("array") {
                    ctx.error(
                        doc,
                        &child(pointer, k),
                        "nested arrays (`collectionFormat` in `items`) are not supported",
                    );
                }
            }
            "items" => {
                out.insert(k.clone(), items_schema(ctx, doc, &child(pointer, k), v));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

pub(crate) fn parameter(ctx: &mut Ctx, doc: usize, pointer: &str, p: &Value) -> Option<Param2> {
    let Some(map) = p.as_object() else {
        ctx.error(doc, pointer, "a parameter must be a map");
        return None;
    };
    let Some(name) = map.get("name").and_then(Value::as_str).map(str::to_string) else {
        ctx.error(doc, pointer, "a parameter needs a `name`");
        return None;
    };
    let required = map.get("required").and_then(Value::as_bool);
    let description = map
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    let location = match map.get("in").and_then(Value::as_str) {
        Some("body") => {
            let schema = match map.get("schema") {
                Some(s) => ctx.schema(doc, &child(pointer, "schema"), s),
                None => {
                    ctx.error(
                        doc,
                        pointer,
                        format!("body parameter `{name}` needs a `schema`"),
                    );
                    return None;
                }
            };
            return Some(Param2::Body {
                name,
                required: required.unwrap_or(false),
                description,
                schema,
            });
        }
        Some("formData") => None,
        Some("path") => Some(ParamLocation::Path),
        Some("query") => Some(ParamLocation::Query),
        Some("header") => Some(ParamLocation::Header),
        other => {
            ctx.error(
                doc,
                &child(pointer, "in"),
                format!("parameter `{name}`: `in` must be path, query, header, body or formData in Swagger 2.0, not {}", crate::operations::describe(other)),
            );
            return None;
        }
    };

    let mut raw = Map::new();
    for key in SCHEMA_KEYS {
        if let Some(v) = map.get(*key) {
            let v = if *key == "items" {
                items_schema(ctx, doc, &child(pointer, key), v)
            } else {
                v.clone()
            };
            raw.insert((*key).to_string(), v);
        }
    }
    if location.is_some() && raw.get("type").and_then(Value::as_str) == Some("file") {
        ctx.error(
            doc,
            &child(pointer, "type"),
            format!("parameter `{name}`: `type: file` is only allowed in formData"),
        );
        return None;
    }
    if !raw.contains_key("type") {
        ctx.error(doc, pointer, format!("parameter `{name}` needs a `type`"));
        return None;
    }
    let is_array = raw.get("type").and_then(Value::as_str) == Some("array");
    let file = raw.get("type").and_then(Value::as_str) == Some("file");
    let mut schema = ctx.schema(doc, pointer, &Value::Object(raw));
    if let (Some(d), Value::Object(s)) = (&description, &mut schema)
        && location.is_none()
    {
        s.insert("description".into(), json!(d));
    }
    let format = map.get("collectionFormat").and_then(Value::as_str);
    let format_pointer = child(pointer, "collectionFormat");
    let Some(location) = location else {
        if format == Some("tsv") {
            ctx.error(
                doc,
                &format_pointer,
                format!("parameter `{name}`: collectionFormat `tsv` is not supported"),
            );
        }
        return Some(Param2::Form {
            name,
            required: required.unwrap_or(false),
            schema,
            file,
        });
    };
    let default_style = match location {
        ParamLocation::Query | ParamLocation::Cookie => (ParamStyle::Form, true),
        ParamLocation::Path | ParamLocation::Header => (ParamStyle::Simple, false),
    };
    let (style, explode) = if !is_array {
        default_style
    } else {
        match (format.unwrap_or("csv"), location) {
            ("csv", ParamLocation::Query) => (ParamStyle::Form, false),
            ("csv", _) => (ParamStyle::Simple, false),
            ("ssv", ParamLocation::Query) => (ParamStyle::SpaceDelimited, false),
            ("pipes", ParamLocation::Query) => (ParamStyle::PipeDelimited, false),
            ("multi", ParamLocation::Query) => (ParamStyle::Form, true),
            (f @ ("tsv" | "ssv" | "pipes" | "multi"), l) => {
                let why = if f == "tsv" {
                    "is not supported".to_string()
                } else {
                    format!("is not supported for {} parameters", l.as_str())
                };
                ctx.error(
                    doc,
                    &format_pointer,
                    format!("parameter `{name}`: collectionFormat `{f}` {why}"),
                );
                return None;
            }
            (f, _) => {
                ctx.error(
                    doc,
                    &format_pointer,
                    format!("parameter `{name}`: unknown collectionFormat `{f}`"),
                );
                return None;
            }
        }
    };
    if location == ParamLocation::Path && required == Some(false) {
        ctx.error(
            doc,
            &child(pointer, "required"),
            format!("path parameter `{name}` must be required"),
        );
    }
    Some(Param2::Plain(Parameter {
        name,
        location,
        required: location == ParamLocation::Path || required.unwrap_or(false),
        description,
        schema,
        style,
        explode,
        deprecated: false,
    }))
}

/// A `consumes` / `produces` list, if the node has one.
pub(crate) fn media_list(
    ctx: &mut Ctx,
    doc: usize,
    pointer: &str,
    list: Option<&Value>,
) -> Option<Vec<String>> {
    let list = list?;
    match list.as_array() {
        Some(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        None => {
            ctx.error(
                doc,
                pointer,
                "`consumes` / `produces` must be a list of media types",
            );
            None
        }
    }
}

/// The request body made of the `body` parameter or of the `formData` parameters.
pub(crate) fn request_body(
    ctx: &mut Ctx,
    doc: usize,
    opointer: &str,
    params: Vec<Param2>,
    consumes: &[String],
) -> Option<RequestBody> {
    if params.is_empty() {
        return None;
    }
    let pointer = child(opointer, "parameters");
    let has_body = params.iter().any(|p| matches!(p, Param2::Body { .. }));
    let has_form = params.iter().any(|p| matches!(p, Param2::Form { .. }));
    if has_body && has_form {
        ctx.error(
            doc,
            &pointer,
            "an operation cannot have both `body` and `formData` parameters",
        );
        return None;
    }
    if has_body {
        if params.len() > 1 {
            ctx.error(
                doc,
                &pointer,
                "an operation can have only one `body` parameter",
            );
        }
        let Some(Param2::Body {
            required,
            description,
            schema,
            ..
        }) = params.into_iter().next()
        else {
            return None;
        };
        let types: Vec<String> = if consumes.is_empty() {
            vec!["application/json".into()]
        } else {
            consumes.to_vec()
        };
        let content = types
            .into_iter()
            .map(|media_type| MediaType {
                media_type,
                schema: Some(schema.clone()),
            })
            .collect();
        let content = ctx.drop_xml(doc, opointer, content);
        return Some(RequestBody {
            required,
            description,
            content,
        });
    }
    let mut properties = Map::new();
    let mut required_names = Vec::new();
    let mut any_file = false;
    for p in params {
        if let Param2::Form {
            name,
            required,
            schema,
            file,
        } = p
        {
            any_file |= file;
            if required {
                required_names.push(json!(name));
            }
            properties.insert(name, schema);
        }
    }
    let multipart = any_file
        || consumes
            .iter()
            .any(|c| c.starts_with("multipart/form-data"));
    let media_type = if multipart {
        "multipart/form-data"
    } else {
        "application/x-www-form-urlencoded"
    };
    let required = !required_names.is_empty();
    let mut schema = json!({"type": "object", "properties": properties});
    if required {
        schema["required"] = Value::Array(required_names);
    }
    Some(RequestBody {
        required,
        description: None,
        content: vec![MediaType {
            media_type: media_type.into(),
            schema: Some(schema),
        }],
    })
}

/// A 2.0 response's `schema` under each `produces` media type.
pub(crate) fn response_content(
    ctx: &mut Ctx,
    doc: usize,
    pointer: &str,
    response: &Map<String, Value>,
    produces: &[String],
) -> Vec<MediaType> {
    let Some(schema) = response.get("schema") else {
        return Vec::new();
    };
    let schema = ctx.schema(doc, &child(pointer, "schema"), schema);
    let types: Vec<String> = if produces.is_empty() {
        vec!["application/json".into()]
    } else {
        produces.to_vec()
    };
    let content = types
        .into_iter()
        .map(|media_type| MediaType {
            media_type,
            schema: Some(schema.clone()),
        })
        .collect();
    ctx.drop_xml(doc, pointer, content)
}
