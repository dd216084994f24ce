//! The JWT matrix at the `Authenticator` level, with tokens from an independent
//! implementation (PyJWT, run through `KLUE_TEST_PYTHON`) and tokens made by
//! klue-microservice's own `generate_token` (fixtures).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::BoxFuture;
use klue::ApiError;
use klue::auth::{
    AuthConfigError, Authenticated, Authenticator, FileJwks, HttpJwks, JwksError, JwksSource,
    JwtAuthenticator, JwtConfig, config_from_lookup, mint_token, mint_token_at,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const SECRET: &str = "pyjwt-test-secret-0123456789abcdef";
const AUDIENCE: &str = "klue-test-audience";
const ISSUER: &str = "https://issuer.klue.example";

// ---------------------------------------------------------------------------------------------
// Test material: tokens and keys from PyJWT

fn fixtures() -> PathBuf {
    std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("tests/fixtures/jwt")
}

fn python() -> PathBuf {
    match std::env::var_os("KLUE_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "KLUE_TEST_PYTHON is not set: these tests need PyJWT to mint independent tokens. \
             Run them with `cargo xtask test` (it creates the venv and sets KLUE_TEST_PYTHON), \
             or set KLUE_TEST_PYTHON to a python with PyJWT[crypto]==2.10.1 installed."
        ),
    }
}

struct Material {
    tokens: HashMap<String, String>,
    jwks: Map<String, Value>,
    rsa1_public_pem: String,
}

impl Material {
    fn token(&self, name: &str) -> &str {
        self.tokens
            .get(name)
            .unwrap_or_else(|| panic!("no token {name}"))
    }

    /// A JWKS document with the named public keys.
    fn jwks(&self, names: &[&str]) -> Vec<u8> {
        let keys: Vec<Value> = names.iter().map(|n| self.jwks[*n].clone()).collect();
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    }
}

/// One token request for `pyjwt_mint.py`: standard valid claims (aud, sub, exp in an hour,
/// iat now) patched by `claims` (a `null` removes a claim) and `rel` (offsets from now).
fn spec(name: &str, key: &str, alg: &str, headers: Value, claims: Value, rel: Value) -> Value {
    let mut all = json!({ "sub": "alice", "aud": AUDIENCE });
    let mut rel_all = json!({ "exp": 3600, "iat": 0 });
    for (k, v) in claims.as_object().unwrap() {
        if v.is_null() {
            all.as_object_mut().unwrap().remove(k);
            rel_all.as_object_mut().unwrap().remove(k);
        } else {
            all[k] = v.clone();
            rel_all.as_object_mut().unwrap().remove(k);
        }
    }
    for (k, v) in rel.as_object().unwrap() {
        rel_all[k] = v.clone();
    }
    json!({ "name": name, "key": key, "alg": alg, "headers": headers, "claims": all, "rel": rel_all })
}

