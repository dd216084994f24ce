//! The runtime of generated clients (and of generated server adapters' small helpers).
//!
//! Generated clients (`api::<name>::client::<Name>Client`, from `klue-codegen`) build a
//! [`Call`] per operation and [`Client::send`] it. The client:
//! - joins [`ClientConfig::base_url`] and the operation's path (base path included);
//! - applies a default timeout per attempt ([`ClientConfig::timeout`]), overridable per call
//!   with [`Client::with_timeout`];
//! - retries with jittered exponential backoff, at most [`ClientConfig::retries`] times:
//!   connection failures always (the request never reached the server), read timeouts and
//!   502/503/504 answers only for idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE);
//! - sends `X-Request-Id`: the one set with [`Client::with_request_id`], else the current
//!   request's ([`crate::context::current`]), so a call made while handling a request carries
//!   its id downstream;
//! - sends `Authorization: Bearer`: a configured token, else (with
//!   [`ClientConfig::forward_caller_token`]) the verified token of the request being handled;
//! - answers non-2xx statuses with [`ClientError::Status`], keeping the status, the decoded klue
//!   [`ErrorBody`] when the body is one, and the raw body.
//!
//! It is not a general HTTP client: bodies are JSON (or URL-encoded forms) as the specs say.

use crate::error::{ApiError, ErrorBody, FieldError, FieldLocation};
use crate::handler::Reply;
use base64::Engine as _;
use bytes::Bytes;
pub use http::Method;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How a client reaches a service.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Scheme, host and port (and an optional path prefix), e.g. `http://127.0.0.1:8080`.
    /// Operation paths (which include the API's base path) are appended to it.
    pub base_url: String,
    /// Timeout of each attempt (connect, send, and read the whole answer). Default 30 s.
    pub timeout: Duration,
    /// Timeout to establish a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Retries after the first attempt (see the module docs for what is retried). Default 2.
    pub retries: u32,
    /// Base delay before the first retry; doubles per retry, with jitter. Default 100 ms.
    pub backoff: Duration,
    /// Upper bound of one backoff delay. Default 2 s.
    pub max_backoff: Duration,
    /// A bearer token sent with every call.
    pub token: Option<String>,
    /// Without a configured token, forward the verified token of the request being handled
    /// ([`crate::RequestContext::token`]). Default false.
    pub forward_caller_token: bool,
    /// Accept any TLS certificate (self-signed test servers). Never in production. Default
    /// false; `KLUE_NO_SSL_CHECK=1` sets it through [`ClientConfig::from_env`].
    pub danger_accept_invalid_certs: bool,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl ClientConfig {
    /// Defaults for a service at `base_url`.
    pub fn new(base_url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retries: 2,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            token: None,
            forward_caller_token: false,
            danger_accept_invalid_certs: false,
            user_agent: concat!("klue-client/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }

    /// [`ClientConfig::new`], accepting invalid certificates when `KLUE_NO_SSL_CHECK` is `1`
    /// or `true`.
    pub fn from_env(base_url: impl Into<String>) -> ClientConfig {
        let no_check = std::env::var("KLUE_NO_SSL_CHECK")
            .map(|v| matches!(v.trim(), "1" | "true" | "yes"))
            .unwrap_or(false);
        ClientConfig::new(base_url).danger_accept_invalid_certs(no_check)
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = base;
        self.max_backoff = max;
        self
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn forward_caller_token(mut self, forward: bool) -> Self {
        self.forward_caller_token = forward;
        self
    }

    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.danger_accept_invalid_certs = accept;
        self
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with a status the operation does not treat as success.
    #[error("{method} {url}: {}", describe_status(*.status, .error.as_deref(), .body))]
    Status {
        method: Method,
        url: String,
        status: StatusCode,
        /// The klue error body, when the answer is one.
        error: Option<Box<ErrorBody>>,
        /// The raw body (as text, lossily).
        body: String,
    },
    /// Every attempt timed out.
    #[error("{method} {url}: timed out after {timeout:?} ({attempts} attempt(s))")]
    Timeout {
        method: Method,
        url: String,
        timeout: Duration,
        attempts: u32,
    },
    /// The request could not be sent or the answer not read (connection refused, reset, TLS...).
    #[error("{method} {url}: {source} ({attempts} attempt(s))")]
    Transport {
        method: Method,
        url: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    /// A success answer whose body is not what the spec says.
    #[error("{method} {url}: HTTP {status}: unexpected body ({source}): {}", truncate(.body))]
    Decode {
        method: Method,
        url: String,
        status: StatusCode,
        body: String,
        #[source]
        source: serde_json::Error,
    },
    /// A parameter or body could not be encoded.
    #[error("cannot encode {what}: {message}")]
    Encode { what: String, message: String },
    /// The configuration is unusable (bad base URL, TLS setup).
    #[error("invalid client configuration: {0}")]
    Config(String),
}

fn truncate(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn describe_status(status: StatusCode, error: Option<&ErrorBody>, body: &str) -> String {
    match error {
        Some(e) => format!(
            "HTTP {} {}: {}",
            status.as_u16(),
            e.error,
            e.error_description
        ),
        None if body.is_empty() => format!("HTTP {status}"),
        None => format!("HTTP {status}: {}", truncate(body)),
    }
}

impl ClientError {
    /// The HTTP status, for errors that got an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } | ClientError::Decode { status, .. } => {
                Some(status.as_u16())
            }
            _ => None,
        }
    }

    /// The decoded klue error body, when the answer was one.
    pub fn error_body(&self) -> Option<&ErrorBody> {
        match self {
            ClientError::Status { error, .. } => error.as_deref(),
            _ => None,
        }
    }

    /// The klue error code (`ITEM_NOT_FOUND`, `INVALID_PARAMETER`, ...), when there is one.
    pub fn code(&self) -> Option<&str> {
        self.error_body().map(|e| e.error.as_str())
    }

    /// The raw body of the answer, when there was one.
    pub fn body(&self) -> Option<&str> {
        match self {
            ClientError::Status { body, .. } | ClientError::Decode { body, .. } => Some(body),
            _ => None,
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout { .. })
    }
}

/// The body of an answer, read completely.
#[derive(Debug, Clone)]
pub struct Response {
    method: Method,
    url: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body decoded as `T` (an empty body reads as `null`).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        let decoded = if self.body.iter().all(u8::is_ascii_whitespace) {
            serde_json::from_value(Value::Null)
        } else {
            serde_json::from_slice(&self.body)
        };
        decoded.map_err(|source| ClientError::Decode {
            method: self.method.clone(),
            url: self.url.clone(),
            status: self.status,
            body: String::from_utf8_lossy(&self.body).into_owned(),
            source,
        })
    }

    /// The answer as a [`ClientError::Status`].
    pub fn into_error(self) -> ClientError {
        let error = serde_json::from_slice::<ErrorBody>(&self.body)
            .ok()
            .map(Box::new);
        ClientError::Status {
            method: self.method,
            url: self.url,
            status: self.status,
            error,
            body: String::from_utf8_lossy(&self.body).into_owned(),
        }
    }
}

/// Characters percent-encoded in a path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

enum CallBody {
    Json(Vec<u8>),
    Form(String),
}

/// One call: method, path template and the parameters and body to send (built by generated
/// clients).
pub struct Call {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
    body: Option<CallBody>,
    error: Option<ClientError>,
}

/// A parameter value as text: `None` for null, scalars as is, arrays joined with commas.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(scalar)
                .collect::<Vec<_>>()
                .join(","),
        ),
        Value::Object(map) => Some(
            map.iter()
                .flat_map(|(k, v)| [k.clone(), scalar(v).unwrap_or_default()])
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
    }
}

