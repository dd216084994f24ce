//! The tower layers around the router, outermost first: request id and request log, CORS,
//! gzip, and a last-resort panic catcher (handlers' panics are caught per request already).
//!
//! They exist twice, with the same behaviour:
//! - [`apply`]: as axum layers on the router ([`crate::Service::router`], for tests and
//!   embedding). axum wraps every route in them, and clones each layer's state per request
//!   (the CORS layer's header lists, for instance).
//! - [`Front`]: what the server runs. One service in front of the router that does the same
//!   work without the per-request clones: the CORS headers are computed once (by running
//!   tower-http's CORS layer at startup), and a request without `Accept-Encoding` skips the
//!   gzip layer (which would not compress it) while getting the `Vary: accept-encoding` it
//!   would have added. `HEAD`, `OPTIONS` and `CONNECT` requests go through [`apply`]'s router
//!   unchanged: axum post-processes those (body stripping, preflight) in ways the order of the
//!   layers makes visible. Behind its layers, [`Front`] routes the operations itself
//!   ([`crate::routes`]) and leaves the rest to the router; an operation's JSON answer starts
//!   from a prepared header map that already has the CORS headers.

use crate::error::{ApiError, codes};
use crate::middleware::RequestId;
use crate::operation::{Answer, OperationRuntime};
use crate::routes::OperationRoutes;
use crate::runtime::Shared;
use axum::Router;
use axum::body::Body;
use futures_util::FutureExt;
use futures_util::future::Either;
use http::{HeaderName, HeaderValue, Method, Request, Response, header};
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use tower::{Layer, ServiceExt};
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer, ResponseForPanic};
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::compression::{Compression, CompressionLayer};
use tower_http::cors::{AllowOrigin, CorsLayer};

fn cors_layer() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(crate::middleware::X_REQUEST_ID),
        ])
        .expose_headers([HeaderName::from_static(crate::middleware::X_REQUEST_ID)])
        // Any origin, and fixed lists of methods and headers: no answer depends on the
        // request's `Origin` or `Access-Control-Request-*` headers, so none says it varies
        // with them (tower-http's default adds that `Vary` to every answer, 80 bytes each).
        .vary([])
}

fn compression_layer() -> CompressionLayer {
    CompressionLayer::new().gzip(true)
}

/// The last-resort answer to a panic outside a handler: the JSON 500.
#[derive(Clone)]
pub(crate) struct PanicAnswer(Arc<Shared>);

impl ResponseForPanic for PanicAnswer {
    type ResponseBody = Body;

    fn response_for_panic(&mut self, payload: Box<dyn std::any::Any + Send>) -> Response<Body> {
        let cause = crate::panic::describe(payload);
        let error = ApiError::new(
            500,
            codes::UNHANDLED_SERVER_ERROR,
            "The server failed to handle this request",
        )
        .with_cause(cause);
        let request_id = crate::context::current_request_id().unwrap_or_default();
        self.0.answer_error(error, &request_id, "-", None)
    }
}

/// The router with every layer, as axum layers.
pub(crate) fn apply(router: Router, shared: Arc<Shared>) -> Router {
    router
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            check_host,
        ))
        .layer(CatchPanicLayer::custom(PanicAnswer(shared)))
        .layer(compression_layer())
        .layer(cors_layer())
        .layer(axum::middleware::from_fn(
            crate::middleware::request_id_and_log,
        ))
}

