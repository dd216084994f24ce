//! Graceful shutdown under load, with wrk: the release service gets SIGTERM while wrk runs the
//! load mix (the same valid requests as `load`) on many keep-alive connections.
//!
//! What must hold: every answer wrk got, before and during the drain, is a 2xx (a request the
//! server accepted is answered normally, never with a 5xx or a broken answer), the service log
//! has no WARN/ERROR line (a "drain time over" would be one), and the process exits 0 within its
//! drain time. Connection-level errors after the signal are expected and only reported: the
//! listener is closed (wrk's reconnects fail, counted as write or connect errors) and each
//! keep-alive connection is closed after its answer in flight (wrk, which writes its next
//! request at once, counts the one it wrote on a connection the server was closing as a read
//! error: one per connection). No figure here depends on the machine's speed: the only bound is the drain
//! time the service itself enforces.
//!
//! The request-level proof (each request sent before the signal gets its 200, on a slow
//! endpoint with requests in flight at the signal) is `crates/klue-testbed/tests/shutdown_load.rs`,
//! which `ci` and `all` also run.

use super::contract::log_problems;
use super::load::{self, WrkRun};
use super::service::{self, Service};
use crate::util;
use anyhow::{Context, Result, bail};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The service's drain time in this test (`KLUE_DRAIN_SECONDS`); its default is 20 s.
const DRAIN_SECONDS: u64 = 20;

/// Options of `cargo xtask reliability shutdown`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// wrk connections.
    #[arg(long, default_value_t = 256)]
    pub connections: u32,
    /// Seconds of load before SIGTERM.
    #[arg(long, default_value_t = 5)]
    pub before: u64,
    /// Longest wait, in seconds, for another wrk (someone's benchmark) to finish first.
    #[arg(long, default_value_t = 3600)]
    pub max_wait: u64,
    /// Do not rebuild the release binary (use what is in the target dir).
    #[arg(long)]
    pub no_build: bool,
}

/// What one shutdown run saw.
#[derive(Debug)]
pub struct Summary {
    pub connections: u32,
    pub wrk: WrkRun,
    /// From SIGTERM to the process' exit.
    pub exit_ms: u128,
    pub exit_ok: bool,
    pub log_problems: usize,
}

pub fn run(args: &Args) -> Result<Summary> {
    Command::new("wrk")
        .arg("--version")
        .output()
        .context("wrk is not installed (Debian: apt-get update && apt-get install -y wrk)")?;
    let out = util::target_dir().join("reliability");
    std::fs::create_dir_all(&out)?;
    let bin_dir = if args.no_build {
        util::target_dir().join("release")
    } else {
        service::build_release(&["service"])?
    };
    let log = out.join("shutdown-service.log");
    let drain = DRAIN_SECONDS.to_string();
    let server = Service::start(
        &bin_dir.join("service"),
        &log,
        &[("KLUE_DRAIN_SECONDS", &drain)],
    )?;
    let token = service::token(Duration::from_secs(3600))?;
    let lua = out.join("shutdown.lua");
    load::prepare(&server, &token, &lua)?;
    load::wait_for_other_wrk(Duration::from_secs(args.max_wait))?;

    // wrk runs past the signal (its -d is the load before the signal plus the whole drain
    // time), so that it is still sending when the server stops accepting.
    let mut cmd = Command::new("wrk");
    cmd.args(["-t", "2", "-c", &args.connections.to_string()])
        .args(["-d", &format!("{}s", args.before + 2)])
        .args(["--timeout", &format!("{}s", DRAIN_SECONDS + 10), "-s"])
        .arg(&lua)
        .arg(server.base())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    eprintln!("+ {cmd:?}");
    let wrk = cmd.spawn().context("starting wrk")?;
    std::thread::sleep(Duration::from_secs(args.before));
    let signalled = Instant::now();
    eprintln!(
        "shutdown: SIGTERM to the service after {} s of load",
        args.before
    );
    let exit = server.terminate(Duration::from_secs(DRAIN_SECONDS + 10));
    let exit_ms = signalled.elapsed().as_millis();
    let output = wrk.wait_with_output().context("waiting for wrk")?;
    std::fs::write(
        out.join("shutdown-wrk.txt"),
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )?;
    let exit = exit?;
    let wrk = load::parse_wrk(&output)?;
    let log_lines = log_problems(&log)?;
    eprintln!(
        "shutdown under load ({} connections): {} requests answered, non-2xx {}; after the signal \
         connect errors {} (listener closed), read errors {}, write errors {}, timeouts {}; \
         service {} {} ms after SIGTERM (drain time {DRAIN_SECONDS} s); log problems {}",
        args.connections,
        wrk.requests,
        wrk.errors_status,
        wrk.errors_connect,
        wrk.errors_read,
        wrk.errors_write,
        wrk.errors_timeout,
        exit,
        exit_ms,
        log_lines.len()
    );
    let mut problems = Vec::new();
    if wrk.requests == 0 {
        problems.push("no request was answered before the signal".to_owned());
    }
    if wrk.errors_status > 0 {
        problems.push(format!(
            "{} non-2xx answers to valid requests",
            wrk.errors_status
        ));
    }
    if wrk.errors_timeout > 0 {
        problems.push(format!(
            "{} requests got no answer and no close for {} s",
            wrk.errors_timeout,
            DRAIN_SECONDS + 10
        ));
    }
    if !exit.success() {
        problems.push(format!("the service exited with {exit} on SIGTERM"));
    }
    if let Some(line) = log_lines.first() {
        problems.push(format!(
            "{} WARN/ERROR line(s) in {}, e.g. {line}",
            log_lines.len(),
            log.display()
        ));
    }
    if !problems.is_empty() {
        bail!(
            "shutdown under load failed:\n  - {}",
            problems.join("\n  - ")
        );
    }
    Ok(Summary {
        connections: args.connections,
        wrk,
        exit_ms,
        exit_ok: exit.success(),
        log_problems: log_lines.len(),
    })
}
