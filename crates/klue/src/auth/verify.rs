//! Verifying a JWT: signature with a key this service chose (never one the token chose),
//! then `exp`, `nbf`, `iat` (with leeway), `aud` and, when configured, `iss`.

use super::cache::{Verified, VerifiedTokens};
use super::config::{AuthConfigError, JwtConfig};
use super::failure::{self, AuthError, BAD_ALGORITHM, BAD_SIGNATURE};
use super::jwks::JwksStore;
use super::{Authenticated, Authenticator, extract};
use crate::context::Claims;
use crate::error::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::BoxFuture;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Verifies bearer JWTs from the `Authorization` header or the `token` cookie.
pub struct JwtAuthenticator {
    hs256: Option<DecodingKey>,
    jwks: Option<JwksStore>,
    audience: String,
    issuer: Option<String>,
    leeway: Duration,
    /// The checks for each algorithm a key can be configured for (HS256, RS256, ES256), built
    /// once: building one per request cost about 2% of an authenticated request.
    validations: [(Algorithm, Validation); 3],
    verified: VerifiedTokens,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("hs256", &self.hs256.is_some())
            .field("jwks", &self.jwks.is_some())
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl JwtAuthenticator {
    /// Checks `config` and loads its JWKS, if any.
    ///
    /// Blocking: the JWKS is fetched on a helper thread with its own runtime, so this may be
    /// called inside or outside a Tokio runtime. In async code prefer [`Self::load`].
    pub fn new(config: JwtConfig) -> Result<Self, AuthConfigError> {
        config.check()?;
        if config.jwks.is_none() {
            return Self::build(config, None);
        }
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| AuthConfigError::Runtime(e.to_string()))?;
                    runtime.block_on(Self::load(config))
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(AuthConfigError::Runtime("the JWKS loader panicked".into()))
                })
        })
    }

    /// Checks `config` and loads its JWKS, if any.
    pub async fn load(config: JwtConfig) -> Result<Self, AuthConfigError> {
        config.check()?;
        let store = match &config.jwks {
            None => None,
            Some(source) => Some(
                JwksStore::load(Arc::clone(source), config.jwks_refresh_interval)
                    .await
                    .map_err(|error| AuthConfigError::Jwks {
                        source_name: source.describe(),
                        error,
                    })?,
            ),
        };
        Self::build(config, store)
    }

    fn build(config: JwtConfig, jwks: Option<JwksStore>) -> Result<Self, AuthConfigError> {
        super::install_crypto_provider();
        let validations = [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256].map(|algorithm| {
            (
                algorithm,
                validation(
                    algorithm,
                    config.leeway,
                    &config.audience,
                    config.issuer.as_deref(),
                ),
            )
        });
        Ok(JwtAuthenticator {
            hs256: config.secret.as_deref().map(DecodingKey::from_secret),
            jwks,
            audience: config.audience,
            issuer: config.issuer,
            leeway: config.leeway,
            validations,
            verified: VerifiedTokens::default(),
        })
    }

    /// Verifies a bare JWT and returns its claims, or why it is refused (a 401 to answer).
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let verified = self.verify_shared(token).await?;
        Ok(Arc::unwrap_or_clone(verified.claims))
    }

    /// [`Self::verify`], answered from the tokens already verified when it can be (see
    /// `cache.rs`).
    async fn verify_shared(&self, token: &str) -> Result<Verified, AuthError> {
        if let Some(verified) = self.verified.get(token, now()) {
            return Ok(verified);
        }
        let (claims, algorithm, canonical) = self.verify_in_full(token).await?;
        let verified = Verified {
            token: Arc::from(canonical.as_deref().unwrap_or(token)),
            claims: Arc::new(claims),
        };
        // A JWKS key can be rotated out; the secret stays for the life of the process.
        if algorithm == Algorithm::HS256 {
            self.verified.insert(
                Arc::clone(&verified.token),
                Arc::clone(&verified.claims),
                self.leeway,
            );
        }
        Ok(verified)
    }

    /// Every check, the algorithm the token was verified with, and the token's canonical
    /// spelling when it is not `token` (an ES256 signature with a high `s`).
    async fn verify_in_full(
        &self,
        token: &str,
    ) -> Result<(Claims, Algorithm, Option<String>), AuthError> {
        let header = unverified_header(token).ok_or_else(|| failure::invalid(BAD_SIGNATURE))?;
        // RFC 7515 §4.1.11: a token with critical extensions we do not implement is invalid.
        if header.contains_key("crit") {
            return Err(failure::invalid("token has critical header parameters"));
        }
        // Only the algorithms a key can be configured for; anything else (`none`, HS384, ...)
        // is refused before any key is touched.
        let algorithm = match header.get("alg").and_then(Value::as_str) {
            Some("HS256") => Algorithm::HS256,
            Some("RS256") => Algorithm::RS256,
            Some("ES256") => Algorithm::ES256,
            _ => return Err(failure::invalid(BAD_ALGORITHM)),
        };
        let key = if algorithm == Algorithm::HS256 {
            match &self.hs256 {
                Some(key) => KeyRef::Owned(key),
                None => return Err(failure::invalid(BAD_ALGORITHM)),
            }
        } else {
            let Some(store) = &self.jwks else {
                return Err(failure::invalid(BAD_ALGORITHM));
            };
            let Some(kid) = header.get("kid").and_then(Value::as_str) else {
                return Err(failure::invalid("token has no key id (kid)"));
            };
            let Some(entry) = store.key(kid).await else {
                return Err(failure::invalid("token key id (kid) is unknown"));
            };
            // The key decides the algorithm; the token's `alg` must agree with it.
            if entry.algorithm != algorithm {
                return Err(failure::invalid(BAD_ALGORITHM));
            }
            KeyRef::Shared(entry)
        };
        let canonical = match algorithm {
            Algorithm::ES256 => low_s_form(token),
            _ => None,
        };
        let data = jsonwebtoken::decode::<Map<String, Value>>(
            canonical.as_deref().unwrap_or(token),
            key.key(),
            &self.validation(algorithm),
        )
        .map_err(|e| refusal(e.kind()))?;
        let claims = data.claims;
        self.check_times(&claims)?;
        Ok((Claims(claims), algorithm, canonical))
    }

    /// The checks for `algorithm` (built once for the algorithms keys can have).
    fn validation(&self, algorithm: Algorithm) -> std::borrow::Cow<'_, Validation> {
        match self.validations.iter().find(|(a, _)| *a == algorithm) {
            Some((_, validation)) => std::borrow::Cow::Borrowed(validation),
            None => std::borrow::Cow::Owned(validation(
                algorithm,
                self.leeway,
                &self.audience,
                self.issuer.as_deref(),
            )),
        }
    }

    /// What `jsonwebtoken` leaves out: a malformed `nbf` or `iat`, and an `iat` in the future
    /// beyond the leeway (klue-microservice accepted those; we refuse them).
    fn check_times(&self, claims: &Map<String, Value>) -> Result<(), AuthError> {
        if claims.get("nbf").is_some_and(|v| v.as_u64().is_none()) {
            return Err(failure::invalid("token has an invalid 'nbf' claim"));
        }
        match claims.get("iat") {
            None => Ok(()),
            Some(iat) => match iat.as_u64() {
                None => Err(failure::invalid("token has an invalid 'iat' claim")),
                Some(iat) if iat > now().saturating_add(self.leeway.as_secs()) => {
                    Err(failure::invalid("Token was issued in the future"))
                }
                Some(_) => Ok(()),
            },
        }
    }
}

