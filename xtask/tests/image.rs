//! `cargo xtask image` / `push` end to end: the real static build, the image's contents and
//! reproducibility, the image running in podman (PID 1 stops on SIGTERM), a push to a real
//! `docker-registry` pulled back over the OCI API (and skopeo), and the ECR flow against moto.
//!
//! Needs podman, runc, skopeo and docker-registry (Debian packages) and python3-venv for moto;
//! a missing tool fails the test, naming the package to install.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use klue_testkit::doubles::{Moto, Registry};
use klue_testkit::{target_dir, workspace_root};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn run_ok(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Fails the test, naming the package to install, when `tool` does not run: a test that
/// could not run must not count as passed.
fn need(tool: &str, hint: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "this test cannot run: {tool} is missing ({hint})");
}

fn sha256(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    format!(
        "sha256:{}",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `image.json` as written by `cargo xtask image`.
fn built(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("image.json")).unwrap()).unwrap()
}

fn build_image(out: &Path) -> Value {
    let result = run_ok(Command::new(XTASK).arg("image").arg("--out").arg(out));
    let stdout = String::from_utf8_lossy(&result.stdout);
    let image = built(out);
    assert!(
        stdout.contains(image["digest"].as_str().unwrap()),
        "prints the digest: {stdout}"
    );
    assert!(
        stdout.contains("bytes compressed"),
        "prints the size: {stdout}"
    );
    image
}

/// One image for the tests of this binary (built once).
fn image() -> &'static (PathBuf, Value) {
    static IMAGE: OnceLock<(PathBuf, Value)> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let out = target_dir().join("klue-image-tests").join("a");
        let image = build_image(&out);
        (out, image)
    })
}

fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let bytes = std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
    assert_eq!(sha256(&bytes), digest);
    bytes
}

