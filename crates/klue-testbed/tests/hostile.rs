//! Hostile input against the real klue-testbed binary: each gets a 4xx (JSON where klue
//! answers) and the server keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use klue_testkit::{Server, client};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_klue-testbed");

fn post_raw(server: &Server, body: Vec<u8>) -> (u16, Value) {
    let response = client()
        .post(server.url("/echo/1?q=a"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap();
    (status, body)
}

fn assert_still_serving(server: &Server) {
    assert_eq!(
        client().get(server.url("/ping")).send().unwrap().status(),
        200
    );
}

#[test]
fn hostile_bodies_are_refused_with_400() {
    let server = Server::start_binary(BIN, &[]);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("deep nesting", deep, "recursion limit"),
        (
            "huge number",
            br#"{"name": "x", "size": 1e400}"#.to_vec(),
            "number out of range",
        ),
        (
            "invalid UTF-8",
            b"{\"name\": \"\xff\xfe\"}".to_vec(),
            "not valid JSON",
        ),
        (
            "duplicate keys",
            br#"{"name": "x", "name": "y"}"#.to_vec(),
            "duplicate key",
        ),
        (
            "trailing garbage",
            br#"{"name": "x"} {}"#.to_vec(),
            "trailing",
        ),
    ];
    for (what, body, message) in cases {
        let (status, answer) = post_raw(&server, body);
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["error"], "INVALID_PARAMETER", "{what}");
        assert!(answer.to_string().contains(message), "{what}: {answer}");
        assert_still_serving(&server);
    }
    // A huge integer is kept as a float and refused by the schema, not by a crash.
    let (status, answer) = post_raw(
        &server,
        br#"{"name": "x", "size": -123456789012345678901234567890}"#.to_vec(),
    );
    assert_eq!(status, 400, "{answer}");
}

#[test]
fn nul_bytes_in_path_and_query_are_refused() {
    let server = Server::start_binary(BIN, &[]);
    for url in ["/echo/1%00?q=a", "/echo/1?q=a%00"] {
        let response = client()
            .post(server.url(url))
            .header("content-type", "application/json")
            .body(r#"{"name": "x"}"#)
            .send()
            .unwrap();
        assert_eq!(response.status(), 400, "{url}");
        let answer: Value = response.json().unwrap();
        assert!(answer.to_string().contains("NUL"), "{url}: {answer}");
    }
    assert_still_serving(&server);
}

#[test]
fn oversized_headers_get_431() {
    let server = Server::start_binary(BIN, &[]);
    let response = client()
        .get(server.url("/ping"))
        .header("x-big", "a".repeat(100 * 1024))
        .send();
    match response {
        Ok(r) => assert_eq!(r.status(), 431),
        // hyper may close the connection before the client finished writing.
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    assert_still_serving(&server);
}

#[test]
fn slow_clients_do_not_starve_others_and_are_cut_off() {
    let server = Server::start_binary(BIN, &[("KLUE_HEADER_READ_TIMEOUT", Some("1"))]);
    // Slowloris: many connections that send a partial request head and stall.
    let mut stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            s.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    assert_still_serving(&server);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "others were starved"
    );
    std::thread::sleep(Duration::from_millis(1500));
    // The stalled connections were closed by the server (read returns EOF or an error).
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
            }
            Err(e) => assert!(
                e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut,
                "still open: {e}"
            ),
        }
    }
    assert_still_serving(&server);
}

/// Reads from `stream` until it is closed; how long that took, or `None` if it stayed open
/// for `patience`.
fn closed_within(stream: &mut TcpStream, patience: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(patience)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return None;
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

#[test]
fn the_header_timeout_spares_slow_answers_and_closes_idle_connections() {
    let server = Server::start_binary(BIN, &[("KLUE_HEADER_READ_TIMEOUT", Some("1"))]);
    let silent = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let mut kept = TcpStream::connect(("127.0.0.1", server.port)).unwrap();

    // An answer that takes twice the timeout is not cut off.
    kept.write_all(b"GET /slow?ms=2000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&answer).contains(r#""slept_ms":2000}"#) {
        let n = kept.read(&mut buf).unwrap();
        assert!(n > 0, "closed during a slow answer: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");

    // Idle after its answer, the keep-alive connection is closed after the timeout.
    let idle = closed_within(&mut kept, Duration::from_secs(5)).expect("idle connection kept");
    assert!(idle >= Duration::from_millis(900), "closed after {idle:?}");

    // A connection that never sent a byte was closed long ago.
    let mut silent = silent;
    let waited = closed_within(&mut silent, Duration::from_secs(1));
    assert!(waited.is_some(), "a silent connection was kept open");
    assert_still_serving(&server);
}
