//! `cargo xtask reliability`: the reliability and security suite of klue (see
//! `docs/reliability.md`).
//!
//! - `contract`: schemathesis against the running service's served spec (no 5xx, no spec
//!   violation, no undocumented status, at least 1000 cases).
//! - `fuzz <target> --seconds N`: cargo-fuzz on the spec loader or the request path.
//! - `load`: wrk at 256 and 1024 connections on a mix of valid requests (no non-2xx, no errors,
//!   stable RSS).
//! - `ci`: what CI runs: `contract` and a short smoke of each fuzz target.
//! - `all`: everything, with the full durations.
//!
//! Hostile input, slow clients, oversized heads and bodies and graceful shutdown (also under
//! load) are `cargo test` tests of klue-testbed, not verbs here. Everything runs on 127.0.0.1.

mod contract;
mod fuzz;
mod load;
mod service;

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
    /// What CI runs: contract fuzzing (>= 1000 cases) and a short smoke of each fuzz target.
    Ci(CiArgs),
    /// Everything: contract, each fuzz target, load.
    All(AllArgs),
}

/// Options of `cargo xtask reliability ci`.
#[derive(Debug, clap::Args)]
struct CiArgs {
    /// Seconds per fuzz target (0 skips fuzzing).
    #[arg(long, default_value_t = 30)]
    fuzz_seconds: u64,
    #[command(flatten)]
    contract: contract::Args,
}

/// Options of `cargo xtask reliability all`.
#[derive(Debug, clap::Args)]
struct AllArgs {
    /// Seconds per fuzz target.
    #[arg(long, default_value_t = 120)]
    fuzz_seconds: u64,
    /// Seconds per load run.
    #[arg(long, default_value_t = 60)]
    load_seconds: u64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let started = Instant::now();
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
        Part::Ci(a) => {
            let summary = contract::run(&a.contract)?;
            eprintln!(
                "ci: contract {} cases in {:.0} s",
                summary.cases, summary.seconds
            );
            if a.fuzz_seconds > 0 {
                for target in fuzz::TARGETS {
                    let s = fuzz::run(&fuzz::Args {
                        target: target.to_owned(),
                        seconds: a.fuzz_seconds,
                        no_merge: true,
                    })?;
                    eprintln!(
                        "ci: fuzz {} {:.0} s, {} executions, {} crash(es), corpus {} file(s)",
                        s.target,
                        s.seconds,
                        s.executions.unwrap_or(0),
                        s.crashes.len(),
                        s.corpus_files
                    );
                }
            }
        }
        Part::All(a) => {
            contract::run(&contract::Args {
                max_examples: 120,
                min_cases: 1000,
                seed: 20_240_601,
                workers: 2,
                api: "helloworld".into(),
                no_build: false,
            })?;
            for target in fuzz::TARGETS {
                fuzz::run(&fuzz::Args {
                    target: target.to_owned(),
                    seconds: a.fuzz_seconds,
                    no_merge: false,
                })?;
            }
            load::run(&load::Args {
                connections: vec![256, 1024],
                duration: a.load_seconds,
                threads: 2,
                max_rss_growth: 10.0,
                max_wait: 3600,
                no_build: true,
            })?;
        }
    }
    eprintln!(
        "reliability: passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
