//! Paths and operations -> [`Operation`]s: operation ids, merged parameters, request bodies,
//! responses and auth, for 3.x directly and for 2.0 through [`crate::swagger2`].

use crate::ctx::Ctx;
use crate::swagger2::{self, Param2};
use crate::yaml::child;
use crate::{
    AuthRequirement, Location, MediaType, Method, Operation, ParamLocation, ParamStyle, Parameter,
    RequestBody, Response, ResponseStatus, SecurityScheme, SpecVersion, is_json_media_type,
};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What operations of one document share: version, base path, global settings.
pub(crate) struct Scope<'s> {
    /// The document whose `paths` are read (the API's, or the built-in spec).
    pub doc: usize,
    pub version: SpecVersion,
    pub base_path: String,
    pub schemes: &'s BTreeMap<String, SecurityScheme>,
    pub builtin: bool,
    /// 2.0 global `consumes` / `produces`.
    pub consumes: Vec<String>,
    pub produces: Vec<String>,
}

/// An operation with the parts of its source the served document keeps.
pub(crate) struct Built {
    pub op: Operation,
    /// `tags`, `externalDocs` and `x-*` keys of the source operation.
    pub extra: Map<String, Value>,
}

/// The path with base path prepended, without a doubled `/`.
pub(crate) fn join_path(base: &str, path: &str) -> String {
    if base.is_empty() {
        path.to_string()
    } else if path == "/" {
        base.to_string()
    } else {
        format!("{base}{path}")
    }
}

/// The `{name}`s of a path template, in order.
pub(crate) fn template_params(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

/// The template with parameter names erased (`/items/{}`), to find routes that collide.
pub(crate) fn route_shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push('{');
            }
            '}' => {
                in_param = false;
                out.push('}');
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

fn derived_operation_id(method: Method, path: &str) -> String {
    let mut id = method.as_key().to_string();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let clean: String = segment
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let clean = clean.trim_matches('_');
        if !clean.is_empty() {
            id.push('_');
            id.push_str(clean);
        }
    }
    id
}

