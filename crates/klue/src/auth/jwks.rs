//! Asymmetric keys from a JSON Web Key Set (RFC 7517): RS256 and ES256 keys chosen by `kid`,
//! loaded at startup and refreshed when a token names an unknown `kid`, at most once per
//! refresh interval (a minute by default).
//!
//! Where the set comes from is a [`JwksSource`]: a file ([`FileJwks`]), an https URL
//! ([`HttpJwks`]), or anything else a caller implements (tests count fetches that way).

use futures_util::future::BoxFuture;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The largest JWKS document accepted, in bytes.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Why a JWKS could not be fetched or used.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot fetch {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the JWKS is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("the JWKS is not a JSON object with a \"keys\" array: {0}")]
    Format(String),
    #[error("the JWKS has no usable key (RS256 or ES256 on P-256, each with a \"kid\")")]
    NoUsableKey,
}

/// Where a JWKS document comes from. Implementations fetch the raw JSON; parsing and key
/// selection are shared.
pub trait JwksSource: Send + Sync + 'static {
    /// Fetches the current JWKS document.
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<u8>, JwksError>>;
    /// A short description for messages (a path or a URL; never secret).
    fn describe(&self) -> String;
}

/// A JWKS read from a file on every fetch.
#[derive(Debug, Clone)]
pub struct FileJwks {
    path: PathBuf,
}

impl FileJwks {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileJwks { path: path.into() }
    }
}

impl JwksSource for FileJwks {
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<u8>, JwksError>> {
        Box::pin(async move {
            let bytes = tokio::fs::read(&self.path)
                .await
                .map_err(|source| JwksError::Read {
                    path: self.path.clone(),
                    source,
                })?;
            if bytes.len() > MAX_JWKS_BYTES {
                return Err(JwksError::TooLarge);
            }
            Ok(bytes)
        })
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// A JWKS fetched over https (plain http only for loopback hosts, for tests).
#[derive(Debug, Clone)]
pub struct HttpJwks {
    url: reqwest::Url,
    client: reqwest::Client,
}

/// Why a JWKS URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum JwksUrlError {
    #[error("{0:?} is not a valid URL: {1}")]
    Invalid(String, String),
    #[error("{0} must use https (plain http is allowed only for 127.0.0.1, ::1 and localhost)")]
    NotHttps(String),
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
}

impl HttpJwks {
    /// A source for `url`, which must be https unless its host is loopback.
    pub fn new(url: &str) -> Result<Self, JwksUrlError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| JwksUrlError::Invalid(url.to_owned(), e.to_string()))?;
        let loopback = parsed.host_str().is_some_and(|host| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(JwksUrlError::NotHttps(url.to_owned())),
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            // Refreshes are rare and the first fetch may run on a short-lived runtime: no
            // pooled connections to outlive it.
            .pool_max_idle_per_host(0)
            .https_only(!loopback)
            .build()
            .map_err(|e| JwksUrlError::Client(e.to_string()))?;
        Ok(HttpJwks {
            url: parsed,
            client,
        })
    }
}

impl JwksSource for HttpJwks {
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<u8>, JwksError>> {
        Box::pin(async move {
            let fetch_error = |e: reqwest::Error| JwksError::Fetch {
                url: self.url.to_string(),
                message: e.without_url().to_string(),
            };
            let response = self
                .client
                .get(self.url.clone())
                .send()
                .await
                .map_err(fetch_error)?;
            let status = response.status();
            if !status.is_success() {
                return Err(JwksError::Status {
                    url: self.url.to_string(),
                    status: status.as_u16(),
                });
            }
            if response
                .content_length()
                .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
            {
                return Err(JwksError::TooLarge);
            }
            let bytes = response.bytes().await.map_err(fetch_error)?;
            if bytes.len() > MAX_JWKS_BYTES {
                return Err(JwksError::TooLarge);
            }
            Ok(bytes.to_vec())
        })
    }