fn material() -> &'static Material {
    static MATERIAL: OnceLock<Material> = OnceLock::new();
    MATERIAL.get_or_init(|| {
        let s = format!("secret:{SECRET}");
        let none = json!({});
        let rs1 = json!({ "kid": "rsa1" });
        let tokens = vec![
            spec(
                "hs",
                &s,
                "HS256",
                json!({}),
                json!({ "role": "admin", "n": 7 }),
                none.clone(),
            ),
            spec(
                "hs_aud_list",
                &s,
                "HS256",
                none.clone(),
                json!({ "aud": ["other", AUDIENCE] }),
                none.clone(),
            ),
            spec(
                "hs_exp_in_leeway",
                &s,
                "HS256",
                none.clone(),
                none.clone(),
                json!({ "exp": -30 }),
            ),
            spec(
                "hs_exp_beyond",
                &s,
                "HS256",
                none.clone(),
                none.clone(),
                json!({ "exp": -90 }),
            ),
            spec(
                "hs_nbf_in_leeway",
                &s,
                "HS256",
                none.clone(),
                none.clone(),
                json!({ "nbf": 30 }),
            ),
            spec(
                "hs_nbf_future",
                &s,
                "HS256",
                none.clone(),
                none.clone(),
                json!({ "nbf": 90 }),
            ),
            spec(
                "hs_iat_in_leeway",
                &s,
                "HS256",
                none.clone(),
                none.clone(),
                json!({ "iat": 30 }),
            ),
            spec(
                "hs_iat_future",
                &s,
                "HS256",
                none.clone(),
                none.clone(),
                json!({ "iat": 90 }),
            ),
            spec(
                "hs_wrong_aud",
                &s,
                "HS256",
                none.clone(),
                json!({ "aud": "someone-else" }),
                none.clone(),
            ),
            spec(
                "hs_no_aud",
                &s,
                "HS256",
                none.clone(),
                json!({ "aud": null }),
                none.clone(),
            ),
            spec(
                "hs_no_exp",
                &s,
                "HS256",
                none.clone(),
                json!({ "exp": null }),
                none.clone(),
            ),
            spec(
                "hs_exp_string",
                &s,
                "HS256",
                none.clone(),
                json!({ "exp": "tomorrow" }),
                none.clone(),
            ),
            spec(
                "hs_iat_string",
                &s,
                "HS256",
                none.clone(),
                json!({ "iat": "now" }),
                none.clone(),
            ),
            spec(
                "hs_nbf_string",
                &s,
                "HS256",
                none.clone(),
                json!({ "nbf": "soon" }),
                none.clone(),
            ),
            spec(
                "hs_iss",
                &s,
                "HS256",
                none.clone(),
                json!({ "iss": ISSUER }),
                none.clone(),
            ),
            spec(
                "hs_iss_wrong",
                &s,
                "HS256",
                none.clone(),
                json!({ "iss": "https://evil.example" }),
                none.clone(),
            ),
            spec(
                "hs_wrong_secret",
                "secret:not-the-secret-0123456789abcdef",
                "HS256",
                none.clone(),
                none.clone(),
                none.clone(),
            ),
            spec(
                "hs_crit",
                &s,
                "HS256",
                json!({ "crit": ["exp"] }),
                none.clone(),
                none.clone(),
            ),
            spec(
                "hs384",
                &s,
                "HS384",
                none.clone(),
                none.clone(),
                none.clone(),
            ),
            spec(
                "alg_none",
                "none",
                "none",
                none.clone(),
                none.clone(),
                none.clone(),
            ),
            // klue-microservice's generate_token, replayed with PyJWT 2: header typ/alg/iss,
            // claims iss, sub, aud, exp, iat.
            spec(
                "klue_format",
                &s,
                "HS256",
                json!({ "typ": "JWT", "alg": "HS256", "iss": "klue.example" }),
                json!({ "iss": "klue.example", "sub": "bob" }),
                json!({ "exp": 86400 }),
            ),
            spec(
                "rs1",
                "rsa1",
                "RS256",
                rs1.clone(),
                json!({ "scope": "read" }),
                none.clone(),
            ),
            spec(
                "rs2",
                "rsa2",
                "RS256",
                json!({ "kid": "rsa2" }),
                none.clone(),
                none.clone(),
            ),
            spec(
                "rs_no_kid",
                "rsa1",
                "RS256",
                none.clone(),
                none.clone(),
                none.clone(),
            ),
            spec(
                "rs2_as_rsa1",
                "rsa2",
                "RS256",
                rs1.clone(),
                none.clone(),
                none.clone(),
            ),
            spec(
                "rs_unknown_kid",
                "rsa1",
                "RS256",
                json!({ "kid": "nobody" }),
                none.clone(),
                none.clone(),
            ),
            spec(
                "rs_expired",
                "rsa1",
                "RS256",
                rs1.clone(),
                none.clone(),
                json!({ "exp": -400 }),
            ),
            spec(
                "rs_wrong_aud",
                "rsa1",
                "RS256",
                rs1.clone(),
                json!({ "aud": "someone-else" }),
                none.clone(),
            ),
            spec(
                "rs_as_ec",
                "rsa1",
                "RS256",
                json!({ "kid": "ec1" }),
                none.clone(),
                none.clone(),
            ),
            spec(
                "es1",
                "ec1",
                "ES256",
                json!({ "kid": "ec1" }),
                none.clone(),
                none.clone(),
            ),
            spec(
                "hs_with_rsa_kid",
                &s,
                "HS256",
                rs1.clone(),
                none.clone(),
                none.clone(),
            ),
            // HS/RS confusion: HMAC-SHA256 keyed with the RSA public key's PEM.
            spec(
                "hmac_pem",
                "hmac-pem:rsa1",
                "HS256",
                rs1.clone(),
                none.clone(),
                none.clone(),
            ),
        ];
        let request = serde_json::to_vec(&json!({ "tokens": tokens })).unwrap();
        let out = run_python(
            &[fixtures().join("pyjwt_mint.py").to_str().unwrap()],
            &request,
        );
        let mut doc: Value = serde_json::from_slice(&out).expect("pyjwt_mint.py output");
        Material {
            tokens: serde_json::from_value(doc["tokens"].take()).unwrap(),
            jwks: serde_json::from_value(doc["jwks"].take()).unwrap(),
            rsa1_public_pem: doc["rsa1_public_pem"].as_str().unwrap().to_owned(),
        }
    })
}

fn run_python(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new(python())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run KLUE_TEST_PYTHON");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn parts(headers: &[(&str, &str)]) -> http::request::Parts {
    let mut builder = http::Request::builder().uri("/auth/version");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn hs_auth() -> JwtAuthenticator {
    JwtAuthenticator::new(JwtConfig::hs256(SECRET, AUDIENCE)).unwrap()
}

async fn authenticate(
    auth: &dyn Authenticator,
    headers: &[(&str, &str)],
) -> Result<Authenticated, ApiError> {
    auth.authenticate(&parts(headers)).await
}

async fn accepts(auth: &dyn Authenticator, token: &str) -> Authenticated {
    match authenticate(auth, &[("authorization", &bearer(token))]).await {
        Ok(a) => {
            assert_eq!(*a.token, handed_on(token));
            a
        }
        Err(e) => panic!("refused a good token: {e}"),
    }
}

/// The spelling of an accepted token that the authenticator hands on: the token itself,
/// except an ES256 token's low-s spelling.
fn handed_on(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    if header["alg"] == "ES256" {
        low_s_spelling(token)
    } else {
        token.to_owned()
    }
}

/// Asserts a 401 with `code` and `description`, and a Bearer challenge.
fn assert_refused(result: Result<Authenticated, ApiError>, code: &str, description: &str) {
    let e = match result {
        Ok(a) => panic!(
            "accepted, claims {:?}; expected {code} {description:?}",
            a.claims
        ),
        Err(e) => e,
    };
    assert_eq!(e.status.as_u16(), 401, "{e}");
    assert_eq!(e.code, code, "{e}");
    assert_eq!(e.description, description, "{e}");
    let challenge = e
        .headers
        .get(http::header::WWW_AUTHENTICATE)
        .expect("WWW-Authenticate");
    let challenge = challenge.to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    if code == "AUTHORIZATION_HEADER_MISSING" {
        assert_eq!(challenge, "Bearer");
    }
}

async fn refuses(auth: &dyn Authenticator, token: &str, code: &str, description: &str) {
    let result = authenticate(auth, &[("authorization", &bearer(token))]).await;
    if let Err(e) = &result
        && code == "TOKEN_INVALID"
        && description != "Authorization header must start with Bearer"
    {
        let challenge = e.headers.get(http::header::WWW_AUTHENTICATE).unwrap();
        assert_eq!(challenge, "Bearer error=\"invalid_token\"");
    }
    assert_refused(result, code, description);
}

const INVALID: &str = "TOKEN_INVALID";

/// A token with its payload replaced by `edit(payload)`, the signature kept.
fn tamper(token: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let segments: Vec<&str> = token.split('.').collect();
    let mut payload: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments[1]).unwrap()).unwrap();
    edit(&mut payload);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    format!("{}.{}.{}", segments[0], payload, segments[2])
}

