//! What JWT verification is configured with, from code ([`JwtConfig`]) or from the
//! environment ([`from_env`]).

use super::Authenticator;
use super::jwks::{FileJwks, HttpJwks, JwksError, JwksSource, JwksUrlError};
use super::verify::JwtAuthenticator;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

/// The shared HS256 secret (raw bytes, as klue-microservice uses it).
pub const ENV_SECRET: &str = "KLUE_JWT_SECRET";
/// The audience every token must carry in `aud`.
pub const ENV_AUDIENCE: &str = "KLUE_JWT_AUDIENCE";
/// The issuer tokens must carry in `iss`, when set.
pub const ENV_ISSUER: &str = "KLUE_JWT_ISSUER";
/// A JWKS file path or https URL, for RS256 and ES256 tokens.
pub const ENV_JWKS: &str = "KLUE_JWT_JWKS";

/// klue-microservice's leeway on `exp`, `nbf` (and here `iat`): 300 s.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(300);
/// A JWKS is refetched on an unknown `kid` at most this often.
pub const DEFAULT_JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Why JWT verification cannot be set up. Messages name the variable, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("{ENV_SECRET} is set but empty: set it to the shared HS256 secret, or unset it")]
    EmptySecret,
    #[error("{0} is set but empty: give it a value or unset it")]
    EmptyVariable(&'static str),
    #[error("{0} is not valid UTF-8")]
    NotUnicode(&'static str),
    #[error(
        "{ENV_AUDIENCE} must be set when {ENV_SECRET} or {ENV_JWKS} is: every token's `aud` is checked against it"
    )]
    MissingAudience,
    #[error("no way to verify tokens: configure a secret (HS256) or a JWKS (RS256, ES256)")]
    NoKeys,
    #[error("{ENV_JWKS}: {0}")]
    JwksUrl(#[from] JwksUrlError),
    #[error("cannot load the JWKS from {source_name}: {error}")]
    Jwks {
        source_name: String,
        #[source]
        error: JwksError,
    },
    #[error("cannot start a runtime to load the JWKS: {0}")]
    Runtime(String),
}

/// How tokens are verified.
///
/// HS256 tokens are checked with `secret`, RS256/ES256 tokens with the `jwks` key named by
/// their `kid`; a token's `alg` only selects among what is configured here.
#[derive(Clone)]
pub struct JwtConfig {
    /// The HS256 secret, raw bytes (klue-microservice: the UTF-8 bytes of `KLUE_JWT_SECRET`).
    pub secret: Option<Vec<u8>>,
    /// The required `aud`.
    pub audience: String,
    /// The required `iss`, if any (klue-microservice did not check it).
    pub issuer: Option<String>,
    /// Where RS256/ES256 keys come from.
    pub jwks: Option<Arc<dyn JwksSource>>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// The shortest time between two fetches of the JWKS.
    pub jwks_refresh_interval: Duration,
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("jwks", &self.jwks.as_ref().map(|s| s.describe()))
            .field("leeway", &self.leeway)
            .field("jwks_refresh_interval", &self.jwks_refresh_interval)
            .finish()
    }
}

impl JwtConfig {
    /// HS256 with a shared secret, as klue-microservice.
    pub fn hs256(secret: impl Into<Vec<u8>>, audience: impl Into<String>) -> Self {
        JwtConfig {
            secret: Some(secret.into()),
            ..JwtConfig::empty(audience.into())
        }
    }

    /// RS256/ES256 with the keys of a JWKS.
    pub fn jwks(source: Arc<dyn JwksSource>, audience: impl Into<String>) -> Self {
        JwtConfig {
            jwks: Some(source),
            ..JwtConfig::empty(audience.into())
        }
    }

    fn empty(audience: String) -> Self {
        JwtConfig {
            secret: None,
            audience,
            issuer: None,
            jwks: None,
            leeway: DEFAULT_LEEWAY,
            jwks_refresh_interval: DEFAULT_JWKS_REFRESH_INTERVAL,
        }
    }

    /// Also accept HS256 tokens signed with `secret`.
    pub fn with_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Also accept RS256/ES256 tokens signed by a key of `source`.
    pub fn with_jwks(mut self, source: Arc<dyn JwksSource>) -> Self {
        self.jwks = Some(source);
        self
    }

