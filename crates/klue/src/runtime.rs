//! The service: which APIs are served with which handlers, checked and compiled at startup,
//! and the axum `Router` that results.

use crate::auth::{Authenticator, DenyAll};
use crate::builtins::{self, BuiltinState};
use crate::error::{ApiError, codes, truncate_input};
use crate::handler::Handlers;
use crate::operation::{OperationRuntime, dispatch};
use crate::reporter::{ErrorReport, ErrorReporter, LogReporter};
use axum::Router;
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter};
use http::{HeaderValue, header};
use klue_spec::{Api, Method};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Runtime settings. Defaults: response validation on in debug builds, off in release; 1 MiB
/// body limit; 30 s to read a request body; 30 s per request.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Check every handler reply against the spec (500 `BAD_RESPONSE` when it does not match).
    pub validate_responses: bool,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Longest the request body of an operation may take to arrive, counted from when the
    /// runtime starts reading it; then the request is answered 408 `BODY_READ_TIMEOUT` and,
    /// over HTTP/1.1, its connection is closed (the rest of the body is not read). Without
    /// it, a body sent a byte at a time holds its connection for as long as the client likes.
    /// [`crate::server::run_service`] sets it from `--body-read-timeout`
    /// (`KLUE_BODY_READ_TIMEOUT`).
    pub body_read_timeout: Duration,
    /// Longest a handler may take before the request is answered 503 `REQUEST_TIMEOUT`.
    pub request_timeout: Duration,
    /// The `container` of `/version` (`KLUE_CONTAINER_VERSION`).
    pub container_version: String,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            validate_responses: cfg!(debug_assertions),
            body_limit: 1024 * 1024,
            body_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            container_version: String::new(),
        }
    }
}

impl RuntimeConfig {
    /// The defaults, overridden by `KLUE_VALIDATE_RESPONSES` (`1`/`0`, `true`/`false`),
    /// `KLUE_BODY_LIMIT` (bytes), `KLUE_REQUEST_TIMEOUT` (seconds) and `KLUE_CONTAINER_VERSION`.
    pub fn from_env() -> Result<Self, StartupError> {
        let mut config = RuntimeConfig::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(v) = var("KLUE_VALIDATE_RESPONSES") {
            config.validate_responses = match v.trim() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                other => {
                    return Err(StartupError::config(
                        "KLUE_VALIDATE_RESPONSES",
                        other,
                        "expected 1 or 0",
                    ));
                }
            };
        }
        if let Some(v) = var("KLUE_BODY_LIMIT") {
            config.body_limit = v.trim().parse().map_err(|_| {
                StartupError::config("KLUE_BODY_LIMIT", &v, "expected a number of bytes")
            })?;
        }
        if let Some(v) = var("KLUE_REQUEST_TIMEOUT") {
            let secs: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| {
                    StartupError::config("KLUE_REQUEST_TIMEOUT", &v, "expected seconds > 0")
                })?;
            config.request_timeout = Duration::from_secs_f64(secs);
        }
        if let Some(v) = var("KLUE_CONTAINER_VERSION") {
            config.container_version = v;
        }
        Ok(config)
    }
}

/// Why a service refuses to start. Every problem found is listed.
#[derive(Debug)]
pub struct StartupError {
    pub problems: Vec<String>,
}

impl StartupError {
    fn config(name: &str, value: &str, expected: &str) -> Self {
        StartupError {
            problems: vec![format!("{name}={value:?} is invalid: {expected}")],
        }
    }
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the service cannot start:")?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StartupError {}

impl From<klue_spec::SpecErrors> for StartupError {
    fn from(errors: klue_spec::SpecErrors) -> Self {
        StartupError {
            problems: errors.0.iter().map(ToString::to_string).collect(),
        }
    }
}

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) authenticator: Arc<dyn Authenticator>,
    pub(crate) reporter: Arc<dyn ErrorReporter>,
    pub(crate) config: RuntimeConfig,
}

impl Shared {
    /// Answers an error: reports it when it is a 5xx, then renders the JSON body.
    pub(crate) fn answer_error(
        &self,
        error: ApiError,
        request_id: &str,
        request_line: &str,
        operation_id: Option<&str>,
    ) -> Response {
        let error_id = uuid::Uuid::new_v4().to_string();
        if error.status.is_server_error() {
            self.reporter.report(&ErrorReport {
                error_id: error_id.clone(),
                request_id: request_id.to_owned(),
                status: error.status.as_u16(),
                code: error.code.to_string(),
                request_line: request_line.to_owned(),
                operation_id: operation_id.map(str::to_owned),
                description: error.description.clone(),
                cause: error.cause.as_ref().map(|c| format!("{c:#}")),
            });
        }
        error.into_response_with_id(request_id, error_id)
    }
}

