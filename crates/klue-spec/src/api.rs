//! One API file -> one [`Api`]: info, base path, security schemes, operations (its own and
//! the built-ins), named schemas and the served document.

use crate::ctx::Ctx;
use crate::loader::Doc;
use crate::operations::Scope;
use crate::yaml::child;
use crate::{
    Api, ParamLocation, SecurityScheme, SpecError, SpecVersion, builtin, document, swagger2,
};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub(crate) fn build(
    docs: &[Doc],
    api: usize,
    builtin_doc: usize,
    errors: &mut Vec<SpecError>,
) -> Option<Api> {
    let doc = &docs[api];
    let version = doc.version?;
    let root = doc.value.as_object()?;
    let errors_before = errors.len();
    let mut ctx = Ctx::new(docs, api, builtin_doc, version, errors);

    let info = root.get("info").and_then(Value::as_object);
    let text = |key: &str| {
        info.and_then(|i| i.get(key)).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let title = text("title");
    let api_version = text("version");
    if info.is_none() {
        ctx.error(api, "", "the spec needs `info` with `title` and `version`");
    } else {
        for (key, value) in [("title", &title), ("version", &api_version)] {
            if value.is_none() {
                ctx.error(api, "/info", format!("`info.{key}` is missing"));
            }
        }
    }
    if version == SpecVersion::OpenApi31
        && let Some(hooks) = root
            .get("webhooks")
            .and_then(Value::as_object)
            .filter(|w| !w.is_empty())
    {
        let first = hooks.keys().next().cloned().unwrap_or_default();
        ctx.error(
            api,
            &child("/webhooks", &first),
            "`webhooks` are not supported: klue serves and calls plain request/response operations",
        );
    }

    let base_path = base_path(&mut ctx, root);
    ctx.register_named_schemas();
    let mut schemes = security_schemes(&mut ctx, api, version);
    let builtin_schemes = security_schemes(&mut ctx, builtin_doc, SpecVersion::OpenApi31);
    for (name, scheme) in &builtin_schemes {
        schemes
            .entry(name.clone())
            .or_insert_with(|| scheme.clone());
    }

    let (consumes, produces) = match version {
        SpecVersion::Swagger2 => (
            swagger2::media_list(&mut ctx, api, "/consumes", root.get("consumes"))
                .unwrap_or_default(),
            swagger2::media_list(&mut ctx, api, "/produces", root.get("produces"))
                .unwrap_or_default(),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    let mut ops = ctx.operations(&Scope {
        doc: api,
        version,
        base_path: base_path.clone(),
        schemes: &schemes,
        builtin: false,
        consumes,
        produces,
    });
    let builtins = ctx.operations(&Scope {
        doc: builtin_doc,
        version: SpecVersion::OpenApi31,
        base_path: String::new(),
        schemes: &builtin_schemes,
        builtin: true,
        consumes: Vec::new(),
        produces: Vec::new(),
    });
    builtin::check_conflicts(&mut ctx, &ops, &builtins);
    ops.extend(builtins);
    for built in &mut ops {
        builtin::add_error_responses(&mut built.op);
    }
    ctx.drain_schemas();
    let schemas = std::mem::take(&mut ctx.schemas);
    if errors.len() > errors_before {
        return None;
    }
    let title = title.unwrap_or_default();
    let api_version = api_version.unwrap_or_default();
    let document = document::build(root, &title, &api_version, &ops, &schemas, &schemes);
    Some(Api {
        name: doc.stem.clone(),
        source: doc.path.clone(),
        spec_version: version,
        title,
        version: api_version,
        description: info
            .and_then(|i| i.get("description"))
            .and_then(Value::as_str)
            .map(str::to_string),
        base_path,
        operations: ops.into_iter().map(|b| b.op).collect(),
        schemas,
        security_schemes: schemes,
        document,
    })
}

/// `basePath` (2.0) or the path of the first `servers` URL (3.x), variables substituted with
/// their defaults: empty, or starting with `/` without a trailing `/`.
fn base_path(ctx: &mut Ctx, root: &Map<String, Value>) -> String {
    let raw = match ctx.version {
        SpecVersion::Swagger2 => match root.get("basePath") {
            None => return String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                ctx.error(ctx.api, "/basePath", "`basePath` must be a string");
                return String::new();
            }
        },
        _ => {
            let Some(server) = root
                .get("servers")
                .and_then(Value::as_array)
                .and_then(|s| s.first())
            else {
                return String::new();
            };
            let Some(url) = server.get("url").and_then(Value::as_str) else {
                ctx.error(ctx.api, "/servers/0", "a server needs a `url`");
                return String::new();
            };
            let mut url = url.to_string();
            if let Some(vars) = server.get("variables").and_then(Value::as_object) {
                for (name, var) in vars {
                    let default = var.get("default").and_then(Value::as_str).unwrap_or("");
                    url = url.replace(&format!("{{{name}}}"), default);
                }
            }
            if url.contains('{') {
                ctx.error(
                    ctx.api,
                    "/servers/0/url",
                    "server URL variable without a `default`",
                );
            }
            let url = url.split(['?', '#']).next().unwrap_or("").to_string();
            match url.split_once("://") {
                Some((_, rest)) => rest
                    .find('/')
                    .map(|i| rest[i..].to_string())
                    .unwrap_or_default(),
                None => url,
            }
        }
    };
    let trimmed = raw.trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// Security schemes of `doc` (3.x `components/securitySchemes`, 2.0 `securityDefinitions`).
fn security_schemes(
    ctx: &mut Ctx,
    doc: usize,
    version: SpecVersion,
) -> BTreeMap<String, SecurityScheme> {
    let pointer = match version {
        SpecVersion::Swagger2 => "/securityDefinitions",
        _ => "/components/securitySchemes",
    };
    let docs = ctx.docs;
    let mut out = BTreeMap::new();
    let Some(map) = docs[doc].value.pointer(pointer).and_then(Value::as_object) else {
        return out;
    };
    for (name, scheme) in map {
        let Some((sdoc, spointer, scheme)) = ctx.deref(doc, &child(pointer, name), scheme) else {
            continue;
        };
        let get = |k: &str| scheme.get(k).and_then(Value::as_str);
        let converted = match get("type") {
            Some("http") => match get("scheme") {
                Some(s) if s.eq_ignore_ascii_case("bearer") => Some(SecurityScheme::Bearer {
                    bearer_format: get("bearerFormat").map(str::to_string),
                }),
                Some(s) => Some(SecurityScheme::Http {
                    scheme: s.to_string(),
                }),
                None => None,
            },
            Some("basic") if version == SpecVersion::Swagger2 => Some(SecurityScheme::Http {
                scheme: "basic".into(),
            }),
            Some("apiKey") => {
                let location = match get("in") {
                    Some("header") => Some(ParamLocation::Header),
                    Some("query") => Some(ParamLocation::Query),
                    Some("cookie") if version != SpecVersion::Swagger2 => {
                        Some(ParamLocation::Cookie)
                    }
                    _ => None,
                };
                match (get("name"), location) {
                    (Some(n), Some(ParamLocation::Header))
                        if n.eq_ignore_ascii_case("authorization") =>
                    {
                        Some(SecurityScheme::Bearer {
                            bearer_format: None,
                        })
                    }
                    (Some(n), Some(location)) => Some(SecurityScheme::ApiKey {
                        name: n.to_string(),
                        location,
                    }),
                    _ => None,
                }
            }
            Some("oauth2") => Some(SecurityScheme::OAuth2OrOpenIdConnect),
            Some("openIdConnect") if version != SpecVersion::Swagger2 => {
                Some(SecurityScheme::OAuth2OrOpenIdConnect)
            }
            _ => None,
        };
        match converted {
            Some(s) => {
                out.insert(name.clone(), s);
            }
            None => ctx.error(
                sdoc,
                &spointer,
                format!("security scheme `{name}` is not supported (or is missing `type`, `scheme`, `name` or `in`)"),
            ),
        }
    }
    out
}
