//! `cargo xtask reliability`: the reliability and security suite of klue (see
//! `docs/reliability.md`).
//!
//! - `contract`: schemathesis against the running service's served spec (no 5xx, no spec
//!   violation, no undocumented status, at least 1000 cases).
//! - `fuzz <target> --seconds N`: cargo-fuzz on the spec loader or the request path.
//! - `load`: wrk at 256 and 1024 connections on a mix of valid requests (no non-2xx, no errors,
//!   stable RSS).
//! - `shutdown`: SIGTERM to the service while wrk runs (no non-2xx, exit 0 within the drain).
//! - `tests`: the hostile-input, slow-client, shutdown-under-load and runtime tests of
//!   klue-testbed (`cargo test`).
//! - `ci`: what CI runs: `contract`, a short `load`, `shutdown` and `tests` (no nightly
//!   toolchain needed; fuzzing only with `--fuzz-seconds`).
//! - `all`: everything, with the full durations, fuzzing included.
//!
//! Everything runs on 127.0.0.1. Nothing here fails on a figure that depends on the machine's
//! speed (req/s, latency): only on wrong answers, errors, log lines, exit codes, RSS growth
//! over a full-length run, and the case count of the contract run.

mod contract;
mod fuzz;
mod load;
mod service;
mod shutdown;

use crate::util;
use anyhow::Result;
use std::process::ExitCode;
use std::time::Instant;

/// Options of `cargo xtask reliability`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    part: Part,
}

#[derive(Debug, clap::Subcommand)]
enum Part {
    /// Contract fuzzing with schemathesis against the served spec.
    Contract(contract::Args),
    /// One cargo-fuzz target for a bounded time (spec_loader or request_path).
    Fuzz(fuzz::Args),
    /// wrk load at 256 and 1024 connections: no non-2xx, no errors, stable RSS.
    Load(load::Args),
    /// SIGTERM while wrk runs: no non-2xx, exit 0 within the drain time.
    Shutdown(shutdown::Args),
    /// The hostile-input, slow-client, shutdown-under-load and runtime tests of klue-testbed.
    Tests,
    /// What CI runs: contract (>= 1000 cases), a short load, shutdown under load, tests.
    Ci(CiArgs),
    /// Everything: contract, load 256/1024 for 60 s, shutdown, tests, each fuzz target.
    All(AllArgs),
}

/// Options of `cargo xtask reliability ci`.
#[derive(Debug, clap::Args)]
struct CiArgs {
    /// Seconds of the load run (one level, fresh process; RSS reported, not checked).
    #[arg(long, default_value_t = 20)]
    load_seconds: u64,
    /// Connections of the load run.
    #[arg(long, default_value_t = 256)]
    load_connections: u32,
    /// Seconds per fuzz target; 0 (the default) skips fuzzing, which needs the nightly
    /// toolchain and cargo-fuzz.
    #[arg(long, default_value_t = 0)]
    fuzz_seconds: u64,
    #[command(flatten)]
    contract: contract::Args,
}

