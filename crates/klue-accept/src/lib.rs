//! klue-accept: the acceptance-test harness of klue services, run against any base URL over
//! HTTP.
//!
//! - [`Target`]: where the service is and how to authenticate, from the environment
//!   ([`Target::from_env`]: `KLUE_BASE_URL`, `KLUE_JWT_TOKEN` or `KLUE_JWT_SECRET` +
//!   `KLUE_JWT_AUDIENCE` (+ `KLUE_JWT_ISSUER`) to mint one, `KLUE_NO_SSL_CHECK=1`).
//! - [`Check`] and [`check!`]: one named check of a suite; [`Context`] is what each check gets
//!   (the runtime client every generated client wraps, and the token).
//! - [`builtins`]: assertions every klue service passes (`has_ping`, `has_version`,
//!   `has_auth_version`, `has_json_404`), and [`builtin_checks`], the checks a suite starts with.
//! - [`run_checks`] runs a suite one check at a time, each isolated (a failure, a panic or a
//!   timeout fails that check only), and returns one [`TestResult`] per check, whose message
//!   names the assertion that broke; [`summary_line`] and [`test_main`] report them.
//!
//! A service's own suite (its `testaccept` crate) lists its checks after [`builtin_checks`] and
//! uses the assertion helpers ([`send`], [`expect_error`], [`expect_client_error`]). The suite
//! is run by `cargo xtask accept` (`klue-cli`: a local process, any URL, or an image) and as a
//! cargo test target against `KLUE_BASE_URL` ([`test_main`]). This crate does not start
//! servers and is not a load test.

pub mod builtins;
mod target;

pub use target::{Auth, TOKEN_SUBJECT, Target, TargetError};

use klue::client::{Client, ClientConfig, Response};
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a check failed: which assertion, and what was seen instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The assertion, e.g. `GET /auth/version without Authorization -> 401
    /// AUTHORIZATION_HEADER_MISSING`.
    pub assertion: String,
    /// What happened instead.
    pub detail: String,
}

impl Failure {
    pub fn new(assertion: impl Into<String>, detail: impl Into<String>) -> Failure {
        Failure {
            assertion: assertion.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "assertion `{}` failed: {}", self.assertion, self.detail)
    }
}

impl std::error::Error for Failure {}

/// What a check returns.
pub type CheckResult = Result<(), Failure>;

/// A check's future.
pub type CheckFuture = Pin<Box<dyn Future<Output = CheckResult> + Send + 'static>>;

/// One named check of the suite.
#[derive(Clone, Copy)]
pub struct Check {
    /// The name shown in reports (`has_ping`, `item_lifecycle`, ...).
    pub name: &'static str,
    /// Runs the check against the context.
    pub run: fn(Arc<Context>) -> CheckFuture,
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check").field("name", &self.name).finish()
    }
}

