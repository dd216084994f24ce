//! Reproducible OCI image assembly: one gzipped layer (the static binary, a CA bundle, a
//! non-root user), the image config, the manifest and the index, written as an OCI layout
//! directory and as an oci-archive (a tar of that layout).
//!
//! Everything here is a pure function of its inputs: tar entries are sorted, owners are fixed
//! numbers with no names, every mtime is the given epoch, the gzip header carries no name and
//! no time, and JSON documents are serialized with sorted keys. The same inputs give the same
//! bytes, hence the same digests. Not for: building the binary (see `binary.rs`) or pushing
//! (see `push.rs`).

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat};
use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    ANNOTATION_CREATED, ANNOTATION_LICENSES, ANNOTATION_REF_NAME, ANNOTATION_REVISION,
    ANNOTATION_SOURCE, ANNOTATION_TITLE, ANNOTATION_VERSION, Arch, ConfigBuilder, Descriptor,
    Digest, HistoryBuilder, ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder,
    MediaType, Os, PlatformBuilder, RootFsBuilder,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

/// The uid and gid the service runs as (the conventional "nonroot" of distroless images).
pub const USER_ID: u64 = 65532;
/// Where the binary lives in the image.
pub const BINARY_PATH: &str = "/app/service";
/// Where the CA bundle lives in the image (the Debian path, which rustls-native-certs and
/// OpenSSL look at first).
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The port the service listens on inside the image (`PORT`, `ExposedPorts`).
pub const PORT: u16 = 8080;

/// What goes into the image, all of it explicit so the result is a pure function of it.
#[derive(Debug, Clone)]
pub struct ImageInput {
    /// The static service binary.
    pub binary: Vec<u8>,
    /// The CA certificates bundle (PEM).
    pub ca_bundle: Vec<u8>,
    /// Seconds since the Unix epoch, used for every timestamp (tar mtimes, `created`).
    pub epoch: i64,
    /// The service version (`org.opencontainers.image.version`, also the tag).
    pub version: String,
    /// The git revision the image was built from (`org.opencontainers.image.revision`).
    pub revision: String,
    /// Where the source lives (`org.opencontainers.image.source`).
    pub source: String,
    /// The image title (`org.opencontainers.image.title`), e.g. `orders`.
    pub title: String,
    /// The licence expression (`org.opencontainers.image.licenses`).
    pub licenses: String,
    /// The reference `podman load` and skopeo give the image (`...ref.name` in index.json).
    pub ref_name: String,
}

/// A content-addressed blob: its bytes, digest and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// The OCI media type.
    pub media_type: String,
    /// The content.
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &MediaType, bytes: Vec<u8>) -> Self {
        Blob {
            digest: sha256_digest(&bytes),
            media_type: media_type.to_string(),
            bytes,
        }
    }

    /// The digest without its `sha256:` prefix (the file name under `blobs/sha256/`).
    pub fn hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }

    fn descriptor(&self) -> Result<Descriptor> {
        let digest = Digest::from_str(&self.digest).context("a sha256 digest")?;
        Ok(Descriptor::new(
            MediaType::from(self.media_type.as_str()),
            self.bytes.len() as u64,
            digest,
        ))
    }
}

/// A built image: its blobs and the layout's index.
#[derive(Debug, Clone)]
pub struct Image {
    /// The one gzipped layer.
    pub layer: Blob,
    /// The image configuration.
    pub config: Blob,
    /// The image manifest; its digest is the image's digest.
    pub manifest: Blob,
    /// The layout's `index.json`.
    pub index_json: Vec<u8>,
}

impl Image {
    /// The image digest (the manifest's).
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }

    /// What a registry stores and a pull downloads: manifest, config and layer.
    pub fn compressed_size(&self) -> u64 {
        (self.manifest.bytes.len() + self.config.bytes.len() + self.layer.bytes.len()) as u64
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// RFC 3339 (UTC, seconds) of a Unix time.
pub fn rfc3339(epoch: i64) -> Result<String> {
    let time = DateTime::from_timestamp(epoch, 0)
        .with_context(|| format!("timestamp {epoch} is out of range"))?;
    Ok(time.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// One entry of a deterministic tar.
struct Entry<'a> {
    path: String,
    mode: u32,
    owner: u64,
    data: Option<&'a [u8]>,
}

impl<'a> Entry<'a> {
    fn dir(path: &str, mode: u32, owner: u64) -> Self {
        Entry {
            path: path.to_owned(),
            mode,
            owner,
            data: None,
        }
    }
    fn file(path: &str, mode: u32, data: &'a [u8]) -> Self {
        Entry {
            path: path.to_owned(),
            mode,
            owner: 0,
            data: Some(data),
        }
    }
}

/// Writes `entries` as a tar, sorted by path, with fixed owners, modes and mtimes.
fn deterministic_tar(mut entries: Vec<Entry<'_>>, epoch: i64) -> Result<Vec<u8>> {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let mtime = u64::try_from(epoch).unwrap_or(0);
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mode(entry.mode);
        header.set_uid(entry.owner);
        header.set_gid(entry.owner);
        header.set_mtime(mtime);
        let data = entry.data.unwrap_or_default();
        header.set_size(data.len() as u64);
        header.set_entry_type(if entry.data.is_some() {
            tar::EntryType::Regular
        } else {
            tar::EntryType::Directory
        });
        builder
            .append_data(&mut header, &entry.path, data)
            .with_context(|| format!("adding {} to the tar", entry.path))?;
    }
    builder.into_inner().context("finishing the tar")
}

/// Gzip with a fixed header: no file name, mtime 0, OS "unknown", best compression.
fn deterministic_gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::best());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