/// Chooses the APIs to serve and their handlers, then checks and compiles everything.
pub struct ServiceBuilder {
    apis: Vec<Api>,
    served: Vec<(String, Handlers)>,
    authenticator: Option<Arc<dyn Authenticator>>,
    reporter: Arc<dyn ErrorReporter>,
    config: RuntimeConfig,
}

impl ServiceBuilder {
    /// All the APIs of `apis/` (served ones and client-only ones).
    pub fn new(apis: Vec<Api>) -> Self {
        ServiceBuilder {
            apis,
            served: Vec::new(),
            authenticator: None,
            reporter: Arc::new(LogReporter),
            config: RuntimeConfig::default(),
        }
    }

    /// Serves the API named `api` (its file stem) with these handlers.
    pub fn serve(mut self, api: &str, handlers: Handlers) -> Self {
        self.served.push((api.to_owned(), handlers));
        self
    }

    /// Verifies JWTs for operations that need auth. Without one, those operations refuse
    /// every request (and `build` refuses to start if a served, non-built-in operation needs
    /// auth).
    pub fn authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.authenticator = Some(authenticator);
        self
    }

    /// Receives every 5xx (default: [`LogReporter`]).
    pub fn error_reporter(mut self, reporter: Arc<dyn ErrorReporter>) -> Self {
        self.reporter = reporter;
        self
    }

    pub fn config(mut self, config: RuntimeConfig) -> Self {
        self.config = config;
        self
    }

    pub fn runtime_config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Checks bindings, auth and schemas, and builds the router. Every problem is reported.
    pub fn build(self) -> Result<Service, StartupError> {
        crate::panic::install_hook();
        let mut problems = Vec::new();
        if self.served.is_empty() {
            problems.push("no API is served: call .serve(\"<api>\", handlers)".to_owned());
        }
        let mut operations: Vec<Arc<OperationRuntime>> = Vec::new();
        let mut builtin_state: Option<Arc<BuiltinState>> = None;
        let mut needs_auth: Vec<String> = Vec::new();
        let mut served_apis: Vec<Api> = Vec::new();

        for (api_name, handlers) in &self.served {
            let Some(api) = self.apis.iter().find(|a| &a.name == api_name) else {
                let known: Vec<&str> = self.apis.iter().map(|a| a.name.as_str()).collect();
                problems.push(format!(
                    "no API named '{api_name}' in the specs (known: {})",
                    known.join(", ")
                ));
                continue;
            };
            let state = builtin_state
                .get_or_insert_with(|| {
                    Arc::new(BuiltinState::new(api, &self.config.container_version))
                })
                .clone();
            for id in handlers.operation_ids() {
                if api.operation(id).is_none_or(|op| op.builtin) {
                    problems.push(format!("{api_name}: a handler is bound to '{id}', which is not an operation of the API"));
                }
            }
            for op in &api.operations {
                let handler = if op.builtin {
                    // The first served API answers the built-ins.
                    if operations
                        .iter()
                        .any(|o| o.method == op.method && o.path == op.path)
                    {
                        continue;
                    }
                    builtins::handler_for(&op.operation_id, Arc::clone(&state))
                } else {
                    handlers.get(&op.operation_id).cloned()
                };
                let Some(handler) = handler else {
                    problems.push(format!(
                        "{api_name}: no handler for operation '{}' ({} {}) at {}",
                        op.operation_id, op.method, op.path, op.location
                    ));
                    continue;
                };
                if op.auth.is_required() && !op.builtin {
                    needs_auth.push(format!("{} ({} {})", op.operation_id, op.method, op.path));
                }
                match OperationRuntime::compile(api, op, handler) {
                    Ok(compiled) => operations.push(Arc::new(compiled)),
                    Err(errors) => problems.extend(errors.into_iter().map(|e| {
                        format!("{}: #{}: {}", api.source.display(), e.pointer, e.message)
                    })),
                }
            }
            served_apis.push(api.clone());
        }
        if self.authenticator.is_none() && !needs_auth.is_empty() {
            problems.push(format!(
                "these operations need JWT auth but none is configured (set KLUE_JWT_SECRET and KLUE_JWT_AUDIENCE, or KLUE_JWT_JWKS): {}",
                needs_auth.join(", ")
            ));
        }
        let docs = match builtins::Documents::new(&served_apis) {
            Ok(docs) => Some(docs),
            Err(e) => {
                problems.push(e);
                None
            }
        };
        if !problems.is_empty() {
            return Err(StartupError { problems });
        }
        let shared = Arc::new(Shared {
            authenticator: self.authenticator.unwrap_or_else(|| Arc::new(DenyAll)),
            reporter: self.reporter,
            config: self.config,
        });
        let router = assemble(&operations, &shared, docs.map(Arc::new))?;
        Ok(Service {
            front: Arc::new(crate::layers::Front::new(router, &operations, shared)),
            operations: operations.len(),
            served: served_apis.into_iter().map(|a| a.name).collect(),
        })
    }
}

