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
/// The clock skew allowed on `exp`, `nbf` and `iat`, in whole seconds.
pub const ENV_LEEWAY: &str = "KLUE_JWT_LEEWAY";

/// The clock skew allowed on `exp`, `nbf` and `iat` unless configured: 60 s. Clocks kept by
/// NTP are within a second of each other; every second more keeps an expired token usable.
/// (klue-microservice allowed 300 s.)
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The largest leeway accepted: an hour.
pub const MAX_LEEWAY: Duration = Duration::from_secs(3600);
/// The shortest HS256 secret accepted in release builds, in bytes: RFC 7518 §3.2 requires a
/// key at least as long as the hash output (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;
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
    #[error(
        "the HS256 secret ({ENV_SECRET}) is {0} bytes long; RFC 7518 section 3.2 requires at least {MIN_SECRET_BYTES} bytes (256 bits) of secret: generate one with `openssl rand -base64 48`"
    )]
    ShortSecret(usize),
    #[error("{ENV_LEEWAY}={0:?} is invalid: expected whole seconds from 0 to 3600")]
    Leeway(String),
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

    /// Allow `leeway` of clock skew on `exp`, `nbf` and `iat` (at most [`MAX_LEEWAY`]).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Fetch the JWKS again (on an unknown `kid`) at most this often.
    pub fn with_jwks_refresh_interval(mut self, interval: Duration) -> Self {
        self.jwks_refresh_interval = interval;
        self
    }

    /// Checks what does not need I/O: a non-empty secret (long enough in release builds) and
    /// audience, a bounded leeway, and some key.
    pub(crate) fn check(&self) -> Result<(), AuthConfigError> {
        if self.secret.as_ref().is_some_and(Vec::is_empty) {
            return Err(AuthConfigError::EmptySecret);
        }
        if let Some(secret) = &self.secret {
            check_secret_length(secret.len(), !cfg!(debug_assertions))?;
        }
        if self.leeway > MAX_LEEWAY {
            return Err(AuthConfigError::Leeway(self.leeway.as_secs().to_string()));
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

/// A secret shorter than [`MIN_SECRET_BYTES`] is refused when `refuse` (release builds),
/// and only warned about otherwise, so that tests and local work may use short ones.
fn check_secret_length(length: usize, refuse: bool) -> Result<(), AuthConfigError> {
    if length >= MIN_SECRET_BYTES {
        return Ok(());
    }
    let error = AuthConfigError::ShortSecret(length);
    if refuse {
        return Err(error);
    }
    tracing::warn!("{error} (a release build refuses to start with it)");
    Ok(())
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
/// `KLUE_JWT_ISSUER`, `KLUE_JWT_JWKS`, `KLUE_JWT_LEEWAY`); `None` when neither a secret nor a
/// JWKS is set.
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
    // Checked even when no key is configured: a typo must not wait for the day one is.
    let leeway = var(&lookup, ENV_LEEWAY)?
        .map(|value| {
            value
                .trim()
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs)
                .filter(|leeway| *leeway <= MAX_LEEWAY)
                .ok_or(AuthConfigError::Leeway(value))
        })
        .transpose()?;
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
    if let Some(leeway) = leeway {
        config.leeway = leeway;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused_in_release_builds_only() {
        assert!(check_secret_length(MIN_SECRET_BYTES, true).is_ok());
        assert!(check_secret_length(5, false).is_ok());
        match check_secret_length(31, true) {
            Ok(()) => panic!("a 31-byte secret was accepted"),
            Err(e) => {
                let message = e.to_string();
                assert!(
                    message.contains(ENV_SECRET)
                        && message.contains("RFC 7518")
                        && message.contains("31 bytes"),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn the_leeway_comes_from_the_environment_and_is_bounded() {
        let lookup = |leeway: &'static str| {
            move |name: &str| match name {
                ENV_SECRET => Some(OsString::from("0123456789abcdef0123456789abcdef")),
                ENV_AUDIENCE => Some(OsString::from("a")),
                ENV_LEEWAY => Some(OsString::from(leeway)),
                _ => None,
            }
        };
        let leeway =
            |value: &'static str| config_from_lookup(lookup(value)).map(|c| c.map(|c| c.leeway));
        assert_eq!(leeway("0").ok(), Some(Some(Duration::ZERO)));
        assert_eq!(leeway(" 120 ").ok(), Some(Some(Duration::from_secs(120))));
        assert_eq!(leeway("3600").ok(), Some(Some(MAX_LEEWAY)));
        for bad in ["3601", "-1", "1.5", "1m", "soon"] {
            match leeway(bad) {
                Err(e @ AuthConfigError::Leeway(_)) => {
                    assert!(e.to_string().contains(ENV_LEEWAY), "{e}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let no_key = |name: &str| (name == ENV_LEEWAY).then(|| OsString::from("x"));
        assert!(matches!(
            config_from_lookup(no_key),
            Err(AuthConfigError::Leeway(_))
        ));
        let default = |name: &str| lookup("0")(name).filter(|_| name != ENV_LEEWAY);
        assert_eq!(
            config_from_lookup(default).ok().flatten().map(|c| c.leeway),
            Some(DEFAULT_LEEWAY)
        );
        let too_long = JwtConfig::hs256("0123456789abcdef0123456789abcdef", "a")
            .with_leeway(MAX_LEEWAY + Duration::from_secs(1));
        assert!(matches!(too_long.check(), Err(AuthConfigError::Leeway(_))));
    }
}
