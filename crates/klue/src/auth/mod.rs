//! Authentication: which requests carry a verified JWT.
//!
//! The runtime calls an [`Authenticator`] for every operation whose spec requires auth, before
//! parameters and body are validated. [`JwtAuthenticator`] is the one klue ships, compatible
//! with klue-microservice tokens:
//!
//! - the token comes from `Authorization: Bearer <jwt>`, else from a `token` cookie holding
//!   `Bearer <jwt>` URL-encoded or the bare JWT ([`extract`]); a request authenticated by
//!   the cookie may send a body only as JSON or from the service's own origin (`csrf.rs`);
//! - HS256 tokens are checked with a shared secret, RS256/ES256 tokens with the JWKS key named
//!   by their `kid` ([`jwks`]); the token's `alg` never picks anything that is not configured;
//! - `exp`, `nbf` and `iat` get 60 s of leeway (`KLUE_JWT_LEEWAY`), `aud` is required and
//!   must match, `iss` is checked when configured;
//! - an ES256 signature is taken in its low-s form (`s` and `n - s` both verify): the token
//!   handed on is the low-s one, so one token has one spelling;
//! - an HS256 secret shorter than 32 bytes stops a release build from starting (RFC 7518);
//! - a token verified with the HS256 secret is remembered (up to a few thousand), so that a
//!   client reusing it pays for its verification once; its time claims are still checked on
//!   every request;
//! - every refusal is a 401 with klue-microservice's code and wording and a
//!   `WWW-Authenticate: Bearer` challenge. Tokens are never logged.
//!
//! [`from_env`] builds it from `KLUE_JWT_SECRET`, `KLUE_JWT_AUDIENCE`, `KLUE_JWT_ISSUER`,
//! `KLUE_JWT_JWKS` and `KLUE_JWT_LEEWAY`; [`mint_token`] makes tokens the way klue-microservice's `generate_token`
//! does. Not here: deciding which operations need auth (the router reads that from the spec).

mod cache;
mod config;
pub(crate) mod csrf;
pub mod extract;
mod failure;
pub mod jwks;
mod mint;
mod verify;

pub use config::{
    AuthConfigError, DEFAULT_JWKS_REFRESH_INTERVAL, DEFAULT_LEEWAY, ENV_AUDIENCE, ENV_ISSUER,
    ENV_JWKS, ENV_LEEWAY, ENV_SECRET, JwtConfig, MAX_LEEWAY, MIN_SECRET_BYTES, config_from_env,
    config_from_lookup, from_env, jwks_source,
};
pub use extract::bearer_token;
pub use failure::AuthError;
pub use jwks::{FileJwks, HttpJwks, JwksError, JwksSource};
pub use mint::{MintError, mint_token, mint_token_at};
pub use verify::JwtAuthenticator;

use crate::context::Claims;
use crate::error::ApiError;
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// Makes `jsonwebtoken` use aws-lc-rs, unless the process chose a provider already.
///
/// `jsonwebtoken` picks its provider from its features, and panics on first use when both
/// of its backends are compiled in, which any other crate of the program can cause by
/// enabling the other one.
pub(crate) fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

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