/// A checked, compiled service.
pub struct Service {
    front: Arc<crate::layers::Front>,
    operations: usize,
    served: Vec<String>,
}

impl Service {
    pub fn builder(apis: Vec<Api>) -> ServiceBuilder {
        ServiceBuilder::new(apis)
    }

    /// The complete router, layers included.
    pub fn router(&self) -> Router {
        self.front.layered().clone()
    }

    /// What the server runs: the same behaviour as [`Service::router`], with less work per
    /// request.
    pub(crate) fn front(&self) -> crate::layers::FrontService {
        crate::layers::FrontService(Arc::clone(&self.front))
    }

    /// Answers `request` in process the way [`crate::server`] does: through the server's own
    /// request path, which is meant to answer as [`Service::router`] does with less work.
    /// For tests and fuzzing that must cover what production runs, and that compare both.
    pub fn serve_request(
        &self,
        request: http::Request<axum::body::Body>,
    ) -> impl Future<Output = Response> + Send + 'static {
        let answer = Arc::clone(&self.front).call(request);
        async move {
            match answer.await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    }

    /// The names of the served APIs.
    pub fn served_apis(&self) -> &[String] {
        &self.served
    }

    /// How many operations are routed (built-ins included).
    pub fn operation_count(&self) -> usize {
        self.operations
    }
}

fn method_filter(method: Method) -> MethodFilter {
    match method {
        Method::Get => MethodFilter::GET,
        Method::Put => MethodFilter::PUT,
        Method::Post => MethodFilter::POST,
        Method::Delete => MethodFilter::DELETE,
        Method::Options => MethodFilter::OPTIONS,
        Method::Head => MethodFilter::HEAD,
        Method::Patch => MethodFilter::PATCH,
        Method::Trace => MethodFilter::TRACE,
    }
}

/// One route per path template; each method dispatches to its operation; other methods get
/// 405 with `Allow`; unknown paths get 404, both as JSON. The layers are added by the caller.
fn assemble(
    operations: &[Arc<OperationRuntime>],
    shared: &Arc<Shared>,
    docs: Option<Arc<builtins::Documents>>,
) -> Result<Router, StartupError> {
    let mut by_path: BTreeMap<&str, Vec<&Arc<OperationRuntime>>> = BTreeMap::new();
    for op in operations {
        by_path.entry(op.path.as_str()).or_default().push(op);
    }
    let mut router = Router::new();
    let mut problems = Vec::new();
    for (path, ops) in by_path {
        let mut methods: Vec<&str> = ops.iter().map(|o| o.method.as_str()).collect();
        if ops.iter().any(|o| o.method == Method::Get)
            && !ops.iter().any(|o| o.method == Method::Head)
        {
            methods.push("HEAD");
        }
        let allow = methods.join(", ");
        let mut route: MethodRouter = MethodRouter::new();
        for op in ops {
            let (op, shared) = (Arc::clone(op), Arc::clone(shared));
            route = route.on(
                method_filter(op.method),
                move |request: axum::extract::Request| {
                    dispatch(Arc::clone(&op), Arc::clone(&shared), request)
                },
            );
        }
        let shared_405 = Arc::clone(shared);
        route = route.fallback(move |request: axum::extract::Request| {
            let shared = Arc::clone(&shared_405);
            let allow = allow.clone();
            async move {
                let request_id = crate::middleware::request_id_of(&request);
                let error = ApiError::new(
                    405,
                    codes::METHOD_NOT_ALLOWED,
                    format!(
                        "{} is not allowed on {}; allowed: {allow}",
                        truncate_input(request.method().as_str()),
                        truncate_input(request.uri().path())
                    ),
                )
                .with_header(
                    header::ALLOW,
                    HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static("")),
                );
                shared.answer_error(
                    error,
                    &request_id,
                    &crate::middleware::request_line(&request),
                    None,
                )
            }
        });
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Router::new().route(path, route)
        })) {
            Ok(single) => router = router.merge(single),
            Err(_) => problems.push(format!(
                "the path template {path} cannot be routed (conflicting or invalid template)"
            )),
        }
    }
    if !problems.is_empty() {
        return Err(StartupError { problems });
    }
    if let Some(docs) = docs {
        router = router.merge(builtins::document_routes(docs));
    }
    let shared_404 = Arc::clone(shared);
    router = router.fallback(move |request: axum::extract::Request| {
        let shared = Arc::clone(&shared_404);
        async move {
            let request_id = crate::middleware::request_id_of(&request);
            let error = ApiError::new(
                404,
                codes::NOT_FOUND,
                format!(
                    "No route for {} {}",
                    truncate_input(request.method().as_str()),
                    truncate_input(request.uri().path())
                ),
            );
            shared.answer_error(
                error,
                &request_id,
                &crate::middleware::request_line(&request),
                None,
            )
        }
    });
    Ok(router)
}
