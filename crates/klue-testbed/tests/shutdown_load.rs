//! Graceful shutdown under load, against the real klue-testbed binary: SIGTERM while clients
//! hammer a slow endpoint. Every request the server accepted before the signal must complete
//! with its normal answer (200 `{"slept_ms": ..}`), requests that were not accepted may only
//! fail at the connection level (refused, reset, closed) and only around or after the signal,
//! and the process must exit 0 within the drain time.
//!
//! The load generator is our own and bounded: raw HTTP/1.1 over `std::net::TcpStream` (no
//! client library that would silently retry a request on a closed keep-alive connection),
//! half the workers on keep-alive connections and half opening a connection per request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use klue_testkit::Server;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_klue-testbed");

/// How long each request sleeps in the handler.
const SLEEP_MS: u64 = 400;
/// Workers hammering the server (half keep-alive, half a connection per request).
const WORKERS: usize = 16;
/// Load before the signal.
const LOAD_BEFORE_SIGNAL: Duration = Duration::from_millis(1500);
/// The server's drain time (KLUE_DRAIN_SECONDS).
const DRAIN_SECONDS: u64 = 5;
/// A request sent at least this long before the signal has certainly been read by the server
/// (it is inside its handler's sleep when the signal comes), so it must be answered. Requests
/// sent later may race with the listener and idle keep-alive connections closing.
const GUARD: Duration = Duration::from_millis(250);

/// What happened to one request.
#[derive(Debug)]
struct Outcome {
    worker: usize,
    /// When the request's first byte was written, relative to the test's start.
    sent: Duration,
    result: Result<Answer, String>,
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
    close: bool,
}

/// Reads one HTTP/1.1 response with a Content-Length body.
fn read_response(reader: &mut BufReader<TcpStream>) -> Result<Answer, String> {
    let mut status_line = String::new();
    let n = reader
        .read_line(&mut status_line)
        .map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Err("closed before a response".into());
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("HTTP-level garbage: {status_line:?}"))?;
    let mut length = None;
    let mut close = false;
    loop {
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("HTTP-level: truncated headers: {e}"))?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("HTTP-level: bad header {line:?}"))?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            length = value.parse::<usize>().ok();
        } else if name == "connection" && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    let length = length.ok_or("HTTP-level: no content-length")?;
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("HTTP-level: truncated body: {e}"))?;
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        close,
    })
}

/// One worker: sends requests until `stop`, on one keep-alive connection (reconnecting when
/// the server closes it) or on a new connection per request.
fn worker(
    port: u16,
    index: usize,
    keep_alive: bool,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut connection: Option<BufReader<TcpStream>> = None;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let sent = start.elapsed();
        let result = (|| {
            if connection.is_none() {
                let stream =
                    TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .map_err(|e| e.to_string())?;
                connection = Some(BufReader::new(stream));
            }
            let reader = connection.as_mut().ok_or("no connection")?;
            let request = format!(
                "GET /slow?ms={SLEEP_MS} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: load-{index}-{n}\r\n{}\r\n",
                if keep_alive {
                    ""
                } else {
                    "Connection: close\r\n"
                }
            );
            reader
                .get_mut()
                .write_all(request.as_bytes())
                .map_err(|e| format!("write: {e}"))?;
            read_response(reader)
        })();
        let reconnect = match &result {
            Ok(answer) => answer.close || !keep_alive,
            Err(_) => true,
        };
        if reconnect {
            connection = None;
        }
        let failed = result.is_err();
        outcomes.push(Outcome {
            worker: index,
            sent,
            result,
        });
        if failed {
            // After a connection error (the server is going away), back off a little.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    outcomes
}

#[test]
fn sigterm_under_load_completes_every_accepted_request_and_exits_0() {
    let drain = DRAIN_SECONDS.to_string();
    let mut server = Server::start_binary(
        BIN,
        &[
            ("KLUE_DRAIN_SECONDS", Some(&drain)),
            ("RUST_LOG", Some("warn")),
        ],
    );
    let port = server.port;
    let pid = server.pid();
    let mut child = server.take_child();

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || worker(port, i, i % 2 == 0, start, stop))
        })
        .collect();

    std::thread::sleep(LOAD_BEFORE_SIGNAL);
    let signal_at = start.elapsed();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    // The process must exit 0 within the drain time (plus a margin for a loaded machine).
    let deadline = Instant::now() + Duration::from_secs(DRAIN_SECONDS + 5);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "did not exit within the drain time; output:\n{}",
                server.output()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let exited_after = start.elapsed() - signal_at;
    stop.store(true, Ordering::Relaxed);
    let outcomes: Vec<Outcome> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();

    assert!(
        exit.success(),
        "exit status {exit:?}; output:\n{}",
        server.output()
    );
    assert!(
        exited_after < Duration::from_secs(DRAIN_SECONDS),
        "took {exited_after:?} to exit after SIGTERM"
    );

    let mut answered_before = 0;
    let mut completed_across_signal = 0;
    let mut failed_late = 0;
    for outcome in &outcomes {
        match &outcome.result {
            Ok(answer) => {
                assert_eq!(answer.status, 200, "{outcome:?}");
                assert_eq!(
                    answer.body,
                    format!(r#"{{"slept_ms":{SLEEP_MS}}}"#),
                    "{outcome:?}"
                );
                answered_before += 1;
                // In flight when the signal came: sent before it, answered after it.
                if outcome.sent < signal_at
                    && outcome.sent + Duration::from_millis(SLEEP_MS) > signal_at
                {
                    completed_across_signal += 1;
                }
            }
            Err(error) => {
                assert!(
                    !error.starts_with("HTTP-level"),
                    "a broken HTTP answer instead of a clean one or a refused connection: {outcome:?}"
                );
                assert!(
                    outcome.sent + GUARD >= signal_at,
                    "a request sent {:?} before SIGTERM was lost (worker {}): {error}; output:\n{}",
                    signal_at - outcome.sent,
                    outcome.worker,
                    server.output()
                );
                failed_late += 1;
            }
        }
    }
    eprintln!(
        "{} requests: {answered_before} answered 200 ({completed_across_signal} of them in flight at SIGTERM), \
         {failed_late} not accepted after the signal; exit after {exited_after:?}",
        outcomes.len()
    );
    // The load really was under way: several rounds per worker, and requests drained.
    assert!(
        answered_before >= WORKERS * 2,
        "too little load: {answered_before}"
    );
    assert!(
        completed_across_signal >= WORKERS / 2,
        "only {completed_across_signal} requests were in flight at SIGTERM"
    );
    // Once the server is gone, nothing answers any more.
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still accepting after exit"
    );
}
