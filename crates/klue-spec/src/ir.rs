//! The internal model (IR): one [`Api`] per spec file, whatever the spec version was.
//!
//! Every schema in the IR is JSON Schema 2020-12 held as a `serde_json::Value`. Named schemas
//! live in [`Api::schemas`]; a reference to one is always written `{"$ref": "#/$defs/<Name>"}`,
//! so a schema can be compiled for validation by placing `Api::schemas` under `$defs`
//! (see [`Api::bundle_schema`]) and codegen can map each `$ref` to a Rust type name.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// One API: the model of one spec file in `apis/` (name = file stem).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Api {
    /// The file stem, e.g. `helloworld` for `apis/helloworld.yaml`.
    pub name: String,
    /// The file the API was loaded from (as given to the loader).
    pub source: PathBuf,
    /// The spec version the file was written in.
    pub spec_version: SpecVersion,
    /// `info.title`.
    pub title: String,
    /// `info.version`.
    pub version: String,
    /// `info.description`.
    pub description: Option<String>,
    /// The path prefix every operation is served under: `basePath` (2.0) or the path of the
    /// first `servers` URL (3.x). Empty, or starts with `/` and has no trailing `/`.
    pub base_path: String,
    /// The operations, in document order (paths in order, then methods in order).
    pub operations: Vec<Operation>,
    /// Named schemas (2.0 `definitions`, 3.x `components/schemas`, and schemas pulled in from
    /// other files through relative `$ref`s), normalized to JSON Schema 2020-12.
    pub schemas: BTreeMap<String, Value>,
    /// Security schemes by name, upconverted from 2.0 `securityDefinitions` where needed.
    pub security_schemes: BTreeMap<String, SecurityScheme>,
    /// The API as an OpenAPI 3.1 document (JSON), with `$ref`s rewritten to
    /// `#/components/schemas/<Name>`: what `/openapi/<name>.json` serves.
    pub document: Value,
}

/// The version a spec file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SpecVersion {
    Swagger2,
    OpenApi30,
    OpenApi31,
}

/// One operation: a method on a path template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operation {
    /// `operationId`; when absent, the last dotted segment of `x-bind-server`; else derived
    /// from method and path (`get_v1_hello_name`).
    pub operation_id: String,
    /// `x-bind-server` (klue-microservice's handler name), defaulting to the operation id.
    pub handler: String,
    /// `x-bind-client`, when set: the name generated clients use for this operation.
    pub client_name: Option<String>,
    pub method: Method,
    /// The full path template, base path included, in OpenAPI syntax: `/v1/hello/{name}`.
    pub path: String,
    pub summary: Option<String>,
    pub description: Option<String>,
    /// Path-level and operation-level parameters merged (operation wins), document order.
    pub parameters: Vec<Parameter>,
    pub request_body: Option<RequestBody>,
    /// Documented responses, in document order.
    pub responses: Vec<Response>,
    /// Whether a verified JWT is needed (OpenAPI `security` with a bearer scheme, 2.0 apiKey on
    /// `Authorization`, or `x-decorate-server: <...>.requires_auth`).
    pub auth: AuthRequirement,
    pub deprecated: bool,
    /// True for klue's built-in operations (`/ping`, `/version`, `/auth/version`), which the
    /// loader merges into every API: the runtime answers them itself, codegen puts them in
    /// clients but not in server traits.
    pub builtin: bool,
    /// Where the operation is in its file: JSON pointer and line.
    pub location: Location,
}

impl Operation {
    /// The success response with the lowest 2xx status, if any is documented.
    pub fn success_response(&self) -> Option<&Response> {
        self.responses
            .iter()
            .filter(|r| matches!(r.status, ResponseStatus::Code(c) if (200..300).contains(&c)))
            .min_by_key(|r| match r.status {
                ResponseStatus::Code(c) => c,
                _ => u16::MAX,
            })
    }
}

/// HTTP methods OpenAPI knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Method {
    Get,
    Put,
    Post,
    Delete,
    Options,
    Head,
    Patch,
    Trace,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::Get,
        Method::Put,
        Method::Post,
        Method::Delete,
        Method::Options,
        Method::Head,
        Method::Patch,
        Method::Trace,
    ];

    /// Lower-case, as a key under a path item (`get`).
    pub fn as_key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Options => "options",
            Method::Head => "head",
            Method::Patch => "patch",
            Method::Trace => "trace",
        }
    }

    /// Upper-case, as on the wire (`GET`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Head => "HEAD",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
        }
    }

    /// The method for a path-item key, if it is one.
    pub fn from_key(key: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_key() == key)
    }

    /// GET, HEAD, OPTIONS, TRACE, PUT and DELETE may be retried safely.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post | Method::Patch)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a parameter is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ParamLocation {
    Path,
    Query,
    Header,
    Cookie,
}

impl ParamLocation {
    /// As written in `in:` (`path`, `query`, `header`, `cookie`).
    pub fn as_str(self) -> &'static str {
        match self {
            ParamLocation::Path => "path",
            ParamLocation::Query => "query",
            ParamLocation::Header => "header",
            ParamLocation::Cookie => "cookie",
        }
    }
}

