//! The deadlines of connections with a request in flight, against the real klue-testbed
//! binary: a request body that does not arrive in time gets a 408 and its connection is
//! closed, so such clients cannot hold connections forever.
//!
//! The deadlines are set short (2 s) and each behaviour is waited for with a generous bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use klue_testkit::{Server, client};
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_klue-testbed");

/// The deadline the servers here are started with, in seconds.
const DEADLINE: &str = "2";
/// How long a test waits for a behaviour that is due after [`DEADLINE`].
const PATIENCE: Duration = Duration::from_secs(15);

/// The head of a request whose body is announced as 1000 bytes.
const SLOW_HEAD: &[u8] = b"POST /echo/1?q=a HTTP/1.1\r\nHost: x\r\n\
    Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\": ";

fn assert_still_serving(server: &Server) {
    let response = client().get(server.url("/ping")).send().unwrap();
    assert_eq!(response.status(), 200);
}

/// What a raw connection got: the bytes read, and whether it was closed (EOF or reset)
/// within `PATIENCE`.
struct Outcome {
    answer: Vec<u8>,
    closed: bool,
    waited: Duration,
}

/// Reads `stream` until it is closed or `PATIENCE` is over; every `pause` without anything to
/// read, `trickle` is sent (a byte at a time, say) while no answer has come.
fn read_until_closed(stream: &mut TcpStream, pause: Duration, trickle: &[u8]) -> Outcome {
    let started = Instant::now();
    stream.set_read_timeout(Some(pause)).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        if started.elapsed() > PATIENCE {
            break false;
        }
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if answer.is_empty() && !trickle.is_empty() {
                    // The server may have closed already; the next read says so.
                    let _ = stream.write_all(trickle);
                }
            }
            Err(_) => break true,
        }
    };
    Outcome {
        answer,
        closed,
        waited: started.elapsed(),
    }
}

/// The status and JSON body of an HTTP/1.1 answer with a `Content-Length` body.
fn parse(answer: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {text:?}"));
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn assert_body_timeout(answer: &[u8]) {
    let (status, body) = parse(answer);
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["status"], 408, "{body}");
    assert_eq!(body["error"], "BODY_READ_TIMEOUT", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("2s")),
        "{body}"
    );
    assert_eq!(body["error_id"].as_str().map(str::len), Some(36), "{body}");
}

#[test]
fn a_body_that_stops_arriving_gets_408_and_its_connection_is_closed() {
    let server = Server::start_binary(BIN, &[("KLUE_BODY_READ_TIMEOUT", Some(DEADLINE))]);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(SLOW_HEAD).unwrap();
    let outcome = read_until_closed(&mut stream, Duration::from_millis(500), b"");
    assert!(
        outcome.closed,
        "neither answered nor closed within {PATIENCE:?}: {:?}",
        String::from_utf8_lossy(&outcome.answer)
    );
    assert!(
        outcome.waited >= Duration::from_secs(1),
        "cut off long before the deadline, after {:?}",
        outcome.waited
    );
    assert_body_timeout(&outcome.answer);
    assert_still_serving(&server);
}

#[test]
fn a_body_sent_a_byte_at_a_time_is_cut_off_at_the_deadline() {
    let server = Server::start_binary(BIN, &[("KLUE_BODY_READ_TIMEOUT", Some(DEADLINE))]);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(SLOW_HEAD).unwrap();
    // A byte every 0.8 s: the server never waits long for the next one, but the whole body
    // would take minutes.
    let outcome = read_until_closed(&mut stream, Duration::from_millis(800), b" ");
    assert!(
        outcome.closed,
        "a body sent a byte at a time was still read after {PATIENCE:?}"
    );
    // The answer may be lost to a reset if a byte crossed the close; when it came, it is the
    // JSON 408.
    if !outcome.answer.is_empty() {
        assert_body_timeout(&outcome.answer);
    }
    assert_still_serving(&server);
}

#[test]
fn bodies_sent_in_time_are_served() {
    let server = Server::start_binary(BIN, &[("KLUE_BODY_READ_TIMEOUT", Some(DEADLINE))]);
    let response = client()
        .post(server.url("/echo/1?q=a"))
        .header("content-type", "application/json")
        .body(r#"{"name": "fast"}"#)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().unwrap()["body"]["name"], "fast");

    // In two parts, a moment apart, well within the deadline; then a second request on the
    // same connection.
    let body = br#"{"name": "halves"}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let head = format!(
        "POST /echo/1?q=a HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body[5..]).unwrap();
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let outcome = read_until_closed(&mut stream, Duration::from_secs(1), b"");
    let text = String::from_utf8_lossy(&outcome.answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#""name":"halves""#), "{text}");
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
}

/// Bad values stop the start with a message naming the setting.
#[test]
fn bad_deadlines_stop_the_start() {
    for (name, value) in [
        ("KLUE_BODY_READ_TIMEOUT", "0"),
        ("KLUE_BODY_READ_TIMEOUT", "-1"),
        ("KLUE_BODY_READ_TIMEOUT", "soon"),
        ("KLUE_BODY_READ_TIMEOUT", "inf"),
    ] {
        let mut child = std::process::Command::new(BIN)
            .args(["--port", "0", "--host", "127.0.0.1"])
            .env("KLUE_JWT_SECRET", klue_testkit::SECRET)
            .env("KLUE_JWT_AUDIENCE", klue_testkit::AUDIENCE)
            .env(name, value)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > PATIENCE {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let Some(status) = status else {
            panic!("{name}={value}: the service started: {stderr}");
        };
        assert_ne!(status.code(), Some(0), "{name}={value}: {stderr}");
        let flag = name
            .trim_start_matches("KLUE_")
            .to_ascii_lowercase()
            .replace('_', "-");
        assert!(stderr.contains(&flag), "{name}={value}: {stderr}");
    }
}