/// What a token must satisfy besides its signature: `exp` and `aud` (and `iss` when
/// configured) present, `exp`/`nbf` checked with the leeway, the audience (and issuer) matching.
fn validation(
    algorithm: Algorithm,
    leeway: Duration,
    audience: &str,
    issuer: Option<&str>,
) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = leeway.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_audience(&[audience]);
    let mut required = vec!["exp", "aud"];
    if let Some(issuer) = issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// A key borrowed from the config or shared with the JWKS store.
enum KeyRef<'a> {
    Owned(&'a DecodingKey),
    Shared(Arc<super::jwks::KeyEntry>),
}

impl KeyRef<'_> {
    fn key(&self) -> &DecodingKey {
        match self {
            KeyRef::Owned(key) => key,
            KeyRef::Shared(entry) => &entry.key,
        }
    }
}

/// The order `n` of P-256's group, big-endian.
const P256_ORDER: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];
/// `n / 2`, rounded down: the largest low `s`.
const P256_HALF_ORDER: [u8; 32] = [
    0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xDE, 0x73, 0x7D, 0x56, 0xD3, 0x8B, 0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31, 0x92, 0xA8,
];

/// The same ES256 token with its signature's `s` replaced by `n - s`, when `s` is high
/// (`n/2 < s < n`). An ECDSA signature `(r, s)` also verifies as `(r, n - s)`, so anyone can
/// respell a token without the key; taking the low-s spelling gives each token one spelling
/// for whatever is keyed by it (and forwards one that strict verifiers accept). Signers need
/// not produce low-s signatures (most do not), so a high `s` is normalised, not refused.
/// `None` when there is nothing to change or the signature is not 64 bytes `r || s` (then
/// the verification refuses it).
fn low_s_form(token: &str) -> Option<String> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let (r, s) = signature.split_at_checked(32)?;
    if s.len() != 32 || s <= &P256_HALF_ORDER[..] || s >= &P256_ORDER[..] {
        return None;
    }
    let mut low = [0u8; 32];
    let mut borrow = false;
    for i in (0..32).rev() {
        let (digit, under) = P256_ORDER[i].overflowing_sub(s[i]);
        let (digit, under_again) = digit.overflowing_sub(u8::from(borrow));
        low[i] = digit;
        borrow = under || under_again;
    }
    let mut normalised = Vec::with_capacity(64);
    normalised.extend_from_slice(r);
    normalised.extend_from_slice(&low);
    Some(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(normalised)
    ))
}