// ---------------------------------------------------------------------------------------------
// HS256

#[tokio::test]
async fn pyjwt_hs256_token_is_accepted_with_its_claims() {
    let m = material();
    let a = accepts(&hs_auth(), m.token("hs")).await;
    assert_eq!(a.claims.subject(), Some("alice"));
    assert_eq!(a.claims.audience(), vec![AUDIENCE]);
    assert!(a.claims.expires_at().unwrap() > 0);
    assert_eq!(a.claims.get("role"), Some(&json!("admin")));
    assert_eq!(a.claims.get("n"), Some(&json!(7)));
    // An audience list that contains ours.
    accepts(&hs_auth(), m.token("hs_aud_list")).await;
}

#[tokio::test]
async fn klue_microservice_tokens_are_accepted() {
    let fixture: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("klue_microservice_tokens.json")).unwrap(),
    )
    .unwrap();
    let secret = fixture["secret"].as_str().unwrap();
    let audience = fixture["audience"].as_str().unwrap();
    let issuer = fixture["issuer"].as_str().unwrap();
    let valid = fixture["valid"]["token"].as_str().unwrap();

    // Made by klue-microservice's own generate_token.
    let auth = JwtAuthenticator::new(JwtConfig::hs256(secret, audience)).unwrap();
    let a = accepts(&auth, valid).await;
    assert_eq!(a.claims.subject(), Some("klue-user-42"));
    assert_eq!(a.claims.issuer(), Some(issuer));
    assert_eq!(a.claims.get("scopes"), Some(&json!(["read", "write"])));
    let with_issuer =
        JwtAuthenticator::new(JwtConfig::hs256(secret, audience).with_issuer(issuer)).unwrap();
    accepts(&with_issuer, valid).await;
    let other_issuer =
        JwtAuthenticator::new(JwtConfig::hs256(secret, audience).with_issuer("someone.example"))
            .unwrap();
    refuses(&other_issuer, valid, INVALID, "incorrect issuer").await;
    // Same secret, another audience; another secret.
    let other_aud = JwtAuthenticator::new(JwtConfig::hs256(secret, "other-audience")).unwrap();
    refuses(&other_aud, valid, INVALID, "incorrect audience").await;
    let other_secret = JwtAuthenticator::new(JwtConfig::hs256("another-secret", audience)).unwrap();
    refuses(&other_secret, valid, INVALID, "token signature is invalid").await;
    // Its 24 h token from 2018 is expired.
    refuses(
        &auth,
        fixture["expired"]["token"].as_str().unwrap(),
        "TOKEN_EXPIRED",
        "Auth token is expired",
    )
    .await;

    // The same format replayed with PyJWT 2 (header keys in another order).
    let m = material();
    let a = accepts(&hs_auth(), m.token("klue_format")).await;
    assert_eq!(a.claims.subject(), Some("bob"));
}

#[test]
fn mint_token_is_byte_identical_to_generate_token() {
    let fixture: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("klue_microservice_tokens.json")).unwrap(),
    )
    .unwrap();
    for case in ["valid", "expired"] {
        let c = &fixture[case];
        let token = mint_token_at(
            fixture["secret"].as_str().unwrap().as_bytes(),
            fixture["audience"].as_str().unwrap(),
            Some(fixture["issuer"].as_str().unwrap()),
            c["subject"].as_str().unwrap(),
            Duration::from_secs(c["ttl_secs"].as_u64().unwrap()),
            c["extra_claims"].as_object().unwrap().clone(),
            c["iat"].as_u64().unwrap(),
        )
        .unwrap();
        assert_eq!(token, c["token"].as_str().unwrap(), "{case}");
    }
}

