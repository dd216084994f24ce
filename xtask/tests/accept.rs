//! Tests of `cargo xtask accept` itself: `--local` builds, starts, passes and stops the real
//! service; `--host` passes twice against one running service (the suite leaves nothing that
//! breaks a second run), and fails, naming the broken assertion, against a service with
//! another JWT secret and against a fake server whose auth is broken.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SECRET: &str = "accept-runner-test-secret-0123456789abcdef";
const AUDIENCE: &str = "accept-runner-test";

/// The xtask binary with the token variables of the outer environment removed.
fn xtask() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("accept")
        .env_remove("KLUE_JWT_TOKEN")
        .env_remove("KLUE_JWT_ISSUER")
        .env_remove("KLUE_JWT_JWKS")
        .env_remove("KLUE_SERVICE_BIN")
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let output = cmd.output().expect("run xtask");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

/// The service binary, built once (a no-op when `cargo test --workspace` built it already).
fn service_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let root = klue_testkit::workspace_root();
        let output = Command::new(cargo)
            .current_dir(root)
            .args([
                "build",
                "--package",
                "service",
                "--bin",
                "service",
                "--message-format",
                "json-render-diagnostics",
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build");
        assert!(output.status.success(), "cargo build -p service failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "service")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported the service executable")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real service with the test secret; killed on drop.
struct Service {
    child: Child,
    base: String,
}

impl Service {
    fn start() -> Service {
        let port = free_port();
        let child = Command::new(service_binary())
            .args(["--port", &port.to_string(), "--host", "127.0.0.1"])
            .env("KLUE_JWT_SECRET", SECRET)
            .env("KLUE_JWT_AUDIENCE", AUDIENCE)
            .env_remove("KLUE_JWT_ISSUER")
            .env_remove("KLUE_JWT_JWKS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the service");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the service did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Service {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn results(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn result<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result {name} in {report}"))
}

#[test]
fn local_builds_starts_passes_and_stops_the_service() {
    let (output, stdout, stderr) = run(xtask()
        .args(["--local", "--json"])
        .env_remove("KLUE_JWT_SECRET")
        .env_remove("KLUE_JWT_AUDIENCE"));
    assert!(
        output.status.success(),
        "accept --local failed:\n{stdout}\n{stderr}"
    );
    let report = results(&stdout);
    assert_eq!(report["passed"], true, "{report}");
    for name in [
        "has_ping",
        "has_version",
        "has_auth_version",
        "item_lifecycle",
        "unknown_item_is_404",
        "invalid_input_is_400",
        "stops_on_sigterm",
    ] {
        assert_eq!(result(&report, name)["passed"], true, "{name}: {report}");
    }
    assert!(stderr.contains("local service (pid"), "{stderr}");
}

#[test]
fn host_passes_twice_then_fails_with_another_secret() {
    let service = Service::start();
    for run_number in 1..=2 {
        let (output, stdout, stderr) = run(xtask()
            .args(["--host", &service.base])
            .env("KLUE_JWT_SECRET", SECRET)
            .env("KLUE_JWT_AUDIENCE", AUDIENCE));
        assert!(
            output.status.success(),
            "run {run_number} failed:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("accept: 9 passed, 0 failed"), "{stdout}");
        assert!(stdout.contains("test "), "no table header: {stdout}");
    }

    // A broken auth setup: the token is signed with another secret.
    let (output, stdout, stderr) = run(xtask()
        .args(["--host", &service.base])
        .env("KLUE_JWT_SECRET", "not-the-service-secret-0123456789abcdef")
        .env("KLUE_JWT_AUDIENCE", AUDIENCE));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "has_auth_version: assertion `GET /auth/version with a valid token -> 200 \
             {name, version, container}` failed: got HTTP 401"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("TOKEN_INVALID"), "{stdout}");
    assert!(
        stdout.contains("item_lifecycle: assertion `POST /v1/items with a token -> 201"),
        "{stdout}"
    );
    let ping_row = stdout.lines().find(|l| l.starts_with("has_ping ")).unwrap();
    assert!(ping_row.contains(" ok "), "{ping_row}");

    // The same with a ready token that is not one.
    let (output, stdout, _) = run(xtask()
        .args(["--host", &service.base, "--json", "--only", "auth"])
        .env("KLUE_JWT_TOKEN", "not.a.token"));
    assert_eq!(output.status.code(), Some(1));
    let report = results(&stdout);
    assert_eq!(report["summary"]["failed"], 1, "{report}");
    let auth = result(&report, "has_auth_version");
    assert!(
        auth["message"]
            .as_str()
            .unwrap()
            .contains("GET /auth/version with a valid token"),
        "{report}"
    );
}

/// A server that answers like klue except that `/auth/version` lets anyone in and `/ping`
/// answers `{"pong": true}`.
fn fake_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || answer(stream));
        }
    });
    base
}

