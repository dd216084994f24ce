//! Where the service under test is, and how the suite authenticates to it.

use serde_json::Map;
use std::fmt;
use std::time::Duration;

/// How the suite gets a token for the operations that need one.
#[derive(Clone, Default)]
pub enum Auth {
    /// No token: checks that need one fail, saying so.
    #[default]
    None,
    /// A ready token (`KLUE_JWT_TOKEN`).
    Token(String),
    /// Mint a token signed with the service's HS256 secret.
    Secret {
        secret: String,
        audience: String,
        issuer: Option<String>,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::Secret {
                audience, issuer, ..
            } => f
                .debug_struct("Secret")
                .field("secret", &"<redacted>")
                .field("audience", audience)
                .field("issuer", issuer)
                .finish(),
        }
    }
}

/// The service under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// Scheme, host and port, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    pub auth: Auth,
    /// Accept any TLS certificate (self-signed test deployments).
    pub no_ssl_check: bool,
}

/// A target the environment does not describe well enough.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "KLUE_BASE_URL is not set: set it to the service's scheme, host and port \
         (e.g. http://127.0.0.1:8080), or run `cargo xtask accept --local`"
    )]
    NoBaseUrl,
    #[error("invalid base URL `{url}`: {why}")]
    BadBaseUrl { url: String, why: &'static str },
    #[error("{0} is set but {1} is not: both are needed to mint a token")]
    Incomplete(&'static str, &'static str),
    #[error("cannot mint a token: {0}")]
    Mint(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Lifetime of the tokens the suite mints.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The subject of the tokens the suite mints.
pub const TOKEN_SUBJECT: &str = "klue-acceptance";

impl Target {
    /// A target at `base_url`, without a token, checking certificates.
    pub fn new(base_url: impl Into<String>) -> Target {
        Target {
            base_url: base_url.into(),
            auth: Auth::None,
            no_ssl_check: false,
        }
    }

    /// A target that mints tokens with this HS256 secret and audience.
    pub fn with_secret(mut self, secret: &str, audience: &str, issuer: Option<&str>) -> Target {
        self.auth = Auth::Secret {
            secret: secret.to_string(),
            audience: audience.to_string(),
            issuer: issuer.map(str::to_string),
        };
        self
    }

    /// The target the environment describes: `KLUE_BASE_URL`; `KLUE_JWT_TOKEN`, else
    /// `KLUE_JWT_SECRET` and `KLUE_JWT_AUDIENCE` (and `KLUE_JWT_ISSUER`) to mint one;
    /// `KLUE_NO_SSL_CHECK=1` (or `true`) to accept self-signed certificates.
    pub fn from_env() -> Result<Target, TargetError> {
        Target::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Target::from_env`] reading variables through `lookup` (empty values count as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Target, TargetError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let base_url = get("KLUE_BASE_URL").ok_or(TargetError::NoBaseUrl)?;
        let mut target = Target::new(base_url.trim().trim_end_matches('/'));
        target.check_base_url()?;
        target.no_ssl_check = get("KLUE_NO_SSL_CHECK").is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes")
        });
        target.auth = match (
            get("KLUE_JWT_TOKEN"),
            get("KLUE_JWT_SECRET"),
            get("KLUE_JWT_AUDIENCE"),
        ) {
            (Some(token), _, _) => Auth::Token(token.trim().to_string()),
            (None, Some(secret), Some(audience)) => Auth::Secret {
                secret,
                audience,
                issuer: get("KLUE_JWT_ISSUER"),
            },
            (None, Some(_), None) => {
                return Err(TargetError::Incomplete(
                    "KLUE_JWT_SECRET",
                    "KLUE_JWT_AUDIENCE",
                ));
            }
            (None, None, Some(_)) => {
                return Err(TargetError::Incomplete(
                    "KLUE_JWT_AUDIENCE",
                    "KLUE_JWT_SECRET",
                ));
            }
            (None, None, None) => Auth::None,
        };
        Ok(target)
    }

    /// The base URL is `http(s)://host[:port][/prefix]`.
    pub fn check_base_url(&self) -> Result<(), TargetError> {
        let url = &self.base_url;
        let bad = |why| TargetError::BadBaseUrl {
            url: url.clone(),
            why,
        };
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| bad("it must start with http:// or https://"))?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        if url.contains(['?', '#', ' ']) {
            return Err(bad("it must not have a query, a fragment or spaces"));
        }
        Ok(())
    }

    /// The bearer token to send: the configured one, or one minted now; `None` without auth.
    pub fn token(&self) -> Result<Option<String>, TargetError> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Token(token) => Ok(Some(token.clone())),
            Auth::Secret {
                secret,
                audience,
                issuer,
            } => klue::auth::mint_token(
                secret.as_bytes(),
                audience,
                issuer.as_deref(),
                TOKEN_SUBJECT,
                TOKEN_TTL,
                Map::new(),
            )
            .map(Some)
            .map_err(|e| TargetError::Mint(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Target, TargetError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Target::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn base_url_is_required_and_checked() {
        assert!(matches!(from(&[]), Err(TargetError::NoBaseUrl)));
        assert!(matches!(
            from(&[("KLUE_BASE_URL", "127.0.0.1:8080")]),
            Err(TargetError::BadBaseUrl { .. })
        ));
        assert!(matches!(
            from(&[("KLUE_BASE_URL", "http:///x")]),
            Err(TargetError::BadBaseUrl { .. })
        ));
        let t = from(&[("KLUE_BASE_URL", " https://svc.example:8443/ ")]);
        assert_eq!(
            t.map(|t| t.base_url).ok().as_deref(),
            Some("https://svc.example:8443")
        );
    }

    #[test]
    fn a_token_wins_over_a_secret() {
        let t = from(&[
            ("KLUE_BASE_URL", "http://h"),
            ("KLUE_JWT_TOKEN", "abc"),
            ("KLUE_JWT_SECRET", "s"),
            ("KLUE_JWT_AUDIENCE", "a"),
        ]);
        assert_eq!(
            t.ok().and_then(|t| t.token().ok().flatten()).as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn a_secret_mints_a_token_for_the_audience() {
        let t = from(&[
            ("KLUE_BASE_URL", "http://h"),
            ("KLUE_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("KLUE_JWT_AUDIENCE", "aud"),
            ("KLUE_NO_SSL_CHECK", "1"),
        ]);
        let t = t.ok();
        assert_eq!(t.as_ref().map(|t| t.no_ssl_check), Some(true));
        let token = t.and_then(|t| t.token().ok().flatten()).unwrap_or_default();
        assert_eq!(token.split('.').count(), 3, "{token}");
    }

    #[test]
    fn half_a_secret_is_an_error_and_nothing_is_no_auth() {
        assert!(matches!(
            from(&[("KLUE_BASE_URL", "http://h"), ("KLUE_JWT_SECRET", "s")]),
            Err(TargetError::Incomplete(..))
        ));
        let t = from(&[("KLUE_BASE_URL", "http://h")]).ok();
        assert!(matches!(t.map(|t| t.auth), Some(Auth::None)));
    }

    #[test]
    fn secrets_are_not_printed() {
        let t = Target::new("http://h").with_secret("hunter2", "aud", None);
        assert!(!format!("{t:?}").contains("hunter2"));
        let mut t = t;
        t.auth = Auth::Token("tok-xyz".into());
        assert!(!format!("{t:?}").contains("tok-xyz"));
    }
}