    /// Require `iss` to be `issuer`.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    pub fn with_jwks_refresh_interval(mut self, interval: Duration) -> Self {
        self.jwks_refresh_interval = interval;
        self
    }

    /// Checks what does not need I/O: a non-empty secret and audience, and some key.
    pub(crate) fn check(&self) -> Result<(), AuthConfigError> {
        if self.secret.as_ref().is_some_and(Vec::is_empty) {
            return Err(AuthConfigError::EmptySecret);
        }
        if self.audience.is_empty() {
            return Err(AuthConfigError::MissingAudience);
        }
        if self.issuer.as_ref().is_some_and(String::is_empty) {
            return Err(AuthConfigError::EmptyVariable(ENV_ISSUER));
        }
        if self.secret.is_none() && self.jwks.is_none() {
            return Err(AuthConfigError::NoKeys);
        }
        Ok(())
    }
}

/// The JWKS source a `KLUE_JWT_JWKS` value names: an `https://` (or loopback `http://`) URL,
/// else a file path. Other URL schemes are refused.
pub fn jwks_source(value: &str) -> Result<Arc<dyn JwksSource>, AuthConfigError> {
    // Anything that looks like a URL is one (and then must be https), never a file name.
    if value.contains("://") {
        Ok(Arc::new(HttpJwks::new(value)?))
    } else {
        Ok(Arc::new(FileJwks::new(value)))
    }
}

/// A variable's value: `None` when unset, an error when set but empty or not UTF-8.
fn var(
    lookup: &impl Fn(&str) -> Option<OsString>,
    name: &'static str,
) -> Result<Option<String>, AuthConfigError> {
    match lookup(name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Err(AuthConfigError::EmptyVariable(name)),
        Some(v) => v
            .into_string()
            .map(Some)
            .map_err(|_| AuthConfigError::NotUnicode(name)),
    }
}

/// The [`JwtConfig`] the environment describes (`KLUE_JWT_SECRET`, `KLUE_JWT_AUDIENCE`,
/// `KLUE_JWT_ISSUER`, `KLUE_JWT_JWKS`); `None` when neither a secret nor a JWKS is set.
pub fn config_from_env() -> Result<Option<JwtConfig>, AuthConfigError> {
    config_from_lookup(|name| std::env::var_os(name))
}

/// [`config_from_env`] reading variables through `lookup` (for tests and embedding).
///
/// A variable set to the empty string is an error, never "unset": an empty secret would
/// otherwise sign and verify tokens with no key at all.
pub fn config_from_lookup(
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Result<Option<JwtConfig>, AuthConfigError> {
    let secret = match var(&lookup, ENV_SECRET) {
        Err(AuthConfigError::EmptyVariable(_)) => return Err(AuthConfigError::EmptySecret),
        other => other?,
    };
    let jwks = var(&lookup, ENV_JWKS)?;
    if secret.is_none() && jwks.is_none() {
        return Ok(None);
    }
    let audience = match var(&lookup, ENV_AUDIENCE) {
        Ok(Some(audience)) => audience,
        Ok(None) | Err(AuthConfigError::EmptyVariable(_)) => {
            return Err(AuthConfigError::MissingAudience);
        }
        Err(e) => return Err(e),
    };
    let mut config = JwtConfig::empty(audience);
    config.secret = secret.map(String::into_bytes);
    config.issuer = var(&lookup, ENV_ISSUER)?;
    config.jwks = jwks.as_deref().map(jwks_source).transpose()?;
    Ok(Some(config))
}

/// The authenticator the environment configures, with its JWKS (if any) loaded; `None` when
/// neither `KLUE_JWT_SECRET` nor `KLUE_JWT_JWKS` is set.
///
/// Blocking (it may fetch the JWKS), but safe to call from inside a Tokio runtime.
pub fn from_env() -> Result<Option<Arc<dyn Authenticator>>, AuthConfigError> {
    match config_from_env()? {
        None => Ok(None),
        Some(config) => Ok(Some(Arc::new(JwtAuthenticator::new(config)?))),
    }
}
