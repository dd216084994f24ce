//! One operation at run time: compiled once at startup from the IR, then, per request:
//! auth -> parameters -> body -> handler -> (response validation) -> JSON.

use crate::auth::Authenticated;
use crate::context::{self, RequestContext};
use crate::deadline::{TimedOut, Within};
use crate::error::{ApiError, FieldError, FieldLocation, codes};
use crate::handler::{Handler, HandlerFuture, Reply, Request};
use crate::params::{self, Kind};
use crate::runtime::Shared;
use crate::validate::SchemaValidator;
use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::response::Response;
use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use http::{HeaderName, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use klue_spec::{Api, Operation, ParamLocation, ParamStyle, ResponseStatus, is_json_media_type};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, ready};
use tokio::task::futures::TaskLocalFuture;

/// A parameter, ready to decode and validate.
struct CompiledParam {
    /// Shared with the requests that carry the parameter (the key in their `Params`).
    name: Arc<str>,
    location: ParamLocation,
    field_location: FieldLocation,
    required: bool,
    kind: Kind,
    style: ParamStyle,
    explode: bool,
    default: Option<Value>,
    validator: SchemaValidator,
    header_name: Option<HeaderName>,
}

/// Which body encodings an operation accepts.
struct CompiledBody {
    required: bool,
    json: Option<SchemaValidator>,
    /// `application/x-www-form-urlencoded`: validator and the kinds of the properties.
    form: Option<(SchemaValidator, Kind)>,
    /// Accepted media types, for the 415 message.
    accepted: Vec<String>,
    /// A JSON body without a schema (any JSON accepted).
    json_any: bool,
}

struct CompiledResponse {
    status: ResponseStatus,
    validator: Option<SchemaValidator>,
}

/// An operation of a served API, bound to its handler.
pub(crate) struct OperationRuntime {
    pub(crate) operation_id: Arc<str>,
    pub(crate) method: klue_spec::Method,
    pub(crate) path: String,
    params: Vec<CompiledParam>,
    has_path_params: bool,
    body: Option<CompiledBody>,
    responses: Vec<CompiledResponse>,
    needs_auth: bool,
    handler: Arc<dyn Handler>,
}

/// A problem compiling an operation's schemas.
pub(crate) struct CompileError {
    pub(crate) pointer: String,
    pub(crate) message: String,
}

fn field_location(location: ParamLocation) -> FieldLocation {
    match location {
        ParamLocation::Path => FieldLocation::Path,
        ParamLocation::Query => FieldLocation::Query,
        ParamLocation::Header => FieldLocation::Header,
        ParamLocation::Cookie => FieldLocation::Cookie,
    }
}

