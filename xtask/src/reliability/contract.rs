//! Contract fuzzing: schemathesis (pinned in `reliability/requirements.txt`, installed into a
//! venv under the target dir) against the running service's served spec
//! (`/openapi/<api>.json`), every operation, with a valid token. The run fails on any 5xx, any
//! answer that violates the spec (schema, content type, headers), any undocumented status
//! code, and when fewer than `--min-cases` test cases were generated.
//!
//! The service runs as its release build with response validation switched on
//! (`KLUE_VALIDATE_RESPONSES=1`), so a handler answer that breaks the spec also shows as a 500.
//! Schemathesis' own configuration lives in `reliability/schemathesis.toml`; every check it
//! leaves out is justified there.

use super::service::{self, Service};
use crate::util;
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Options of `cargo xtask reliability contract`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Test cases per operation in the fuzzing phase (schemathesis `--max-examples`).
    #[arg(long, default_value_t = 120)]
    pub max_examples: u32,
    /// Fail unless at least this many test cases were generated in all.
    #[arg(long, default_value_t = 1000)]
    pub min_cases: u64,
    /// Seed of the generator (a fixed seed makes a run reproducible).
    #[arg(long, default_value_t = 20_240_601)]
    pub seed: u64,
    /// Concurrent schemathesis workers.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// The served API to test.
    #[arg(long, default_value = "helloworld")]
    pub api: String,
    /// Do not rebuild the release binary (use what is in the target dir).
    #[arg(long)]
    pub no_build: bool,
}

/// What one contract run found.
#[derive(Debug)]
pub struct Summary {
    pub cases: u64,
    pub seconds: f64,
}

pub fn run(args: &Args) -> Result<Summary> {
    let root = util::workspace_root();
    let out = util::target_dir().join("reliability");
    std::fs::create_dir_all(&out)?;
    let python = util::python_venv(
        &out.join("venv"),
        &root.join("reliability/requirements.txt"),
    )?;
    let st = python.with_file_name("st");
    let bin_dir = if args.no_build {
        util::target_dir().join("release")
    } else {
        service::build_release(&["service"])?
    };
    let log = out.join("contract-service.log");
    let server = Service::start(
        &bin_dir.join("service"),
        &log,
        &[("KLUE_VALIDATE_RESPONSES", "1")],
    )?;
    let token = service::token(Duration::from_secs(3600))?;
    let report_dir = out.join("schemathesis");
    // A stale report would be read as this run's.
    let _ = std::fs::remove_dir_all(&report_dir);
    let schema = format!("{}/openapi/{}.json", server.base(), args.api);
    let mut cmd = Command::new(&st);
    cmd.current_dir(root.join("reliability"))
        .args(["--config-file", "schemathesis.toml", "run"])
        .arg(&schema)
        .args(["--url", &server.base()])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--max-examples", &args.max_examples.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .args(["--workers", &args.workers.to_string()])
        .args(["--generation-database", "none"])
        .args(["--report", "junit,ndjson", "--report-dir"])
        .arg(&report_dir)
        .args(["--no-color", "--output-sanitize", "true"])
        .env("SCHEMATHESIS_HOOKS", "");
    let started = Instant::now();
    let shown = format!("{cmd:?}");
    eprintln!("+ {}", shown.replace(&token, "<token>"));
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", st.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let exit = server.terminate(Duration::from_secs(30))?;
    let cases = count_cases(&report_dir)?;
    let server_errors = log_problems(&log)?;
    eprintln!(
        "contract: {cases} test cases in {seconds:.0} s; schemathesis {status}; service {exit} on SIGTERM; \
         {} server-side error line(s) in {}",
        server_errors.len(),
        log.display()
    );
    for line in server_errors.iter().take(10) {
        eprintln!("  server: {line}");
    }
    let mut problems = Vec::new();
    if !status.success() {
        problems.push(format!(
            "schemathesis found failures ({status}); report in {}",
            report_dir.display()
        ));
    }
    if cases < args.min_cases {
        problems.push(format!(
            "only {cases} test cases were generated; at least {} are required",
            args.min_cases
        ));
    }
    if !server_errors.is_empty() {
        problems.push(format!(
            "{} error line(s) in the service log {}",
            server_errors.len(),
            log.display()
        ));
    }
    if !exit.success() {
        problems.push(format!("the service exited with {exit} on SIGTERM"));
    }
    if !problems.is_empty() {
        bail!("contract fuzzing failed:\n  - {}", problems.join("\n  - "));
    }
    Ok(Summary { cases, seconds })
}

/// The number of test cases schemathesis ran, from its NDJSON event stream (one
/// `ScenarioFinished` event per scenario, carrying its recorder's cases).
fn count_cases(report_dir: &Path) -> Result<u64> {
    let mut cases = 0;
    let entries = std::fs::read_dir(report_dir)
        .with_context(|| format!("reading {}", report_dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "ndjson") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        for line in text.lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(recorder) = event
                .get("ScenarioFinished")
                .and_then(|e| e.get("recorder"))
            {
                cases += recorder
                    .get("cases")
                    .and_then(|c| c.as_object())
                    .map_or(0, |c| c.len() as u64);
            }
        }
    }
    Ok(cases)
}

/// Lines of the service's JSON log at level ERROR (5xx reports, panics) or WARN.
pub fn log_problems(log: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    Ok(text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("level").and_then(|l| l.as_str()).map(str::to_owned))
                .is_none_or(|level| level == "ERROR" || level == "WARN")
        })
        .map(str::to_owned)
        .collect())
}