/// What every check gets: the runtime client for the target, and the token (or why there is
/// none). A suite builds its typed client from [`Context::raw`] with the generated
/// `<Name>Client::from_client`.
pub struct Context {
    /// The target's base URL.
    pub base_url: String,
    /// The runtime client, sending no token.
    client: Client,
    /// The token, or why none could be had.
    token: Result<String, String>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Context {
    /// The client and token for `target`.
    pub fn new(target: &Target) -> Result<Context, TargetError> {
        let config = ClientConfig::new(target.base_url.clone())
            .danger_accept_invalid_certs(target.no_ssl_check)
            .timeout(Duration::from_secs(15))
            .retries(2);
        let client = Client::new(config).map_err(|e| TargetError::Client(e.to_string()))?;
        let token = match target.token() {
            Ok(Some(token)) => Ok(token),
            Ok(None) => Err(
                "no token: set KLUE_JWT_TOKEN, or KLUE_JWT_SECRET and KLUE_JWT_AUDIENCE to mint one"
                    .to_string(),
            ),
            Err(e) => Err(e.to_string()),
        };
        Ok(Context {
            base_url: target.base_url.clone(),
            client,
            token,
        })
    }

    /// The runtime client (no token): wrap it in a generated client with
    /// `<Name>Client::from_client(ctx.raw().clone())`, or use it directly for calls a typed
    /// client cannot make (bad headers, invalid parameters).
    pub fn raw(&self) -> &Client {
        &self.client
    }

    /// The token, or a failure of `assertion` saying why there is none.
    pub fn token(&self, assertion: &str) -> Result<&str, Failure> {
        self.token
            .as_deref()
            .map_err(|why| Failure::new(assertion, why.clone()))
    }

    /// The runtime client sending the token, or a failure of `assertion` saying why there is
    /// no token.
    pub fn authed(&self, assertion: &str) -> Result<Client, Failure> {
        Ok(self.client.with_token(self.token(assertion)?))
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    pub name: String,
    pub passed: bool,
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
    /// Why it failed (names the assertion); empty when it passed.
    pub message: String,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A [`Check`] named `$name` whose body (an expression using the `Arc<Context>` bound to
/// `$ctx`) is a future of a [`CheckResult`].
#[macro_export]
macro_rules! check {
    ($name:literal, |$ctx:ident| $body:expr) => {
        $crate::Check {
            name: $name,
            run: |$ctx| Box::pin(async move { $body.await }),
        }
    };
}

/// The checks of klue's built-ins, which every service passes: `/ping`, `/version`,
/// `/auth/version` (with and without a token) and a JSON 404. A suite lists them first.
pub fn builtin_checks() -> Vec<Check> {
    vec![
        check!("has_ping", |ctx| builtins::has_ping(ctx.raw())),
        check!("has_version", |ctx| builtins::has_version(ctx.raw())),
        check!("has_auth_version", |ctx| async move {
            let token = ctx.token("GET /auth/version with a valid token -> 200")?;
            builtins::has_auth_version(ctx.raw(), token).await
        }),
        check!("has_json_404", |ctx| builtins::has_json_404(ctx.raw())),
    ]
}

/// How long one check may take before it fails.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `checks` one after the other against `target`. Each runs in its own task: a failure,
/// a panic or a timeout ([`CHECK_TIMEOUT`]) fails that check only. A target whose clients
/// cannot be built fails every check with the reason.
pub async fn run_checks(target: &Target, checks: &[Check]) -> Vec<TestResult> {
    let ctx = match Context::new(target) {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            return checks
                .iter()
                .map(|c| TestResult {
                    name: c.name.to_string(),
                    passed: false,
                    duration: Duration::ZERO,
                    message: format!("cannot reach the target: {e}"),
                })
                .collect();
        }
    };
    let mut results = Vec::with_capacity(checks.len());
    for check in checks {
        let started = Instant::now();
        let task = tokio::spawn(tokio::time::timeout(
            CHECK_TIMEOUT,
            (check.run)(ctx.clone()),
        ));
        let message = match task.await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(failure))) => Some(failure.to_string()),
            Ok(Err(_elapsed)) => Some(format!("timed out after {CHECK_TIMEOUT:?}")),
            Err(join) => Some(format!("panicked: {}", panic_message(join))),
        };
        results.push(TestResult {
            name: check.name.to_string(),
            passed: message.is_none(),
            duration: started.elapsed(),
            message: message.unwrap_or_default(),
        });
    }
    results
}

fn panic_message(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic".to_string()),
        Err(join) => join.to_string(),
    }
}

/// [`run_checks`] on a fresh Tokio runtime, for synchronous callers.
pub fn run_checks_blocking(
    target: &Target,
    checks: &[Check],
) -> Result<Vec<TestResult>, std::io::Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    Ok(runtime.block_on(run_checks(target, checks)))
}

/// `N passed, N failed`: the closing line of a report.
pub fn summary_line(results: &[TestResult]) -> String {
    let passed = results.iter().filter(|r| r.passed).count();
    format!("{passed} passed, {} failed", results.len() - passed)
}