impl OperationRuntime {
    /// Compiles every schema of `op` once. All problems are returned together.
    pub(crate) fn compile(
        api: &Api,
        op: &Operation,
        handler: Arc<dyn Handler>,
    ) -> Result<OperationRuntime, Vec<CompileError>> {
        let mut problems = Vec::new();
        let base = &op.location.pointer;
        let mut compile =
            |pointer: String, schema: &Value| match SchemaValidator::compile(api, schema) {
                Ok(v) => Some(v),
                Err(message) => {
                    problems.push(CompileError {
                        pointer,
                        message: format!("schema does not compile: {message}"),
                    });
                    None
                }
            };

        let mut params = Vec::new();
        for (i, p) in op.parameters.iter().enumerate() {
            let Some(validator) = compile(format!("{base}/parameters/{i}/schema"), &p.schema)
            else {
                continue;
            };
            let header_name = match p.location {
                ParamLocation::Header => {
                    HeaderName::from_bytes(p.name.to_ascii_lowercase().as_bytes()).ok()
                }
                _ => None,
            };
            params.push(CompiledParam {
                name: Arc::from(p.name.as_str()),
                location: p.location,
                field_location: field_location(p.location),
                required: p.required,
                kind: Kind::of(&p.schema, &api.schemas),
                style: p.style,
                explode: p.explode,
                default: p.default_value().cloned(),
                validator,
                header_name,
            });
        }

        let body = op.request_body.as_ref().map(|rb| {
            let mut body = CompiledBody {
                required: rb.required,
                json: None,
                form: None,
                accepted: rb.content.iter().map(|m| m.media_type.clone()).collect(),
                json_any: false,
            };
            for (i, media) in rb.content.iter().enumerate() {
                let pointer = format!("{base}/requestBody/content/{i}/schema");
                if is_json_media_type(&media.media_type) {
                    match &media.schema {
                        Some(schema) => body.json = compile(pointer, schema),
                        None => body.json_any = true,
                    }
                } else if media
                    .media_type
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                {
                    let schema = media.schema.clone().unwrap_or(Value::Bool(true));
                    if let Some(v) = compile(pointer, &schema) {
                        body.form = Some((v, Kind::of(&schema, &api.schemas)));
                    }
                }
            }
            body
        });

        let mut responses = Vec::new();
        for r in &op.responses {
            let validator = r
                .json_schema()
                .and_then(|schema| compile(format!("{base}/responses/{}", r.status), schema));
            responses.push(CompiledResponse {
                status: r.status,
                validator,
            });
        }

        if let Some(b) = body
            .as_ref()
            .filter(|b| b.json.is_none() && !b.json_any && b.form.is_none())
        {
            problems.push(CompileError {
                pointer: format!("{base}/requestBody"),
                message: format!(
                    "no supported media type in {:?}: klue accepts JSON and application/x-www-form-urlencoded bodies",
                    b.accepted
                ),
            });
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(OperationRuntime {
            operation_id: Arc::from(op.operation_id.as_str()),
            method: op.method,
            path: op.path.clone(),
            has_path_params: params.iter().any(|p| p.location == ParamLocation::Path),
            params,
            body,
            responses,
            needs_auth: op.auth.is_required(),
            handler,
        })
    }
}

/// The path parameters' names and spans, inline for the usual few.
pub(crate) type PathSpans = SmallVec<[(Arc<str>, std::ops::Range<usize>); 2]>;

/// Where an operation's path parameters come from.
pub(crate) enum PathParams {
    /// axum's router routed the request: `RawPathParams` in its extensions.
    Routed,
    /// [`crate::routes`] matched it: each parameter's name and its span of the path, still
    /// percent-encoded.
    Captured(PathSpans),
}

/// Serves one request that axum's router routed to `op`. Never fails: every error becomes
/// the JSON error answer.
pub(crate) async fn dispatch(
    op: Arc<OperationRuntime>,
    shared: Arc<Shared>,
    request: axum::extract::Request,
) -> Response {
    let request_id = crate::middleware::request_id_of(&request);
    let answer = dispatch_captured(&op, &shared, request, request_id, PathParams::Routed, None);
    answer.await.response
}

/// An operation's answer, and whether its headers are complete.
pub(crate) struct Answer {
    pub(crate) response: Response,
    /// The answer started from the caller's `json_headers` and nothing was added to them:
    /// the headers the caller would add are there already.
    pub(crate) headers_complete: bool,
}

/// Serves one request for `op`, its path parameters from `path`. Never fails.
///
/// `json_headers`: what a JSON answer's headers are (`content-type` and the headers the
/// caller adds to every answer), cloned in one go instead of inserted one by one. Only used
/// for an answer with a JSON body and no headers of its own; [`Answer::headers_complete`]
/// says whether it was.
///
/// An operation that needs nothing to wait for before its handler (no auth, no body, path
/// parameters captured by [`crate::routes`]) has its parameters read and its handler called
/// here, before the returned future is first polled: that future then only holds the
/// handler's. Carrying the whole of `serve`'s state instead (1.2 KB, moved three times per
/// request) cost `GET /ping` about 0.7k of its 16k instructions (docs/benchmarks.md, "What
/// made klue faster"). So this can panic where an operation's code panics: callers catch
/// panics around the call as well as around polling.
pub(crate) fn dispatch_captured<'a>(
    op: &'a OperationRuntime,
    shared: &'a Shared,
    request: axum::extract::Request,
    request_id: Arc<str>,
    path: PathParams,
    json_headers: Option<&'a http::HeaderMap>,
) -> Dispatch<'a> {
    let waits = op.needs_auth
        || op.body.is_some()
        || (op.has_path_params && matches!(path, PathParams::Routed));
    if waits {
        return Dispatch::Waiting {
            future: Box::pin(serve_waiting(
                op,
                shared,
                request,
                request_id,
                path,
                json_headers,
            )),
        };
    }
    let (parts, _body) = request.into_parts();
    let path_values = match path {
        PathParams::Captured(captures) if op.has_path_params => {
            captured_path_values(parts.uri.path(), captures)
        }
        _ => Ok(PathValues::new()),
    };
    let prepared = path_values.and_then(|path_values| {
        let mut request = Request::default();
        let mut errors = Vec::new();
        read_parameter_values(op, &parts, path_values, &mut request, &mut errors);
        if errors.is_empty() {
            Ok(request)
        } else {
            Err(ApiError::invalid(describe(&errors), errors))
        }
    });
    match prepared {
        Ok(request) => Dispatch::Calling {
            call: HandlerCall {
                call: call_handler(op, shared, request, None, Arc::clone(&request_id)),
                op,
                shared,
                json_headers,
                request_id,
                uri: parts.uri,
            },
        },
        Err(error) => Dispatch::Answered {
            answer: std::future::ready(error_answer(op, shared, error, &request_id, &parts.uri)),
        },
    }
}

