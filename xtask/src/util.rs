//! Small helpers shared by the verbs: paths and running commands.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the folder holding the root Cargo.toml).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The cargo binary that runs this xtask, without the per-package variables `cargo run` gave
/// the xtask itself (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...): build scripts that track them
/// (ring's does) would otherwise see them change between a `cargo xtask` build and a plain
/// one, and rebuild half the dependency tree every time.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if is_package_variable(name) {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// The variables cargo sets for one package's build or run.
fn is_package_variable(name: &str) -> bool {
    name == "CARGO_MANIFEST_DIR"
        || name == "CARGO_MANIFEST_PATH"
        || name == "CARGO_MANIFEST_LINKS"
        || name == "CARGO_PRIMARY_PACKAGE"
        || name == "CARGO_CRATE_NAME"
        || name == "CARGO_BIN_NAME"
        || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
}

/// A command's program and arguments for messages. Not `{cmd:?}`: `Command`'s debug output
/// also lists the variables set on it, and those may hold secrets.
pub fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|part| {
            let part = part.to_string_lossy();
            if part.is_empty() || part.contains(char::is_whitespace) {
                format!("{part:?}")
            } else {
                part.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a command, failing with its command line when it does not exit 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = command_line(cmd);
    eprintln!("+ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn only_package_variables_are_dropped() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION",
            "CARGO_CRATE_NAME",
        ] {
            assert!(super::is_package_variable(name), "{name}");
        }
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_TERM_COLOR",
            "RUSTFLAGS",
        ] {
            assert!(!super::is_package_variable(name), "{name}");
        }
    }
}