/// The 400 for a request without a single valid `Host` (see
/// [`crate::middleware::host_problem`]); [`Routing::route`] does the same for [`Front`].
async fn check_host(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response<Body> {
    match crate::middleware::host_problem(&request) {
        None => next.run(request).await,
        Some(problem) => shared.answer_error(
            crate::middleware::host_error(problem),
            &crate::middleware::request_id_of(&request),
            &crate::middleware::request_line(&request),
            None,
        ),
    }
}

/// The headers tower-http's CORS layer adds to an answer that is not a preflight. With this
/// configuration they do not depend on the request (any origin, fixed lists).
struct CorsHeaders {
    /// Appended (an answer may carry its own `Vary`).
    vary: Option<HeaderValue>,
    /// Set, replacing any value of the same name.
    set: Vec<(HeaderName, Vec<HeaderValue>)>,
}

impl CorsHeaders {
    /// Runs the CORS layer once on a `GET` and records what it added.
    fn capture() -> Option<CorsHeaders> {
        let service = cors_layer().layer(tower::service_fn(|_: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
        let request = Request::get("/").body(Body::empty()).ok()?;
        let response = service.oneshot(request).now_or_never()?.ok()?;
        let headers = response.headers();
        let mut set: Vec<(HeaderName, Vec<HeaderValue>)> = Vec::new();
        for name in headers.keys() {
            if name != header::VARY {
                set.push((
                    name.clone(),
                    headers.get_all(name).iter().cloned().collect(),
                ));
            }
        }
        Some(CorsHeaders {
            vary: headers.get(header::VARY).cloned(),
            set,
        })
    }

    /// What the CORS layer does to an answer.
    fn apply(&self, headers: &mut http::HeaderMap) {
        if let Some(vary) = &self.vary {
            headers.append(header::VARY, vary.clone());
        }
        for (name, values) in &self.set {
            let mut values = values.iter();
            if let Some(first) = values.next() {
                headers.insert(name.clone(), first.clone());
            }
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
    }
}

/// Whether `haystack` contains `needle`, ASCII case ignored (as tower-http checks `Vary`).
fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

/// What tower-http's compression layer does to an answer when the request accepts no
/// encoding: the body is left as it is, and an answer it would have compressed for a client
/// that accepts gzip gets `Vary: accept-encoding` (once).
fn vary_like_compression<B: axum::body::HttpBody>(
    predicate: &DefaultPredicate,
    response: &mut Response<B>,
) {
    // The predicate first: it refuses small answers from their size alone.
    let would_compress = predicate.should_compress(response)
        && !response.headers().contains_key(header::CONTENT_ENCODING)
        && !response.headers().contains_key(header::CONTENT_RANGE);
    if would_compress
        && !response.headers().get_all(header::VARY).iter().any(|v| {
            contains_ignore_ascii_case(v.as_bytes(), header::ACCEPT_ENCODING.as_str().as_bytes())
        })
    {
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from(header::ACCEPT_ENCODING));
    }
}

/// The router with klue's own routing of operations in front ([`crate::routes`]): what
/// [`Front`] runs behind its layers.
#[derive(Clone)]
struct Routing {
    router: Router,
    operations: Option<Arc<OperationRoutes>>,
    shared: Arc<Shared>,
}

impl Routing {
    /// Answers `request`, whose request id is `request_id`. `json_headers` as for
    /// [`crate::operation::dispatch_captured`]. Not an `async fn`, for the reason given there.
    fn route<'a>(
        &'a self,
        mut request: Request<Body>,
        request_id: Arc<str>,
        json_headers: Option<&'a http::HeaderMap>,
    ) -> impl Future<Output = Answer> + Send + 'a {
        if let Some(problem) = crate::middleware::host_problem(&request) {
            let response = self.shared.answer_error(
                crate::middleware::host_error(problem),
                &request_id,
                &crate::middleware::request_line(&request),
                None,
            );
            return Either::Right(Either::Right(std::future::ready(Answer {
                response,
                headers_complete: false,
            })));
        }
        let found = self
            .operations
            .as_deref()
            .and_then(|routes| routes.find(request.method(), request.uri().path()));
        if let Some((op, path)) = found {
            return Either::Left(crate::operation::dispatch_captured(
                op,
                &self.shared,
                request,
                request_id,
                path,
                json_headers,
            ));
        }
        if request.extensions().get::<RequestId>().is_none() {
            request.extensions_mut().insert(RequestId(request_id));
        }
        Either::Right(Either::Left(
            Box::pin(self.router.clone().oneshot(request)).map(|answer| match answer {
                Ok(response) => Answer {
                    response,
                    headers_complete: false,
                },
                Err(never) => match never {},
            }),
        ))
    }
}

/// [`Routing`] as a tower service, under the compression layer (the request id from the
/// extensions, where [`Front::call`] put it).
impl tower::Service<Request<Body>> for Routing {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let request_id = crate::middleware::request_id_of(&request);
        let routing = self.clone();
        Box::pin(async move { Ok(routing.route(request, request_id, None).await.response) })
    }
}