/// Options of `cargo xtask reliability all`.
#[derive(Debug, clap::Args)]
struct AllArgs {
    /// Seconds per fuzz target.
    #[arg(long, default_value_t = 300)]
    fuzz_seconds: u64,
    /// Seconds per load run.
    #[arg(long, default_value_t = 60)]
    load_seconds: u64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    let mut report = Vec::new();
    match args.part {
        Part::Contract(a) => {
            contract::run(&a)?;
        }
        Part::Fuzz(a) => {
            fuzz::run(&a)?;
        }
        Part::Load(a) => {
            load::run(&a)?;
        }
        Part::Shutdown(a) => {
            shutdown::run(&a)?;
        }
        Part::Tests => {
            tests(&mut report)?;
        }
        Part::Ci(a) => {
            let contract = a.contract.clone();
            report.push(contract_line(&contract::run(&contract)?));
            let levels = load::run(&load::Args {
                connections: vec![a.load_connections],
                duration: a.load_seconds,
                threads: 2,
                max_rss_growth: 10.0,
                no_rss_check: true,
                timeout: 30,
                max_wait: 1800,
                no_build: true,
            })?;
            report.extend(levels.iter().map(load_line));
            report.push(shutdown_line(&shutdown::run(&shutdown::Args {
                connections: 256,
                before: 5,
                max_wait: 1800,
                no_build: true,
            })?));
            tests(&mut report)?;
            if a.fuzz_seconds > 0 {
                for target in fuzz::TARGETS {
                    report.push(fuzz_line(&fuzz::run(&fuzz::Args {
                        target: target.to_owned(),
                        seconds: a.fuzz_seconds,
                        no_merge: true,
                    })?));
                }
            }
        }
        Part::All(a) => {
            report.push(contract_line(&contract::run(&contract::Args {
                max_examples: 120,
                min_cases: 1000,
                seed: 20_240_601,
                workers: 2,
                api: "helloworld".into(),
                no_build: false,
            })?));
            let levels = load::run(&load::Args {
                connections: vec![256, 1024],
                duration: a.load_seconds,
                threads: 2,
                max_rss_growth: 10.0,
                no_rss_check: false,
                timeout: 10,
                max_wait: 3600,
                no_build: true,
            })?;
            report.extend(levels.iter().map(load_line));
            report.push(shutdown_line(&shutdown::run(&shutdown::Args {
                connections: 1024,
                before: 5,
                max_wait: 3600,
                no_build: true,
            })?));
            tests(&mut report)?;
            for target in fuzz::TARGETS {
                report.push(fuzz_line(&fuzz::run(&fuzz::Args {
                    target: target.to_owned(),
                    seconds: a.fuzz_seconds,
                    no_merge: false,
                })?));
            }
        }
    }
    for line in &report {
        eprintln!("reliability: {line}");
    }
    eprintln!(
        "reliability: passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The runtime's own reliability tests, run against the real klue-testbed binary: hostile
/// input (`hostile`: deep nesting, huge numbers, invalid UTF-8, duplicate keys, trailing data,
/// NUL bytes in path and query, 431, slowloris), the request-level shutdown-under-load test
/// (`shutdown_load`), and the runtime tests (`runtime`: path traversal on `/openapi` and
/// `/docs`, 413 without reading the body whole, JSON 404/405, 500 without leaking the cause,
/// SIGTERM with a request in flight).
/// `--workspace` keeps the features those crates are built with the same as `cargo test
/// --workspace` (`cargo xtask test`), so nothing is rebuilt when that ran first.
fn tests(report: &mut Vec<String>) -> Result<()> {
    let started = Instant::now();
    util::run(util::cargo().current_dir(util::workspace_root()).args([
        "test",
        "--workspace",
        "--test",
        "hostile",
        "--test",
        "shutdown_load",
        "--test",
        "runtime",
    ]))?;
    report.push(format!(
        "tests: klue-testbed hostile, shutdown_load and runtime passed ({:.0} s with the build)",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn contract_line(s: &contract::Summary) -> String {
    format!(
        "contract: {} cases in {:.0} s, no failure ({} ST201 on an empty optional query parameter set aside as finding 4)",
        s.cases, s.seconds, s.finding4
    )
}

fn load_line(r: &load::LevelResult) -> String {
    format!(
        "load {} connections: {} requests ({:.0} req/s), non-2xx {}, socket errors {}, timeouts {}; RSS {} -> {} -> {} KiB ({:+.1}% after warm-up)",
        r.connections,
        r.wrk.requests,
        r.req_per_s(),
        r.wrk.errors_status,
        r.wrk.errors_connect + r.wrk.errors_read + r.wrk.errors_write,
        r.wrk.errors_timeout,
        r.rss_start_kib,
        r.rss_warm_kib,
        r.rss_end_kib,
        r.rss_growth_percent()
    )
}

fn shutdown_line(s: &shutdown::Summary) -> String {
    format!(
        "shutdown under load ({} connections): {} requests answered, non-2xx {}, exit {} {} ms after SIGTERM, log problems {}",
        s.connections,
        s.wrk.requests,
        s.wrk.errors_status,
        if s.exit_ok { "0" } else { "NOT 0" },
        s.exit_ms,
        s.log_problems
    )
}

fn fuzz_line(s: &fuzz::Summary) -> String {
    format!(
        "fuzz {}: {:.0} s, {} executions, {} crash(es), corpus {} file(s)",
        s.target,
        s.seconds,
        s.executions.unwrap_or(0),
        s.crashes.len(),
        s.corpus_files
    )
}
