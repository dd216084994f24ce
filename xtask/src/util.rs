//! Helpers of the development verbs: the repository's paths and commands (from klue-cli, as
//! the verbs use them) and the Python venvs of test tools.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub use klue_cli::workspace::{cargo, root as workspace_root, run, target_dir};

/// Creates (or reuses) a Python venv at `venv` with `requirements` installed, and returns the
/// path of its python. Reuse is keyed on the requirements file's content.
pub fn python_venv(venv: &Path, requirements: &Path) -> Result<PathBuf> {
    let python = venv.join("bin").join("python");
    let wanted = std::fs::read_to_string(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = venv.join(".klue-requirements");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    if !python.exists() {
        let interpreter = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(Command::new(&interpreter).args(["-m", "venv"]).arg(venv))
            .context("creating the test venv (on Debian: apt-get install python3-venv)")?;
    }
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(requirements))?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}