#[tokio::test]
async fn minted_tokens_verify_here_and_with_pyjwt() {
    let mut extra = Map::new();
    extra.insert("role".into(), json!("admin"));
    let token = mint_token(
        SECRET.as_bytes(),
        AUDIENCE,
        Some(ISSUER),
        "carol",
        Duration::from_secs(3600),
        extra,
    )
    .unwrap();
    let a = accepts(&hs_auth(), &token).await;
    assert_eq!(a.claims.subject(), Some("carol"));
    assert_eq!(a.claims.get("role"), Some(&json!("admin")));
    let iat = a.claims.get("iat").unwrap().as_i64().unwrap();
    assert_eq!(a.claims.expires_at(), Some(iat + 3600));

    let script = "import sys, json, jwt\n\
        t, secret, aud = sys.argv[1:4]\n\
        print(json.dumps({'header': jwt.get_unverified_header(t), \
        'claims': jwt.decode(t, secret, algorithms=['HS256'], audience=aud)}))";
    let out = run_python(&["-c", script, &token, SECRET, AUDIENCE], b"");
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        out["header"],
        json!({ "typ": "JWT", "alg": "HS256", "iss": ISSUER })
    );
    let keys: Vec<&str> = out["claims"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["role", "iss", "sub", "aud", "exp", "iat"]);

    // Without an issuer: no iss anywhere. Empty inputs are refused.
    let token = mint_token(
        SECRET.as_bytes(),
        AUDIENCE,
        None,
        "dave",
        Duration::from_secs(60),
        Map::new(),
    )
    .unwrap();
    let a = accepts(&hs_auth(), &token).await;
    assert_eq!(a.claims.issuer(), None);
    assert!(
        mint_token(
            b"",
            AUDIENCE,
            None,
            "x",
            Duration::from_secs(60),
            Map::new()
        )
        .is_err()
    );
    assert!(
        mint_token(
            SECRET.as_bytes(),
            "",
            None,
            "x",
            Duration::from_secs(60),
            Map::new()
        )
        .is_err()
    );
    assert!(
        mint_token(
            SECRET.as_bytes(),
            AUDIENCE,
            None,
            "",
            Duration::from_secs(60),
            Map::new()
        )
        .is_err()
    );
}

#[tokio::test]
async fn time_claims_have_60_s_of_leeway_by_default() {
    let m = material();
    let auth = hs_auth();
    accepts(&auth, m.token("hs_exp_in_leeway")).await;
    refuses(
        &auth,
        m.token("hs_exp_beyond"),
        "TOKEN_EXPIRED",
        "Auth token is expired",
    )
    .await;
    accepts(&auth, m.token("hs_nbf_in_leeway")).await;
    refuses(
        &auth,
        m.token("hs_nbf_future"),
        INVALID,
        "token is not yet valid (nbf)",
    )
    .await;
    accepts(&auth, m.token("hs_iat_in_leeway")).await;
    // klue-microservice accepted any future iat; klue refuses one beyond the leeway.
    refuses(
        &auth,
        m.token("hs_iat_future"),
        INVALID,
        "Token was issued in the future",
    )
    .await;
}

#[tokio::test]
async fn a_reused_token_is_verified_again_only_in_what_can_change() {
    let m = material();
    let auth = hs_auth();
    let token = m.token("hs_exp_in_leeway");
    let first = accepts(&auth, token).await;
    // The second time comes from the verified tokens: the same claims, shared.
    let second = accepts(&auth, token).await;
    assert!(Arc::ptr_eq(&first.claims, &second.claims));
    assert_eq!(first.claims, second.claims);
    // Tokens that differ from it in one byte of the signature or the payload are still
    // verified, and refused.
    // (Not the last character: its low bits are padding.)
    let at = token.len() - 5;
    let flipped = if &token[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &token[..at], &token[at + 1..]);
    refuses(&auth, &forged, INVALID, "token signature is invalid").await;
    let tampered = tamper(token, |claims| {
        claims.insert("sub".into(), json!("someone-else"));
    });
    refuses(&auth, &tampered, INVALID, "token signature is invalid").await;
    // Refusals are not remembered: an expired token is refused every time.
    for _ in 0..2 {
        refuses(
            &auth,
            m.token("hs_exp_beyond"),
            "TOKEN_EXPIRED",
            "Auth token is expired",
        )
        .await;
    }
    // Another authenticator (another audience) does not share what this one verified.
    let other = JwtAuthenticator::new(JwtConfig::hs256(SECRET, "another-audience")).unwrap();
    refuses(&other, token, INVALID, "incorrect audience").await;
}

