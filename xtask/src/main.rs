//! `cargo xtask <verb>`: this repository's xtask. The service's verbs (accept, image, push,
//! diff, drift, deploy, status, rollback, destroy, token, codegen) come from `klue-cli`, driven
//! by the description of this project, exactly as in any service repository; on top are the
//! framework's own development verbs: `test`, `bench` and `reliability`.

mod bench;
mod reliability;
mod test;
mod util;

use clap::{Parser, Subcommand};
use klue_cli::Project;
use std::process::ExitCode;

/// The example service of this repository, as the verbs see it.
fn project() -> Project {
    Project::new("service")
        .image_name("klue-service")
        .deployment(infra::deployment)
        .acceptance(testaccept::suite)
}

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "klue's verbs: test, token, codegen, accept, bench, ..."
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Benchmark klue against bare axum, klue-microservice and Connexion (wrk, same run).
    Bench(bench::Args),
    /// Reliability suite: contract fuzzing, cargo-fuzz targets, load (see docs/reliability.md).
    Reliability(reliability::Args),
    /// Run every check CI runs: rustfmt, clippy, and the whole test suite (installs the test tools).
    Test(test::Args),
    #[command(flatten)]
    Service(klue_cli::Verb),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return klue_cli::usage_error(error),
    };
    let result = match cli.verb {
        Verb::Service(verb) => return project().run(verb),
        Verb::Bench(args) => bench::run(args),
        Verb::Reliability(args) => reliability::run(args),
        Verb::Test(args) => test::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
