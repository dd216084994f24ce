//! The OpenAPI 3.1 document served at `/openapi/<name>.json`, built from the IR (so served
//! docs and behaviour cannot disagree): full paths (base path included, no `servers`),
//! schemas under `components/schemas` with `#/components/schemas/<Name>` references.

use crate::operations::Built;
use crate::{AuthRequirement, ParamLocation, ParamStyle, SecurityScheme};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const IR_PREFIX: &str = "#/$defs/";
const DOC_PREFIX: &str = "#/components/schemas/";

/// Rewrites IR schema references (`$ref` values and discriminator mappings) for the document.
pub(crate) fn rewrite_refs(value: &Value) -> Value {
    fn walk(v: &Value, in_mapping: bool) -> Value {
        match v {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let new = match v {
                            Value::String(s) if k == "$ref" || in_mapping => {
                                match s.strip_prefix(IR_PREFIX) {
                                    Some(name) => Value::String(format!("{DOC_PREFIX}{name}")),
                                    None => v.clone(),
                                }
                            }
                            _ => walk(v, k == "mapping"),
                        };
                        (k.clone(), new)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|i| walk(i, false)).collect()),
            other => other.clone(),
        }
    }
    walk(value, false)
}

fn style_str(style: ParamStyle) -> &'static str {
    match style {
        ParamStyle::Simple => "simple",
        ParamStyle::Form => "form",
        ParamStyle::SpaceDelimited => "spaceDelimited",
        ParamStyle::PipeDelimited => "pipeDelimited",
        ParamStyle::DeepObject => "deepObject",
        ParamStyle::Label => "label",
        ParamStyle::Matrix => "matrix",
    }
}

fn scheme_doc(scheme: &SecurityScheme) -> Value {
    match scheme {
        SecurityScheme::Bearer { bearer_format } => {
            let mut v = json!({"type": "http", "scheme": "bearer"});
            if let Some(f) = bearer_format {
                v["bearerFormat"] = json!(f);
            }
            v
        }
        SecurityScheme::Http { scheme } => json!({"type": "http", "scheme": scheme}),
        SecurityScheme::ApiKey { name, location } => {
            json!({"type": "apiKey", "name": name, "in": location.as_str()})
        }
        // The flows are not in the IR; an openIdConnect URL cannot be invented either, so the
        // document describes the bearer token klue checks.
        SecurityScheme::OAuth2OrOpenIdConnect => json!({"type": "http", "scheme": "bearer"}),
    }
}

fn content_doc(content: &[crate::MediaType]) -> Value {
    Value::Object(
        content
            .iter()
            .map(|m| {
                let mut media = Map::new();
                if let Some(s) = &m.schema {
                    media.insert("schema".into(), rewrite_refs(s));
                }
                (m.media_type.clone(), Value::Object(media))
            })
            .collect(),
    )
}

fn operation_doc(built: &Built, schemes: &BTreeMap<String, SecurityScheme>) -> Value {
    let op = &built.op;
    let mut out = Map::new();
    out.insert("operationId".into(), json!(op.operation_id));
    for (k, v) in [("summary", &op.summary), ("description", &op.description)] {
        if let Some(v) = v {
            out.insert(k.into(), json!(v));
        }
    }
    if let Some(tags) = built.extra.get("tags") {
        out.insert("tags".into(), tags.clone());
    }
    if let Some(docs) = built.extra.get("externalDocs") {
        out.insert("externalDocs".into(), docs.clone());
    }
    if !op.parameters.is_empty() {
        let params = op
            .parameters
            .iter()
            .map(|p| {
                let mut m = Map::new();
                m.insert("name".into(), json!(p.name));
                m.insert("in".into(), json!(p.location.as_str()));
                if let Some(d) = &p.description {
                    m.insert("description".into(), json!(d));
                }
                m.insert(
                    "required".into(),
                    json!(p.required || p.location == ParamLocation::Path),
                );
                if p.deprecated {
                    m.insert("deprecated".into(), json!(true));
                }
                m.insert("style".into(), json!(style_str(p.style)));
                m.insert("explode".into(), json!(p.explode));
                m.insert("schema".into(), rewrite_refs(&p.schema));
                Value::Object(m)
            })
            .collect();
        out.insert("parameters".into(), Value::Array(params));
    }
    if let Some(body) = &op.request_body {
        let mut b = Map::new();
        if let Some(d) = &body.description {
            b.insert("description".into(), json!(d));
        }
        b.insert("required".into(), json!(body.required));
        b.insert("content".into(), content_doc(&body.content));
        out.insert("requestBody".into(), Value::Object(b));
    }
    let responses: Map<String, Value> = op
        .responses
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("description".into(), json!(r.description));
            if !r.content.is_empty() {
                m.insert("content".into(), content_doc(&r.content));
            }
            (r.status.to_string(), Value::Object(m))
        })
        .collect();
    out.insert("responses".into(), Value::Object(responses));
    if let AuthRequirement::Jwt { schemes: names } = &op.auth {
        let mut requirements: Vec<Value> = Vec::new();
        for name in names {
            let name = if schemes.contains_key(name) {
                name.as_str()
            } else {
                "jwt"
            };
            let requirement = json!({ name: [] });
            if !requirements.contains(&requirement) {
                requirements.push(requirement);
            }
        }
        out.insert("security".into(), Value::Array(requirements));
    }
    if op.deprecated {
        out.insert("deprecated".into(), json!(true));
    }
    for (k, v) in &built.extra {
        if k.starts_with("x-") {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

pub(crate) fn build(
    root: &Map<String, Value>,
    title: &str,
    version: &str,
    ops: &[Built],
    schemas: &BTreeMap<String, Value>,
    schemes: &BTreeMap<String, SecurityScheme>,
) -> Value {
    let mut info = root
        .get("info")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    info.insert("title".into(), json!(title));
    info.insert("version".into(), json!(version));
    let mut doc = Map::new();
    doc.insert("openapi".into(), json!("3.1.0"));
    doc.insert("info".into(), Value::Object(info));
    for key in ["tags", "externalDocs"] {
        if let Some(v) = root.get(key) {
            doc.insert(key.into(), v.clone());
        }
    }
    let mut paths: Map<String, Value> = Map::new();
    for built in ops {
        let item = paths
            .entry(built.op.path.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(
                built.op.method.as_key().into(),
                operation_doc(built, schemes),
            );
        }
    }
    doc.insert("paths".into(), Value::Object(paths));
    let mut components = Map::new();
    components.insert(
        "schemas".into(),
        Value::Object(
            schemas
                .iter()
                .map(|(k, v)| (k.clone(), rewrite_refs(v)))
                .collect(),
        ),
    );
    components.insert(
        "securitySchemes".into(),
        Value::Object(
            schemes
                .iter()
                .map(|(k, v)| (k.clone(), scheme_doc(v)))
                .collect(),
        ),
    );
    doc.insert("components".into(), Value::Object(components));
    Value::Object(doc)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn refs_and_mappings_are_rewritten() {
        let v = json!({
            "$ref": "#/$defs/A",
            "discriminator": {"propertyName": "k", "mapping": {"a": "#/$defs/A"}},
            "enum": ["#/$defs/A"],
            "items": [{"$ref": "#/$defs/B"}]
        });
        assert_eq!(
            rewrite_refs(&v),
            json!({
                "$ref": "#/components/schemas/A",
                "discriminator": {"propertyName": "k", "mapping": {"a": "#/components/schemas/A"}},
                "enum": ["#/$defs/A"],
                "items": [{"$ref": "#/components/schemas/B"}]
            })
        );
    }
}