pin_project_lite::pin_project! {
    /// The future of [`dispatch_captured`].
    #[project = DispatchProjection]
    pub(crate) enum Dispatch<'a> {
        /// Refused before the handler (bad parameters).
        Answered { answer: std::future::Ready<Answer> },
        /// The handler called, its answer awaited.
        Calling { #[pin] call: HandlerCall<'a> },
        /// The general path, with waits before the handler: boxed, so that the usual
        /// answer's future stays small.
        Waiting { future: Pin<Box<dyn Future<Output = Answer> + Send + 'a>> },
    }
}

impl Future for Dispatch<'_> {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Answer> {
        match self.project() {
            DispatchProjection::Answered { answer } => Pin::new(answer).poll(cx),
            DispatchProjection::Calling { call } => call.poll(cx),
            DispatchProjection::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

/// What a handler runs under: the request context, the request timeout, and a guard that
/// turns its panic into a 500.
type ScopedCall =
    TaskLocalFuture<RequestContext, Within<CatchUnwind<AssertUnwindSafe<HandlerFuture>>>>;

/// Calls `op`'s handler with `request` (its parameters and body read) for `caller`.
fn call_handler(
    op: &OperationRuntime,
    shared: &Shared,
    mut request: Request,
    caller: Option<Authenticated>,
    request_id: Arc<str>,
) -> ScopedCall {
    let ctx = RequestContext {
        request_id,
        operation_id: Arc::clone(&op.operation_id),
        claims: caller.as_ref().map(|c| Arc::clone(&c.claims)),
        token: caller.map(|c| c.token),
    };
    request.ctx = ctx.clone();
    let call = op.handler.call(request);
    let guarded = crate::deadline::within(
        shared.config.request_timeout,
        AssertUnwindSafe(call).catch_unwind(),
    );
    context::scope(ctx, guarded)
}

/// The answer to what a [`ScopedCall`] gave.
fn answer_call(
    op: &OperationRuntime,
    shared: &Shared,
    outcome: <ScopedCall as Future>::Output,
    json_headers: Option<&http::HeaderMap>,
) -> Result<Answer, ApiError> {
    let reply = match outcome {
        Ok(Ok(result)) => result?,
        Ok(Err(panic)) => return Err(ApiError::internal(crate::panic::describe(panic))),
        Err(TimedOut) => {
            return Err(ApiError::new(
                503,
                codes::REQUEST_TIMEOUT,
                format!(
                    "The server did not answer within {:?}",
                    shared.config.request_timeout
                ),
            ));
        }
    };
    reply_response(op, shared, reply, json_headers)
}

/// The JSON error answer to a request for `op` at `uri`.
fn error_answer(
    op: &OperationRuntime,
    shared: &Shared,
    error: ApiError,
    request_id: &str,
    uri: &http::Uri,
) -> Answer {
    let request_line = format!("{} {}", op.method, uri.path());
    Answer {
        response: shared.answer_error(error, request_id, &request_line, Some(&op.operation_id)),
        headers_complete: false,
    }
}

pin_project_lite::pin_project! {
    /// A called handler and what its answer needs.
    pub(crate) struct HandlerCall<'a> {
        #[pin]
        call: ScopedCall,
        op: &'a OperationRuntime,
        shared: &'a Shared,
        json_headers: Option<&'a http::HeaderMap>,
        // For an error answer.
        request_id: Arc<str>,
        uri: http::Uri,
    }
}

impl Future for HandlerCall<'_> {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Answer> {
        let this = self.project();
        let outcome = ready!(this.call.poll(cx));
        Poll::Ready(
            match answer_call(this.op, this.shared, outcome, *this.json_headers) {
                Ok(answer) => answer,
                Err(error) => error_answer(this.op, this.shared, error, this.request_id, this.uri),
            },
        )
    }
}

