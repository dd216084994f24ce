//! klue: the runtime of a spec-first REST service.
//!
//! From the IR that `klue-spec` loads, it builds an axum `Router` for the APIs a service serves:
//! routing, parameter and body validation against the spec, JWT auth, the uniform JSON error
//! with an `error_id`, and the built-ins every service has (`/ping`, `/version`,
//! `/auth/version`, `/openapi/<api>.json|yaml`, `/docs`). It also holds the runtime that
//! generated clients use.
//!
//! It is not a code generator (that is `klue-codegen`, which emits typed traits on top of the
//! dynamic [`Handlers`] interface here) and knows nothing about deployment.
//!
//! A service's `main` is one call:
//! ```ignore
//! klue::server::run_service(specs, |b| b.serve("helloworld", handlers)).await
//! ```
//!
//! The server runs the same router with less work per request: it matches the operations
//! itself (same templates, same `matchit` as axum) and leaves the rest (404, 405, documents)
//! to the router. Tests hold both to the same answers: a fixed list of cases (`layers.rs`),
//! and the request-path fuzz target, whose corpus a stable test replays
//! (`tests/request_path_corpus.rs`); [`Service::serve_request`] runs the server's path in
//! process.
//!
//! [`server`] serves thread-per-core: each connection lives on one of a single-threaded
//! runtime per CPU. Handlers that compute for long should use `tokio::task::spawn_blocking`;
//! `block_in_place` is not available to them.

pub mod auth;
mod builtins;
pub mod client;
pub mod context;
mod deadline;
pub mod error;
pub mod handler;
mod head_timeout;
pub mod json;
mod layers;
mod logfmt;
mod logsink;
pub mod middleware;
mod operation;
pub mod panic;
pub mod params;
mod placement;
pub mod reporter;
mod routes;
mod runtime;
mod serialize;
pub mod server;
pub mod validate;

pub use context::{Claims, RequestContext};
pub use error::{ApiError, ErrorBody, FieldError, FieldLocation};
pub use handler::{Handler, HandlerResult, Handlers, Params, Reply, Request};
pub use klue_spec as spec;
pub use reporter::{ErrorReport, ErrorReporter, LogReporter};
pub use runtime::{RuntimeConfig, Service, ServiceBuilder, StartupError};