/// The `main` of a suite's cargo test target (`harness = false`), against the service the
/// environment names ([`Target::from_env`]):
///
/// ```sh
/// KLUE_BASE_URL=http://127.0.0.1:8080 cargo test -p testaccept --test acceptance [-- NAME...]
/// ```
///
/// Arguments select checks whose name contains one of them. Without `KLUE_BASE_URL` it fails,
/// saying so: it never passes having run nothing.
pub fn test_main(suite: Vec<Check>) -> std::process::ExitCode {
    use std::process::ExitCode;
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let target = match Target::from_env() {
        Ok(target) => target,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let checks: Vec<Check> = suite
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    if checks.is_empty() {
        eprintln!("error: no check matches {filters:?}");
        return ExitCode::FAILURE;
    }
    println!(
        "\nrunning {} acceptance checks against {}",
        checks.len(),
        target.base_url
    );
    let results = match run_checks_blocking(&target, &checks) {
        Ok(results) => results,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    for r in &results {
        let verdict = if r.passed { "ok" } else { "FAILED" };
        println!(
            "test {} ... {verdict} ({} ms)",
            r.name,
            r.duration.as_millis()
        );
    }
    let failed: Vec<&TestResult> = results.iter().filter(|r| !r.passed).collect();
    if !failed.is_empty() {
        println!("\nfailures:");
        for r in &failed {
            println!("    {}: {}", r.name, r.message);
        }
    }
    println!("\n{}", summary_line(&results));
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---- assertion helpers for the checks of a suite ----

/// A short, single-line rendering of a body for messages.
pub fn show_body(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "an empty body".to_string();
    }
    let mut end = text.len().min(MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let ellipsis = if end < text.len() { "..." } else { "" };
    format!("body {}{ellipsis}", text[..end].replace('\n', " "))
}

/// Sends `call` with the runtime client; a transport failure fails `assertion`.
pub async fn send(
    client: &Client,
    call: klue::client::Call,
    assertion: &str,
) -> Result<Response, Failure> {
    client
        .send(call)
        .await
        .map_err(|e| Failure::new(assertion, format!("no answer: {e}")))
}

/// The answer has `status` and, when `code` is given, a klue error body with that `error`
/// code (and the body's `status` matching).
pub fn expect_error(response: &Response, status: u16, code: &str, assertion: &str) -> CheckResult {
    if response.status() != status {
        return Err(Failure::new(
            assertion,
            format!(
                "got HTTP {} with {}",
                response.status(),
                show_body(response.body())
            ),
        ));
    }
    let body: serde_json::Value = serde_json::from_slice(response.body()).map_err(|e| {
        Failure::new(
            assertion,
            format!("the body is not JSON ({e}): {}", show_body(response.body())),
        )
    })?;
    let got_code = body.get("error").and_then(|v| v.as_str());
    if got_code != Some(code) {
        return Err(Failure::new(
            assertion,
            format!(
                "got error code {} in {}",
                got_code.unwrap_or("(none)"),
                show_body(response.body())
            ),
        ));
    }
    if body.get("status").and_then(|v| v.as_u64()) != Some(u64::from(status)) {
        return Err(Failure::new(
            assertion,
            format!(
                "the body's `status` is not {status}: {}",
                show_body(response.body())
            ),
        ));
    }
    for field in ["error_description", "error_id"] {
        if !body.get(field).is_some_and(|v| v.is_string()) {
            return Err(Failure::new(
                assertion,
                format!(
                    "the error body has no string `{field}`: {}",
                    show_body(response.body())
                ),
            ));
        }
    }
    Ok(())
}

/// A typed call's error, as the answer's status and klue error code, for messages.
pub fn describe(error: &klue::client::ClientError) -> String {
    error.to_string()
}

/// The typed call failed with `status` and klue error `code`.
pub fn expect_client_error<T: fmt::Debug>(
    result: Result<T, klue::client::ClientError>,
    status: u16,
    code: &str,
    assertion: &str,
) -> CheckResult {
    match result {
        Ok(value) => Err(Failure::new(
            assertion,
            format!("the call succeeded with {value:?}"),
        )),
        Err(e) if e.status() == Some(status) && e.code() == Some(code) => Ok(()),
        Err(e) => Err(Failure::new(assertion, describe(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_the_assertion() {
        let f = Failure::new("GET /ping -> 200 {}", "got HTTP 500");
        assert_eq!(
            f.to_string(),
            "assertion `GET /ping -> 200 {}` failed: got HTTP 500"
        );
    }

    #[test]
    fn bodies_are_shown_short_and_on_one_line() {
        assert_eq!(show_body(b""), "an empty body");
        assert_eq!(show_body(b"{\n\"a\": 1}"), "body { \"a\": 1}");
        let long = "é".repeat(400);
        let shown = show_body(long.as_bytes());
        assert!(shown.ends_with("..."));
        assert!(shown.len() < 320);
    }

    #[test]
    fn summary_counts() {
        let r = |passed| TestResult {
            name: "x".into(),
            passed,
            duration: Duration::from_millis(3),
            message: String::new(),
        };
        assert_eq!(
            summary_line(&[r(true), r(false), r(true)]),
            "2 passed, 1 failed"
        );
        let json = serde_json::to_value(r(true)).unwrap_or_default();
        assert_eq!(json["duration_ms"], 3);
    }

    #[test]
    fn builtin_check_names_are_unique() {
        let mut names: Vec<_> = builtin_checks().iter().map(|c| c.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[tokio::test]
    async fn an_unreachable_target_fails_every_check_with_the_reason() {
        // A port nothing listens on (bound then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9);
        let mut target = Target::new(format!("http://127.0.0.1:{port}"));
        target.auth = Auth::Token("t".into());
        let checks = [check!("has_ping", |ctx| builtins::has_ping(ctx.raw()))];
        let results = run_checks(&target, &checks).await;
        assert_eq!(results.len(), 1);
        assert!(!results[0].passed);
        assert!(
            results[0].message.contains("GET /ping"),
            "{}",
            results[0].message
        );
    }
}