/// [`dispatch_captured`]'s general path: auth, parameters, body, then the handler.
async fn serve_waiting(
    op: &OperationRuntime,
    shared: &Shared,
    request: axum::extract::Request,
    request_id: Arc<str>,
    path: PathParams,
    json_headers: Option<&http::HeaderMap>,
) -> Answer {
    let (mut parts, body) = request.into_parts();
    let served = async {
        // Auth first: an anonymous caller never learns what a valid request looks like.
        let caller: Option<Authenticated> = if op.needs_auth {
            Some(shared.authenticator.authenticate(&parts).await?)
        } else {
            None
        };
        let by_cookie = caller.is_some() && crate::auth::extract::credentials_from_cookie(&parts);
        let mut request = Request::default();
        let mut errors = Vec::new();
        read_parameters(op, &mut parts, path, &mut request, &mut errors).await?;
        if let Some(spec) = &op.body {
            request.body = read_body(spec, shared, &parts, body, by_cookie, &mut errors).await?;
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(describe(&errors), errors));
        }
        let outcome = call_handler(op, shared, request, caller, Arc::clone(&request_id)).await;
        answer_call(op, shared, outcome, json_headers)
    }
    .await;
    match served {
        Ok(answer) => answer,
        Err(error) => error_answer(op, shared, error, &request_id, &parts.uri),
    }
}

/// Path parameters by name, percent-decoded.
type PathValues<'a> = SmallVec<[(Arc<str>, Cow<'a, str>); 2]>;

/// The path parameters axum's router recorded, percent-decoded.
async fn routed_path_values<'a>(
    parts: &mut http::request::Parts,
) -> Result<PathValues<'a>, ApiError> {
    match RawPathParams::from_request_parts(parts, &()).await {
        Ok(raw) => Ok(raw
            .iter()
            .map(|(k, v)| (Arc::from(k), Cow::Owned(v.to_owned())))
            .collect()),
        Err(rejection) => Err(invalid_path(rejection.to_string())),
    }
}

/// The captured path parameters, percent-decoded. A value that does not decode to UTF-8 is
/// refused as axum's `RawPathParams` refuses it.
fn captured_path_values(path: &str, captures: PathSpans) -> Result<PathValues<'_>, ApiError> {
    let mut values = PathValues::new();
    for (key, span) in captures {
        let raw = path.get(span).unwrap_or_default();
        if !raw.contains('%') {
            // Nothing to decode, and already UTF-8.
            values.push((key, Cow::Borrowed(raw)));
            continue;
        }
        match percent_encoding::percent_decode_str(raw).decode_utf8() {
            Ok(value) => values.push((key, value)),
            Err(_) => return Err(invalid_path(format!("Invalid UTF-8 in `{key}`"))),
        }
    }
    Ok(values)
}

fn invalid_path(message: String) -> ApiError {
    let message = crate::error::truncate_chars(&message, 4 * crate::error::ECHO_LIMIT).into_owned();
    ApiError::invalid(
        format!("Invalid path: {message}"),
        vec![FieldError {
            location: FieldLocation::Path,
            name: None,
            pointer: None,
            message,
        }],
    )
}