fn answer(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length];
    let _ = reader.read_exact(&mut body);
    let path = request_line.split(' ').nth(1).unwrap_or("/");
    let version = r#"{"name":"helloworld","version":"0.0.1","container":""}"#;
    let (status, body) = match path {
        "/ping" => ("200 OK", r#"{"pong":true}"#.to_string()),
        "/version" | "/auth/version" => ("200 OK", version.to_string()),
        _ => (
            "404 Not Found",
            r#"{"status":404,"error":"NOT_FOUND","error_description":"nope","error_id":"x"}"#
                .to_string(),
        ),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn host_names_the_broken_assertions_of_a_wrong_server() {
    let base = fake_server();
    let (output, stdout, stderr) = run(xtask()
        .args(["--host", &base, "--json"])
        .env("KLUE_JWT_SECRET", SECRET)
        .env("KLUE_JWT_AUDIENCE", AUDIENCE));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let report = results(&stdout);
    assert_eq!(report["passed"], false);
    let message = |name| {
        result(&report, name)["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(result(&report, "has_version")["passed"], true, "{report}");
    assert!(
        message("has_ping").contains("assertion `GET /ping -> 200 {}` failed: got body"),
        "{report}"
    );
    assert!(
        message("has_auth_version").contains(
            "assertion `GET /auth/version without Authorization -> 401 \
             AUTHORIZATION_HEADER_MISSING` failed: got HTTP 200"
        ),
        "{report}"
    );
    assert!(
        message("hello").contains("GET /v1/hello/{name}"),
        "{report}"
    );
}

#[test]
fn bad_invocations_fail_clearly() {
    let (output, _, stderr) = run(&mut xtask());
    assert_eq!(output.status.code(), Some(64), "a usage error: {stderr}");
    assert!(stderr.contains("--local"), "{stderr}");

    let (output, _, stderr) = run(xtask().args(["--host", "127.0.0.1:8080"]));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("must start with http://"), "{stderr}");

    let (output, _, stderr) = run(xtask().args(["--host", "http://127.0.0.1:1", "--only", "nope"]));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no check matches"), "{stderr}");
}

/// `accept --image` hands the JWT secret to podman by name only: the value is on no command
/// line (readable by any process in /proc/<pid>/cmdline) and in no message, also when podman
/// fails. A stand-in `podman` first on PATH records its arguments and the variable it got,
/// then fails `run` as a broken podman would.
#[test]
fn image_secret_reaches_podman_by_name_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    let script = dir.path().join("podman");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             echo \"argv: $*\" >> '{record}'\n\
             echo \"env: $KLUE_JWT_SECRET\" >> '{record}'\n\
             case \"$*\" in *--version*) echo 'podman version 5.0.0'; exit 0;; esac\n\
             echo 'Error: the runtime failed' >&2\n\
             exit 125\n",
            record = record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (output, stdout, stderr) = run(xtask()
        .args(["--image", "localhost/klue-never-pulled:latest"])
        .env("PATH", path)
        .env("KLUE_JWT_SECRET", SECRET)
        .env("KLUE_JWT_AUDIENCE", AUDIENCE));
    assert!(!output.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("podman"), "{stderr}");
    assert!(stderr.contains("the runtime failed"), "{stderr}");
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stdout}{stderr}"
    );
    let recorded = std::fs::read_to_string(&record).unwrap();
    let run_line = recorded
        .lines()
        .find(|l| l.starts_with("argv: ") && l.contains(" run "))
        .unwrap_or_else(|| panic!("podman run was not called: {recorded}"));
    assert!(run_line.contains("--env KLUE_JWT_SECRET "), "{run_line}");
    for line in recorded.lines().filter(|l| l.starts_with("argv: ")) {
        assert!(
            !line.contains(SECRET),
            "a secret on the command line: {line}"
        );
    }
    assert!(
        recorded.contains(&format!("env: {SECRET}")),
        "podman got the value from its environment: {recorded}"
    );
}
