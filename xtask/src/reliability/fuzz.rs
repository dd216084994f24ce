//! Fuzzing with cargo-fuzz (libFuzzer, nightly toolchain): `fuzz/` is its own workspace with
//! the targets `spec_loader` and `request_path`. A run is bounded in time; new inputs go to a
//! scratch corpus under the target dir and are merged into the committed corpus
//! (`fuzz/corpus/<target>`) only when they are small (at most 2 KiB) and add coverage, so the
//! repository keeps a small, minimized corpus. A crash's input is copied to `fuzz/regressions/<target>/` and the command
//! that reproduces it is printed.

use crate::util;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The fuzz targets of `fuzz/`.
pub const TARGETS: [&str; 2] = ["spec_loader", "request_path"];

/// Largest new input merged into the committed corpus, in bytes.
const KEEP_MAX_BYTES: u64 = 2048;

/// Options of `cargo xtask reliability fuzz`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The fuzz target: spec_loader or request_path.
    pub target: String,
    /// How long to fuzz.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Do not merge new coverage into the committed corpus.
    #[arg(long)]
    pub no_merge: bool,
}

/// What one fuzz run did.
#[derive(Debug)]
pub struct Summary {
    pub target: String,
    pub seconds: f64,
    pub executions: Option<u64>,
    pub corpus_files: usize,
    pub crashes: Vec<PathBuf>,
}

fn max_len(target: &str) -> &'static str {
    match target {
        "spec_loader" => "16384",
        _ => "4096",
    }
}

/// Makes sure the nightly toolchain and cargo-fuzz are there (installs cargo-fuzz if missing).
fn ensure_cargo_fuzz() -> Result<()> {
    let nightly = Command::new("cargo")
        .args(["+nightly", "--version"])
        .output();
    if !nightly.is_ok_and(|o| o.status.success()) {
        bail!("cargo-fuzz needs the nightly toolchain: rustup toolchain install nightly");
    }
    let fuzz = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output();
    if !fuzz.is_ok_and(|o| o.status.success()) {
        util::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

fn fuzz_command(root: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .args(["+nightly", "fuzz"])
        // The rustup proxy picks the toolchain; the stable cargo of `cargo xtask` must not leak in.
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN");
    cmd
}

pub fn run(args: &Args) -> Result<Summary> {
    let target = args.target.as_str();
    if !TARGETS.contains(&target) {
        bail!(
            "unknown fuzz target '{target}' (known: {})",
            TARGETS.join(", ")
        );
    }
    ensure_cargo_fuzz()?;
    let root = util::workspace_root();
    let fuzz_target_dir = util::target_dir().join("fuzz");
    let work = util::target_dir().join("reliability").join("fuzz");
    let scratch = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    std::fs::create_dir_all(&scratch)?;
    std::fs::create_dir_all(&artifacts)?;
    let corpus = root.join("fuzz").join("corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    let before: Vec<PathBuf> = files(&artifacts)?;

    let mut cmd = fuzz_command(&root);
    cmd.args(["run", target, "--target-dir"])
        .arg(&fuzz_target_dir)
        .arg(&scratch)
        .arg(&corpus)
        .arg("--");
    cmd.arg(format!("-max_total_time={}", args.seconds))
        .arg(format!("-max_len={}", max_len(target)))
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()));
    let dict = root
        .join("fuzz")
        .join("dict")
        .join(format!("{target}.dict"));
    if dict.exists() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    let started = Instant::now();
    eprintln!("+ {cmd:?}");
    let output = cmd.output().context("running cargo fuzz")?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    std::fs::write(work.join(format!("{target}.log")), stderr.as_bytes())?;
    let executions = stderr
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok());

    let crashes: Vec<PathBuf> = files(&artifacts)?
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if !crashes.is_empty() || !output.status.success() {
        let regressions = root.join("fuzz").join("regressions").join(target);
        std::fs::create_dir_all(&regressions)?;
        let tail: Vec<&str> = stderr.lines().rev().take(60).collect();
        eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        for crash in &crashes {
            if let Some(name) = crash.file_name() {
                let kept = regressions.join(name);
                std::fs::copy(crash, &kept)?;
                eprintln!(
                    "reproduce: cargo +nightly fuzz run {target} {}",
                    kept.strip_prefix(&root).unwrap_or(&kept).display()
                );
            }
        }
        bail!(
            "fuzz target {target} failed after {seconds:.0} s ({} crash input(s)); full log in {}",
            crashes.len(),
            work.join(format!("{target}.log")).display()
        );
    }
    if !args.no_merge {
        // Keep in the repository only small inputs (mutations of the big seed specs would bloat
        // it), and of those only what adds coverage to what it already holds.
        let small = work.join("small").join(target);
        let _ = std::fs::remove_dir_all(&small);
        std::fs::create_dir_all(&small)?;
        for file in files(&scratch)? {
            if std::fs::metadata(&file)?.len() <= KEEP_MAX_BYTES
                && let Some(name) = file.file_name()
            {
                std::fs::copy(&file, small.join(name))?;
            }
        }
        let mut merge = fuzz_command(&root);
        merge
            .args(["run", target, "--target-dir"])
            .arg(&fuzz_target_dir)
            .arg(&corpus)
            .arg(&small)
            .arg("--")
            .arg("-merge=1")
            .arg(format!("-max_len={}", max_len(target)))
            .arg(format!("-artifact_prefix={}/", artifacts.display()));
        let merged = merge.output().context("merging the corpus")?;
        if !merged.status.success() {
            bail!(
                "merging the corpus failed:\n{}",
                String::from_utf8_lossy(&merged.stderr)
            );
        }
    }
    let corpus_files = files(&corpus)?.len();
    eprintln!(
        "fuzz {target}: {seconds:.0} s, {} executions, no crash; corpus {} has {corpus_files} file(s)",
        executions.map_or("?".to_owned(), |n: u64| n.to_string()),
        corpus.strip_prefix(&root).unwrap_or(&corpus).display()
    );
    Ok(Summary {
        target: target.to_owned(),
        seconds,
        executions,
        corpus_files,
        crashes,
    })
}

fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