/// Decodes, defaults and validates every declared parameter.
async fn read_parameters(
    op: &OperationRuntime,
    parts: &mut http::request::Parts,
    path: PathParams,
    request: &mut Request,
    errors: &mut Vec<FieldError>,
) -> Result<(), ApiError> {
    if op.params.is_empty() {
        return Ok(());
    }
    let path_values = match path {
        _ if !op.has_path_params => PathValues::new(),
        PathParams::Routed => routed_path_values(parts).await?,
        PathParams::Captured(captures) => captured_path_values(parts.uri.path(), captures)?,
    };
    read_parameter_values(op, parts, path_values, request, errors);
    Ok(())
}

/// [`read_parameters`] once the path parameters are known.
fn read_parameter_values(
    op: &OperationRuntime,
    parts: &http::request::Parts,
    path_values: PathValues<'_>,
    request: &mut Request,
    errors: &mut Vec<FieldError>,
) {
    if op.params.is_empty() {
        return;
    }
    let wants = |location: ParamLocation| op.params.iter().any(|p| p.location == location);
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .filter(|_| wants(ParamLocation::Query))
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let cookies: Vec<(String, String)> = if wants(ParamLocation::Cookie) {
        parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(params::parse_cookies)
            .collect()
    } else {
        Vec::new()
    };

    for p in &op.params {
        // A path parameter has one value: no vector for it.
        let path_value: [&str; 1];
        let raw: Vec<&str>;
        let raw: &[&str] = match p.location {
            ParamLocation::Path => match path_values.iter().find(|(k, _)| **k == *p.name) {
                Some((_, value)) => {
                    path_value = [&**value];
                    &path_value
                }
                None => &[],
            },
            ParamLocation::Query | ParamLocation::Cookie => {
                let pairs = match p.location {
                    ParamLocation::Query => &query,
                    _ => &cookies,
                };
                raw = pairs
                    .iter()
                    .filter(|(k, _)| **k == *p.name)
                    .map(|(_, v)| v.as_str())
                    .collect();
                &raw
            }
            ParamLocation::Header => match &p.header_name {
                Some(name) => {
                    let mut values = Vec::new();
                    for v in parts.headers.get_all(name) {
                        match v.to_str() {
                            Ok(s) => values.push(s),
                            Err(_) => errors.push(FieldError {
                                location: FieldLocation::Header,
                                name: Some(p.name.to_string()),
                                pointer: None,
                                message: "header value is not visible ASCII".into(),
                            }),
                        }
                    }
                    raw = values;
                    &raw
                }
                None => &[],
            },
        };
        let decoded = match (p.location, p.style, &p.kind) {
            (ParamLocation::Query, ParamStyle::DeepObject, kind) => {
                params::decode_deep_object(&p.name, &query, kind)
            }
            (ParamLocation::Query, ParamStyle::Form, kind @ Kind::Object(_)) if p.explode => {
                params::decode_exploded_object(&query, kind)
            }
            (_, style, kind) => params::decode(raw, kind, style, p.explode),
        };
        let repeatable =
            matches!(p.kind, Kind::Array(_)) && p.explode && p.location == ParamLocation::Query;
        if raw.len() > 1 && !repeatable {
            // Parameter pollution: a proxy reading the first value and klue the last would see
            // different requests.
            errors.push(FieldError {
                location: p.field_location,
                name: Some(p.name.to_string()),
                pointer: None,
                message: format!("given {} times; it takes one value", raw.len()),
            });
            continue;
        }
        if raw.iter().any(|v| v.contains('\0')) {
            errors.push(FieldError {
                location: p.field_location,
                name: Some(p.name.to_string()),
                pointer: None,
                message: "contains a NUL character".into(),
            });
            continue;
        }
        let value = match decoded.or_else(|| p.default.clone()) {
            Some(value) => value,
            None if p.required => {
                errors.push(FieldError {
                    location: p.field_location,
                    name: Some(p.name.to_string()),
                    pointer: None,
                    message: format!("{} parameter '{}' is required", p.location.as_str(), p.name),
                });
                continue;
            }
            None => continue,
        };
        errors.extend(
            p.validator
                .parameter_errors(p.field_location, &p.name, &value),
        );
        let target = match p.location {
            ParamLocation::Path => &mut request.path,
            ParamLocation::Query => &mut request.query,
            ParamLocation::Header => &mut request.headers,
            ParamLocation::Cookie => &mut request.cookies,
        };
        target.insert(Arc::clone(&p.name), value);
    }
}