/// The service the server runs: the router behind the layers, without axum's per-route
/// layering (see the module documentation).
pub(crate) struct Front {
    /// [`apply`]'s router: for `HEAD`, `OPTIONS` and `CONNECT`, and when the CORS headers could
    /// not be captured.
    layered: Router,
    /// The routing, for requests without `Accept-Encoding` (panics caught by [`Front::call`]).
    plain: Routing,
    panic_answer: PanicAnswer,
    /// The same behind the compression layer, for requests with `Accept-Encoding`.
    compressed: Compression<CatchPanic<Routing, PanicAnswer>>,
    cors: Option<CorsHeaders>,
    /// A JSON answer's headers with the CORS headers: the operations start their answers
    /// from a clone (one copy instead of three inserts). `None` when the CORS headers include
    /// a `Vary`, whose values' order would then differ from the layered router's.
    json_headers: Option<http::HeaderMap>,
    predicate: DefaultPredicate,
}

impl Front {
    /// `router` without layers, `operations` (the router's operations, routed by [`Front`]
    /// itself), `shared` for the operations and the panic answer.
    pub(crate) fn new(
        router: Router,
        operations: &[Arc<OperationRuntime>],
        shared: Arc<Shared>,
    ) -> Front {
        let layered = apply(router.clone(), Arc::clone(&shared));
        let panic_answer = PanicAnswer(Arc::clone(&shared));
        let plain = Routing {
            router,
            operations: OperationRoutes::new(operations, &crate::builtins::DOCUMENT_PATHS)
                .map(Arc::new),
            shared,
        };
        let compressed = compression_layer()
            .layer(CatchPanicLayer::custom(panic_answer.clone()).layer(plain.clone()));
        let cors = CorsHeaders::capture();
        let json_headers = cors.as_ref().filter(|c| c.vary.is_none()).map(|cors| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            cors.apply(&mut headers);
            // Replaced by the request's id in `middleware::finish_with`, which finds it as
            // the last header (`IdSlot::LastPlaceholder`). A placeholder rather than an
            // insert there: a clone has no room to spare, and a new name would grow it.
            headers.insert(
                crate::middleware::X_REQUEST_ID_NAME,
                HeaderValue::from_static("-"),
            );
            headers
        });
        Front {
            layered,
            plain,
            panic_answer,
            compressed,
            cors,
            json_headers,
            predicate: DefaultPredicate::new(),
        }
    }

    /// The router with every layer (what [`crate::Service::router`] returns).
    pub(crate) fn layered(&self) -> &Router {
        &self.layered
    }

    /// Answers `request`. One boxed future per request, made for its path: the plain path's
    /// state is not sized by the rarer ones, and nothing in it is held twice (an `async fn`
    /// keeps its arguments next to the locals they move into).
    pub(crate) fn call(self: Arc<Self>, mut request: Request<Body>) -> FrontFuture {
        let cors_applies = self.cors.is_some()
            && !matches!(
                *request.method(),
                Method::HEAD | Method::OPTIONS | Method::CONNECT
            );
        if !cors_applies {
            return Box::pin(async move {
                match self.layered.clone().oneshot(request).await {
                    Ok(response) => Ok(response),
                    Err(never) => match never {},
                }
            });
        }
        let started = crate::middleware::begin(&request);
        if request.headers().contains_key(header::ACCEPT_ENCODING) {
            started.record_in(&mut request);
            return Box::pin(async move {
                let response = match self.compressed.clone().oneshot(request).await {
                    Ok(response) => response.map(Body::new),
                    Err(never) => match never {},
                };
                Ok(self.finish(started, response, false))
            });
        }
        Box::pin(async move {
            let routed = {
                // What `CatchPanic` does, without boxing the body a second time: routing
                // can call the handler already (see `dispatch_captured`), so around the call
                // too. In a block of its own, so that only the awaited future is kept.
                let routing = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    self.plain.route(
                        request,
                        Arc::clone(started.request_id()),
                        self.json_headers.as_ref(),
                    )
                }));
                match routing {
                    Ok(routing) => Either::Left(AssertUnwindSafe(routing).catch_unwind()),
                    Err(panic) => Either::Right(std::future::ready(Err(panic))),
                }
            }
            .await;
            let (mut response, headers_complete) = match routed {
                Ok(answer) => (answer.response, answer.headers_complete),
                Err(panic) => (self.panic_answer.clone().response_for_panic(panic), false),
            };
            vary_like_compression(&self.predicate, &mut response);
            Ok(self.finish(started, response, headers_complete))
        })
    }

    /// Adds the CORS headers (unless `cors_added`) and the request id, and logs the request.
    fn finish(
        &self,
        started: crate::middleware::Started,
        mut response: Response<Body>,
        cors_added: bool,
    ) -> Response<Body> {
        let id_slot = if cors_added {
            crate::middleware::IdSlot::LastPlaceholder
        } else {
            if let Some(cors) = &self.cors {
                cors.apply(response.headers_mut());
            }
            crate::middleware::IdSlot::Absent
        };
        crate::middleware::finish_with(started, response, id_slot)
    }
}