#[tokio::test]
async fn audience_issuer_and_required_claims() {
    let m = material();
    let auth = hs_auth();
    refuses(
        &auth,
        m.token("hs_wrong_aud"),
        INVALID,
        "incorrect audience",
    )
    .await;
    refuses(
        &auth,
        m.token("hs_no_aud"),
        INVALID,
        "token has no valid 'aud' claim",
    )
    .await;
    refuses(
        &auth,
        m.token("hs_no_exp"),
        INVALID,
        "token has no valid 'exp' claim",
    )
    .await;
    refuses(
        &auth,
        m.token("hs_exp_string"),
        INVALID,
        "token has no valid 'exp' claim",
    )
    .await;
    refuses(
        &auth,
        m.token("hs_iat_string"),
        INVALID,
        "token has an invalid 'iat' claim",
    )
    .await;
    refuses(
        &auth,
        m.token("hs_nbf_string"),
        INVALID,
        "token has an invalid 'nbf' claim",
    )
    .await;
    // iss is not checked unless configured.
    accepts(&auth, m.token("hs_iss_wrong")).await;
    let with_issuer =
        JwtAuthenticator::new(JwtConfig::hs256(SECRET, AUDIENCE).with_issuer(ISSUER)).unwrap();
    accepts(&with_issuer, m.token("hs_iss")).await;
    refuses(
        &with_issuer,
        m.token("hs_iss_wrong"),
        INVALID,
        "incorrect issuer",
    )
    .await;
    refuses(
        &with_issuer,
        m.token("hs"),
        INVALID,
        "token has no valid 'iss' claim",
    )
    .await;
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_refused() {
    let m = material();
    let auth = hs_auth();
    refuses(
        &auth,
        m.token("hs_wrong_secret"),
        INVALID,
        "token signature is invalid",
    )
    .await;
    let tampered = tamper(m.token("hs"), |p| {
        p.insert("sub".into(), json!("mallory"));
    });
    refuses(&auth, &tampered, INVALID, "token signature is invalid").await;
    let tampered = tamper(m.token("hs_exp_beyond"), |p| {
        p.insert("exp".into(), json!(4_000_000_000u64));
    });
    refuses(&auth, &tampered, INVALID, "token signature is invalid").await;
    refuses(
        &auth,
        m.token("alg_none"),
        INVALID,
        "token algorithm is not accepted",
    )
    .await;
    // alg none with the payload of a good token and its signature stripped or kept.
    let good = m.token("hs");
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = good.split('.').nth(1).unwrap();
    refuses(
        &auth,
        &format!("{none_header}.{payload}."),
        INVALID,
        "token algorithm is not accepted",
    )
    .await;
    let sig = good.split('.').nth(2).unwrap();
    refuses(
        &auth,
        &format!("{none_header}.{payload}.{sig}"),
        INVALID,
        "token algorithm is not accepted",
    )
    .await;
    refuses(
        &auth,
        m.token("hs_crit"),
        INVALID,
        "token has critical header parameters",
    )
    .await;
    refuses(
        &auth,
        m.token("hs384"),
        INVALID,
        "token algorithm is not accepted",
    )
    .await;
    // RS256 and ES256 tokens to an HS256-only configuration.
    refuses(
        &auth,
        m.token("rs1"),
        INVALID,
        "token algorithm is not accepted",
    )
    .await;
    refuses(
        &auth,
        m.token("es1"),
        INVALID,
        "token algorithm is not accepted",
    )
    .await;
    for garbage in [
        "not-a-jwt",
        "a.b.c",
        "a.b",
        "...",
        "e30.e30.e30.e30",
        "%%%.e30.x",
    ] {
        refuses(&auth, garbage, INVALID, "token signature is invalid").await;
    }
}

// ---------------------------------------------------------------------------------------------
// Where the token comes from

#[tokio::test]
async fn authorization_header_forms() {
    let m = material();
    let auth = hs_auth();
    let t = m.token("hs");
    const MISSING: &str = "AUTHORIZATION_HEADER_MISSING";
    assert_refused(
        authenticate(&auth, &[]).await,
        MISSING,
        "There is no Authorization header in the HTTP request",
    );
    assert_refused(
        authenticate(&auth, &[("authorization", "")]).await,
        MISSING,
        "There is no Authorization header in the HTTP request",
    );
    let cases: &[(&str, &str)] = &[
        ("Basic x", "Authorization header must start with Bearer"),
        (
            "Bearer1234567890",
            "Authorization header must start with Bearer",
        ),
        ("Bearer", "Token not found in Authorization header"),
        (
            "Bearer a b",
            "Authorization header must be Bearer + \\s + token",
        ),
        (
            "bearer foo bar",
            "Authorization header must be Bearer + \\s + token",
        ),
    ];
    for (value, description) in cases {
        assert_refused(
            authenticate(&auth, &[("authorization", value)]).await,
            INVALID,
            description,
        );
    }
    let basic = authenticate(&auth, &[("authorization", "Basic x")])
        .await
        .unwrap_err();
    assert_eq!(basic.headers[http::header::WWW_AUTHENTICATE], "Bearer");
    // The scheme is case-insensitive; extra spaces are fine.
    for value in [
        format!("bearer {t}"),
        format!("BEARER {t}"),
        format!("Bearer   {t}  "),
    ] {
        assert!(
            authenticate(&auth, &[("authorization", &value)])
                .await
                .is_ok(),
            "{value}"
        );
    }
}

#[tokio::test]
async fn token_cookie_forms() {
    let m = material();
    let auth = hs_auth();
    let t = m.token("hs");
    for cookie in [
        format!("token=Bearer%20{t}"),
        format!("token=Bearer+{t}"),
        format!("token={t}"),
        format!("session=abc; token=Bearer%20{t}; theme=dark"),
    ] {
        let a = authenticate(&auth, &[("cookie", &cookie)]).await;
        assert_eq!(
            a.map(|a| a.token.to_string()).ok().as_deref(),
            Some(t),
            "{cookie}"
        );
    }
    assert_refused(
        authenticate(&auth, &[("cookie", "session=abc")]).await,
        "AUTHORIZATION_HEADER_MISSING",
        "There is no Authorization header in the HTTP request",
    );
    assert_refused(
        authenticate(&auth, &[("cookie", "token=Basic%20x")]).await,
        INVALID,
        "Authorization header must start with Bearer",
    );
    let bad = format!("token=Bearer%20{}", m.token("hs_wrong_secret"));
    assert_refused(
        authenticate(&auth, &[("cookie", &bad)]).await,
        INVALID,
        "token signature is invalid",
    );
    // The header wins over the cookie, even when the header's token is bad.
    let header = bearer(m.token("hs_wrong_secret"));
    let good_cookie = format!("token=Bearer%20{t}");
    assert_refused(
        authenticate(
            &auth,
            &[("authorization", &header), ("cookie", &good_cookie)],
        )
        .await,
        INVALID,
        "token signature is invalid",
    );
}

// ---------------------------------------------------------------------------------------------
// JWKS: RS256 and ES256

/// A JWKS source serving a document that tests change, counting fetches.
struct Counting {
    doc: Mutex<Vec<u8>>,
    fetches: AtomicUsize,
}

impl Counting {
    fn new(doc: Vec<u8>) -> Arc<Self> {
        Arc::new(Counting {
            doc: Mutex::new(doc),
            fetches: AtomicUsize::new(0),
        })
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl JwksSource for Counting {
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<u8>, JwksError>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let doc = self.doc.lock().unwrap().clone();
        Box::pin(async move { Ok(doc) })
    }
    fn describe(&self) -> String {
        "counting test source".into()
    }
}

async fn jwks_auth(source: Arc<dyn JwksSource>, interval: Duration) -> JwtAuthenticator {
    JwtAuthenticator::load(JwtConfig::jwks(source, AUDIENCE).with_jwks_refresh_interval(interval))
        .await
        .unwrap()
}

#[tokio::test]
async fn rs256_and_es256_from_a_jwks() {
    let m = material();
    let auth = jwks_auth(
        Counting::new(m.jwks(&["rsa1", "ec1"])),
        Duration::from_secs(60),
    )
    .await;
    let a = accepts(&auth, m.token("rs1")).await;
    assert_eq!(a.claims.get("scope"), Some(&json!("read")));
    accepts(&auth, m.token("es1")).await;
    refuses(
        &auth,
        m.token("rs_expired"),
        "TOKEN_EXPIRED",
        "Auth token is expired",
    )
    .await;
    refuses(
        &auth,
        m.token("rs_wrong_aud"),
        INVALID,
        "incorrect audience",
    )
    .await;
    refuses(
        &auth,
        m.token("rs_no_kid"),
        INVALID,
        "token has no key id (kid)",
    )
    .await;
    refuses(
        &auth,
        m.token("rs2_as_rsa1"),
        INVALID,
        "token signature is invalid",
    )
    .await;
    // An RS256 token naming the EC key: the key decides the algorithm.
    refuses(
        &auth,
        m.token("rs_as_ec"),
        INVALID,
        "token algorithm is not accepted",
    )
    .await;
    let tampered = tamper(m.token("rs1"), |p| {
        p.insert("sub".into(), json!("mallory"));
    });
    refuses(&auth, &tampered, INVALID, "token signature is invalid").await;
    refuses(
        &auth,
        m.token("alg_none"),
        INVALID,
        "token algorithm is not accepted",
    )
    .await;
}

/// The order `n` of P-256's group, big-endian.
const P256_ORDER: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

/// An ES256 token's twin: the same token with the signature's `s` replaced by `n - s`
/// (which verifies too), and whether the twin's `s` is the high one.
fn es256_twin(token: &str) -> (String, bool) {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    assert_eq!(signature.len(), 64);
    let s = signature[32..].to_vec();
    let mut borrow = 0u16;
    for i in (0..32).rev() {
        let subtrahend = u16::from(s[i]) + borrow;
        let minuend = u16::from(P256_ORDER[i]);
        let (digit, next) = if minuend >= subtrahend {
            (minuend - subtrahend, 0)
        } else {
            (minuend + 256 - subtrahend, 1)
        };
        signature[32 + i] = u8::try_from(digit).unwrap();
        borrow = next;
    }
    let twin_is_high = signature[32..] > s[..];
    (
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)),
        twin_is_high,
    )
}

