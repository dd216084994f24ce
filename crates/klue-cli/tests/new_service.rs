//! `cargo klue new`, tried as a new user would: a service generated with `--klue-path` (this
//! checkout) into a directory outside the workspace builds; its `cargo xtask token` and
//! `cargo xtask accept --local` work without the AWS SDK in the build; its
//! `cargo xtask diff staging` (rebuilt with the SDK on the way) reads an empty account from
//! eb-fake and Secrets Manager (moto) and exits 2; and an operation added to its spec fails
//! the build naming the missing handler.
//!
//! The generated repository builds in its own target directory under this one
//! (`<target>/klue-new-service`): its packages have the usual names (`service`, `xtask`), and
//! sharing `target/debug/` would replace this workspace's binaries with its own. That
//! directory persists between runs, so only the first run compiles everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use klue_testkit::doubles::Moto;
use klue_testkit::{target_dir, workspace_root};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const NAME: &str = "order-book";

/// `cargo` in the generated repository: klue-cli's own, without the variables `cargo test` set
/// for this package, and without this environment's `KLUE_*` settings.
fn cargo(dir: &Path) -> Command {
    let mut cmd = klue_cli::workspace::cargo();
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("KLUE_") {
            cmd.env_remove(&name);
        }
    }
    cmd.current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir().join("klue-new-service"))
        .env("CARGO_TERM_COLOR", "never")
        .stdin(Stdio::null());
    cmd
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_new_service_builds_passes_its_suite_diffs_and_names_a_missing_handler() {
    let parent = tempfile::Builder::new()
        .prefix("klue-new-")
        .tempdir()
        .unwrap();
    let dir = parent.path().join(NAME);
    let root = workspace_root();
    assert!(
        !dir.starts_with(&root),
        "the new service must live outside the workspace"
    );

    // cargo klue new
    let output = Command::new(env!("CARGO_BIN_EXE_cargo-klue"))
        .args(["klue", "new"])
        .arg(&dir)
        .arg("--klue-path")
        .arg(&root)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        dir.join(".git").is_dir(),
        "the new service is not a git repository"
    );
    for file in [
        "Cargo.toml",
        "apis/order-book.yaml",
        "service/src/handlers.rs",
        "infra/src/lib.rs",
        "testaccept/src/lib.rs",
        "xtask/src/main.rs",
        "env.secrets",
        ".cargo/config.toml",
        ".gitignore",
        ".github/workflows/ci.yml",
        ".github/workflows/drift.yml",
        "README.md",
    ] {
        assert!(dir.join(file).is_file(), "{file} was not written");
    }
    // Nothing of this repository's example leaks into a new service.
    for (path, contents) in walk(&dir) {
        for word in [
            "helloworld",
            "klue-service",
            root.to_string_lossy().as_ref(),
        ] {
            if path.ends_with("Cargo.toml") && word == root.to_string_lossy() {
                continue; // --klue-path: the dependencies point at the checkout, as asked
            }
            if path.ends_with("Cargo.lock") {
                continue;
            }
            assert!(
                !contents.contains(word),
                "{} mentions {word}",
                path.display()
            );
        }
    }

    // Again into the same (now non-empty) directory: refused, nothing overwritten.
    let before = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cargo-klue"))
        .args(["klue", "new"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(text(&output).contains("is not empty"), "{}", text(&output));
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        before
    );

    // The verbs that do not talk to AWS do not compile the AWS SDK.
    let tree = cargo(&dir)
        .args([
            "tree",
            "--package",
            "xtask",
            "--edges",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .unwrap();
    assert!(tree.status.success(), "{}", text(&tree));
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.contains("klue-cli"), "{tree}");
    assert!(
        !tree.contains("aws-config") && !tree.contains("aws-sdk-"),
        "the default xtask build pulls in the AWS SDK:\n{tree}"
    );

    let build = cargo(&dir).args(["build", "--workspace"]).output().unwrap();
    assert!(build.status.success(), "{}", text(&build));

    let token = cargo(&dir)
        .args(["xtask", "token", "--sub", "alice"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{}", text(&token));
    assert_eq!(
        String::from_utf8_lossy(&token.stdout)
            .trim()
            .split('.')
            .count(),
        3,
        "{}",
        text(&token)
    );

    let accept = cargo(&dir)
        .args(["xtask", "accept", "--local"])
        .output()
        .unwrap();
    let report = text(&accept);
    assert!(accept.status.success(), "{report}");
    for check in [
        "has_ping",
        "has_auth_version",
        "hello",
        "create_note",
        "create_note_needs_token",
    ] {
        assert!(report.contains(check), "{check} did not run: {report}");
    }
    assert!(report.contains("0 failed"), "{report}");

    // diff against an empty account: everything is to be created (exit 2).
    let moto = Moto::start_pinned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (eb, _fake) = runtime
        .block_on(eb_fake::spawn(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            eb_fake::Config {
                region: "eu-west-1".into(),
                transition: Duration::from_millis(50),
            },
        ))
        .unwrap();
    let diff = cargo(&dir)
        .args(["xtask", "diff", "staging"])
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", format!("http://{eb}"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let plan = text(&diff);
    assert_eq!(diff.status.code(), Some(2), "{plan}");
    assert!(plan.contains("order-book-staging"), "{plan}");
    assert!(plan.contains("will be created"), "{plan}");

    // A new operation without its handler fails the build, naming it.
    let spec = dir.join("apis/order-book.yaml");
    let mut yaml = std::fs::read_to_string(&spec).unwrap();
    yaml.push_str(
        r#"  /v1/goodbye/{name}:
    get:
      operationId: say_goodbye
      parameters:
        - name: name
          in: path
          required: true
          schema:
            type: string
      responses:
        '200':
          description: A farewell.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Greeting'
"#,
    );
    std::fs::write(&spec, yaml).unwrap();
    let build = cargo(&dir)
        .args(["build", "-p", "service"])
        .output()
        .unwrap();
    let log = text(&build);
    assert!(!build.status.success(), "{log}");
    assert!(log.contains("say_goodbye"), "{log}");
    assert!(log.contains("not all trait items implemented"), "{log}");
}

/// Every text file under `dir` (skipping `target`), with its contents.
fn walk(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("target") && !path.ends_with(".git") {
                    pending.push(path);
                }
            } else if let Ok(contents) = std::fs::read_to_string(&path) {
                files.push((path, contents));
            }
        }
    }
    files
}

/// The generated workflows pass actionlint (from the test venv `cargo xtask test` makes).
#[test]
fn the_generated_workflows_pass_actionlint() {
    let python = std::env::var_os("KLUE_TEST_PYTHON")
        .expect("KLUE_TEST_PYTHON names the test venv's python (cargo xtask test sets it)");
    let actionlint = Path::new(&python).with_file_name("actionlint");
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("orders");
    let output = Command::new(env!("CARGO_BIN_EXE_cargo-klue"))
        .args(["klue", "new"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let workflows = dir.join(".github").join("workflows");
    let output = Command::new(&actionlint)
        .current_dir(&dir)
        .arg(workflows.join("ci.yml"))
        .arg(workflows.join("drift.yml"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", actionlint.display()));
    assert!(output.status.success(), "{}", text(&output));
}