    fn describe(&self) -> String {
        self.url.to_string()
    }
}

/// One verification key: the algorithm it is for, and the key.
pub(crate) struct KeyEntry {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

type KeyMap = HashMap<String, Arc<KeyEntry>>;

/// Parses a JWKS document into the keys klue verifies with. Keys that are not RS256 or ES256
/// (P-256), that are marked for encryption, or that have no `kid` are skipped.
pub(crate) fn parse_jwks(bytes: &[u8]) -> Result<KeyMap, JwksError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| JwksError::Format(e.to_string()))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| JwksError::Format("no \"keys\" array".into()))?;
    let mut map = KeyMap::new();
    for value in keys {
        // One odd key (an unknown `kty`, say) must not make the whole set unusable.
        let Ok(jwk) = serde_json::from_value::<Jwk>(value.clone()) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if matches!(&jwk.common.public_key_use, Some(u) if *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
        {
            continue;
        }
        let Some(algorithm) = key_algorithm(&jwk) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        map.insert(kid, Arc::new(KeyEntry { algorithm, key }));
    }
    if map.is_empty() {
        return Err(JwksError::NoUsableKey);
    }
    Ok(map)
}

/// The one algorithm a key verifies: its `alg` if it has one, else the key type's default.
/// Only RS256 (RSA) and ES256 (EC P-256) are accepted.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(by_type),
        Some(KeyAlgorithm::RS256) if by_type == Algorithm::RS256 => Some(by_type),
        Some(KeyAlgorithm::ES256) if by_type == Algorithm::ES256 => Some(by_type),
        Some(_) => None,
    }
}

/// The current keys of a JWKS source, refreshed on an unknown `kid` at most once per
/// `min_refresh_interval`.
pub(crate) struct JwksStore {
    source: Arc<dyn JwksSource>,
    keys: RwLock<Arc<KeyMap>>,
    /// When the last fetch was attempted (the initial load counts). Also serializes refreshes.
    last_fetch: tokio::sync::Mutex<Instant>,
    min_refresh_interval: Duration,
}

impl JwksStore {
    /// Fetches the set once; fails if it cannot be fetched or has no usable key.
    pub(crate) async fn load(
        source: Arc<dyn JwksSource>,
        min_refresh_interval: Duration,
    ) -> Result<Self, JwksError> {
        let fetched_at = Instant::now();
        let keys = parse_jwks(&source.fetch().await?)?;
        tracing::info!(jwks = %source.describe(), keys = keys.len(), "loaded the JWKS");
        Ok(JwksStore {
            source,
            keys: RwLock::new(Arc::new(keys)),
            last_fetch: tokio::sync::Mutex::new(fetched_at),
            min_refresh_interval,
        })
    }

    fn lookup(&self, kid: &str) -> Option<Arc<KeyEntry>> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.get(kid).cloned()
    }

    /// The key named `kid`; on a miss, refetches the set if the last fetch is older than the
    /// refresh interval. A failed refresh keeps the keys we had.
    pub(crate) async fn key(&self, kid: &str) -> Option<Arc<KeyEntry>> {
        if let Some(entry) = self.lookup(kid) {
            return Some(entry);
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Another request may have refreshed while we waited.
        if let Some(entry) = self.lookup(kid) {
            return Some(entry);
        }
        if last_fetch.elapsed() < self.min_refresh_interval {
            return None;
        }
        *last_fetch = Instant::now();
        let refreshed = match self.source.fetch().await {
            Ok(bytes) => parse_jwks(&bytes),
            Err(e) => Err(e),
        };
        match refreshed {
            Ok(keys) => {
                tracing::info!(
                    jwks = %self.source.describe(), keys = keys.len(),
                    "refreshed the JWKS after a token named an unknown key id"
                );
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
            }
            Err(e) => tracing::warn!(
                jwks = %self.source.describe(),
                "cannot refresh the JWKS, keeping the keys loaded before: {e}"
            ),
        }
        self.lookup(kid)
    }
}
