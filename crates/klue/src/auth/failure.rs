//! The 401 answers of authentication, with klue-microservice's codes and wording and an
//! RFC 6750 `WWW-Authenticate` challenge.

use crate::error::{ApiError, codes};
use http::{HeaderValue, header};
use std::borrow::Cow;

/// Challenge for a request that carries no bearer credentials at all (RFC 6750 §3.1: no
/// error code in that case).
const CHALLENGE: &str = "Bearer";
/// Challenge for a request whose bearer credentials were refused.
const CHALLENGE_INVALID: &str = "Bearer error=\"invalid_token\"";

/// klue-microservice's wording for a token that cannot be decoded or whose signature fails.
pub(crate) const BAD_SIGNATURE: &str = "token signature is invalid";
/// The token's `alg` is not one this service verifies with.
pub(crate) const BAD_ALGORITHM: &str = "token algorithm is not accepted";

/// Why a request was not authenticated: becomes a 401 [`ApiError`] with a
/// `WWW-Authenticate` header (`From<AuthError> for ApiError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    code: &'static str,
    description: Cow<'static, str>,
    challenge: &'static str,
}

impl AuthError {
    /// The error code: `AUTHORIZATION_HEADER_MISSING`, `TOKEN_INVALID` or `TOKEN_EXPIRED`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The `error_description` sent to the client.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The `WWW-Authenticate` value sent with the 401.
    pub fn challenge(&self) -> &'static str {
        self.challenge
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for AuthError {}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        ApiError::new(401, e.code, e.description).with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(e.challenge),
        )
    }
}

/// No `Authorization` header and no `token` cookie.
pub(crate) fn missing() -> AuthError {
    AuthError {
        code: codes::AUTHORIZATION_HEADER_MISSING,
        description: Cow::Borrowed("There is no Authorization header in the HTTP request"),
        challenge: CHALLENGE,
    }
}

/// Credentials with a scheme other than Bearer.
pub(crate) fn not_bearer() -> AuthError {
    AuthError {
        code: codes::TOKEN_INVALID,
        description: Cow::Borrowed("Authorization header must start with Bearer"),
        challenge: CHALLENGE,
    }
}

/// A refused token (or a malformed `Bearer` credential), `TOKEN_INVALID`.
pub(crate) fn invalid(description: impl Into<Cow<'static, str>>) -> AuthError {
    AuthError {
        code: codes::TOKEN_INVALID,
        description: description.into(),
        challenge: CHALLENGE_INVALID,
    }
}

/// A token whose `exp` is past, beyond the leeway.
pub(crate) fn expired() -> AuthError {
    AuthError {
        code: codes::TOKEN_EXPIRED,
        description: Cow::Borrowed("Auth token is expired"),
        challenge: CHALLENGE_INVALID,
    }
}