/// The spelling of an ES256 token with the low `s`.
fn low_s_spelling(token: &str) -> String {
    match es256_twin(token) {
        (_, true) => token.to_owned(),
        (twin, false) => twin,
    }
}

/// `(r, s)` and `(r, n - s)` both verify: both spellings of a token are accepted, and the
/// token handed on (to handlers, for forwarding) is always the low-s one.
#[tokio::test]
async fn es256_high_s_signatures_are_normalised() {
    let m = material();
    let auth = jwks_auth(Counting::new(m.jwks(&["ec1"])), Duration::from_secs(60)).await;
    let token = m.token("es1");
    let (twin, twin_is_high) = es256_twin(token);
    let (low, high) = if twin_is_high {
        (token.to_owned(), twin)
    } else {
        (twin, token.to_owned())
    };
    assert_ne!(low, high);
    for spelling in [&high, &low] {
        let a = match authenticate(&auth, &[("authorization", &bearer(spelling))]).await {
            Ok(a) => a,
            Err(e) => panic!("refused {spelling}: {e}"),
        };
        assert_eq!(*a.token, low);
        assert_eq!(a.claims.get("sub"), Some(&json!("alice")));
    }
    // A tampered high-s token is still refused.
    let tampered = tamper(&high, |p| {
        p.insert("sub".into(), json!("mallory"));
    });
    refuses(&auth, &tampered, INVALID, "token signature is invalid").await;
}

