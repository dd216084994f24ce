//! Contract fuzzing: schemathesis (pinned in `reliability/requirements.txt`, installed into a
//! venv under the target dir) against the running service's served spec
//! (`/openapi/<api>.json`), every operation, with a valid token. The run fails on any 5xx, any
//! answer that violates the spec (schema, content type, headers), any undocumented status
//! code, and when fewer than `--min-cases` test cases were generated.
//!
//! The service runs as its release build with response validation switched on
//! (`KLUE_VALIDATE_RESPONSES=1`), so a handler answer that breaks the spec also shows as a 500.
//! Schemathesis' own configuration lives in `reliability/schemathesis.toml`; every check it
//! leaves out is justified there. `reliability/hooks.py` drops one failure and nothing else: an
//! ST201 whose only invalid data is an optional query parameter sent empty (`?offset=`), which
//! the runtime reads as absent on purpose (finding 4 in `docs/reliability.md`).

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
    /// ST201 failures set aside by `reliability/hooks.py` as finding 4.
    pub finding4: usize,
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
    let dropped_file = out.join("schemathesis-dropped.txt");
    let schema = format!("{}/openapi/{}.json", server.base(), args.api);
    let mut cmd = Command::new(&st);
    // schemathesis keeps its crash cache (for `st replay <id>`) in `.schemathesis/` of its working
    // directory: run it in the work dir, so that nothing is written into the repository.
    cmd.current_dir(&out)
        .arg("--config-file")
        .arg(root.join("reliability").join("schemathesis.toml"))
        .arg("run")
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
        // Our hooks only (`reliability/hooks.py`: the one documented leniency, finding 4), never
        // whatever the caller's environment names.
        .env(
            "SCHEMATHESIS_HOOKS",
            root.join("reliability").join("hooks.py"),
        )
        .env("KLUE_RELIABILITY_DROPPED", &dropped_file);
    let shown = format!("{cmd:?}");
    let mut attempt = 1;
    let (status, seconds, report) = loop {
        // A stale report would be read as this run's.
        let _ = std::fs::remove_dir_all(&report_dir);
        let _ = std::fs::remove_file(&dropped_file);
        let started = Instant::now();
        eprintln!("+ {}", shown.replace(&token, "<token>"));
        let status = cmd
            .status()
            .with_context(|| format!("could not start {}", st.display()))?;
        let seconds = started.elapsed().as_secs_f64();
        let report = read_report(&report_dir)?;
        // schemathesis (hypothesis under it) now and then stops a scenario on an internal error
        // of its own (seen: a KeyError in hypothesis' lambda-source cache with 2 workers, not
        // reproducible with the same seed). That says nothing about the service: run once more,
        // and say so. A check failure is never retried.
        if !status.success()
            && report.failed_checks == 0
            && !report.errors.is_empty()
            && attempt == 1
        {
            eprintln!(
                "contract: schemathesis stopped on {} internal error(s) of its own and no check \
                 failed; running it once more. First error: {}",
                report.errors.len(),
                report.errors[0]
            );
            attempt += 1;
            continue;
        }
        break (status, seconds, report);
    };
    let exit = server.terminate(Duration::from_secs(30))?;
    let cases = report.cases;
    let server_errors = log_problems(&log)?;
    let dropped: Vec<String> = std::fs::read_to_string(&dropped_file)
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default();
    eprintln!(
        "contract: {cases} test cases in {seconds:.0} s; schemathesis {status}; service {exit} on SIGTERM; \
         {} server-side error line(s) in {}; {} ST201 failure(s) on an empty optional query \
         parameter set aside as finding 4 (kept on purpose)",
        server_errors.len(),
        log.display(),
        dropped.len()
    );
    for line in dropped.iter().take(5) {
        eprintln!("  finding 4: {line}");
    }
    for line in server_errors.iter().take(10) {
        eprintln!("  server: {line}");
    }
    let mut problems = Vec::new();
    if !status.success() {
        problems.push(format!(
            "schemathesis found failures ({status}: {} failed check(s), {} error(s)); report in {}",
            report.failed_checks,
            report.errors.len(),
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
    Ok(Summary {
        cases,
        seconds,
        finding4: dropped.len(),
    })
}

/// What schemathesis' NDJSON event stream says about a run.
struct Report {
    /// Test cases run (one `ScenarioFinished` event per scenario, carrying its recorder's cases).
    cases: u64,
    /// Checks that failed, over all scenarios.
    failed_checks: u64,
    /// schemathesis' own errors (`NonFatalError`/`FatalError` events), as their messages.
    errors: Vec<String>,
}

fn read_report(report_dir: &Path) -> Result<Report> {
    let mut report = Report {
        cases: 0,
        failed_checks: 0,
        errors: Vec::new(),
    };
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
            for kind in ["NonFatalError", "FatalError"] {
                if let Some(error) = event.get(kind) {
                    let message = error
                        .pointer("/info/message")
                        .and_then(|m| m.as_str())
                        .map_or_else(|| error.to_string(), str::to_owned);
                    report.errors.push(format!(
                        "{kind}: {}",
                        message.chars().take(300).collect::<String>()
                    ));
                }
            }
            let Some(recorder) = event
                .get("ScenarioFinished")
                .and_then(|e| e.get("recorder"))
            else {
                continue;
            };
            report.cases += recorder
                .get("cases")
                .and_then(|c| c.as_object())
                .map_or(0, |c| c.len() as u64);
            if let Some(checks) = recorder.get("checks").and_then(|c| c.as_object()) {
                report.failed_checks += checks
                    .values()
                    .filter_map(|c| c.as_array())
                    .flatten()
                    .filter(|c| c.get("status").and_then(|s| s.as_str()) == Some("failure"))
                    .count() as u64;
            }
        }
    }
    Ok(report)
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