impl Call {
    /// A call of `method` on `path` (a template such as `/v1/items/{id}`).
    pub fn new(method: Method, path: &str) -> Call {
        Call {
            method,
            path: path.to_string(),
            query: Vec::new(),
            headers: Vec::new(),
            cookies: Vec::new(),
            body: None,
            error: None,
        }
    }

    fn encode<T: Serialize + ?Sized>(&mut self, what: &str, value: &T) -> Option<Value> {
        match serde_json::to_value(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error.get_or_insert(ClientError::Encode {
                    what: what.to_string(),
                    message: e.to_string(),
                });
                None
            }
        }
    }

    /// Fills `{name}` in the path with the value, percent-encoded.
    pub fn path<T: Serialize + ?Sized>(mut self, name: &str, value: &T) -> Call {
        if let Some(v) = self.encode(name, value) {
            let text = scalar(&v).unwrap_or_default();
            let encoded = utf8_percent_encode(&text, SEGMENT).to_string();
            self.path = self.path.replace(&format!("{{{name}}}"), &encoded);
        }
        self
    }

    /// Adds a query parameter (skipped when `None`/null). Arrays repeat the name when
    /// `explode`, else are comma-separated; objects spread their properties when `explode`.
    pub fn query<T: Serialize + ?Sized>(mut self, name: &str, value: &T, explode: bool) -> Call {
        match self.encode(name, value) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) if explode => {
                for item in &items {
                    if let Some(s) = scalar(item) {
                        self.query.push((name.to_string(), s));
                    }
                }
            }
            Some(Value::Object(map)) if explode => {
                for (k, v) in &map {
                    if let Some(s) = scalar(v) {
                        self.query.push((k.clone(), s));
                    }
                }
            }
            Some(v) => {
                if let Some(s) = scalar(&v) {
                    self.query.push((name.to_string(), s));
                }
            }
        }
        self
    }

    /// Adds a header parameter (skipped when `None`/null).
    pub fn header<T: Serialize + ?Sized>(mut self, name: &str, value: &T) -> Call {
        if let Some(s) = self.encode(name, value).as_ref().and_then(scalar) {
            self.headers.push((name.to_string(), s));
        }
        self
    }

    /// Adds a cookie parameter (skipped when `None`/null).
    pub fn cookie<T: Serialize + ?Sized>(mut self, name: &str, value: &T) -> Call {
        if let Some(s) = self.encode(name, value).as_ref().and_then(scalar) {
            self.cookies.push((name.to_string(), s));
        }
        self
    }

    /// Sends `body` as JSON (nothing when it serializes to null, i.e. an absent optional body).
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Call {
        match self.encode("the body", body) {
            None | Some(Value::Null) => {}
            Some(v) => match serde_json::to_vec(&v) {
                Ok(bytes) => self.body = Some(CallBody::Json(bytes)),
                Err(e) => {
                    self.error = Some(ClientError::Encode {
                        what: "the body".into(),
                        message: e.to_string(),
                    })
                }
            },
        }
        self
    }

    /// Sends `body` (an object) as `application/x-www-form-urlencoded`.
    pub fn form<T: Serialize + ?Sized>(mut self, body: &T) -> Call {
        match self.encode("the body", body) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                let mut form = form_urlencoded::Serializer::new(String::new());
                for (k, v) in &map {
                    match v {
                        Value::Array(items) => {
                            for item in items {
                                if let Some(s) = scalar(item) {
                                    form.append_pair(k, &s);
                                }
                            }
                        }
                        other => {
                            if let Some(s) = scalar(other) {
                                form.append_pair(k, &s);
                            }
                        }
                    }
                }
                self.body = Some(CallBody::Form(form.finish()));
            }
            Some(_) => {
                self.error = Some(ClientError::Encode {
                    what: "the body".into(),
                    message: "a form body must be an object".into(),
                })
            }
        }
        self
    }
}