fn git(args: &[&str]) -> String {
    let out = run_ok(Command::new("git").current_dir(workspace_root()).args(args));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn same_commit_gives_the_same_digest() {
    let (out_a, a) = image();
    let out_b = target_dir().join("klue-image-tests").join("b");
    let b = build_image(&out_b);
    assert_eq!(a["digest"], b["digest"]);
    let archive = |out: &Path| std::fs::read(out.join("klue-service.oci.tar")).unwrap();
    assert!(
        archive(out_a) == archive(&out_b),
        "the oci-archives are byte-identical"
    );

    // SOURCE_DATE_EPOCH wins over the commit time, and changes the digest.
    let out_c = target_dir().join("klue-image-tests").join("c");
    run_ok(
        Command::new(XTASK)
            .args(["image", "--out"])
            .arg(&out_c)
            .env("SOURCE_DATE_EPOCH", "1000000000"),
    );
    let c = built(&out_c);
    assert_ne!(c["digest"], a["digest"]);
    let layout = PathBuf::from(c["layout"].as_str().unwrap());
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest: Value = serde_json::from_slice(&read_blob(
        &layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let config: Value = serde_json::from_slice(&read_blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(config["created"], "2001-09-09T01:46:40Z");
}

#[test]
fn image_config_and_layer_contents() {
    let (_, image) = image();
    let layout = PathBuf::from(image["layout"].as_str().unwrap());
    assert!(
        image["compressed_size"].as_u64().unwrap() < 15_000_000,
        "{image}"
    );
    assert_eq!(
        image["reference"],
        format!("localhost/klue-service:{}", image["tag"].as_str().unwrap())
    );

    let oci_layout = std::fs::read_to_string(layout.join("oci-layout")).unwrap();
    assert!(oci_layout.contains("1.0.0"));
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(entry["digest"], image["digest"]);
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        image["reference"]
    );
    let manifest: Value =
        serde_json::from_slice(&read_blob(&layout, entry["digest"].as_str().unwrap())).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    let config: Value = serde_json::from_slice(&read_blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/app/service"]));
    assert!(
        c["Env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("PORT=8080")),
        "{c}"
    );
    assert_eq!(c["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    let labels = &c["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], image["tag"]);
    assert_eq!(
        labels["org.opencontainers.image.revision"],
        git(&["rev-parse", "HEAD"]).as_str()
    );
    assert!(
        labels["org.opencontainers.image.source"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    // No SOURCE_DATE_EPOCH here (unless the caller set one): the commit time.
    if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
        let commit_time: i64 = git(&["log", "-1", "--format=%ct"]).parse().unwrap();
        let created =
            chrono::DateTime::parse_from_rfc3339(config["created"].as_str().unwrap()).unwrap();
        assert_eq!(created.timestamp(), commit_time);
    }

    // The layer: the static binary and the CA bundle, root-owned, sorted, fixed mtimes.
    let layer = read_blob(&layout, layers[0]["digest"].as_str().unwrap());
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
    let mut paths = Vec::new();
    for entry in tar.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            header.mtime().unwrap() as i64,
            chrono::DateTime::parse_from_rfc3339(config["created"].as_str().unwrap())
                .unwrap()
                .timestamp()
        );
        if path == "app/service" {
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.mode().unwrap() & 0o777, 0o755);
        }
        paths.push(path);
    }
    assert!(paths.contains(&"app/service".to_owned()), "{paths:?}");
    assert!(
        paths.contains(&"etc/ssl/certs/ca-certificates.crt".to_owned()),
        "{paths:?}"
    );
}

fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc"]);
    cmd
}

fn http_get(url: &str) -> (u16, String) {
    let response = reqwest::blocking::get(url).unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

fn wait_for(url: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::blocking::get(url).is_err() {
        assert!(Instant::now() < deadline, "{what} did not come up at {url}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn image_runs_in_podman_and_stops_on_sigterm_as_pid_1() {
    need("podman", "apt-get install -y podman runc");
    let (_, image) = image();
    let loaded = run_ok(
        podman()
            .arg("load")
            .arg("--input")
            .arg(image["archive"].as_str().unwrap()),
    );
    let loaded = String::from_utf8_lossy(&loaded.stdout);
    let reference = image["reference"].as_str().unwrap();
    assert!(
        loaded.contains(reference),
        "podman load names the image after ref.name: {loaded}"
    );
    let inspect = run_ok(podman().args(["image", "inspect", "--format", "{{.Digest}}", reference]));
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        image["digest"].as_str().unwrap()
    );

    let port = free_port();
    let name = format!("klue-image-test-{}-{port}", std::process::id());
    run_ok(
        podman()
            .args(["run", "--detach", "--name", &name])
            .args([
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=32768:32768",
                "--network",
                "host",
            ])
            .args([
                "--env",
                &format!("PORT={port}"),
                "--env",
                "KLUE_HOST=127.0.0.1",
            ])
            .args([
                "--env",
                "KLUE_JWT_SECRET=image-test-secret-0123456789abcdef",
                "--env",
                "KLUE_JWT_AUDIENCE=image-test",
            ])
            .arg(reference),
    );
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = podman().args(["rm", "--force", &self.0]).output();
        }
    }
    let _remove = Remove(name.clone());
    let base = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{base}/ping"), "the container");
    let (status, _) = http_get(&format!("{base}/ping"));
    assert_eq!(status, 200);
    let (status, body) = http_get(&format!("{base}/nope"));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("error_id"), "the JSON error body: {body}");

    let top = run_ok(podman().args(["inspect", "--format", "{{.Config.User}}", &name]));
    assert_eq!(String::from_utf8_lossy(&top.stdout).trim(), "65532:65532");

    let started = Instant::now();
    run_ok(podman().args(["stop", "--time", "10", &name]));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "podman stop took {took:?}: PID 1 must exit on SIGTERM"
    );
    let code = run_ok(podman().args(["inspect", "--format", "{{.State.ExitCode}}", &name]));
    assert_eq!(
        String::from_utf8_lossy(&code.stdout).trim(),
        "0",
        "clean exit on SIGTERM"
    );
}