/// Reads (bounded in size and in time), parses and validates the body. `Ok(None)` when no body was sent and none
/// is required. A body sent with the `token` cookie's credentials (`by_cookie`) must pass
/// [`crate::auth::csrf::check_cookie_body`] first.
async fn read_body(
    spec: &CompiledBody,
    shared: &Shared,
    parts: &http::request::Parts,
    body: Body,
    by_cookie: bool,
    errors: &mut Vec<FieldError>,
) -> Result<Option<Value>, ApiError> {
    let limit = shared.config.body_limit;
    let declared_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    // The deadline's timer is only made if the body is not there on the first read.
    let reading = std::pin::pin!(Limited::new(body, limit).collect());
    let Ok(read) = crate::deadline::within(shared.config.body_read_timeout, reading).await else {
        return Err(ApiError::new(
            408,
            codes::BODY_READ_TIMEOUT,
            format!(
                "The request body did not arrive within {:?}",
                shared.config.body_read_timeout
            ),
        ));
    };
    let bytes = match read {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(too_large(limit)),
        Err(e) => {
            return Err(ApiError::new(
                400,
                codes::INVALID_PARAMETER,
                format!("Could not read the request body: {e}"),
            ));
        }
    };
    if bytes.is_empty() {
        if spec.required {
            errors.push(FieldError {
                location: FieldLocation::Body,
                name: None,
                pointer: Some(String::new()),
                message: "a request body is required".into(),
            });
        }
        return Ok(None);
    }

    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if by_cookie {
        crate::auth::csrf::check_cookie_body(parts, content_type.as_deref())?;
    }
    let accepts_json = spec.json.is_some() || spec.json_any;
    // A body without Content-Type is taken as JSON when the operation accepts JSON.
    let is_json = match &content_type {
        None => accepts_json,
        Some(ct) => is_json_media_type(ct),
    };
    if is_json && accepts_json {
        let value: Value = match crate::json::from_slice_strict(&bytes) {
            Ok(v) => v,
            Err(e) => {
                errors.push(FieldError {
                    location: FieldLocation::Body,
                    name: None,
                    pointer: Some(String::new()),
                    message: format!("the body is not valid JSON: {e}"),
                });
                return Ok(None);
            }
        };
        if let Some(validator) = &spec.json {
            errors.extend(validator.body_errors(&value));
        }
        let mut value = value;
        crate::validate::integral_floats_to_integers(&mut value);
        return Ok(Some(value));
    }
    if let Some((validator, kind)) = spec
        .form
        .as_ref()
        .filter(|_| content_type.as_deref() == Some("application/x-www-form-urlencoded"))
    {
        let value = decode_form(&bytes, kind);
        errors.extend(validator.body_errors(&value));
        return Ok(Some(value));
    }
    Err(ApiError::new(
        415,
        codes::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "Content-Type {} is not accepted here; send one of: {}",
            crate::error::truncate_input(content_type.as_deref().unwrap_or("(none)")),
            spec.accepted.join(", ")
        ),
    ))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        413,
        codes::PAYLOAD_TOO_LARGE,
        format!("The request body is larger than the limit of {limit} bytes"),
    )
}

/// A urlencoded form as a JSON object, coercing each field to its declared kind.
fn decode_form(bytes: &[u8], kind: &Kind) -> Value {
    let props = match kind {
        Kind::Object(props) => Some(props),
        _ => None,
    };
    let mut object = Map::new();
    for (key, value) in form_urlencoded::parse(bytes) {
        let field_kind = props
            .and_then(|p| p.get(key.as_ref()))
            .unwrap_or(&Kind::Any);
        match field_kind {
            Kind::Array(item) => {
                let entry = object
                    .entry(key.into_owned())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = entry {
                    items.push(params::coerce_scalar(&value, item));
                }
            }
            other => {
                object.insert(key.into_owned(), params::coerce_scalar(&value, other));
            }
        }
    }
    Value::Object(object)
}

