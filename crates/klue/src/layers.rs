//! The tower layers around the router, outermost first: request id and request log, CORS,
//! gzip, and a last-resort panic catcher (handlers' panics are caught per request already).

use crate::error::{ApiError, codes};
use crate::runtime::Shared;
use axum::Router;
use http::{HeaderName, Method, header};
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub(crate) fn apply(router: Router, shared: Arc<Shared>) -> Router {
    let cors = CorsLayer::new()
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
        .expose_headers([HeaderName::from_static(crate::middleware::X_REQUEST_ID)]);
    let panic_shared = Arc::clone(&shared);
    router
        .layer(CatchPanicLayer::custom(
            move |payload: Box<dyn std::any::Any + Send>| {
                let cause = crate::panic::describe(payload);
                let error = ApiError::new(
                    500,
                    codes::UNHANDLED_SERVER_ERROR,
                    "The server failed to handle this request",
                )
                .with_cause(cause);
                let request_id = crate::context::current_request_id().unwrap_or_default();
                panic_shared.answer_error(error, &request_id, "-", None)
            },
        ))
        .layer(CompressionLayer::new().gzip(true))
        .layer(cors)
        .layer(axum::middleware::from_fn(
            crate::middleware::request_id_and_log,
        ))
}