/// Pulls the image back over the OCI API and checks every digest.
fn pull_and_check(host: &str, repository: &str, tag: &str, digest: &str) {
    let client = reqwest::blocking::Client::new();
    let manifest = client
        .get(format!("http://{host}/v2/{repository}/manifests/{tag}"))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap();
    assert_eq!(manifest.status().as_u16(), 200);
    assert_eq!(
        manifest.headers()["docker-content-digest"]
            .to_str()
            .unwrap(),
        digest
    );
    let bytes = manifest.bytes().unwrap();
    assert_eq!(sha256(&bytes), digest);
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    let descriptors =
        std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().unwrap());
    for descriptor in descriptors {
        let blob_digest = descriptor["digest"].as_str().unwrap();
        let blob = client
            .get(format!("http://{host}/v2/{repository}/blobs/{blob_digest}"))
            .send()
            .unwrap();
        assert_eq!(blob.status().as_u16(), 200);
        let blob = blob.bytes().unwrap();
        assert_eq!(sha256(&blob), blob_digest);
        assert_eq!(blob.len() as u64, descriptor["size"].as_u64().unwrap());
    }
}

#[test]
fn push_round_trips_through_a_real_registry() {
    let registry = Registry::start();
    let (_, image) = image();
    let layout = image["layout"].as_str().unwrap();
    let digest = image["digest"].as_str().unwrap();
    let tag = image["tag"].as_str().unwrap();
    let push = || {
        let out = run_ok(Command::new(XTASK).args([
            "push",
            "--registry",
            &registry.host,
            "--layout",
            layout,
        ]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = push();
    assert!(first.contains(digest), "reports the digest: {first}");
    assert!(
        first.contains("uploaded 2 blob(s), 0 already present"),
        "{first}"
    );
    let second = push();
    assert!(
        second.contains("uploaded 0 blob(s), 2 already present"),
        "blobs are skipped: {second}"
    );
    pull_and_check(&registry.host, "klue-service", tag, digest);

    need("skopeo", "apt-get install -y skopeo");
    {
        let out = run_ok(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/klue-service:{tag}", registry.host),
        ]));
        let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(inspected["Digest"], digest);
        let dest = tempfile::tempdir().unwrap();
        run_ok(Command::new("skopeo").args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/klue-service:{tag}", registry.host),
            &format!("oci:{}:pulled", dest.path().display()),
        ]));
        let index: Value =
            serde_json::from_slice(&std::fs::read(dest.path().join("index.json")).unwrap())
                .unwrap();
        assert_eq!(
            index["manifests"][0]["digest"], digest,
            "skopeo pulls the same manifest"
        );
    }
}

#[test]
fn ecr_flow_against_moto_and_a_real_registry() {
    let registry = Registry::start();
    let moto = Moto::start_pinned();
    let endpoint = moto.endpoint.clone();
    let (_, image) = image();
    let layout = image["layout"].as_str().unwrap();
    let digest = image["digest"].as_str().unwrap();
    let aws = |cmd: &mut Command| {
        cmd.env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    };
    let mut push = Command::new(XTASK);
    push.args([
        "push",
        "--ecr",
        "--registry",
        &registry.host,
        "--repository",
        "team/klue",
        "--layout",
        layout,
    ]);
    aws(&mut push);
    let out = run_ok(&mut push);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("created ECR repository team/klue"),
        "{stderr}"
    );
    assert!(stdout.contains(digest), "{stdout}");
    pull_and_check(
        &registry.host,
        "team/klue",
        image["tag"].as_str().unwrap(),
        digest,
    );

    // The repository now exists in moto: a second push does not create it again.
    let mut again = Command::new(XTASK);
    again.args([
        "push",
        "--ecr",
        "--registry",
        &registry.host,
        "--repository",
        "team/klue",
        "--layout",
        layout,
    ]);
    aws(&mut again);
    let out = run_ok(&mut again);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("created ECR repository"), "{stderr}");
    drop(moto);
}
