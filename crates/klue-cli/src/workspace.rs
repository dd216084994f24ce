//! The service repository on disk and the commands run in it: its root, the cargo target
//! directory, cargo itself (without the variables of the `cargo run` that started the xtask),
//! and command lines for messages.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The root of the service repository: the nearest folder holding a `Cargo.toml` with a
/// `[workspace]` table, above the package cargo runs (`CARGO_MANIFEST_DIR` at run time, set by
/// `cargo run` and `cargo test`), else above the current directory.
///
/// Found at run time, never baked in at compile time: builds sharing a target directory
/// across checkouts would otherwise point at another checkout.
pub fn root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    find_root(&start).unwrap_or(start)
}

/// The nearest ancestor of `start` (itself included) whose `Cargo.toml` declares a workspace.
fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.lines().any(|line| line.trim() == "[workspace]"))
        })
        .map(Path::to_path_buf)
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_root_is_the_nearest_workspace_manifest() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let package = dir.path().join("xtask").join("src");
        std::fs::create_dir_all(&package)?;
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\"xtask\"]\n",
        )?;
        std::fs::write(
            dir.path().join("xtask").join("Cargo.toml"),
            "[package]\nname = \"xtask\"\n",
        )?;
        assert_eq!(super::find_root(&package).as_deref(), Some(dir.path()));
        assert_eq!(super::find_root(std::path::Path::new("/")), None);
        Ok(())
    }

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
