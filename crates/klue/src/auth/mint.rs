//! Minting HS256 tokens exactly as klue-microservice's `generate_token` does: header
//! `{"typ":"JWT","alg":"HS256","iss":<issuer>}`, claims `<extra claims>, iss, sub, aud, exp,
//! iat`. For `cargo xtask token`, tests and curl; services verify, they do not mint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value};
use std::time::Duration;

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("the secret is empty")]
    EmptySecret,
    #[error("the audience is empty")]
    EmptyAudience,
    #[error("the subject is empty")]
    EmptySubject,
    #[error("the expiry overflows")]
    Overflow,
    #[error("cannot serialize the token: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot sign the token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// A token for `subject`, valid for `ttl` from now, signed with `secret` (HS256).
///
/// `extra_claims` come first; `iss` (when given), `sub`, `aud`, `exp` and `iat` are set over
/// them, as klue-microservice's `generate_token(user_id, expire_in, data, issuer)`.
pub fn mint_token(
    secret: &[u8],
    audience: &str,
    issuer: Option<&str>,
    subject: &str,
    ttl: Duration,
    extra_claims: Map<String, Value>,
) -> Result<String, MintError> {
    let now = super::verify::now();
    mint_token_at(secret, audience, issuer, subject, ttl, extra_claims, now)
}

/// [`mint_token`] with an explicit `iat` (seconds since the epoch), like `generate_token`'s
/// `iat=` argument: the same inputs give the same token, byte for byte.
pub fn mint_token_at(
    secret: &[u8],
    audience: &str,
    issuer: Option<&str>,
    subject: &str,
    ttl: Duration,
    extra_claims: Map<String, Value>,
    issued_at: u64,
) -> Result<String, MintError> {
    if secret.is_empty() {
        return Err(MintError::EmptySecret);
    }
    if audience.is_empty() {
        return Err(MintError::EmptyAudience);
    }
    if subject.is_empty() {
        return Err(MintError::EmptySubject);
    }
    let expires_at = issued_at
        .checked_add(ttl.as_secs())
        .ok_or(MintError::Overflow)?;

    let mut header = Map::new();
    header.insert("typ".into(), "JWT".into());
    header.insert("alg".into(), "HS256".into());
    let mut claims = extra_claims;
    if let Some(issuer) = issuer {
        header.insert("iss".into(), issuer.into());
        claims.insert("iss".into(), issuer.into());
    }
    claims.insert("sub".into(), subject.into());
    claims.insert("aud".into(), audience.into());
    claims.insert("exp".into(), expires_at.into());
    claims.insert("iat".into(), issued_at.into());

    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?),
    );
    super::install_crypto_provider();
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )?;
    Ok(format!("{signing_input}.{signature}"))
}
