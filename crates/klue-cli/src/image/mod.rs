//! `cargo xtask image`: builds the service as a static binary and writes a reproducible OCI
//! image (one layer) as an OCI layout directory and an oci-archive, with no container daemon.
//!
//! Timestamps come from `SOURCE_DATE_EPOCH`, else the commit time, so the same commit built
//! twice gives the same digest. Output goes under `<target>/klue-image/` (honouring
//! `CARGO_TARGET_DIR`): `oci/` (layout), `<image name>.oci.tar` (archive) and `image.json`
//! (ref, digest, size). Not for: running the image (`podman.rs`) or pushing it (`push.rs`).

pub mod binary;
pub mod oci;

use crate::{Project, workspace};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Where the CA bundle is taken from (Debian's `ca-certificates`).
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Options of `cargo xtask image`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Output directory (default: <target>/klue-image).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Use this static binary instead of building the service.
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// CA bundle to put in the image.
    #[arg(long, default_value = HOST_CA_BUNDLE)]
    pub ca_bundle: PathBuf,
    /// Tag (default: the service's version).
    #[arg(long)]
    pub tag: Option<String>,
}

impl Default for Args {
    /// What `cargo xtask image` without flags does (the verbs that build an image use this).
    fn default() -> Self {
        Args {
            out: None,
            binary: None,
            ca_bundle: PathBuf::from(HOST_CA_BUNDLE),
            tag: None,
        }
    }
}

/// What a build produced, as written to `image.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Built {
    /// The name `podman load` gives the image (`ref.name`), e.g. `localhost/orders:0.1.0`.
    pub reference: String,
    /// The image (manifest) digest.
    pub digest: String,
    /// Manifest + config + layer bytes.
    pub compressed_size: u64,
    /// The tag (the version unless `--tag`).
    pub tag: String,
    /// The OCI layout directory.
    pub layout: PathBuf,
    /// The oci-archive.
    pub archive: PathBuf,
}

/// The default output directory.
pub fn default_out() -> PathBuf {
    workspace::target_dir().join("klue-image")
}

/// Runs the verb.
pub fn run(project: &Project, args: &Args) -> Result<ExitCode> {
    let built = build(project, args)?;
    println!("image    {}", built.reference);
    println!("digest   {}", built.digest);
    println!(
        "size     {} bytes compressed ({:.2} MB)",
        built.compressed_size,
        built.compressed_size as f64 / 1_000_000.0
    );
    println!("layout   {}", built.layout.display());
    println!("archive  {}", built.archive.display());
    Ok(ExitCode::SUCCESS)
}

/// Builds the project's service binary (unless given) and the image; writes layout, archive
/// and `image.json`.
pub fn build(project: &Project, args: &Args) -> Result<Built> {
    let binary_path = match &args.binary {
        Some(path) => path.clone(),
        None => binary::build_static(
            project.service_package_name(),
            project.service_binary_name(),
        )?,
    };
    let binary = std::fs::read(&binary_path)
        .with_context(|| format!("reading {}", binary_path.display()))?;
    binary::check_static(&binary)
        .with_context(|| format!("{} cannot go into the image", binary_path.display()))?;
    let ca_bundle = std::fs::read(&args.ca_bundle).with_context(|| {
        format!(
            "reading the CA bundle {} (on Debian: apt-get install ca-certificates)",
            args.ca_bundle.display()
        )
    })?;
    let meta = package_meta(project.service_package_name())?;
    let tag = args.tag.clone().unwrap_or_else(|| meta.version.clone());
    let image_name = project.image();
    let reference = format!("localhost/{image_name}:{tag}");
    let epoch = source_date_epoch()?;
    let input = oci::ImageInput {
        binary,
        ca_bundle,
        epoch,
        version: meta.version,
        revision: git_revision(),
        source: meta.repository,
        title: image_name.to_owned(),
        licenses: meta.license,
        ref_name: reference.clone(),
    };
    let image = oci::build(&input)?;

    let out = args.out.clone().unwrap_or_else(default_out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let layout = out.join("oci");
    oci::write_layout(&image, &layout)?;
    let archive = out.join(format!("{image_name}.oci.tar"));
    write_atomically(&archive, &oci::archive(&image, epoch)?)?;
    let built = Built {
        reference,
        digest: image.digest().to_owned(),
        compressed_size: image.compressed_size(),
        tag,
        layout,
        archive,
    };
    write_atomically(&out.join("image.json"), &serde_json::to_vec_pretty(&built)?)?;
    Ok(built)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The service package's version, repository and licence.
struct PackageMeta {
    version: String,
    repository: String,
    license: String,
}

fn package_meta(service_package: &str) -> Result<PackageMeta> {
    let root = workspace::root();
    let out = workspace::cargo()
        .current_dir(&root)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let package = metadata["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == service_package))
        .with_context(|| format!("no package {service_package} in the workspace"))?;
    let field = |name: &str| package[name].as_str().map(str::to_owned);
    let repository = field("repository")
        .or_else(|| workspace_repository(&root))
        .unwrap_or_else(|| "unknown".to_owned());
    Ok(PackageMeta {
        version: field("version").context("the service has no version")?,
        repository,
        license: field("license").unwrap_or_else(|| "NOASSERTION".to_owned()),
    })
}

/// `repository` of `[workspace.package]` in the root Cargo.toml (cargo metadata omits it for
/// packages that do not inherit it).
fn workspace_repository(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml")).ok()?;
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section && let Some(value) = line.strip_prefix("repository") {
            let value = value.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_owned());
        }
    }
    None
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(workspace::root())
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The commit the image is built from (`unknown` outside a git checkout).
fn git_revision() -> String {
    git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
}

/// `SOURCE_DATE_EPOCH` if set, else the commit time of HEAD, else (a repository without a
/// commit yet, e.g. just made by `cargo klue new`) 0: the image stays reproducible, and a note
/// says where its timestamps come from.
fn source_date_epoch() -> Result<i64> {
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        return value
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds"));
    }
    match git(&["log", "-1", "--format=%ct"]).and_then(|s| s.parse().ok()) {
        Some(time) => Ok(time),
        None => {
            eprintln!(
                "note: no git commit and no SOURCE_DATE_EPOCH: the image's timestamps are \
                 1970-01-01 (commit, or set SOURCE_DATE_EPOCH, to date it)"
            );
            Ok(0)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn workspace_repository_is_read() {
        let repo = workspace_repository(&workspace::root());
        assert!(repo.is_some_and(|r| r.starts_with("https://")));
    }
}