#[tokio::test]
async fn hs256_tokens_are_refused_by_a_jwks_configuration() {
    let m = material();
    let auth = jwks_auth(Counting::new(m.jwks(&["rsa1"])), Duration::from_secs(60)).await;
    // A plain HS256 token, one naming the RSA key, and one MACed with the RSA public key.
    refuses(
        &auth,
        m.token("hs"),
        INVALID,
        "token algorithm is not accepted",
    )
    .await;
    refuses(
        &auth,
        m.token("hs_with_rsa_kid"),
        INVALID,
        "token algorithm is not accepted",
    )
    .await;
    refuses(
        &auth,
        m.token("hmac_pem"),
        INVALID,
        "token algorithm is not accepted",
    )
    .await;
    // Even with a secret configured too, HS256 is checked with the secret only.
    let both = JwtAuthenticator::load(
        JwtConfig::jwks(Counting::new(m.jwks(&["rsa1"])), AUDIENCE).with_secret(SECRET),
    )
    .await
    .unwrap();
    accepts(&both, m.token("hs")).await;
    accepts(&both, m.token("rs1")).await;
    refuses(
        &both,
        m.token("hmac_pem"),
        INVALID,
        "token signature is invalid",
    )
    .await;
    // The attacker's view: the PEM as the HMAC secret of an HS256 configuration does verify,
    // which is why HS256 never uses anything but the configured secret.
    let pem_secret =
        JwtAuthenticator::new(JwtConfig::hs256(m.rsa1_public_pem.clone(), AUDIENCE)).unwrap();
    accepts(&pem_secret, m.token("hmac_pem")).await;
}

#[tokio::test]
async fn unknown_kid_refreshes_at_most_once_per_interval() {
    let m = material();
    let source = Counting::new(m.jwks(&["rsa1"]));
    let auth = jwks_auth(source.clone(), Duration::from_secs(60)).await;
    assert_eq!(source.fetches(), 1);
    accepts(&auth, m.token("rs1")).await;
    assert_eq!(source.fetches(), 1, "a known kid never refetches");
    // The key appears at the source, but the startup load was less than a minute ago.
    *source.doc.lock().unwrap() = m.jwks(&["rsa1", "rsa2"]);
    for _ in 0..5 {
        refuses(
            &auth,
            m.token("rs2"),
            INVALID,
            "token key id (kid) is unknown",
        )
        .await;
        refuses(
            &auth,
            m.token("rs_unknown_kid"),
            INVALID,
            "token key id (kid) is unknown",
        )
        .await;
    }
    assert_eq!(source.fetches(), 1, "rate limited");

    // With a short interval: one refetch after it has passed, which finds the new key.
    let source = Counting::new(m.jwks(&["rsa1"]));
    let auth = jwks_auth(source.clone(), Duration::from_millis(300)).await;
    *source.doc.lock().unwrap() = m.jwks(&["rsa1", "rsa2"]);
    refuses(
        &auth,
        m.token("rs2"),
        INVALID,
        "token key id (kid) is unknown",
    )
    .await;
    assert_eq!(source.fetches(), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    accepts(&auth, m.token("rs2")).await;
    accepts(&auth, m.token("rs2")).await;
    accepts(&auth, m.token("rs1")).await;
    assert_eq!(source.fetches(), 2);
    refuses(
        &auth,
        m.token("rs_unknown_kid"),
        INVALID,
        "token key id (kid) is unknown",
    )
    .await;
    assert_eq!(source.fetches(), 2, "rate limited again");

    // A refresh that fails keeps the keys we had.
    tokio::time::sleep(Duration::from_millis(350)).await;
    *source.doc.lock().unwrap() = b"not json".to_vec();
    refuses(
        &auth,
        m.token("rs_unknown_kid"),
        INVALID,
        "token key id (kid) is unknown",
    )
    .await;
    assert_eq!(source.fetches(), 3);
    accepts(&auth, m.token("rs2")).await;
}

#[tokio::test]
async fn jwks_file_is_reread_on_refresh() {
    let m = material();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, m.jwks(&["rsa1"])).unwrap();
    let auth = jwks_auth(Arc::new(FileJwks::new(&path)), Duration::from_millis(200)).await;
    accepts(&auth, m.token("rs1")).await;
    refuses(
        &auth,
        m.token("es1"),
        INVALID,
        "token key id (kid) is unknown",
    )
    .await;
    std::fs::write(&path, m.jwks(&["rsa1", "ec1"])).unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    accepts(&auth, m.token("es1")).await;
}

/// Serves `doc` over plain http on 127.0.0.1, counting requests.
fn serve_jwks(doc: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                doc.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&doc);
        }
    });
    (url, hits)
}