/// A client of one service: a connection pool plus settings. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    timeout: Option<Duration>,
    token: Option<Arc<str>>,
    request_id: Option<Arc<str>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.config.base_url)
            .field("timeout", &self.timeout.unwrap_or(self.config.timeout))
            .field("retries", &self.config.retries)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let base = config.base_url.trim();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Config(format!(
                "base URL `{}` must start with http:// or https://",
                config.base_url
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .danger_accept_invalid_certs(config.danger_accept_invalid_certs)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(Client {
            http,
            config: Arc::new(config),
            timeout: None,
            token: None,
            request_id: None,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The same client (sharing its connections) with another per-attempt timeout.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// The same client sending this bearer token.
    pub fn with_token(&self, token: impl Into<String>) -> Client {
        Client {
            token: Some(Arc::from(token.into())),
            ..self.clone()
        }
    }

    /// The same client sending this `X-Request-Id`.
    pub fn with_request_id(&self, request_id: impl Into<String>) -> Client {
        Client {
            request_id: Some(Arc::from(request_id.into())),
            ..self.clone()
        }
    }

    fn bearer(&self) -> Option<String> {
        if let Some(t) = &self.token {
            return Some(t.to_string());
        }
        if let Some(t) = &self.config.token {
            return Some(t.clone());
        }
        if self.config.forward_caller_token {
            return crate::context::current()
                .and_then(|c| c.token)
                .map(|t| t.to_string());
        }
        None
    }

    /// The delay before retry number `retry` (0-based): exponential, capped, with jitter
    /// (half fixed, half random).
    fn backoff(&self, retry: u32) -> Duration {
        let base = self.config.backoff.as_millis() as u64;
        let cap = self.config.max_backoff.as_millis() as u64;
        let exp = base.saturating_mul(1u64 << retry.min(20)).min(cap);
        let half = exp / 2;
        Duration::from_millis(half + rand::random_range(0..=half.max(1)))
    }

    /// Sends a call (with retries) and reads the whole answer, whatever its status.
    pub async fn send(&self, call: Call) -> Result<Response, ClientError> {
        let Call {
            method,
            path,
            query,
            headers,
            cookies,
            body,
            error,
        } = call;
        if let Some(e) = error {
            return Err(e);
        }
        let url = format!(
            "{}{}",
            self.config.base_url.trim().trim_end_matches('/'),
            path
        );
        let timeout = self.timeout.unwrap_or(self.config.timeout);
        let idempotent = !matches!(method, Method::POST | Method::PATCH);
        let request_id = self
            .request_id
            .as_deref()
            .map(str::to_string)
            .or_else(crate::context::current_request_id);
        let bearer = self.bearer();
        let mut header_map = HeaderMap::new();
        header_map.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let bad_header = |name: &str| ClientError::Encode {
            what: format!("header {name}"),
            message: "not a valid header name or value".into(),
        };
        for (name, value) in &headers {
            let n = HeaderName::try_from(name.as_str()).map_err(|_| bad_header(name))?;
            let v = HeaderValue::try_from(value.as_str()).map_err(|_| bad_header(name))?;
            header_map.append(n, v);
        }
        if !cookies.is_empty() {
            let cookie = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let v = HeaderValue::try_from(cookie).map_err(|_| bad_header("Cookie"))?;
            header_map.insert(http::header::COOKIE, v);
        }
        if let Some(id) = &request_id {
            let v = HeaderValue::try_from(id.as_str()).map_err(|_| bad_header("X-Request-Id"))?;
            header_map.insert(HeaderName::from_static("x-request-id"), v);
        }
        if let Some(token) = &bearer {
            let mut v = HeaderValue::try_from(format!("Bearer {token}"))
                .map_err(|_| bad_header("Authorization"))?;
            v.set_sensitive(true);
            header_map.insert(http::header::AUTHORIZATION, v);
        }
        let (content_type, body_bytes): (Option<&'static str>, Option<Bytes>) = match body {
            Some(CallBody::Json(b)) => (Some("application/json"), Some(Bytes::from(b))),
            Some(CallBody::Form(s)) => (
                Some("application/x-www-form-urlencoded"),
                Some(Bytes::from(s)),
            ),
            None => (None, None),
        };
        if let Some(ct) = content_type {
            header_map.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }

        let attempts = self.config.retries.saturating_add(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= attempts;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .timeout(timeout)
                .headers(header_map.clone());
            if !query.is_empty() {
                request = request.query(&query);
            }
            if let Some(b) = &body_bytes {
                request = request.body(b.clone());
            }
            let outcome = match request.send().await {
                Ok(answer) => {
                    let status = answer.status();
                    let headers = answer.headers().clone();
                    answer.bytes().await.map(|body| (status, headers, body))
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok((status, headers, body)) => {
                    let retry_status = matches!(status.as_u16(), 502..=504) && idempotent;
                    if retry_status && !last {
                        tracing::debug!(%method, %url, status = status.as_u16(), attempt, "retrying");
                        tokio::time::sleep(self.backoff(attempt - 1)).await;
                        continue;
                    }
                    return Ok(Response {
                        method,
                        url,
                        status,
                        headers,
                        body,
                    });
                }
                Err(e) => {
                    // A connection failure means the server never saw the request: always safe
                    // to retry. A timeout or a broken answer may have been processed: only
                    // idempotent methods are retried.
                    let retryable = e.is_connect()
                        || (idempotent && (e.is_timeout() || e.is_request() || e.is_body()));
                    if retryable && !last {
                        tracing::debug!(%method, %url, error = %e, attempt, "retrying");
                        tokio::time::sleep(self.backoff(attempt - 1)).await;
                        continue;
                    }
                    if e.is_timeout() {
                        return Err(ClientError::Timeout {
                            method,
                            url,
                            timeout,
                            attempts: attempt,
                        });
                    }
                    return Err(ClientError::Transport {
                        method,
                        url,
                        attempts: attempt,
                        source: e,
                    });
                }
            }
        }
    }
}

/// Bytes (`format: binary` / `byte`), base64 in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Binary(pub Vec<u8>);

impl From<Vec<u8>> for Binary {
    fn from(bytes: Vec<u8>) -> Self {
        Binary(bytes)
    }
}

impl std::ops::Deref for Binary {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let text = String::deserialize(deserializer)?;
        let text = text.trim();
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .map(Binary)
            .ok_or_else(|| serde::de::Error::custom("invalid base64"))
    }
}

/// Helpers the code generated by `klue-codegen` calls; not a stable API.
// `ApiError` is the handler interface's error type: its size is the runtime's choice.
#[doc(hidden)]
#[allow(clippy::result_large_err)]
pub mod support {
    use super::*;

    fn invalid(location: FieldLocation, name: &str, message: String) -> ApiError {
        let (what, name, pointer) = match location {
            FieldLocation::Body if name.is_empty() => {
                ("body".to_string(), None, Some(String::new()))
            }
            FieldLocation::Body => (format!("body at {name}"), None, Some(name.to_string())),
            FieldLocation::Path => (
                format!("path parameter `{name}`"),
                Some(name.to_string()),
                None,
            ),
            FieldLocation::Query => (
                format!("query parameter `{name}`"),
                Some(name.to_string()),
                None,
            ),
            FieldLocation::Header => (format!("header `{name}`"), Some(name.to_string()), None),
            FieldLocation::Cookie => (format!("cookie `{name}`"), Some(name.to_string()), None),
        };
        ApiError::invalid(
            format!("Invalid {what}: {message}"),
            vec![FieldError {
                location,
                name,
                pointer,
                message,
            }],
        )
    }

    /// A validated parameter as `T` (absent reads as `null`, i.e. `None` for options),
    /// taken out of the map (each parameter is read once; taking it saves a copy).
    pub fn param<T: DeserializeOwned>(
        map: &mut crate::Params,
        location: FieldLocation,
        name: &str,
    ) -> Result<T, ApiError> {
        let value = map.remove(name).unwrap_or(Value::Null);
        serde_json::from_value(value).map_err(|e| invalid(location, name, e.to_string()))
    }

    /// A validated parameter as `T`, `default` (JSON text from the spec) when absent; taken
    /// out of the map as by [`param`].
    pub fn param_or<T: DeserializeOwned>(
        map: &mut crate::Params,
        location: FieldLocation,
        name: &str,
        default: &str,
    ) -> Result<T, ApiError> {
        let value = match map.remove(name) {
            Some(v) if !v.is_null() => v,
            _ => serde_json::from_str(default)
                .map_err(|e| invalid(location, name, format!("bad default: {e}")))?,
        };
        serde_json::from_value(value).map_err(|e| invalid(location, name, e.to_string()))
    }

    /// The validated body as `T` (absent reads as `null`). A failure names the JSON pointer
    /// of the value that did not fit.
    pub fn body<T: DeserializeOwned>(body: Option<Value>) -> Result<T, ApiError> {
        serde_path_to_error::deserialize(body.unwrap_or(Value::Null)).map_err(|e| {
            let pointer = json_pointer(e.path());
            invalid(FieldLocation::Body, &pointer, e.into_inner().to_string())
        })
    }

    /// A serde path as a JSON pointer (`/tags/0`).
    fn json_pointer(path: &serde_path_to_error::Path) -> String {
        use serde_path_to_error::Segment;
        let mut pointer = String::new();
        for segment in path.iter() {
            match segment {
                Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                Segment::Map { key } => {
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                Segment::Enum { variant } => {
                    pointer.push('/');
                    pointer.push_str(variant);
                }
                Segment::Unknown => {}
            }
        }
        pointer
    }

    /// A typed response as the runtime's reply. An error status with a klue error body becomes
    /// an [`ApiError`] (so it is answered and logged like every error, with fresh ids).
    pub fn reply<T: Serialize + ?Sized>(status: u16, body: Option<&T>) -> Result<Reply, ApiError> {
        let code = StatusCode::from_u16(status).map_err(|e| {
            ApiError::internal(anyhow::anyhow!("handler answered status {status}: {e}"))
        })?;
        let Some(body) = body else {
            return Ok(Reply::empty(code));
        };
        // A success body goes straight to bytes (an error body is read back below).
        if status < 400
            && let Some(json) = crate::serialize::to_vec_as_value_would(body)
        {
            return Ok(Reply::serialized(code, json));
        }
        let value = serde_json::to_value(body).map_err(|e| {
            ApiError::internal(anyhow::anyhow!(
                "cannot serialize the {status} response: {e}"
            ))
        })?;
        if status >= 400
            && let Ok(error) = ErrorBody::deserialize(&value)
        {
            let mut e = ApiError::new(status, error.error, error.error_description);
            e.user_message = error.user_message;
            e.errors = error.errors;
            return Err(e);
        }
        Ok(Reply::json(code, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_encodes_parameters() {
        let call = Call::new(Method::GET, "/v1/items/{id}")
            .path("id", "a b/c")
            .query("limit", &Some(5), false)
            .query("none", &Option::<i64>::None, false)
            .query("tags", &vec!["x", "y"], true)
            .query("ids", &vec![1, 2], false)
            .header("X-Trace", &true);
        assert_eq!(call.path, "/v1/items/a%20b%2Fc");
        assert_eq!(
            call.query,
            vec![
                ("limit".to_string(), "5".to_string()),
                ("tags".into(), "x".into()),
                ("tags".into(), "y".into()),
                ("ids".into(), "1,2".into())
            ]
        );
        assert_eq!(
            call.headers,
            vec![("X-Trace".to_string(), "true".to_string())]
        );
    }

    #[test]
    fn binary_is_base64() {
        let b = Binary(b"hello".to_vec());
        let json = serde_json::to_string(&b).unwrap_or_default();
        assert_eq!(json, "\"aGVsbG8=\"");
        let back: Binary = serde_json::from_str("\"aGVsbG8\"").unwrap_or_default();
        assert_eq!(back, b);
    }

    #[test]
    fn error_replies_become_api_errors() {
        let body = serde_json::json!({"status": 404, "error": "ITEM_NOT_FOUND", "error_description": "no such item"});
        let err = support::reply(404, Some(&body)).err();
        assert_eq!(
            err.map(|e| (e.status.as_u16(), e.code.to_string())),
            Some((404, "ITEM_NOT_FOUND".to_string()))
        );
        let ok = support::reply(200, Some(&serde_json::json!({"a": 1})))
            .ok()
            .map(|r| r.status.as_u16());
        assert_eq!(ok, Some(200));
    }

    #[test]
    fn missing_required_parameter_is_400() {
        let mut map = crate::Params::new();
        let e = support::param::<String>(&mut map, FieldLocation::Path, "name").err();
        assert_eq!(e.map(|e| e.status.as_u16()), Some(400));
        let v: i64 =
            support::param_or(&mut map, FieldLocation::Query, "limit", "20").unwrap_or_default();
        assert_eq!(v, 20);
        map.insert("name", Value::from("bob"));
        let name: Option<String> = support::param(&mut map, FieldLocation::Path, "name").ok();
        assert_eq!(name.as_deref(), Some("bob"));
        assert!(map.is_empty(), "the value is taken out");
    }
}
