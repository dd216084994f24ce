//! Tokens this service already verified, so that a client sending the same token on every
//! request (what clients do) pays for the signature, the base64 and the JSON of it once.
//!
//! What a hit skips depends only on the token's bytes and this service's configuration (the
//! signature, `aud`, `iss`, the shape of the claims), except the time claims: each hit checks
//! again that the token is inside its validity window (`nbf`/`iat` to `exp`, with the
//! leeway); outside it, the token is verified in full, which gives the exact refusal.
//!
//! Only tokens verified with the configured HS256 secret are kept: a JWKS key can be rotated
//! out, and a token it signed must then stop verifying. Entries are looked up by the whole
//! token (no hash-only match). The cache holds at most [`CAPACITY`] tokens per shard and
//! starts the shard afresh when full.

use crate::context::Claims;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Tokens kept per shard.
pub(crate) const CAPACITY: usize = 1024;

const SHARDS: usize = 4;

#[derive(Clone)]
struct Entry {
    token: Arc<str>,
    claims: Arc<Claims>,
    /// Seconds since the epoch: the token is valid from `from` to `until`, both included.
    from: u64,
    until: u64,
}

/// A verified token, as handed out by the cache.
pub(crate) struct Verified {
    pub(crate) token: Arc<str>,
    pub(crate) claims: Arc<Claims>,
}

#[derive(Default)]
pub(crate) struct VerifiedTokens {
    shards: [Mutex<HashMap<Arc<str>, Entry>>; SHARDS],
}

impl VerifiedTokens {
    fn shard(&self, token: &str) -> &Mutex<HashMap<Arc<str>, Entry>> {
        // The last characters are signature bytes: spread evenly, and not chosen by anyone
        // who cannot sign.
        let spread = token.as_bytes().last().map_or(0, |&b| usize::from(b));
        &self.shards[spread % SHARDS]
    }

    /// The verified token and its claims, if `token` was verified and `now` is inside its
    /// validity window.
    pub(crate) fn get(&self, token: &str, now: u64) -> Option<Verified> {
        let shard = self
            .shard(token)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard.get(token)?;
        (entry.from <= now && now <= entry.until).then(|| Verified {
            token: Arc::clone(&entry.token),
            claims: Arc::clone(&entry.claims),
        })
    }

    /// Keeps a token that passed every check, with the window its time claims allow
    /// (`leeway` on each side, as when it was verified).
    pub(crate) fn insert(&self, token: Arc<str>, claims: Arc<Claims>, leeway: Duration) {
        let Some((from, until)) = window(&claims, leeway.as_secs()) else {
            return;
        };
        let mut shard = self
            .shard(&token)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= CAPACITY {
            shard.clear();
        }
        let key = Arc::clone(&token);
        shard.insert(
            key,
            Entry {
                token,
                claims,
                from,
                until,
            },
        );
    }
}

/// `[max(nbf, iat) - leeway, exp + leeway]`: when `exp` would not be expired and `nbf`/`iat`
/// would not be in the future, by the rules the full verification applies. `None` without a
/// numeric `exp` (such a token is never accepted).
fn window(claims: &Claims, leeway: u64) -> Option<(u64, u64)> {
    let seconds = |name: &str| claims.get(name).map(Value::as_u64);
    let until = seconds("exp")??.saturating_add(leeway);
    let mut from = 0;
    for name in ["nbf", "iat"] {
        match seconds(name) {
            None => {}
            Some(Some(at)) => from = from.max(at.saturating_sub(leeway)),
            // Not numeric: refused by the full verification, never kept.
            Some(None) => return None,
        }
    }
    Some((from, until))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Arc<Claims> {
        let Value::Object(map) = value else {
            panic!("claims are an object");
        };
        Arc::new(Claims(map))
    }

    #[test]
    fn a_kept_token_is_found_only_inside_its_window() {
        let cache = VerifiedTokens::default();
        let leeway = Duration::from_secs(300);
        let token: Arc<str> = Arc::from("h.p.sig1");
        cache.insert(
            Arc::clone(&token),
            claims(json!({"exp": 10_000, "nbf": 5_000, "iat": 4_000, "aud": "a"})),
            leeway,
        );
        assert!(cache.get("h.p.sig1", 4_699).is_none());
        assert!(cache.get("h.p.sig1", 4_700).is_some());
        assert!(cache.get("h.p.sig1", 10_300).is_some());
        assert!(cache.get("h.p.sig1", 10_301).is_none());
        assert!(cache.get("h.p.sig2", 6_000).is_none());
        let Some(hit) = cache.get("h.p.sig1", 6_000) else {
            panic!("kept");
        };
        assert!(Arc::ptr_eq(&hit.token, &token));
        assert_eq!(hit.claims.get("aud"), Some(&json!("a")));
    }

    #[test]
    fn tokens_without_usable_time_claims_are_not_kept() {
        let cache = VerifiedTokens::default();
        let leeway = Duration::from_secs(0);
        for (token, value) in [
            ("a.b.1", json!({"aud": "a"})),
            ("a.b.2", json!({"exp": "soon"})),
            ("a.b.3", json!({"exp": 10, "iat": 1.5})),
            ("a.b.4", json!({"exp": 10, "nbf": "x"})),
        ] {
            cache.insert(Arc::from(token), claims(value), leeway);
            assert!(cache.get(token, 5).is_none(), "{token}");
        }
    }

    #[test]
    fn a_full_shard_starts_afresh() {
        let cache = VerifiedTokens::default();
        let leeway = Duration::from_secs(0);
        let kept = |i: usize| format!("h.p.{i}x");
        for i in 0..=CAPACITY * SHARDS * 2 {
            cache.insert(Arc::from(kept(i)), claims(json!({"exp": 100})), leeway);
        }
        let sizes: Vec<usize> = cache
            .shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .collect();
        assert!(sizes.iter().all(|&n| n <= CAPACITY), "{sizes:?}");
        // The newest token is there.
        assert!(cache.get(&kept(CAPACITY * SHARDS * 2), 50).is_some());
    }
}
