//! The request path of the klue runtime (routing, auth, path/query/header/cookie parameters,
//! body parsing and validation), in process, through both of its entries: the router with
//! its axum layers (`Service::router`, for embedding) and the server's own path
//! (`Service::serve_request`, the `Front` that production runs).
//!
//! Shared by the fuzz target (`fuzz_targets/request_path.rs`) and by a stable test that replays
//! the fuzz corpus (`crates/klue/tests/request_path_corpus.rs`), so that CI runs the same
//! checks on every corpus input without a nightly toolchain.
//!
//! A `Service` is built once from klue-testbed's spec (every parameter style: form, pipe and
//! space delimited, deepObject, header, cookie; JSON and form bodies; recursive schemas; a
//! secured operation) and the helloworld spec, with handlers that echo what they received, and
//! response validation off. Each input becomes one HTTP request, sent to each entry. The
//! handlers never fail, so the only acceptable answers are a 2xx or 3xx, or a 4xx JSON error
//! body whose `status` matches; a 5xx, a non-JSON error, a panic or a hang is a finding. So is
//! any difference between the two entries' answers: status, error code, content type and
//! encoding, and the body unless it is compressed (with the fresh ids of an error blanked).

use arbitrary::Arbitrary;
use http_body_util::BodyExt;
use klue::auth::{JwtAuthenticator, JwtConfig};
use klue::spec::{Source, load_sources};
use klue::{Handlers, Reply, RuntimeConfig, Service};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower::ServiceExt;

const SECRET: &[u8] = b"fuzz-secret-0123456789abcdef0123456789";
const AUDIENCE: &str = "klue-fuzz";

/// Path templates of the served operations, with `{}` where a fuzzed segment goes.
const PATHS: &[&str] = &[
    "/echo/{}",
    "/secure",
    "/slow",
    "/v1/hello/{}",
    "/v1/items",
    "/v1/items/{}",
    "/ping",
    "/version",
    "/auth/version",
    "/openapi/{}",
    "/docs/{}",
    "/{}",
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/JSON",
];

#[derive(Debug, Arbitrary)]
pub enum Auth {
    None,
    Valid,
    Garbage(String),
    Cookie,
}

/// One fuzzed request.
#[derive(Debug, Arbitrary)]
pub struct Input {
    method: u8,
    path: u8,
    segment: String,
    query: String,
    content_type: Option<u8>,
    auth: Auth,
    headers: Vec<(String, Vec<u8>)>,
    cookie: Option<String>,
    body: Vec<u8>,
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    service: Service,
    router: axum::Router,
    token: String,
}

fn echo_handlers(ids: &[&str]) -> Handlers {
    let mut handlers = Handlers::new();
    for id in ids {
        handlers.insert(*id, |request: klue::Request| async move {
            Ok(Reply::json(
                http::StatusCode::OK,
                json!({
                    "path": request.path,
                    "query": request.query,
                    "headers": request.headers,
                    "cookies": request.cookies,
                    "body": request.body,
                }),
            ))
        });
    }
    handlers
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let sources = vec![
            Source {
                path: "apis/testbed.yaml".into(),
                text: include_str!("../../crates/klue-testbed/apis/testbed.yaml").to_owned(),
            },
            Source {
                path: "apis/helloworld.yaml".into(),
                text: include_str!("../../apis/helloworld.yaml").to_owned(),
            },
        ];
        let apis = match load_sources(&sources) {
            Ok(apis) => apis,
            Err(e) => panic!("the fixed specs must load: {e}"),
        };
        let authenticator = match JwtAuthenticator::new(JwtConfig::hs256(SECRET, AUDIENCE)) {
            Ok(a) => a,
            Err(e) => panic!("authenticator: {e}"),
        };
        let config = RuntimeConfig {
            validate_responses: false,
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(5),
            ..RuntimeConfig::default()
        };
        let testbed = echo_handlers(&[
            "slow",
            "panic",
            "fail",
            "bad_response",
            "undocumented_status",
            "custom_error",
            "echo",
            "secure",
            "secure_post",
        ]);
        let hello = echo_handlers(&["hello", "create_item", "list_items", "get_item"]);
        let service = Service::builder(apis)
            .serve("testbed", testbed)
            .serve("helloworld", hello)
            .authenticator(Arc::new(authenticator))
            .config(config)
            .build();
        let service = match service {
            Ok(s) => s,
            Err(e) => panic!("the fixed service must build: {e}"),
        };
        let token = match klue::auth::mint_token(
            SECRET,
            AUDIENCE,
            None,
            "fuzzer",
            Duration::from_secs(3600 * 24 * 365),
            serde_json::Map::new(),
        ) {
            Ok(t) => t,
            Err(e) => panic!("token: {e}"),
        };
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => panic!("runtime: {e}"),
        };
        Fixture {
            runtime,
            router: service.router(),
            service,
            token,
        }
    })
}