/// A value for a message: `` `x` `` or "nothing".
pub(crate) fn describe(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("`{s}`"),
        None => "nothing".into(),
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

pub(crate) fn parse_status(key: &str) -> Option<ResponseStatus> {
    if key == "default" {
        return Some(ResponseStatus::Default);
    }
    let bytes = key.as_bytes();
    if bytes.len() != 3 || !(b'1'..=b'5').contains(&bytes[0]) {
        return None;
    }
    if key[1..].eq_ignore_ascii_case("XX") {
        return Some(ResponseStatus::Range(bytes[0] - b'0'));
    }
    key.parse::<u16>().ok().map(ResponseStatus::Code)
}

fn is_xml(media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/xml" || essence == "text/xml" || essence.ends_with("+xml")
}

impl Ctx<'_> {
    /// Every operation under `paths` of the scope's document.
    pub fn operations(&mut self, scope: &Scope) -> Vec<Built> {
        let docs = self.docs;
        let root = &docs[scope.doc].value;
        let mut out = Vec::new();
        let Some(paths) = root.get("paths") else {
            return out;
        };
        let Some(paths) = paths.as_object() else {
            self.error(scope.doc, "/paths", "`paths` must be a map");
            return out;
        };
        for (key, item) in paths {
            if key.starts_with("x-") {
                continue;
            }
            let item_pointer = child("/paths", key);
            if !key.starts_with('/') {
                self.error(
                    scope.doc,
                    &item_pointer,
                    format!("path `{key}` must start with `/`"),
                );
                continue;
            }
            let Some((idoc, ipointer, item)) = self.deref(scope.doc, &item_pointer, item) else {
                continue;
            };
            let Some(item_map) = item.as_object() else {
                self.error(idoc, &ipointer, "a path item must be a map");
                continue;
            };
            for (mkey, op) in item_map {
                if let Some(method) = Method::from_key(mkey) {
                    if scope.version == SpecVersion::Swagger2 && method == Method::Trace {
                        self.error(
                            idoc,
                            &child(&ipointer, mkey),
                            "`trace` is not a Swagger 2.0 operation",
                        );
                        continue;
                    }
                    if let Some(built) =
                        self.operation(scope, key, method, (idoc, &ipointer, item_map), op)
                    {
                        out.push(built);
                    }
                } else if mkey == "servers" {
                    self.error(
                        idoc,
                        &child(&ipointer, mkey),
                        "`servers` on a path item is not supported: klue serves every path under the API's base path",
                    );
                }
            }
        }
        out
    }

    fn operation(
        &mut self,
        scope: &Scope,
        key: &str,
        method: Method,
        (idoc, ipointer, item): (usize, &str, &Map<String, Value>),
        op: &Value,
    ) -> Option<Built> {
        let opointer = child(ipointer, method.as_key());
        let Some(map) = op.as_object() else {
            self.error(idoc, &opointer, "an operation must be a map");
            return None;
        };
        let path = join_path(&scope.base_path, key);
        let bind_server = string(map.get("x-bind-server"));
        let operation_id = string(map.get("operationId"))
            .or_else(|| {
                bind_server
                    .as_deref()
                    .and_then(|b| b.rsplit('.').next())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| derived_operation_id(method, &path));
        let handler = bind_server.unwrap_or_else(|| operation_id.clone());
        for unsupported in ["callbacks", "servers"] {
            if map
                .get(unsupported)
                .is_some_and(|v| v.as_object().is_none_or(|m| !m.is_empty()))
            {
                self.error(
                    idoc,
                    &child(&opointer, unsupported),
                    format!("`{unsupported}` on an operation is not supported by klue"),
                );
            }
        }

        // Parameters: path level first, then operation level (which wins by name + in).
        let mut params: Vec<(String, String, Param2)> = Vec::new();
        for (level_map, level_pointer) in [(item, ipointer), (map, opointer.as_str())] {
            let Some(list) = level_map.get("parameters") else {
                continue;
            };
            let list_pointer = child(level_pointer, "parameters");
            let Some(list) = list.as_array() else {
                self.error(idoc, &list_pointer, "`parameters` must be a list");
                continue;
            };
            for (i, p) in list.iter().enumerate() {
                let Some((pdoc, ppointer, p)) =
                    self.deref(idoc, &child(&list_pointer, &i.to_string()), p)
                else {
                    continue;
                };
                let converted = match scope.version {
                    SpecVersion::Swagger2 => swagger2::parameter(self, pdoc, &ppointer, p),
                    _ => self.parameter3(pdoc, &ppointer, p).map(Param2::Plain),
                };
                let Some(param) = converted else { continue };
                let (name, location) = param.key();
                match params
                    .iter_mut()
                    .find(|(n, l, _)| *n == name && *l == location)
                {
                    Some(slot) => slot.2 = param,
                    None => params.push((name, location, param)),
                }
            }
        }
        let mut parameters = Vec::new();
        let mut body_params = Vec::new();
        for (_, _, p) in params {
            match p {
                Param2::Plain(p) => parameters.push(p),
                other => body_params.push(other),
            }
        }
        self.check_path_params(idoc, &opointer, key, &parameters);

        let request_body = match scope.version {
            SpecVersion::Swagger2 => {
                let consumes = swagger2::media_list(self, idoc, &opointer, map.get("consumes"))
                    .unwrap_or_else(|| scope.consumes.clone());
                swagger2::request_body(self, idoc, &opointer, body_params, &consumes)
            }
            _ => match map.get("requestBody") {
                Some(b) => self.request_body3(idoc, &child(&opointer, "requestBody"), b),
                None => None,
            },
        };
        let produces = match scope.version {
            SpecVersion::Swagger2 => {
                swagger2::media_list(self, idoc, &opointer, map.get("produces"))
                    .unwrap_or_else(|| scope.produces.clone())
            }
            _ => Vec::new(),
        };
        let responses = self.responses(
            scope.version,
            idoc,
            &opointer,
            map.get("responses"),
            &produces,
        );
        let auth = self.auth(scope, idoc, &opointer, map);
        let mut extra = Map::new();
        for (k, v) in map {
            if k == "tags" || k == "externalDocs" || k.starts_with("x-") {
                extra.insert(k.clone(), v.clone());
            }
        }
        Some(Built {
            op: Operation {
                operation_id,
                handler,
                client_name: string(map.get("x-bind-client")),
                method,
                path,
                summary: string(map.get("summary")),
                description: string(map.get("description")),
                parameters,
                request_body,
                responses,
                auth,
                deprecated: map
                    .get("deprecated")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                builtin: scope.builtin,
                location: Location {
                    file: self.doc(idoc).path.clone(),
                    pointer: opointer.clone(),
                    line: self.doc(idoc).line(&opointer),
                },
            },
            extra,
        })
    }

    fn check_path_params(&mut self, doc: usize, pointer: &str, key: &str, params: &[Parameter]) {
        let in_template = template_params(key);
        for name in &in_template {
            if !params
                .iter()
                .any(|p| p.location == ParamLocation::Path && p.name == *name)
            {
                self.error(
                    doc,
                    pointer,
                    format!("path `{key}` has `{{{name}}}` but the operation declares no path parameter `{name}`"),
                );
            }
        }
        for p in params.iter().filter(|p| p.location == ParamLocation::Path) {
            if !in_template.contains(&p.name.as_str()) {
                self.error(
                    doc,
                    pointer,
                    format!(
                        "path parameter `{}` is not in the path template `{key}`",
                        p.name
                    ),
                );
            }
        }
    }

    /// An OpenAPI 3.x parameter object.
    fn parameter3(&mut self, doc: usize, pointer: &str, p: &Value) -> Option<Parameter> {
        let Some(map) = p.as_object() else {
            self.error(doc, pointer, "a parameter must be a map");
            return None;
        };
        let Some(name) = string(map.get("name")) else {
            self.error(doc, pointer, "a parameter needs a `name`");
            return None;
        };
        let location = match map.get("in").and_then(Value::as_str) {
            Some("path") => ParamLocation::Path,
            Some("query") => ParamLocation::Query,
            Some("header") => ParamLocation::Header,
            Some("cookie") => ParamLocation::Cookie,
            Some("querystring") => {
                self.error(
                    doc,
                    &child(pointer, "in"),
                    format!("parameter `{name}`: `in: querystring` is not supported"),
                );
                return None;
            }
            other => {
                self.error(
                    doc,
                    &child(pointer, "in"),
                    format!(
                        "parameter `{name}`: `in` must be path, query, header or cookie, not {}",
                        describe(other)
                    ),
                );
                return None;
            }
        };
        let required = map.get("required").and_then(Value::as_bool);
        if location == ParamLocation::Path && required == Some(false) {
            self.error(
                doc,
                &child(pointer, "required"),
                format!("path parameter `{name}` must be required"),
            );
        }
        let schema = if let Some(s) = map.get("schema") {
            self.schema(doc, &child(pointer, "schema"), s)
        } else if let Some(content) = map.get("content").and_then(Value::as_object) {
            let json = content.iter().find(|(m, _)| is_json_media_type(m));
            match json {
                Some((media, m)) if content.len() == 1 => match m.get("schema") {
                    Some(s) => self.schema(
                        doc,
                        &child(&child(&child(pointer, "content"), media), "schema"),
                        s,
                    ),
                    None => Value::Object(Map::new()),
                },
                _ => {
                    self.error(
                        doc,
                        &child(pointer, "content"),
                        format!("parameter `{name}`: `content` other than application/json is not supported; use `schema`"),
                    );
                    return None;
                }
            }
        } else {
            self.error(doc, pointer, format!("parameter `{name}` needs a `schema`"));
            return None;
        };
        let style = match map.get("style").and_then(Value::as_str) {
            None => match location {
                ParamLocation::Path | ParamLocation::Header => ParamStyle::Simple,
                ParamLocation::Query | ParamLocation::Cookie => ParamStyle::Form,
            },
            Some(s) => {
                let style = match s {
                    "simple" => Some(ParamStyle::Simple),
                    "form" => Some(ParamStyle::Form),
                    "spaceDelimited" => Some(ParamStyle::SpaceDelimited),
                    "pipeDelimited" => Some(ParamStyle::PipeDelimited),
                    "deepObject" => Some(ParamStyle::DeepObject),
                    "label" => Some(ParamStyle::Label),
                    "matrix" => Some(ParamStyle::Matrix),
                    _ => None,
                };
                let allowed = matches!(
                    (location, style),
                    (
                        ParamLocation::Path,
                        Some(ParamStyle::Simple | ParamStyle::Label | ParamStyle::Matrix),
                    ) | (
                        ParamLocation::Query,
                        Some(
                            ParamStyle::Form
                                | ParamStyle::SpaceDelimited
                                | ParamStyle::PipeDelimited
                                | ParamStyle::DeepObject,
                        ),
                    ) | (ParamLocation::Header, Some(ParamStyle::Simple))
                        | (ParamLocation::Cookie, Some(ParamStyle::Form))
                );
                match style {
                    Some(style) if allowed => style,
                    _ => {
                        self.error(
                            doc,
                            &child(pointer, "style"),
                            format!("parameter `{name}`: style `{s}` is not supported for {} parameters", location.as_str()),
                        );
                        return None;
                    }
                }
            }
        };
        let explode = map
            .get("explode")
            .and_then(Value::as_bool)
            .unwrap_or(style == ParamStyle::Form);
        Some(Parameter {
            name,
            location,
            required: location == ParamLocation::Path || required.unwrap_or(false),
            description: string(map.get("description")),
            schema,
            style,
            explode,
            deprecated: map
                .get("deprecated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    fn request_body3(&mut self, doc: usize, pointer: &str, body: &Value) -> Option<RequestBody> {
        let (bdoc, bpointer, body) = self.deref(doc, pointer, body)?;
        let Some(map) = body.as_object() else {
            self.error(bdoc, &bpointer, "`requestBody` must be a map");
            return None;
        };
        let content = match map.get("content") {
            Some(c) => self.content(bdoc, &child(&bpointer, "content"), c),
            None => {
                self.error(bdoc, &bpointer, "`requestBody` needs `content`");
                Vec::new()
            }
        };
        Some(RequestBody {
            required: map
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            description: string(map.get("description")),
            content,
        })
    }

    /// A 3.x `content` map. XML without a JSON alternative is reported; XML beside JSON is
    /// dropped (klue reads and writes JSON only).
    pub fn content(&mut self, doc: usize, pointer: &str, content: &Value) -> Vec<MediaType> {
        let Some(map) = content.as_object() else {
            self.error(doc, pointer, "`content` must be a map of media types");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (media, m) in map {
            let schema = m
                .get("schema")
                .map(|s| self.schema(doc, &child(&child(pointer, media), "schema"), s));
            out.push(MediaType {
                media_type: media.clone(),
                schema,
            });
        }
        self.drop_xml(doc, pointer, out)
    }

    pub fn drop_xml(
        &mut self,
        doc: usize,
        pointer: &str,
        content: Vec<MediaType>,
    ) -> Vec<MediaType> {
        if !content.iter().any(|m| is_xml(&m.media_type)) {
            return content;
        }
        if !content.iter().any(|m| is_json_media_type(&m.media_type)) {
            self.error(
                doc,
                pointer,
                "XML bodies are not supported: klue reads and writes JSON (add an application/json media type)",
            );
        }
        content
            .into_iter()
            .filter(|m| !is_xml(&m.media_type))
            .collect()
    }

    fn responses(
        &mut self,
        version: SpecVersion,
        doc: usize,
        opointer: &str,
        responses: Option<&Value>,
        produces: &[String],
    ) -> Vec<Response> {
        let pointer = child(opointer, "responses");
        let Some(map) = responses.and_then(Value::as_object) else {
            self.error(doc, opointer, "an operation needs `responses`");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, r) in map {
            if key.starts_with("x-") {
                continue;
            }
            let rpointer = child(&pointer, key);
            let Some(status) = parse_status(key) else {
                self.error(
                    doc,
                    &rpointer,
                    format!("`{key}` is not a response status (100-599, 1XX-5XX or default)"),
                );
                continue;
            };
            let Some((rdoc, rp, r)) = self.deref(doc, &rpointer, r) else {
                continue;
            };
            let Some(rmap) = r.as_object() else {
                self.error(rdoc, &rp, "a response must be a map");
                continue;
            };
            let content = match version {
                SpecVersion::Swagger2 => {
                    swagger2::response_content(self, rdoc, &rp, rmap, produces)
                }
                _ => match rmap.get("content") {
                    Some(c) => self.content(rdoc, &child(&rp, "content"), c),
                    None => Vec::new(),
                },
            };
            out.push(Response {
                status,
                description: string(rmap.get("description")).unwrap_or_default(),
                content,
            });
        }
        out
    }

    fn auth(
        &mut self,
        scope: &Scope,
        doc: usize,
        opointer: &str,
        map: &Map<String, Value>,
    ) -> AuthRequirement {
        let docs = self.docs;
        let (security, spointer) = match map.get("security") {
            Some(s) => (Some(s), child(opointer, "security")),
            None => (
                docs[scope.doc].value.get("security"),
                "/security".to_string(),
            ),
        };
        let sdoc = if map.contains_key("security") {
            doc
        } else {
            scope.doc
        };
        let mut schemes: Vec<String> = Vec::new();
        if let Some(security) = security {
            let Some(list) = security.as_array() else {
                self.error(sdoc, &spointer, "`security` must be a list");
                return AuthRequirement::None;
            };
            let optional = list
                .iter()
                .any(|r| r.as_object().is_some_and(Map::is_empty));
            for requirement in list {
                for name in requirement.as_object().into_iter().flat_map(|m| m.keys()) {
                    match scope.schemes.get(name) {
                        None => self.error(
                            sdoc,
                            &spointer,
                            format!("security scheme `{name}` is not defined"),
                        ),
                        Some(
                            SecurityScheme::Bearer { .. } | SecurityScheme::OAuth2OrOpenIdConnect,
                        ) if !optional => {
                            if !schemes.contains(name) {
                                schemes.push(name.clone());
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        let decorated = map
            .get("x-decorate-server")
            .and_then(Value::as_str)
            .is_some_and(|d| d.ends_with(".requires_auth"));
        if decorated {
            schemes.push("x-decorate-server".into());
        }
        if schemes.is_empty() {
            AuthRequirement::None
        } else {
            AuthRequirement::Jwt { schemes }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_templates() {
        assert_eq!(join_path("", "/a"), "/a");
        assert_eq!(join_path("/v1", "/a"), "/v1/a");
        assert_eq!(join_path("/v1", "/"), "/v1");
        assert_eq!(template_params("/a/{x}/b/{y}"), vec!["x", "y"]);
        assert_eq!(route_shape("/a/{x}/b"), "/a/{}/b");
        assert_eq!(
            derived_operation_id(Method::Get, "/v1/hello/{name}"),
            "get_v1_hello_name"
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_status("200"), Some(ResponseStatus::Code(200)));
        assert_eq!(parse_status("4XX"), Some(ResponseStatus::Range(4)));
        assert_eq!(parse_status("4xx"), Some(ResponseStatus::Range(4)));
        assert_eq!(parse_status("default"), Some(ResponseStatus::Default));
        assert_eq!(parse_status("600"), None);
        assert_eq!(parse_status("ok"), None);
    }
}
