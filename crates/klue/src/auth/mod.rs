//! Authentication: which requests carry a verified JWT.
//!
//! The runtime calls an [`Authenticator`] for every operation whose spec requires auth, before
//! parameters and body are validated.

use crate::context::Claims;
use crate::error::ApiError;
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// A verified caller.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub claims: Arc<Claims>,
    /// The raw token, for forwarding to downstream services.
    pub token: Arc<str>,
}

/// Verifies the credentials of a request (header and cookies are in `parts`).
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate<'a>(
        &'a self,
        parts: &'a http::request::Parts,
    ) -> BoxFuture<'a, Result<Authenticated, ApiError>>;
}

/// The authenticator used when none is configured: refuses every request with 401.
#[derive(Debug, Default, Clone, Copy)]
pub struct DenyAll;

impl Authenticator for DenyAll {
    fn authenticate<'a>(
        &'a self,
        _parts: &'a http::request::Parts,
    ) -> BoxFuture<'a, Result<Authenticated, ApiError>> {
        Box::pin(async {
            Err(ApiError::new(
                401,
                crate::error::codes::TOKEN_INVALID,
                "No authentication is configured on this service",
            ))
        })
    }
}