/// Percent-encodes what a URI cannot carry raw, so that most inputs reach the router.
fn encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request `input` stands for, or `None` when it is not a valid HTTP request. The same
/// input always makes the same request.
fn build(input: &Input, token: &str) -> Option<http::Request<axum::body::Body>> {
    let method = METHODS[usize::from(input.method) % METHODS.len()];
    let template = PATHS[usize::from(input.path) % PATHS.len()];
    let segment = encode(&input.segment, b"%/");
    let mut uri = template.replace("{}", &segment);
    if !input.query.is_empty() {
        uri.push('?');
        uri.push_str(&encode(&input.query, b"%&=[],|+"));
    }
    // As every HTTP/1.1 client must (a request without one gets a 400).
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "fuzz.example");
    if let Some(ct) = input.content_type {
        request = request.header(
            "content-type",
            CONTENT_TYPES[usize::from(ct) % CONTENT_TYPES.len()],
        );
    }
    match &input.auth {
        Auth::None => {}
        Auth::Valid => request = request.header("authorization", format!("Bearer {token}")),
        Auth::Garbage(g) => request = request.header("authorization", g.as_str()),
        Auth::Cookie => request = request.header("cookie", format!("token={token}")),
    }
    if let Some(cookie) = &input.cookie {
        request = request.header("cookie", cookie.as_str());
    }
    for (name, value) in input.headers.iter().take(8) {
        request = request.header(name.as_str(), value.as_slice());
    }
    request
        .body(axum::body::Body::from(input.body.clone()))
        .ok()
}

/// What is compared between the two entries' answers.
#[derive(Debug, PartialEq)]
struct Observed {
    status: u16,
    /// The `error` of a JSON error body that is not compressed.
    error: Option<String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    /// The body unless it is compressed: JSON with the fresh `error_id` and `request_id` of
    /// an error blanked, or the bytes of anything else.
    body: Option<Result<Value, Vec<u8>>>,
}

/// Reads an answer to its end and checks it on its own: no 5xx, and a 4xx (not to `HEAD`,
/// not compressed) is the JSON error with its status.
async fn observe(
    entry: &str,
    input: &Input,
    is_head: bool,
    response: http::Response<axum::body::Body>,
) -> Observed {
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => panic!("{entry}: the answer's body failed: {e} for {input:?}"),
    };
    let status = parts.status;
    let content_encoding = parts
        .headers
        .get("content-encoding")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    assert!(
        !status.is_server_error(),
        "{entry}: {status} for {input:?}: {}",
        String::from_utf8_lossy(&bytes)
    );
    let content_type = parts
        .headers
        .get("content-type")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut observed = Observed {
        status: status.as_u16(),
        error: None,
        content_type,
        content_encoding,
        body: None,
    };
    if observed.content_encoding.is_some() {
        return observed;
    }
    observed.body = Some(match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut value) => {
            for fresh in ["error_id", "request_id"] {
                if let Some(id) = value.get_mut(fresh) {
                    *id = Value::from("-");
                }
            }
            Ok(value)
        }
        Err(_) => Err(bytes.to_vec()),
    });
    if !status.is_client_error() || is_head {
        return observed;
    }
    assert_eq!(
        observed.content_type.as_deref(),
        Some("application/json"),
        "{entry}: {status} for {input:?}"
    );
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(body) => body,
        Err(e) => panic!("{entry}: {status}: the error body is not JSON ({e}) for {input:?}"),
    };
    assert_eq!(
        body["status"],
        status.as_u16(),
        "{entry}: {body} for {input:?}"
    );
    let Some(error) = body["error"].as_str() else {
        panic!("{entry}: no error code in {body} for {input:?}");
    };
    observed.error = Some(error.to_owned());
    observed
}

/// Sends `input` through both entries and checks their answers (see the module
/// documentation). Returns whether `input` made a request; panics on a finding.
pub fn check(input: &Input) -> bool {
    let fixture = fixture();
    let (Some(to_router), Some(to_server)) =
        (build(input, &fixture.token), build(input, &fixture.token))
    else {
        return false;
    };
    let is_head = to_router.method() == http::Method::HEAD;
    let router = fixture.router.clone();
    let server = fixture.service.serve_request(to_server);
    let (by_router, by_server) = fixture.runtime.block_on(async move {
        let by_router = match router.oneshot(to_router).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let by_router = observe("router", input, is_head, by_router).await;
        let by_server = observe("server", input, is_head, server.await).await;
        (by_router, by_server)
    });
    assert_eq!(
        by_router, by_server,
        "the router and the server's path answer differently for {input:?}"
    );
    true
}
