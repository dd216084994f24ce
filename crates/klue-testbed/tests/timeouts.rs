//! The deadlines of connections with a request in flight, against the real klue-testbed
//! binary: a request body that does not arrive in time gets a 408 and its connection is
//! closed, and an answer that the client does not take (an HTTP/2 client that keeps its
//! flow-control window shut) has its connection closed, so such clients cannot hold
//! connections forever.
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
        ("KLUE_SEND_TIMEOUT", "0"),
        ("KLUE_SEND_TIMEOUT", "inf"),
        ("KLUE_SEND_TIMEOUT", "x"),
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

/// An HTTP/2 connection that asked for `/ping` with its flow-control window shut
/// (SETTINGS_INITIAL_WINDOW_SIZE 0) and never opens it: the server can send the answer's
/// headers, never its body. The returned task ends when the server closes the connection;
/// the request and its answer are kept, so the client never cancels the stream.
struct Stalled {
    connection: tokio::task::JoinHandle<()>,
    _request: h2::client::SendRequest<&'static [u8]>,
    _answer: http::Response<h2::RecvStream>,
}

async fn stalled_h2_client(port: u16) -> Stalled {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, &'static [u8]>(tcp)
        .await
        .unwrap();
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut send = send.ready().await.unwrap();
    let request = http::Request::get(format!("http://127.0.0.1:{port}/ping"))
        .body(())
        .unwrap();
    let (answer, _) = send.send_request(request, true).unwrap();
    // Headers are not flow-controlled: the answer starts, and stalls before its body.
    let answer = answer.await.unwrap();
    assert_eq!(answer.status(), 200);
    Stalled {
        connection,
        _request: send,
        _answer: answer,
    }
}

/// A request on a fresh HTTP/2 connection with the usual windows; the answer's body.
async fn h2_ping(port: u16) -> Vec<u8> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut send = send.ready().await.unwrap();
    let request = http::Request::get(format!("http://127.0.0.1:{port}/ping"))
        .body(())
        .unwrap();
    let (answer, _) = send.send_request(request, true).unwrap();
    let answer = answer.await.unwrap();
    assert_eq!(answer.status(), 200);
    let mut body = answer.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

/// Clients held at once.
const STALLED: usize = 64;

#[test]
fn http2_clients_that_keep_their_window_shut_are_closed_and_others_served() {
    let server = Server::start_binary(BIN, &[("KLUE_SEND_TIMEOUT", Some(DEADLINE))]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let stalled: Vec<Stalled> = runtime.block_on(async {
        let mut stalled = Vec::new();
        for _ in 0..STALLED {
            stalled.push(stalled_h2_client(server.port).await);
        }
        stalled
    });
    // While they are connected, new clients are served, over HTTP/1.1 and HTTP/2.
    assert_still_serving(&server);
    let body = runtime.block_on(h2_ping(server.port));
    assert_eq!(body, b"{}");

    // Each stalled connection is closed by the server.
    let open = runtime.block_on(async {
        let mut open = 0;
        for client in stalled {
            let left = PATIENCE.saturating_sub(started.elapsed());
            if tokio::time::timeout(left, client.connection).await.is_err() {
                open += 1;
            }
        }
        open
    });
    assert_eq!(
        open,
        0,
        "{open} of {STALLED} stalled connections still open after {:?}",
        started.elapsed()
    );
    assert_still_serving(&server);
}

/// A client on a slow link still gets a large answer: the send deadline is about progress,
/// not about the whole answer. Gzipped, the answer's body is a stream of pieces, each given
/// to hyper once the client opened its window for the previous one.
#[test]
fn a_large_answer_read_slowly_is_not_cut_off() {
    let server = Server::start_binary(BIN, &[("KLUE_SEND_TIMEOUT", Some(DEADLINE))]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let received = runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        // A 16 KiB window, reopened 8 KiB at a time after a pause: the gzipped bundle (over
        // 400 KB) takes longer than the deadline to arrive, while the client keeps taking it.
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(16 * 1024)
            .handshake::<_, &'static [u8]>(tcp)
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut send = send.ready().await.unwrap();
        let request = http::Request::get(format!(
            "http://127.0.0.1:{}/docs/swagger-ui-bundle.js",
            server.port
        ))
        .header("accept-encoding", "gzip")
        .body(())
        .unwrap();
        let (answer, _) = send.send_request(request, true).unwrap();
        let answer = answer.await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["content-encoding"], "gzip");
        let mut body = answer.into_body();
        let mut received = 0usize;
        let mut unreleased = 0usize;
        let started = Instant::now();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            received += chunk.len();
            unreleased += chunk.len();
            if unreleased >= 8 * 1024 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = body.flow_control().release_capacity(unreleased);
                unreleased = 0;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "too slow");
        }
        assert!(
            started.elapsed() > Duration::from_secs(2),
            "the answer came faster than the deadline; the test proves nothing"
        );
        received
    });
    assert!(received > 400_000, "got {received} bytes");
}