/// A one-line summary of validation errors for `error_description`.
fn describe(errors: &[FieldError]) -> String {
    let first = &errors[0];
    let what = match (&first.name, &first.pointer, first.location) {
        (Some(name), _, location) => {
            format!("Invalid {} parameter '{name}'", location_name(location))
        }
        (None, Some(pointer), FieldLocation::Body) if !pointer.is_empty() => {
            format!("Invalid body at {pointer}")
        }
        _ => "Invalid request body".to_owned(),
    };
    let more = match errors.len() {
        1 => String::new(),
        n => format!(
            " (and {} more error{})",
            n - 1,
            if n > 2 { "s" } else { "" }
        ),
    };
    format!("{what}: {}{more}", first.message)
}

fn location_name(location: FieldLocation) -> &'static str {
    match location {
        FieldLocation::Path => "path",
        FieldLocation::Query => "query",
        FieldLocation::Header => "header",
        FieldLocation::Cookie => "cookie",
        FieldLocation::Body => "body",
    }
}

/// The handler's reply as an HTTP response, validated against the spec when enabled.
fn reply_response(
    op: &OperationRuntime,
    shared: &Shared,
    mut reply: Reply,
    json_headers: Option<&http::HeaderMap>,
) -> Result<Answer, ApiError> {
    if shared.config.validate_responses {
        check_reply(op, &reply)?;
    }
    let mut headers_complete = false;
    let mut response = match reply.take_body_bytes().map_err(ApiError::internal)? {
        Some(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            match json_headers.filter(|_| reply.headers.is_empty()) {
                Some(headers) => {
                    *response.headers_mut() = headers.clone();
                    headers_complete = true;
                }
                None => {
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                }
            }
            response
        }
        None => Response::new(Body::empty()),
    };
    *response.status_mut() = reply.status;
    if !reply.headers.is_empty() {
        for (name, value) in reply.headers {
            if let Some(name) = name {
                response.headers_mut().insert(name, value);
            }
        }
    }
    Ok(Answer {
        response,
        headers_complete,
    })
}

/// Response validation: the status must be documented and the body must match its schema.
fn check_reply(op: &OperationRuntime, reply: &Reply) -> Result<(), ApiError> {
    let code = reply.status.as_u16();
    let documented = op
        .responses
        .iter()
        .find(|r| r.status == ResponseStatus::Code(code))
        .or_else(|| {
            op.responses
                .iter()
                .find(|r| matches!(r.status, ResponseStatus::Range(_)) && r.status.matches(code))
        })
        .or_else(|| {
            op.responses
                .iter()
                .find(|r| r.status == ResponseStatus::Default)
        });
    let bad = |cause: String| {
        ApiError::new(
            500,
            codes::BAD_RESPONSE,
            "The server produced a response that does not match its API specification",
        )
        .with_cause(anyhow::anyhow!(
            "{} {} answered {code}: {cause}",
            op.method,
            op.path
        ))
    };
    let Some(documented) = documented else {
        return Err(bad(format!("status {code} is not documented")));
    };
    let body = reply
        .body_value()
        .map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    match (&documented.validator, &body) {
        (Some(validator), Some(body)) => {
            let violations = validator.violations(body);
            if !violations.is_empty() {
                let listed: Vec<String> = violations
                    .iter()
                    .map(|v| format!("at '{}': {}", v.pointer, v.message))
                    .collect();
                return Err(bad(format!(
                    "the body does not match the schema: {}",
                    listed.join("; ")
                )));
            }
        }
        (Some(_), None) => return Err(bad("the body is missing".into())),
        _ => {}
    }
    if reply.status == StatusCode::NO_CONTENT && reply.has_body() {
        return Err(bad("204 with a body".into()));
    }
    Ok(())
}
