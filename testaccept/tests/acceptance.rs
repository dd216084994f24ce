//! The acceptance suite as a cargo test target, against the service the environment names:
//!
//! ```sh
//! KLUE_BASE_URL=http://127.0.0.1:8080 cargo test -p testaccept --test acceptance [-- NAME...]
//! ```
//!
//! `KLUE_JWT_TOKEN`, or `KLUE_JWT_SECRET` and `KLUE_JWT_AUDIENCE`, give the token;
//! `KLUE_NO_SSL_CHECK=1` accepts a self-signed certificate. Arguments select checks whose name
//! contains one of them. Without `KLUE_BASE_URL` it fails, saying so: it never passes having
//! run nothing. `cargo xtask accept` runs the same suite and starts the service for you.

use std::process::ExitCode;
use testaccept::{Target, TestResult, summary_line};

fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let target = match Target::from_env() {
        Ok(target) => target,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let checks: Vec<_> = testaccept::suite()
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    if checks.is_empty() {
        eprintln!("error: no check matches {filters:?}");
        return ExitCode::FAILURE;
    }
    println!(
        "\nrunning {} acceptance checks against {}",
        checks.len(),
        target.base_url
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let results: Vec<TestResult> = runtime.block_on(testaccept::run_checks(&target, &checks));
    for r in &results {
        let verdict = if r.passed { "ok" } else { "FAILED" };
        println!(
            "test {} ... {verdict} ({} ms)",
            r.name,
            r.duration.as_millis()
        );
    }
    let failed: Vec<&TestResult> = results.iter().filter(|r| !r.passed).collect();
    if !failed.is_empty() {
        println!("\nfailures:");
        for r in &failed {
            println!("    {}: {}", r.name, r.message);
        }
    }
    println!("\n{}", summary_line(&results));
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