/// Serializes with object keys sorted at every level, compactly: canonical bytes whatever
/// map types the value was built from.
pub fn canonical_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    fn sort(value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sort).collect()),
            other => other,
        }
    }
    Ok(serde_json::to_vec(&sort(serde_json::to_value(value)?))?)
}

/// The layer's files: the binary, the CA bundle, `/etc/passwd` and `/etc/group` naming the
/// non-root user, its home, and a sticky `/tmp`.
fn layer_tar(input: &ImageInput, passwd: &[u8], group: &[u8]) -> Result<Vec<u8>> {
    let trim = |path: &str| path.trim_start_matches('/').to_owned();
    let entries = vec![
        Entry::dir("app/", 0o755, 0),
        Entry::file(&trim(BINARY_PATH), 0o755, &input.binary),
        Entry::dir("etc/", 0o755, 0),
        Entry::file("etc/group", 0o644, group),
        Entry::file("etc/passwd", 0o644, passwd),
        Entry::dir("etc/ssl/", 0o755, 0),
        Entry::dir("etc/ssl/certs/", 0o755, 0),
        Entry::file(&trim(CA_BUNDLE_PATH), 0o644, &input.ca_bundle),
        Entry::dir("home/", 0o755, 0),
        Entry::dir("home/nonroot/", 0o700, USER_ID),
        Entry::dir("tmp/", 0o1777, 0),
    ];
    deterministic_tar(entries, input.epoch)
}

/// Builds the image: layer, config, manifest and index, all deterministic.
pub fn build(input: &ImageInput) -> Result<Image> {
    let created = rfc3339(input.epoch)?;
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{USER_ID}:{USER_ID}:nonroot:/home/nonroot:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nnonroot:x:{USER_ID}:\n");
    let tar = layer_tar(input, passwd.as_bytes(), group.as_bytes())?;
    let diff_id = sha256_digest(&tar);
    let layer = Blob::new(&MediaType::ImageLayerGzip, deterministic_gzip(&tar)?);

    let labels: HashMap<String, String> = [
        (ANNOTATION_CREATED, created.as_str()),
        (ANNOTATION_VERSION, input.version.as_str()),
        (ANNOTATION_REVISION, input.revision.as_str()),
        (ANNOTATION_SOURCE, input.source.as_str()),
        (ANNOTATION_TITLE, input.title.as_str()),
        (ANNOTATION_LICENSES, input.licenses.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    let config = ConfigBuilder::default()
        .user(format!("{USER_ID}:{USER_ID}"))
        .entrypoint(vec![BINARY_PATH.to_owned()])
        .env(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            format!("PORT={PORT}"),
            format!("SSL_CERT_FILE={CA_BUNDLE_PATH}"),
            "HOME=/home/nonroot".to_owned(),
        ])
        .exposed_ports(vec![format!("{PORT}/tcp")])
        .working_dir("/".to_owned())
        .stop_signal("SIGTERM".to_owned())
        .labels(labels.clone())
        .build()?;
    let configuration = ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id.clone()])
                .build()?,
        )
        .history(vec![
            HistoryBuilder::default()
                .created(created.clone())
                .created_by("cargo xtask image".to_owned())
                .comment(format!(
                    "{} {} ({})",
                    input.title, input.version, input.revision
                ))
                .build()?,
        ])
        .build()?;
    let config = Blob::new(&MediaType::ImageConfig, canonical_json(&configuration)?);

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor()?)
        .layers(vec![layer.descriptor()?])
        .annotations(labels)
        .build()?;
    let manifest = Blob::new(&MediaType::ImageManifest, canonical_json(&manifest)?);

    let mut entry = manifest.descriptor()?;
    entry.set_platform(Some(
        PlatformBuilder::default()
            .architecture(Arch::Amd64)
            .os(Os::Linux)
            .build()?,
    ));
    entry.set_annotations(Some(HashMap::from([(
        ANNOTATION_REF_NAME.to_owned(),
        input.ref_name.clone(),
    )])));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![entry])
        .build()?;
    let index_json = canonical_json(&index)?;

    Ok(Image {
        layer,
        config,
        manifest,
        index_json,
    })
}

