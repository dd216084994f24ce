//! Builds the service as a static x86-64 Linux binary and checks that it is static.
//!
//! The musl target is used when its standard library is installed; otherwise the gnu target
//! with `-C target-feature=+crt-static` (glibc's `libc.a`, Debian package `libc6-dev`). Paths
//! of the workspace and of cargo's registry are remapped so the binary does not depend on where
//! the checkout lives. Not for: assembling the image (see `oci.rs`).

use crate::workspace;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The musl target, preferred when installed.
pub const MUSL: &str = "x86_64-unknown-linux-musl";
/// The gnu target, linked statically with `+crt-static`.
pub const GNU: &str = "x86_64-unknown-linux-gnu";

/// The rustc sysroot (from `rustc --print sysroot`).
fn sysroot() -> Result<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc --print sysroot")?;
    if !out.status.success() {
        bail!(
            "rustc --print sysroot failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Whether the standard library for `target` is installed in the sysroot.
fn target_installed(sysroot: &Path, target: &str) -> bool {
    sysroot
        .join("lib")
        .join("rustlib")
        .join(target)
        .join("lib")
        .is_dir()
}

/// The target to build for, checking the pieces the link needs.
pub fn choose_target() -> Result<&'static str> {
    let sysroot = sysroot()?;
    if target_installed(&sysroot, MUSL) {
        return Ok(MUSL);
    }
    if !target_installed(&sysroot, GNU) {
        bail!(
            "neither {MUSL} nor {GNU} is installed for this toolchain \
             (rustup target add {MUSL}, or build on an x86-64 Linux host)"
        );
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .arg("-print-file-name=libc.a")
        .output()
        .with_context(|| {
            format!("no C linker `{cc}` to link {GNU} (on Debian: apt-get install gcc libc6-dev)")
        })?;
    let libc = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !Path::new(&libc).is_absolute() {
        bail!(
            "{MUSL} is not installed and glibc's static libc.a is missing for {GNU} +crt-static \
             (on Debian: apt-get install libc6-dev; or rustup target add {MUSL})"
        );
    }
    Ok(GNU)
}

/// Builds `package`'s binary `bin` in release mode for a static target and returns its path.
pub fn build_static(package: &str, bin: &str) -> Result<PathBuf> {
    let target = choose_target()?;
    let root = workspace::root();
    let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if target == GNU {
        flags.push_str(" -C target-feature=+crt-static");
    }
    flags.push_str(&format!(" --remap-path-prefix={}=/klue", root.display()));
    if let Some(home) = cargo_home() {
        flags.push_str(&format!(" --remap-path-prefix={}=/cargo", home.display()));
    }
    eprintln!("building {package} for {target} (static)");
    workspace::run(
        workspace::cargo()
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "--package",
                package,
                "--bin",
                bin,
                "--target",
                target,
            ])
            .env("RUSTFLAGS", flags.trim()),
    )
    .with_context(|| format!("static build of {package} for {target}"))?;
    let path = workspace::target_dir()
        .join(target)
        .join("release")
        .join(bin);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    check_static(&bytes).with_context(|| format!("{} is not usable", path.display()))?;
    Ok(path)
}

fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
}

/// Checks that `elf` is a 64-bit little-endian x86-64 executable with no program
/// interpreter (`PT_INTERP`), that is, a static (or static-pie) executable.
pub fn check_static(elf: &[u8]) -> Result<()> {
    const PT_INTERP: u32 = 3;
    const EM_X86_64: u16 = 62;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
        bail!("not an ELF file");
    }
    if elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        bail!("not a 64-bit little-endian ELF file");
    }
    if u16_at(18) != Some(EM_X86_64) {
        bail!("not an x86-64 binary");
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(32), u16_at(54), u16_at(56)) else {
        bail!("truncated ELF header");
    };
    for i in 0..usize::from(phnum) {
        let at = usize::try_from(phoff)? + i * usize::from(phentsize);
        match u32_at(at) {
            Some(PT_INTERP) => {
                bail!("dynamically linked (it has a program interpreter); the image has no libc")
            }
            Some(_) => {}
            None => bail!("truncated ELF program headers"),
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_running_test_binary_is_dynamic() {
        // Test binaries are built for the host without +crt-static: they have an interpreter.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let err = check_static(&me).unwrap_err().to_string();
        assert!(err.contains("dynamically linked"), "{err}");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(check_static(b"#!/bin/sh\n").is_err());
        assert!(check_static(b"\x7fELF\x02\x01").is_err());
        assert!(check_static(b"").is_err());
    }
}