/// The future of [`Front::call`].
type FrontFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// [`Front`] as a hyper service (one per connection; the state is shared).
#[derive(Clone)]
pub(crate) struct FrontService(pub(crate) Arc<Front>);

impl hyper::service::Service<Request<hyper::body::Incoming>> for FrontService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = FrontFuture;

    fn call(&self, request: Request<hyper::body::Incoming>) -> Self::Future {
        Arc::clone(&self.0).call(request.map(Body::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_headers_are_captured() {
        let cors = CorsHeaders::capture();
        let Some(cors) = cors else {
            panic!("the CORS layer did not answer at once");
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static("x"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("https://a"),
        );
        cors.apply(&mut headers);
        // The answers do not vary with the request's CORS headers: no `Vary` is added.
        let vary: Vec<_> = headers.get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["x"]);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(
            headers[header::ACCESS_CONTROL_EXPOSE_HEADERS],
            "x-request-id"
        );
    }

    const SPEC: &str = r#"
openapi: 3.1.0
info: {title: front test, version: '1'}
paths:
  /small:
    get:
      operationId: small
      responses:
        '200': {description: ok}
  /big:
    get:
      operationId: big
      parameters:
        - {name: n, in: query, schema: {type: integer, minimum: 0, maximum: 500}}
      responses:
        '200': {description: ok}
    post:
      operationId: post_big
      requestBody:
        required: true
        content:
          application/json:
            schema: {type: object, required: [name], properties: {name: {type: string}}}
      responses:
        '201': {description: created}
  /boom:
    get:
      operationId: boom
      responses:
        '200': {description: never}
  /items/{id}/tags/{tag}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer, maximum: 99}}
      - {name: tag, in: path, required: true, schema: {type: string, maxLength: 8}}
    get:
      operationId: item_tag
      responses:
        '200': {description: ok}
    delete:
      operationId: drop_tag
      responses:
        '204': {description: gone}
  /own-headers:
    get:
      operationId: own_headers
      responses:
        '200': {description: ok}
  /{page}:
    get:
      operationId: page
      parameters:
        - {name: page, in: path, required: true, schema: {type: string}}
      responses:
        '200': {description: ok}
"#;

    fn service() -> crate::Service {
        use crate::{Handlers, Reply, Request as KlueRequest};
        let apis = klue_spec::load_sources(&[klue_spec::Source {
            path: "t.yaml".into(),
            text: SPEC.into(),
        }]);
        let Ok(apis) = apis else {
            panic!("the test spec does not load");
        };
        let handlers = Handlers::new()
            .with("small", |_: KlueRequest| async {
                Ok(Reply::json(
                    http::StatusCode::OK,
                    serde_json::json!({"a": 1}),
                ))
            })
            .with("big", |r: KlueRequest| async move {
                let n = r
                    .query
                    .get("n")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(100);
                let text = "x".repeat(usize::try_from(n).unwrap_or(0));
                Ok(Reply::json(
                    http::StatusCode::OK,
                    serde_json::json!({"text": text}),
                ))
            })
            .with("post_big", |r: KlueRequest| async move {
                Ok(Reply::json(
                    http::StatusCode::CREATED,
                    r.body.unwrap_or_default(),
                ))
            })
            .with("item_tag", |r: KlueRequest| async move {
                Ok(Reply::json(
                    http::StatusCode::OK,
                    serde_json::Value::from(r.path),
                ))
            })
            .with("own_headers", |_: KlueRequest| async {
                let mut reply = Reply::json(http::StatusCode::OK, serde_json::json!({"a": 1}));
                reply
                    .headers
                    .insert("x-custom", HeaderValue::from_static("1"));
                // The CORS layer's value wins, as with tower-http's layer.
                reply.headers.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("https://mine"),
                );
                Ok(reply)
            })
            .with("drop_tag", |_: KlueRequest| async {
                Ok(Reply::empty(http::StatusCode::NO_CONTENT))
            })
            .with("page", |r: KlueRequest| async move {
                Ok(Reply::json(
                    http::StatusCode::OK,
                    serde_json::Value::from(r.path),
                ))
            })
            .with("boom", |_: KlueRequest| async {
                if std::hint::black_box(true) {
                    panic!("boom");
                }
                Ok(Reply::empty(http::StatusCode::OK))
            });
        let built = crate::Service::builder(apis).serve("t", handlers).build();
        match built {
            Ok(service) => service,
            Err(e) => panic!("{e}"),
        }
    }

    /// Status, headers and body, with the fresh `error_id` of error bodies blanked. Headers
    /// are compared by name (the values of one name in order): the order of different names
    /// carries no meaning in HTTP, and axum adds `content-length` after its route's layers.
    async fn observe(
        response: Response<Body>,
    ) -> (u16, Vec<(String, String)>, Option<u64>, Vec<u8>) {
        let status = response.status().as_u16();
        // `content-length` is left out: axum's routes add it, the server's own routing leaves
        // it to hyper, which writes it from the body's exact size (compared below).
        let mut headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter(|(k, _)| *k != header::CONTENT_LENGTH)
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        let exact = axum::body::HttpBody::size_hint(response.body()).exact();
        let compressed = response.headers().contains_key(header::CONTENT_ENCODING);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default()
            .to_vec();
        let bytes = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(mut value) if !compressed && value.get("error_id").is_some() => {
                value["error_id"] = serde_json::Value::from("-");
                serde_json::to_vec(&value).unwrap_or_default()
            }
            // A gzipped error body holds a fresh error_id: compare that it is there.
            _ if compressed && status >= 400 => vec![u8::from(!bytes.is_empty())],
            _ => bytes,
        };
        (status, headers, exact, bytes)
    }

    /// Method, URI, headers, body.
    type Case = (
        &'static str,
        &'static str,
        Vec<(&'static str, &'static str)>,
        &'static str,
    );

    /// A `host` "value" that stands for no `Host` header at all.
    const NO_HOST: &str = "(none)";

    /// Every request answers the same through [`Front`] as through the layered router.
    #[tokio::test]
    async fn front_answers_like_the_layered_router() {
        let service = service();
        let front = Arc::clone(&service.front().0);
        // The operations are routed by `Front` itself (otherwise this compares the router
        // with itself), and the documents are left to the router.
        let Some(routes) = front.plain.operations.as_deref() else {
            panic!("the operations table was not built");
        };
        assert!(routes.find(&Method::GET, "/items/7/tags/red").is_some());
        assert!(routes.find(&Method::DELETE, "/items/7/tags/red").is_some());
        assert!(routes.find(&Method::POST, "/items/7/tags/red").is_none());
        assert!(routes.find(&Method::GET, "/docs").is_none());
        assert!(routes.find(&Method::GET, "/hello").is_some());
        let cases: Vec<Case> = vec![
            ("GET", "/small", vec![], ""),
            ("GET", "/big", vec![], ""),
            ("GET", "/big?n=3", vec![("accept-encoding", "gzip")], ""),
            ("GET", "/big", vec![("accept-encoding", "gzip")], ""),
            (
                "GET",
                "/big",
                vec![("accept-encoding", "br;q=1, gzip;q=0.5")],
                "",
            ),
            ("GET", "/big", vec![("accept-encoding", "identity")], ""),
            ("GET", "/big", vec![("origin", "https://example.com")], ""),
            ("GET", "/big?n=1000", vec![], ""),
            ("GET", "/big?n=1&n=2", vec![("accept-encoding", "gzip")], ""),
            ("HEAD", "/big", vec![], ""),
            ("HEAD", "/big", vec![("accept-encoding", "gzip")], ""),
            (
                "OPTIONS",
                "/big",
                vec![
                    ("origin", "https://a"),
                    ("access-control-request-method", "POST"),
                ],
                "",
            ),
            ("OPTIONS", "/nowhere", vec![], ""),
            (
                "POST",
                "/big",
                vec![("content-type", "application/json")],
                r#"{"name": "n"}"#,
            ),
            (
                "POST",
                "/big",
                vec![
                    ("content-type", "application/json"),
                    ("accept-encoding", "gzip"),
                ],
                r#"{"name": "a long enough name for the gzip layer"}"#,
            ),
            (
                "POST",
                "/big",
                vec![("content-type", "application/json")],
                r#"{"name": 1}"#,
            ),
            ("POST", "/big", vec![("content-type", "text/plain")], "x"),
            ("PUT", "/big", vec![], ""),
            ("DELETE", "/small", vec![("accept-encoding", "gzip")], ""),
            ("GET", "/nowhere", vec![], ""),
            ("GET", "/nowhere", vec![("accept-encoding", "gzip")], ""),
            ("GET", "/boom", vec![], ""),
            ("GET", "/ping", vec![], ""),
            ("GET", "/version", vec![("accept-encoding", "gzip")], ""),
            ("GET", "/openapi/t.json", vec![], ""),
            (
                "GET",
                "/openapi/t.yaml",
                vec![("accept-encoding", "gzip")],
                "",
            ),
            ("GET", "/openapi/none.json", vec![], ""),
            ("POST", "/openapi/t.json", vec![], ""),
            ("GET", "/docs", vec![], ""),
            ("GET", "/items/7/tags/red", vec![], ""),
            ("GET", "/own-headers", vec![], ""),
            ("GET", "/own-headers", vec![("accept-encoding", "gzip")], ""),
            ("GET", "/items/7/tags/r%C3%A9d%20x", vec![], ""),
            ("GET", "/items/7/tags/r%FFd", vec![], ""),
            ("GET", "/items/%FF/tags/r%FFd", vec![], ""),
            ("GET", "/items/700/tags/a-very-long-tag", vec![], ""),
            (
                "GET",
                "/items/x/tags/red",
                vec![("accept-encoding", "gzip")],
                "",
            ),
            ("DELETE", "/items/7/tags/red", vec![], ""),
            ("POST", "/items/7/tags/red", vec![], ""),
            ("GET", "/items/7/tags/", vec![], ""),
            ("GET", "/items/7/tags/red/", vec![], ""),
            ("GET", "/hello%20there", vec![], ""),
            ("GET", "/docs/", vec![], ""),
            ("GET", "/openapi", vec![], ""),
            ("GET", "/ping/", vec![], ""),
            ("GET", "/", vec![], ""),
            ("PATCH", "/small", vec![], ""),
            ("GET", "/small", vec![("host", "")], ""),
            ("GET", "/small", vec![("host", NO_HOST)], ""),
            ("POST", "/big", vec![("host", NO_HOST)], r#"{"name": "n"}"#),
            ("OPTIONS", "/big", vec![("host", NO_HOST)], ""),
            ("GET", "/small", vec![("host", "a"), ("host", "b")], ""),
            ("GET", "/nowhere", vec![("host", "a"), ("host", "a")], ""),
            ("HEAD", "/big", vec![("host", "a"), ("host", "b")], ""),
            ("GET", "/small", vec![("host", "user@t.example")], ""),
            (
                "GET",
                "/small",
                vec![("host", "a"), ("host", "b"), ("accept-encoding", "gzip")],
                "",
            ),
            (
                "GET",
                "/docs/init.js",
                vec![("accept-encoding", "gzip")],
                "",
            ),
            (
                "GET",
                "/docs/favicon-32x32.png",
                vec![("accept-encoding", "gzip")],
                "",
            ),
        ];
        for (method, uri, headers, body) in cases {
            let build = || {
                let mut request = Request::builder()
                    .method(method)
                    .uri(uri)
                    .header("x-request-id", "t-1");
                // Every HTTP/1.1 request has a Host; the cases about it set their own.
                if !headers.iter().any(|(name, _)| *name == "host") {
                    request = request.header("host", "t.example");
                }
                for (name, value) in &headers {
                    if *value != NO_HOST {
                        request = request.header(*name, *value);
                    }
                }
                request
                    .body(Body::from(body.to_owned()))
                    .unwrap_or_default()
            };
            let layered = match service.router().oneshot(build()).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let fast = match Arc::clone(&front).call(build()).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            assert_eq!(
                observe(layered).await,
                observe(fast).await,
                "{method} {uri} {headers:?}"
            );
        }
    }

    #[test]
    fn vary_check_ignores_case() {
        assert!(contains_ignore_ascii_case(
            b"Origin, Accept-Encoding",
            b"accept-encoding"
        ));
        assert!(!contains_ignore_ascii_case(b"origin", b"accept-encoding"));
    }
}