/// The `oci-layout` marker file's content.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes the image as an OCI layout directory at `dir` (replacing what was there).
pub fn write_layout(image: &Image, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    for blob in [&image.layer, &image.config, &image.manifest] {
        std::fs::write(blobs.join(blob.hex()), &blob.bytes)?;
    }
    std::fs::write(dir.join("oci-layout"), OCI_LAYOUT)?;
    std::fs::write(dir.join("index.json"), &image.index_json)?;
    Ok(())
}

/// The oci-archive: a deterministic tar of the layout (what `podman load` and
/// `skopeo copy oci-archive:` read).
pub fn archive(image: &Image, epoch: i64) -> Result<Vec<u8>> {
    let paths: Vec<(String, &[u8])> = [&image.layer, &image.config, &image.manifest]
        .into_iter()
        .map(|blob| {
            (
                format!("blobs/sha256/{}", blob.hex()),
                blob.bytes.as_slice(),
            )
        })
        .collect();
    let mut entries = vec![
        Entry::dir("blobs/", 0o755, 0),
        Entry::dir("blobs/sha256/", 0o755, 0),
        Entry::file("index.json", 0o644, &image.index_json),
        Entry::file("oci-layout", 0o644, OCI_LAYOUT),
    ];
    for (path, bytes) in &paths {
        entries.push(Entry::file(path, 0o644, bytes));
    }
    deterministic_tar(entries, epoch)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    fn input() -> ImageInput {
        ImageInput {
            binary: b"\x7fELF not really a binary".to_vec(),
            ca_bundle: b"-----BEGIN CERTIFICATE-----\n".to_vec(),
            epoch: 1_700_000_000,
            version: "0.1.0".into(),
            revision: "0123456789abcdef0123456789abcdef01234567".into(),
            source: "https://example.invalid/klue".into(),
            title: "orders".into(),
            licenses: "MIT".into(),
            ref_name: "localhost/orders:0.1.0".into(),
        }
    }

    #[test]
    fn same_input_same_digests() {
        let a = build(&input()).unwrap();
        let b = build(&input()).unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.layer, b.layer);
        assert_eq!(a.index_json, b.index_json);
        assert_eq!(archive(&a, 1).unwrap(), archive(&b, 1).unwrap());
    }

    #[test]
    fn epoch_and_revision_change_the_digest() {
        let base = build(&input()).unwrap();
        let mut later = input();
        later.epoch += 1;
        assert_ne!(build(&later).unwrap().digest(), base.digest());
        let mut other = input();
        other.revision = "f".repeat(40);
        let other = build(&other).unwrap();
        assert_ne!(other.digest(), base.digest());
        assert_eq!(other.layer, base.layer, "labels are not in the layer");
    }

    #[test]
    fn gzip_header_is_fixed() {
        let image = build(&input()).unwrap();
        let header = &image.layer.bytes[..10];
        assert_eq!(&header[..4], &[0x1f, 0x8b, 8, 0], "no FNAME or other flags");
        assert_eq!(&header[4..8], &[0, 0, 0, 0], "mtime 0");
        assert_eq!(header[9], 255, "OS unknown");
    }

    #[test]
    fn layer_entries_are_sorted_owned_and_timed() {
        let image = build(&input()).unwrap();
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(image.layer.bytes.as_slice())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let config: Value = serde_json::from_slice(&image.config.bytes).unwrap();
        assert_eq!(
            Value::from(sha256_digest(&tar_bytes)),
            config["rootfs"]["diff_ids"][0]
        );
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            assert_eq!(header.mtime().unwrap(), 1_700_000_000, "{path}");
            let uid = header.uid().unwrap();
            assert_eq!(uid, header.gid().unwrap());
            assert_eq!(
                uid,
                if path == "home/nonroot/" { USER_ID } else { 0 },
                "{path}"
            );
            assert_eq!(header.username().unwrap(), Some(""), "{path}");
            if path == "app/service" {
                assert_eq!(header.mode().unwrap(), 0o755);
            }
            seen.push(path);
        }
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted);
        assert!(seen.contains(&"etc/ssl/certs/ca-certificates.crt".to_owned()));
    }

    #[test]
    fn config_has_user_entrypoint_env_ports_labels() {
        let image = build(&input()).unwrap();
        let config: Value = serde_json::from_slice(&image.config.bytes).unwrap();
        let c = &config["config"];
        assert_eq!(c["User"], "65532:65532");
        assert_eq!(c["Entrypoint"], serde_json::json!(["/app/service"]));
        assert!(
            c["Env"]
                .as_array()
                .unwrap()
                .contains(&Value::from("PORT=8080"))
        );
        assert_eq!(c["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
        assert_eq!(c["Labels"]["org.opencontainers.image.version"], "0.1.0");
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        let index: Value = serde_json::from_slice(&image.index_json).unwrap();
        assert_eq!(
            index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "localhost/orders:0.1.0"
        );
        assert_eq!(index["manifests"][0]["digest"], Value::from(image.digest()));
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let map: HashMap<&str, u8> = [("b", 1), ("a", 2), ("c", 3)].into_iter().collect();
        assert_eq!(canonical_json(&map).unwrap(), br#"{"a":2,"b":1,"c":3}"#);
    }
}