/// The JOSE header of a compact JWT, unverified: only used to pick among configured keys.
fn unverified_header(token: &str) -> Option<Map<String, Value>> {
    let mut segments = token.split('.');
    let header = segments.next()?;
    let (Some(_), Some(_), None) = (segments.next(), segments.next(), segments.next()) else {
        return None;
    };
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The 401 for a `jsonwebtoken` refusal, in klue-microservice's words where it had some.
fn refusal(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => failure::expired(),
        ErrorKind::InvalidAudience => failure::invalid("incorrect audience"),
        ErrorKind::InvalidIssuer => failure::invalid("incorrect issuer"),
        ErrorKind::ImmatureSignature => failure::invalid("token is not yet valid (nbf)"),
        ErrorKind::MissingRequiredClaim(claim) => {
            failure::invalid(format!("token has no valid '{claim}' claim"))
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            failure::invalid(format!("token has an invalid '{claim}' claim"))
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            failure::invalid(BAD_ALGORITHM)
        }
        _ => failure::invalid(BAD_SIGNATURE),
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Authenticator for JwtAuthenticator {
    fn authenticate<'a>(
        &'a self,
        parts: &'a http::request::Parts,
    ) -> BoxFuture<'a, Result<Authenticated, ApiError>> {
        Box::pin(async move {
            let token = extract::bearer_token_of(parts)?;
            let verified = self.verify_shared(&token).await?;
            Ok(Authenticated {
                claims: verified.claims,
                token: verified.token,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with_s(s: [u8; 32]) -> String {
        let mut signature = vec![7u8; 32];
        signature.extend_from_slice(&s);
        format!("h.p.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn s_of(token: &str) -> Vec<u8> {
        let signature = token.rsplit('.').next().unwrap_or_default();
        URL_SAFE_NO_PAD
            .decode(signature)
            .map(|b| b[32..].to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn high_s_becomes_n_minus_s() {
        // n - 1 is the highest s; its twin is 1.
        let mut highest = P256_ORDER;
        highest[31] -= 1;
        let Some(low) = low_s_form(&token_with_s(highest)) else {
            panic!("not normalised");
        };
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(s_of(&low), one);
        assert!(low.starts_with("h.p."));
        // n/2 + 1 becomes n/2 (n is odd): a borrow runs through the digits.
        let mut just_high = P256_HALF_ORDER;
        just_high[31] += 1;
        let Some(low) = low_s_form(&token_with_s(just_high)) else {
            panic!("not normalised");
        };
        assert_eq!(s_of(&low), P256_HALF_ORDER);
        // Low s, s >= n and malformed signatures are left alone.
        assert_eq!(low_s_form(&token_with_s(P256_HALF_ORDER)), None);
        assert_eq!(low_s_form(&token_with_s(P256_ORDER)), None);
        assert_eq!(low_s_form("h.p.c2hvcnQ"), None);
        assert_eq!(low_s_form("no dots"), None);
    }
}