#[tokio::test]
async fn jwks_over_http_on_loopback() {
    let m = material();
    let (url, hits) = serve_jwks(m.jwks(&["rsa1", "ec1"]));
    let auth = jwks_auth(
        Arc::new(HttpJwks::new(&url).unwrap()),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    accepts(&auth, m.token("rs1")).await;
    accepts(&auth, m.token("es1")).await;
    refuses(
        &auth,
        m.token("rs2"),
        INVALID,
        "token key id (kid) is unknown",
    )
    .await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn blocking_constructor_loads_a_jwks_inside_or_outside_a_runtime() {
    let m = material();
    let (url, _) = serve_jwks(m.jwks(&["rsa1"]));
    let config = JwtConfig::jwks(Arc::new(HttpJwks::new(&url).unwrap()), AUDIENCE);
    assert!(JwtAuthenticator::new(config.clone()).is_ok());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let auth = runtime
        .block_on(async { JwtAuthenticator::new(config) })
        .unwrap();
    runtime.block_on(async { accepts(&auth, m.token("rs1")).await });
}

// ---------------------------------------------------------------------------------------------
// Configuration

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
    let vars: HashMap<String, OsString> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    move |name| vars.get(name).cloned()
}

#[test]
fn configuration_from_the_environment() {
    let m = material();
    // Nothing configured.
    assert!(config_from_lookup(env_of(&[])).unwrap().is_none());
    assert!(
        config_from_lookup(env_of(&[("KLUE_JWT_AUDIENCE", "a")]))
            .unwrap()
            .is_none()
    );
    // A secret and an audience.
    let config = config_from_lookup(env_of(&[
        ("KLUE_JWT_SECRET", SECRET),
        ("KLUE_JWT_AUDIENCE", AUDIENCE),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(config.secret.as_deref(), Some(SECRET.as_bytes()));
    assert_eq!(config.leeway, Duration::from_secs(60));
    assert_eq!(config.jwks_refresh_interval, Duration::from_secs(60));
    let debug = format!("{config:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(JwtAuthenticator::new(config).is_ok());

    let err = |vars: &[(&str, &str)]| {
        let e = config_from_lookup(env_of(vars))
            .and_then(|c| JwtAuthenticator::new(c.unwrap()).map(|_| ()))
            .unwrap_err();
        let message = e.to_string();
        assert!(!message.contains(SECRET), "{message}");
        (e, message)
    };
    // An empty secret is a configuration error, never "no auth".
    let (e, message) = err(&[("KLUE_JWT_SECRET", ""), ("KLUE_JWT_AUDIENCE", AUDIENCE)]);
    assert!(matches!(e, AuthConfigError::EmptySecret), "{message}");
    assert!(message.contains("KLUE_JWT_SECRET"), "{message}");
    let (e, message) = err(&[("KLUE_JWT_SECRET", SECRET)]);
    assert!(matches!(e, AuthConfigError::MissingAudience), "{message}");
    assert!(message.contains("KLUE_JWT_AUDIENCE"), "{message}");
    let (e, _) = err(&[("KLUE_JWT_SECRET", SECRET), ("KLUE_JWT_AUDIENCE", "")]);
    assert!(matches!(e, AuthConfigError::MissingAudience));
    let (e, _) = err(&[
        ("KLUE_JWT_SECRET", SECRET),
        ("KLUE_JWT_AUDIENCE", AUDIENCE),
        ("KLUE_JWT_ISSUER", ""),
    ]);
    assert!(matches!(
        e,
        AuthConfigError::EmptyVariable("KLUE_JWT_ISSUER")
    ));
    // JWKS problems.
    let (e, message) = err(&[
        ("KLUE_JWT_JWKS", "http://keys.example.com/jwks.json"),
        ("KLUE_JWT_AUDIENCE", AUDIENCE),
    ]);
    assert!(matches!(e, AuthConfigError::JwksUrl(_)), "{message}");
    assert!(message.contains("https"), "{message}");
    let (e, message) = err(&[
        ("KLUE_JWT_JWKS", "/nonexistent/jwks.json"),
        ("KLUE_JWT_AUDIENCE", AUDIENCE),
    ]);
    assert!(matches!(e, AuthConfigError::Jwks { .. }), "{message}");
    assert!(message.contains("/nonexistent/jwks.json"), "{message}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"keys\": 3}").unwrap();
    let (e, message) = err(&[
        ("KLUE_JWT_JWKS", bad.to_str().unwrap()),
        ("KLUE_JWT_AUDIENCE", AUDIENCE),
    ]);
    assert!(
        matches!(
            e,
            AuthConfigError::Jwks {
                error: JwksError::Format(_),
                ..
            }
        ),
        "{message}"
    );
    // Only symmetric or unsupported keys: nothing usable.
    std::fs::write(
        &bad,
        r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k"}]}"#,
    )
    .unwrap();
    let (e, message) = err(&[
        ("KLUE_JWT_JWKS", bad.to_str().unwrap()),
        ("KLUE_JWT_AUDIENCE", AUDIENCE),
    ]);
    assert!(
        matches!(
            e,
            AuthConfigError::Jwks {
                error: JwksError::NoUsableKey,
                ..
            }
        ),
        "{message}"
    );

    // A good JWKS file, with a secret too.
    let good = dir.path().join("good.json");
    std::fs::write(&good, m.jwks(&["rsa1"])).unwrap();
    let config = config_from_lookup(env_of(&[
        ("KLUE_JWT_JWKS", good.to_str().unwrap()),
        ("KLUE_JWT_SECRET", SECRET),
        ("KLUE_JWT_AUDIENCE", AUDIENCE),
        ("KLUE_JWT_ISSUER", ISSUER),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(config.issuer.as_deref(), Some(ISSUER));
    assert!(JwtAuthenticator::new(config).is_ok());
    // An https URL builds its (rustls) client without touching the network.
    let source = klue::auth::jwks_source("https://keys.example.com/.well-known/jwks.json").unwrap();
    assert_eq!(
        source.describe(),
        "https://keys.example.com/.well-known/jwks.json"
    );
    assert!(klue::auth::jwks_source("ftp://keys.example.com/jwks.json").is_err());
    // Programmatic configuration is checked the same way.
    assert!(matches!(
        JwtAuthenticator::new(JwtConfig::hs256("", AUDIENCE)),
        Err(AuthConfigError::EmptySecret)
    ));
    assert!(matches!(
        JwtAuthenticator::new(JwtConfig::hs256(SECRET, "")),
        Err(AuthConfigError::MissingAudience)
    ));
}