/// How an array or object parameter is serialized (OpenAPI 3 `style`; 2.0 `collectionFormat`
/// is upconverted: csv -> form/explode=false, ssv -> spaceDelimited, pipes -> pipeDelimited,
/// multi -> form/explode=true; tsv is reported as unsupported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ParamStyle {
    Simple,
    Form,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
    Label,
    Matrix,
}

/// One parameter (path, query, header or cookie). 2.0 `body` and `formData` parameters
/// become the [`RequestBody`] instead.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameter {
    pub name: String,
    pub location: ParamLocation,
    /// Always true for path parameters.
    pub required: bool,
    pub description: Option<String>,
    /// JSON Schema 2020-12 of the (decoded) value; `default` stays inside it.
    pub schema: Value,
    pub style: ParamStyle,
    pub explode: bool,
    pub deprecated: bool,
}

impl Parameter {
    /// The schema's `default`, if it declares one.
    pub fn default_value(&self) -> Option<&Value> {
        self.schema.get("default")
    }
}

/// A request body: one schema per accepted media type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestBody {
    pub required: bool,
    pub description: Option<String>,
    /// Accepted media types in document order (`application/json`,
    /// `application/x-www-form-urlencoded`, `multipart/form-data`, ...).
    pub content: Vec<MediaType>,
}

impl RequestBody {
    /// The JSON media type's schema (`application/json` or any `+json`), if the body takes JSON.
    pub fn json_schema(&self) -> Option<&Value> {
        self.content
            .iter()
            .find(|m| is_json_media_type(&m.media_type))
            .and_then(|m| m.schema.as_ref())
    }
}

/// One media type with its schema (absent schema = any content).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaType {
    pub media_type: String,
    pub schema: Option<Value>,
}

/// Whether a media type is JSON (`application/json`, `application/problem+json`, ...).
pub fn is_json_media_type(media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A documented response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    pub status: ResponseStatus,
    pub description: String,
    /// Media types with schemas; empty for a response without a body.
    pub content: Vec<MediaType>,
}

impl Response {
    /// The JSON media type's schema, if the response has a JSON body.
    pub fn json_schema(&self) -> Option<&Value> {
        self.content
            .iter()
            .find(|m| is_json_media_type(&m.media_type))
            .and_then(|m| m.schema.as_ref())
    }
}

/// A response key: `200`, `4XX`, or `default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ResponseStatus {
    Code(u16),
    /// `1XX`..`5XX`: the digit.
    Range(u8),
    Default,
}

impl ResponseStatus {
    /// Whether an actual status code is covered by this key.
    pub fn matches(self, code: u16) -> bool {
        match self {
            ResponseStatus::Code(c) => c == code,
            ResponseStatus::Range(d) => code / 100 == u16::from(d),
            ResponseStatus::Default => true,
        }
    }
}

impl fmt::Display for ResponseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseStatus::Code(c) => write!(f, "{c}"),
            ResponseStatus::Range(d) => write!(f, "{d}XX"),
            ResponseStatus::Default => f.write_str("default"),
        }
    }
}

/// Whether an operation needs a verified JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AuthRequirement {
    None,
    /// A bearer JWT is required; the names of the security schemes (or `x-decorate-server`)
    /// that asked for it.
    Jwt {
        schemes: Vec<String>,
    },
}

impl AuthRequirement {
    pub fn is_required(&self) -> bool {
        matches!(self, AuthRequirement::Jwt { .. })
    }
}

/// A security scheme, as OpenAPI 3 models it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SecurityScheme {
    /// `type: http, scheme: bearer` (and 2.0 apiKey on the `Authorization` header).
    Bearer { bearer_format: Option<String> },
    /// `type: http` with another scheme (e.g. basic): documented, not enforced by klue.
    Http { scheme: String },
    /// `type: apiKey` not on `Authorization`: documented, not enforced by klue.
    ApiKey {
        name: String,
        location: ParamLocation,
    },
    /// oauth2 / openIdConnect: documented, enforced as bearer JWT.
    OAuth2OrOpenIdConnect,
}

/// Where something is in a spec file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: PathBuf,
    /// JSON pointer into the file, e.g. `/paths/~1v1~1items/post`.
    pub pointer: String,
    /// 1-based line, when the parser gives it.
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, " at #{}", self.pointer)
    }
}

impl Api {
    /// A self-contained JSON Schema for `schema`: `schema` with every named schema of this API
    /// under `$defs`, so its `#/$defs/<Name>` references resolve.
    pub fn bundle_schema(&self, schema: &Value) -> Value {
        let mut bundled = match schema {
            Value::Object(map) => map.clone(),
            // `true` / `false` schemas: wrap in allOf so `$defs` can sit beside them.
            other => {
                let mut map = serde_json::Map::new();
                map.insert("allOf".into(), Value::Array(vec![other.clone()]));
                map
            }
        };
        if !self.schemas.is_empty() {
            let defs = self
                .schemas
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<serde_json::Map<_, _>>();
            bundled.insert("$defs".into(), Value::Object(defs));
        }
        Value::Object(bundled)
    }

    /// The operation with this id.
    pub fn operation(&self, operation_id: &str) -> Option<&Operation> {
        self.operations
            .iter()
            .find(|o| o.operation_id == operation_id)
    }
}

/// The name a `#/$defs/<Name>` reference points to.
pub fn ref_name(reference: &str) -> Option<&str> {
    reference.strip_prefix("#/$defs/")
}
