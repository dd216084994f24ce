//! `cargo xtask test`: what CI runs. Installs the Python test tools into a venv, then runs
//! rustfmt, clippy, actionlint on `.github/workflows`, packages the crates a service depends on
//! as crates.io would take them, and runs every test of the workspace.

use crate::util::{self, cargo, python_venv, target_dir, workspace_root};
use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and clippy (only run the tests).
    #[arg(long)]
    no_lint: bool,
    /// Extra arguments passed to `cargo test` (after `--workspace`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cargo_args: Vec<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let root = workspace_root();
    let python = python_venv(
        &target_dir().join("klue-test-venv"),
        &root.join("xtask").join("test-requirements.txt"),
    )?;
    if !args.no_lint {
        util::run(cargo().current_dir(&root).args(["fmt", "--all", "--check"]))?;
        util::run(cargo().current_dir(&root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
        lint_workflows(&python)?;
        package_published_crates()?;
    }
    util::run(
        cargo()
            .current_dir(&root)
            .env("KLUE_TEST_PYTHON", &python)
            .args(["test", "--workspace"])
            .args(&args.cargo_args),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The crates a service depends on, in dependency order: what `cargo publish` would upload.
const PUBLISHED_CRATES: [&str; 6] = [
    "klue-spec",
    "klue",
    "klue-codegen",
    "klue-deploy",
    "klue-accept",
    "klue-cli",
];

/// `cargo package` of [`PUBLISHED_CRATES`] without the verification build: fails on what
/// crates.io would refuse (a dependency without a version, a file outside the crate, missing
/// metadata). `--allow-dirty`: the check is of the manifests, not of the checkout's state.
fn package_published_crates() -> Result<()> {
    let mut cmd = cargo();
    cmd.current_dir(workspace_root())
        .args(["package", "--quiet", "--no-verify", "--allow-dirty"]);
    for name in PUBLISHED_CRATES {
        cmd.args(["--package", name]);
    }
    util::run(&mut cmd)
}

/// actionlint (from the venv) on every workflow file.
fn lint_workflows(python: &std::path::Path) -> Result<()> {
    let actionlint = python.with_file_name("actionlint");
    let dir = workspace_root().join(".github").join("workflows");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    util::run(
        std::process::Command::new(&actionlint)
            .current_dir(workspace_root())
            .args(&files),
    )
}
