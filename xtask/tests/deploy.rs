//! `cargo xtask deploy / rollback / destroy / status` end to end: the real xtask binary, the
//! real AWS SDK, eb-fake for Elastic Beanstalk, moto for S3, Secrets Manager, ECR and Auto
//! Scaling, a real registry for the image, and real service processes standing in for the
//! deployed environments. The environments' CNAMEs (`*.elasticbeanstalk.com`) reach those
//! processes through a small HTTP forward proxy (`HTTP_PROXY`), which routes by host name, so
//! a test decides which "environment" serves a good or a broken service.
//!
//! Needs python3-venv (moto), docker-registry and podman (the full pipeline, once): a missing
//! tool fails the test, naming the package to install.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use klue_testkit::doubles::{Moto, Registry};
use klue_testkit::{Server, free_port, target_dir, workspace_root};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
/// The deployer's JWT secret: it must never appear in any output.
const SECRET_VALUE: &str = "deploy-e2e-secret-value-never-printed";
const SECRET_VALUE_2: &str = "deploy-e2e-rotated-secret-never-printed";
const AUDIENCE: &str = "klue-helloworld";

fn service_binary() -> PathBuf {
    // Without this test's package variables, so the build is the one `cargo test` made.
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "service", "--bin", "service"])
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_MANIFEST_PATH")
        .env_remove("CARGO_PKG_NAME")
        .env_remove("CARGO_CRATE_NAME")
        .current_dir(workspace_root())
        .status()
        .unwrap();
    assert!(status.success());
    target_dir().join("debug/service")
}

/// Routes requests for a host to a loopback port; hosts without a route go to `default`.
#[derive(Default)]
struct Routes {
    by_host: Vec<(String, u16)>,
    default: u16,
}

type SharedRoutes = Arc<Mutex<Routes>>;

async fn forward(State(routes): State<SharedRoutes>, request: Request) -> Response {
    let host = request
        .uri()
        .host()
        .map(str::to_string)
        .or_else(|| {
            request
                .headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .map(|h| h.split(':').next().unwrap_or(h).to_string())
        })
        .unwrap_or_default();
    let port = {
        let routes = routes.lock().unwrap();
        routes
            .by_host
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(&host))
            .map(|(_, p)| *p)
            .unwrap_or(routes.default)
    };
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut outgoing = client.request(
        request.method().clone(),
        format!("http://127.0.0.1:{port}{path}"),
    );
    for (name, value) in request.headers() {
        if name != "host" && name != "proxy-connection" {
            outgoing = outgoing.header(name, value);
        }
    }
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap();
    let answer = match outgoing.body(body).send().await {
        Ok(answer) => answer,
        Err(e) => {
            return Response::builder()
                .status(502)
                .body(Body::from(e.to_string()))
                .unwrap();
        }
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        response = response.header(name, value);
    }
    response
        .body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

struct World {
    runtime: tokio::runtime::Runtime,
    eb_endpoint: String,
    moto: Moto,
    registry: Registry,
    proxy: String,
    routes: SharedRoutes,
    good: Server,
    bad: Server,
    /// The service with the rotated secret: an environment after it read the new value.
    rotated: Server,
    /// Every byte the xtask runs printed, to search for secret values.
    transcript: Mutex<String>,
    prebuilt: [PathBuf; 2],
    _images: tempfile::TempDir,
}

/// Builds the image twice: the service's, and one with a different CA bundle (a different
/// digest, so a "new version").
fn images(dir: &Path) -> [PathBuf; 2] {
    let first = dir.join("v1");
    let second = dir.join("v2");
    let bundle = dir.join("ca.crt");
    let mut ca = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    ca.extend_from_slice(b"\n# a different bundle: a different image digest\n");
    std::fs::write(&bundle, ca).unwrap();
    // The second image reuses the first one's static binary (no second release build).
    let binary = target_dir().join("x86_64-unknown-linux-gnu/release/service");
    for (out, extra) in [(&first, None), (&second, Some(&bundle))] {
        let mut cmd = Command::new(XTASK);
        cmd.arg("image").arg("--out").arg(out);
        if let Some(bundle) = extra {
            cmd.arg("--ca-bundle")
                .arg(bundle)
                .arg("--binary")
                .arg(&binary);
        }
        let output = cmd.current_dir(workspace_root()).output().unwrap();
        assert!(
            output.status.success(),
            "cargo xtask image failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    [first, second]
}

fn start() -> World {
    let moto = Moto::start_pinned();
    let registry = Registry::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = eb_fake::Config {
        region: infra::deployment().region,
        transition: Duration::from_millis(50),
    };
    let (eb, _fake) = runtime
        .block_on(eb_fake::spawn(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            config,
        ))
        .unwrap();
    let binary = service_binary();
    let binary = binary.to_str().unwrap();
    let good = Server::start_binary(
        binary,
        &[
            ("KLUE_JWT_SECRET", Some(SECRET_VALUE)),
            ("KLUE_JWT_AUDIENCE", Some(AUDIENCE)),
        ],
    );
    // A broken deployment: its secret is not the deployer's, so every authenticated check fails.
    let bad = Server::start_binary(
        binary,
        &[
            (
                "KLUE_JWT_SECRET",
                Some("some-other-secret-0123456789abcdef"),
            ),
            ("KLUE_JWT_AUDIENCE", Some(AUDIENCE)),
        ],
    );
    let rotated = Server::start_binary(
        binary,
        &[
            ("KLUE_JWT_SECRET", Some(SECRET_VALUE_2)),
            ("KLUE_JWT_AUDIENCE", Some(AUDIENCE)),
        ],
    );
    let routes: SharedRoutes = Arc::new(Mutex::new(Routes {
        by_host: vec![],
        default: good.port,
    }));
    let proxy_port = free_port();
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(routes.clone());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", proxy_port)))
        .unwrap();
    runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let prebuilt = images(dir.path());
    World {
        runtime,
        eb_endpoint: format!("http://{eb}"),
        moto,
        registry,
        proxy: format!("http://127.0.0.1:{proxy_port}"),
        routes,
        good,
        bad,
        rotated,
        transcript: Mutex::new(String::new()),
        prebuilt,
        _images: dir,
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl World {
    fn command(&self, args: &[&str], secret: Option<&str>) -> Command {
        let mut cmd = Command::new(XTASK);
        cmd.args(args)
            .current_dir(workspace_root())
            .env("AWS_ENDPOINT_URL", &self.moto.endpoint)
            .env("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", &self.eb_endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("AWS_PROFILE")
            .env("HTTP_PROXY", &self.proxy)
            .env("http_proxy", &self.proxy)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env("KLUE_DEPLOY_POLL_MS", "50")
            .env("NO_COLOR", "1")
            .env_remove("KLUE_JWT_TOKEN")
            .env_remove("KLUE_JWT_AUDIENCE")
            .stdin(Stdio::null());
        match secret {
            Some(value) => cmd.env("KLUE_JWT_SECRET", value),
            None => cmd.env_remove("KLUE_JWT_SECRET"),
        };
        cmd
    }

    fn xtask(&self, args: &[&str], secret: Option<&str>) -> Run {
        self.run(self.command(args, secret))
    }

    /// The arguments of `deploy <env>` of a prebuilt image, without the local and image
    /// suites, with `extra` (which may override the timeouts).
    fn deploy_args(&self, env: &str, image: usize, extra: &[&str]) -> Vec<String> {
        let prebuilt = self.prebuilt[image].to_string_lossy().into_owned();
        let mut args: Vec<String> = [
            "deploy",
            env,
            "--skip-local-tests",
            "--skip-image-tests",
            "--prebuilt",
            &prebuilt,
            "--registry",
            &self.registry.host,
            "--grace",
            "0",
        ]
        .map(String::from)
        .to_vec();
        for (flag, default) in [("--timeout", "60"), ("--ready-timeout", "30")] {
            if !extra.contains(&flag) {
                args.extend([flag.to_string(), default.to_string()]);
            }
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    /// `deploy <env> --yes` of a prebuilt image, without the local and image suites.
    fn deploy(&self, env: &str, image: usize, extra: &[&str], secret: Option<&str>) -> Run {
        let mut args = self.deploy_args(env, image, extra);
        args.insert(2, "--yes".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.xtask(&args, secret)
    }

    /// Runs `command` (made by [`World::command`], then adjusted) and keeps its output.
    fn run(&self, mut command: Command) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = command.output().unwrap();
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        // The arguments only: `{command:?}` would list the variables, the secret among them.
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut transcript = self.transcript.lock().unwrap();
        transcript.push_str(&format!("$ xtask {}\n{}\n", args.join(" "), run.all()));
        run
    }

    fn fake(&self, path: &str, body: Option<Value>) -> Value {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .unwrap();
        let url = format!("{}{path}", self.eb_endpoint);
        let response = match body {
            Some(body) => client.post(url).json(&body).send().unwrap(),
            None => client.get(url).send().unwrap(),
        };
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().unwrap_or(Value::Null)
    }

    fn fault(&self, body: Value) {
        self.fake("/_fake/fault", Some(body));
    }

    /// The EB actions received so far.
    fn calls(&self) -> Vec<String> {
        serde_json::from_value(self.fake("/_fake/calls", None)).unwrap()
    }

    /// The form parameters of every EB call so far.
    fn requests(&self) -> Vec<Value> {
        serde_json::from_value(self.fake("/_fake/requests", None)).unwrap()
    }

    fn describe(
        &self,
        name: &str,
    ) -> Option<aws_sdk_elasticbeanstalk::types::EnvironmentDescription> {
        let eb = self.eb();
        self.runtime.block_on(async {
            eb.describe_environments()
                .environment_names(name)
                .include_deleted(false)
                .send()
                .await
                .unwrap()
                .environments()
                .first()
                .cloned()
        })
    }

    fn eb(&self) -> aws_sdk_elasticbeanstalk::Client {
        self.runtime.block_on(async {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(infra::deployment().region))
                .credentials_provider(aws_sdk_elasticbeanstalk::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .endpoint_url(&self.eb_endpoint)
                .load()
                .await;
            aws_sdk_elasticbeanstalk::Client::new(&config)
        })
    }

    fn option(&self, env: &str, namespace: &str, option: &str) -> Option<String> {
        let eb = self.eb();
        self.runtime.block_on(async {
            let out = eb
                .describe_configuration_settings()
                .application_name(infra::deployment().application)
                .environment_name(env)
                .send()
                .await
                .unwrap();
            out.configuration_settings()
                .iter()
                .flat_map(|s| s.option_settings())
                .find(|o| o.namespace() == Some(namespace) && o.option_name() == Some(option))
                .and_then(|o| o.value().map(str::to_string))
        })
    }

    fn set(&self, env: &str, set: Value, remove: Value) {
        self.fake(
            "/_fake/set",
            Some(json!({"environment": env, "set": set, "remove": remove})),
        );
    }

    fn assert_no_secret_in_output(&self) {
        let transcript = self.transcript.lock().unwrap();
        for secret in [SECRET_VALUE, SECRET_VALUE_2] {
            assert!(
                !transcript.contains(secret),
                "a secret value was printed:\n{transcript}"
            );
        }
        for server in [&self.good, &self.bad, &self.rotated] {
            let output = server.output();
            assert!(!output.contains(SECRET_VALUE) && !output.contains(SECRET_VALUE_2));
        }
    }
}

/// `child`'s output once it exits; kills it and fails the test after `limit` (a deploy that
/// ignored its Ctrl-C would otherwise hang the suite).
fn wait_bounded(child: std::process::Child, limit: Duration) -> Output {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match exited.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("the deploy still ran {}s after its Ctrl-C", limit.as_secs());
        }
    }
}

fn new_calls(world: &World, before: usize) -> Vec<String> {
    world.calls()[before..].to_vec()
}

const MUTATIONS: &[&str] = &[
    "CreateApplication",
    "CreateApplicationVersion",
    "CreateEnvironment",
    "UpdateEnvironment",
    "TerminateEnvironment",
    "SwapEnvironmentCNAMEs",
    "UpdateTagsForResource",
];

fn mutations(calls: &[String]) -> Vec<&str> {
    calls
        .iter()
        .map(String::as_str)
        .filter(|c| MUTATIONS.contains(c))
        .collect()
}

#[test]
fn staging_in_place_lifecycle() {
    let world = start();
    let staging = "klue-helloworld-staging";

    // A name with no value and no secret yet stops the deploy before any change.
    let before = world.calls().len();
    let run = world.deploy("staging", 0, &[], None);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("KLUE_JWT_SECRET"), "{}", run.all());
    assert!(run.stderr.contains("Nothing was changed"), "{}", run.all());
    assert!(mutations(&new_calls(&world, before)).is_empty());

    // First deploy: everything is created.
    let before = world.calls().len();
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE));
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("staging: created"), "{}", run.all());
    let calls = new_calls(&world, before);
    for action in [
        "CreateApplication",
        "CreateStorageLocation",
        "CreateApplicationVersion",
        "ListPlatformVersions",
        "CreateEnvironment",
    ] {
        assert!(
            calls.iter().any(|c| c == action),
            "{action} missing: {calls:?}"
        );
    }
    let env = world.describe(staging).unwrap();
    assert_eq!(env.status().unwrap().as_str(), "Ready");
    let label = env.version_label().unwrap().to_string();
    let secret_ref = world
        .option(
            staging,
            "aws:elasticbeanstalk:application:environmentsecrets",
            "KLUE_JWT_SECRET",
        )
        .unwrap();
    assert!(
        secret_ref.starts_with("arn:aws:secretsmanager:"),
        "{secret_ref}"
    );
    let diff = world.xtask(&["diff", "staging"], Some(SECRET_VALUE));
    assert_eq!(diff.code, 0, "{}", diff.all());

    // Second deploy, nothing changed: no new version, no update.
    let before = world.calls().len();
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE));
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("no changes"), "{}", run.all());
    assert_eq!(mutations(&new_calls(&world, before)), Vec::<&str>::new());

    // A change (AWS differs from the config in one option and one extra variable): one
    // UpdateEnvironment carrying exactly those keys.
    world.set(
        staging,
        json!([
            ["aws:autoscaling:asg", "MinSize", "3"],
            ["aws:elasticbeanstalk:application:environment", "EXTRA", "1"]
        ]),
        json!([]),
    );
    let before_requests = world.requests().len();
    let before = world.calls().len();
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE));
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        mutations(&new_calls(&world, before)),
        vec!["UpdateEnvironment"]
    );
    let update = world.requests()[before_requests..]
        .iter()
        .find(|r| r["Action"] == "UpdateEnvironment")
        .cloned()
        .unwrap();
    let fields: Vec<(&String, &Value)> = update
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("OptionSettings") || k.starts_with("OptionsToRemove"))
        .collect();
    let text = format!("{fields:?}");
    assert!(text.contains("MinSize") && text.contains("EXTRA"), "{text}");
    assert_eq!(
        fields.len(),
        3 + 2,
        "one setting (3 fields) and one removal (2 fields): {text}"
    );
    assert!(update.get("VersionLabel").is_none(), "{update}");
    assert_eq!(
        world
            .option(staging, "aws:autoscaling:asg", "MinSize")
            .as_deref(),
        Some("1")
    );

    // A rotated secret value: Secrets Manager is updated and the version redeployed, so that
    // the instances read it (here: staging's CNAME now reaches a service with the new value,
    // and the acceptance suite, with tokens signed by it, passes); the value is never printed.
    world.routes.lock().unwrap().by_host.push((
        "klue-helloworld-staging.eu-west-1.elasticbeanstalk.com".into(),
        world.rotated.port,
    ));
    let before_requests = world.requests().len();
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE_2));
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("value updated"), "{}", run.all());
    assert!(
        run.stderr.contains("secret values changed"),
        "{}",
        run.all()
    );
    let update = world.requests()[before_requests..]
        .iter()
        .find(|r| r["Action"] == "UpdateEnvironment")
        .cloned()
        .unwrap();
    assert_eq!(update["VersionLabel"], label.as_str(), "{update}");

    // An update that fails on EB (ERROR events, configuration reverted): exit 1, live
    // unchanged.
    world.set(
        staging,
        json!([["aws:autoscaling:asg", "MaxSize", "5"]]),
        json!([]),
    );
    world.fault(json!({"kind": "fail_next_update"}));
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE_2));
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("ERROR"), "{}", run.all());
    assert_eq!(
        world
            .option(staging, "aws:autoscaling:asg", "MaxSize")
            .as_deref(),
        Some("5"),
        "the failed update was reverted"
    );
    assert_eq!(
        world.describe(staging).unwrap().version_label(),
        Some(label.as_str())
    );

    // Throttling: a few throttled calls are retried by the SDK; a storm ends with a clear error.
    world.fault(json!({"kind": "throttle", "count": 2}));
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE_2));
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        world
            .option(staging, "aws:autoscaling:asg", "MaxSize")
            .as_deref(),
        Some("2")
    );
    world.fault(json!({"kind": "throttle", "count": 1000}));
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE_2));
    world.fault(json!({"kind": "throttle", "count": 0}));
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("Throttling") || run.stderr.contains("Rate exceeded"),
        "{}",
        run.all()
    );

    // An environment busy with another operation: refused before any change.
    world.fault(json!({"kind": "busy", "environment": staging, "millis": 4000}));
    let before = world.calls().len();
    let run = world.deploy(
        "staging",
        1,
        &["--ready-timeout", "1"],
        Some(SECRET_VALUE_2),
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("Nothing was changed"), "{}", run.all());
    assert!(mutations(&new_calls(&world, before)).is_empty());
    std::thread::sleep(Duration::from_millis(4200));

    // A new version whose update hangs: timeout with a message saying how to follow or abort
    // it; after the environment settles, a rerun converges.
    world.fault(json!({"kind": "hang_next_update"}));
    let run = world.deploy("staging", 1, &["--timeout", "2"], Some(SECRET_VALUE_2));
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("still working"), "{}", run.all());
    assert!(
        run.stderr.contains("abort-environment-update"),
        "{}",
        run.all()
    );
    world.fault(json!({"kind": "release"}));
    let run = world.deploy("staging", 1, &[], Some(SECRET_VALUE_2));
    assert_eq!(run.code, 0, "{}", run.all());
    let new_label = world
        .describe(staging)
        .unwrap()
        .version_label()
        .unwrap()
        .to_string();
    assert_ne!(new_label, label);
    let diff = world.xtask(&["diff", "staging"], Some(SECRET_VALUE_2));
    assert_eq!(diff.code, 0, "{}", diff.all());

    // Rollback redeploys the previous version; status shows it.
    let run = world.xtask(&["rollback", "staging", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        world.describe(staging).unwrap().version_label(),
        Some(label.as_str())
    );
    let status = world.xtask(&["status", "staging"], None);
    assert_eq!(status.code, 0, "{}", status.all());
    assert!(
        status.stdout.contains(&label) && status.stdout.contains("Ready"),
        "{}",
        status.all()
    );

    // Ctrl-C while waiting: with --yes the offer to abort is taken (a cancelled CI job must
    // not leave an update running): AbortEnvironmentUpdate, EB restores the previous
    // configuration, exit 1. EB answers slowly here, so the Ctrl-C most likely comes while a
    // request is in flight (one that came then used to be lost, and the deploy ran on).
    world.fault(json!({"kind": "hang_next_update"}));
    world.fault(json!({"kind": "slow", "millis": 400}));
    world.set(
        staging,
        json!([["aws:autoscaling:asg", "MinSize", "3"]]),
        json!([]),
    );
    let prebuilt = world.prebuilt[0].to_string_lossy().into_owned();
    let child = world
        .command(
            &[
                "deploy",
                "staging",
                "--yes",
                "--skip-local-tests",
                "--skip-image-tests",
                "--prebuilt",
                &prebuilt,
                "--registry",
                &world.registry.host,
            ],
            Some(SECRET_VALUE_2),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..400 {
        if world
            .describe(staging)
            .is_some_and(|e| e.status().map(|s| s.as_str()) == Some("Updating"))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = wait_bounded(child, Duration::from_secs(120));
    world.fault(json!({"kind": "slow", "millis": 0}));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    world.transcript.lock().unwrap().push_str(&stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("aborted at your request"), "{stderr}");
    assert!(world.calls().iter().any(|c| c == "AbortEnvironmentUpdate"));
    assert_eq!(
        world
            .option(staging, "aws:autoscaling:asg", "MinSize")
            .as_deref(),
        Some("3"),
        "the aborted update was rolled back"
    );

    // Version lifecycle: with more than keep_versions (10) versions, a deploy deletes the
    // oldest ones that no environment runs.
    let app = infra::deployment().application;
    let eb = world.eb();
    world.runtime.block_on(async {
        for n in 0..12 {
            eb.create_application_version()
                .application_name(&app)
                .version_label(format!("old-{n:02}"))
                .send()
                .await
                .unwrap();
        }
    });
    world.set(
        staging,
        json!([["aws:autoscaling:asg", "MinSize", "3"]]),
        json!([]),
    );
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE_2));
    assert_eq!(run.code, 0, "{}", run.all());
    let labels: Vec<String> = world.runtime.block_on(async {
        eb.describe_application_versions()
            .application_name(&app)
            .send()
            .await
            .unwrap()
            .application_versions()
            .iter()
            .filter_map(|v| v.version_label().map(str::to_string))
            .collect()
    });
    assert_eq!(
        labels.len(),
        11,
        "10 newest + the one staging runs: {labels:?}"
    );
    assert!(labels.contains(&label), "{labels:?}");
    assert!(!labels.contains(&new_label), "{labels:?}");
    assert!(labels.contains(&"old-11".to_string()) && !labels.contains(&"old-01".to_string()));

    // Destroy asks first (no terminal, no --yes: refused), then terminates, keeping the secret.
    let run = world.xtask(&["destroy", "staging"], None);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(world.describe(staging).is_some());
    let run = world.xtask(&["destroy", "staging", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(world.describe(staging).is_none());
    assert!(run.stderr.contains("kept 1 secret"), "{}", run.all());

    world.assert_no_secret_in_output();
}

#[test]
fn live_blue_green() {
    let world = start();
    let live = "klue-helloworld-live";
    let main_host = "klue-helloworld-live.eu-west-1.elasticbeanstalk.com";

    let run = world.deploy("live", 0, &[], Some(SECRET_VALUE));
    assert_eq!(run.code, 0, "{}", run.all());
    let v1 = world
        .describe(live)
        .unwrap()
        .version_label()
        .unwrap()
        .to_string();

    // The new environment fails acceptance (anything but the live CNAME reaches the broken
    // service): it is terminated, live is untouched, exit 1.
    {
        let mut routes = world.routes.lock().unwrap();
        routes.by_host = vec![(main_host.to_string(), world.good.port)];
        routes.default = world.bad.port;
    }
    let run = world.deploy("live", 1, &[], Some(SECRET_VALUE));
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("acceptance suite failed"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("untouched"), "{}", run.all());
    let serving = world.describe(live).unwrap();
    assert_eq!(serving.version_label(), Some(v1.as_str()));
    assert!(
        serving
            .cname()
            .unwrap()
            .starts_with("klue-helloworld-live.")
    );
    assert!(
        world.describe(&format!("{live}-b")).is_none(),
        "the candidate was terminated"
    );

    // The new environment comes up Red: terminated, live untouched, exit 1.
    world.routes.lock().unwrap().default = world.good.port;
    world.fault(json!({"kind": "unhealthy_next_launch"}));
    let run = world.deploy("live", 1, &[], Some(SECRET_VALUE));
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("Red"), "{}", run.all());
    assert!(run.stderr.contains("untouched"), "{}", run.all());
    assert!(world.describe(&format!("{live}-b")).is_none());
    assert_eq!(
        world.describe(live).unwrap().version_label(),
        Some(v1.as_str())
    );

    // Interrupted: the new environment is still launching when the deploy gives up. Once it
    // is up, a rerun reuses it and completes: new environment, CNAME swap, old one terminated.
    world.fault(json!({"kind": "hang_next_update"}));
    let run = world.deploy("live", 1, &["--timeout", "2"], Some(SECRET_VALUE));
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("still being created"), "{}", run.all());
    world.fault(json!({"kind": "release"}));
    for _ in 0..100 {
        if world
            .describe(&format!("{live}-b"))
            .is_some_and(|e| e.status().map(|s| s.as_str()) == Some("Ready"))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = world.deploy("live", 1, &[], Some(SECRET_VALUE));
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("reusing it"), "{}", run.all());
    let now = world.describe(&format!("{live}-b")).unwrap();
    assert!(
        now.cname().unwrap().starts_with("klue-helloworld-live."),
        "{now:?}"
    );
    let v2 = now.version_label().unwrap().to_string();
    assert_ne!(v1, v2);
    assert!(
        world.describe(live).is_none(),
        "the old environment was terminated"
    );
    let diff = world.xtask(&["diff", "live"], Some(SECRET_VALUE));
    assert_eq!(diff.code, 0, "{}", diff.all());

    // Back to v1 keeping the previous environment, then an instant rollback by swap.
    let run = world.deploy("live", 0, &["--keep-previous"], Some(SECRET_VALUE));
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("kept for rollback"), "{}", run.all());
    assert_eq!(
        world.describe(live).unwrap().version_label(),
        Some(v1.as_str())
    );
    let run = world.xtask(&["rollback", "live", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.all());
    let serving = world.describe(&format!("{live}-b")).unwrap();
    assert!(
        serving
            .cname()
            .unwrap()
            .starts_with("klue-helloworld-live.")
    );
    assert_eq!(serving.version_label(), Some(v2.as_str()));
    let status = world.xtask(&["status", "live"], None);
    assert!(status.stdout.contains("standby"), "{}", status.all());

    let run = world.xtask(&["destroy", "live", "--yes", "--purge-secrets"], None);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(world.describe(live).is_none() && world.describe(&format!("{live}-b")).is_none());

    world.assert_no_secret_in_output();
}

#[test]
fn full_pipeline_first_deploy() {
    assert!(
        Command::new("podman").arg("--version").output().is_ok(),
        "this test cannot run: podman is missing (apt-get install -y podman runc)"
    );
    let world = start();
    // The local suite, the image, the suite on the image in podman, the push, then the deploy.
    let run = world.xtask(
        &[
            "deploy",
            "staging",
            "--yes",
            "--registry",
            &world.registry.host,
            "--timeout",
            "60",
        ],
        Some(SECRET_VALUE),
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("staging: created"), "{}", run.all());
    let env = world.describe("klue-helloworld-staging").unwrap();
    let label = env.version_label().unwrap();
    assert!(label.starts_with(env!("CARGO_PKG_VERSION")), "{label}");
    world.assert_no_secret_in_output();
}

/// The development default cargo's `[env]` gives `KLUE_JWT_SECRET` in this workspace.
fn dev_default_secret() -> String {
    let config = std::fs::read_to_string(workspace_root().join(".cargo/config.toml")).unwrap();
    let line = config
        .lines()
        .find(|l| l.trim_start().starts_with("KLUE_JWT_SECRET"))
        .unwrap();
    line.split('"').nth(1).unwrap().to_string()
}

fn ecr_repositories(world: &World, region: &str) -> Vec<String> {
    world.runtime.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(aws_sdk_elasticbeanstalk::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(&world.moto.endpoint)
            .load()
            .await;
        aws_sdk_ecr::Client::new(&config)
            .describe_repositories()
            .send()
            .await
            .map(|out| {
                out.repositories()
                    .iter()
                    .filter_map(|r| r.repository_name().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    })
}

#[test]
fn refusals_repairs_and_secret_lifecycle() {
    let world = start();
    let staging = "klue-helloworld-staging";
    let region = infra::deployment().region;

    // The development default as the secret: refused before any AWS call, value not printed.
    let dev_secret = dev_default_secret();
    let before = world.calls().len();
    let run = world.deploy("staging", 0, &[], Some(&dev_secret));
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("KLUE_JWT_SECRET holds the development default"),
        "{}",
        run.all()
    );
    assert!(!run.all().contains(&dev_secret), "{}", run.all());
    assert_eq!(world.calls().len(), before, "no AWS call was made");

    // No credentials: one line saying how to provide them, before anything is built or called.
    let args = world.deploy_args("staging", 0, &["--yes"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = world.command(&args, Some(SECRET_VALUE));
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ] {
        command.env_remove(name);
    }
    command
        .env("AWS_CONFIG_FILE", "/nonexistent/klue-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/klue-test-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let run = world.run(command);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("No AWS credentials were found"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("nothing was built or changed"),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("pushed"), "{}", run.all());
    assert_eq!(world.calls().len(), before, "no EB call was made");

    // Not confirmed (no terminal, no --yes): asked before the first change of any kind, so no
    // ECR repository, no push, no EB change. AWS_REGION names another region: ignored, noted.
    let args = world.deploy_args("staging", 0, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = world.command(&args, Some(SECRET_VALUE));
    command.env("AWS_REGION", "us-east-1");
    let run = world.run(command);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("not confirmed: nothing was built, pushed or changed"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("AWS_REGION=us-east-1 is ignored"),
        "{}",
        run.all()
    );
    assert!(mutations(&new_calls(&world, before)).is_empty());
    assert!(ecr_repositories(&world, &region).is_empty());
    assert!(ecr_repositories(&world, "us-east-1").is_empty());

    // A create that ends Red: exit 1 with the real state (no "previous configuration").
    world.fault(json!({"kind": "unhealthy_next_launch"}));
    let args = world.deploy_args("staging", 0, &["--yes"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = world.command(&args, Some(SECRET_VALUE));
    command.env("AWS_REGION", "us-east-1");
    let run = world.run(command);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("was created but"), "{}", run.all());
    assert!(
        !run.stderr.contains("previous configuration"),
        "{}",
        run.all()
    );
    assert_eq!(
        world.describe(staging).unwrap().health().unwrap().as_str(),
        "Red"
    );
    let status = world.xtask(&["status", "staging"], None);
    assert!(status.stdout.contains("Red (Severe)"), "{}", status.all());
    assert!(
        status.stdout.contains("cause   ELB health"),
        "{}",
        status.all()
    );
    // The image went to ECR in the deployment's region, not AWS_REGION's.
    assert_eq!(
        ecr_repositories(&world, &region),
        [infra::deployment().image_repository]
    );
    assert!(ecr_repositories(&world, "us-east-1").is_empty());

    // A rerun with nothing else to change does not call the Red environment deployed: it
    // redeploys the version; when that fails too, exit 1 saying so.
    world.fault(json!({"kind": "fail_next_update"}));
    let before_requests = world.requests().len();
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE));
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("redeploying"), "{}", run.all());
    let update = world.requests()[before_requests..]
        .iter()
        .find(|r| r["Action"] == "UpdateEnvironment")
        .cloned()
        .unwrap();
    assert!(update.get("VersionLabel").is_some(), "{update}");
    assert_eq!(
        world.describe(staging).unwrap().health().unwrap().as_str(),
        "Red"
    );
    // ...and when the redeploy brings it up Green and the acceptance suite passes: exit 0.
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE));
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("staging: updated"), "{}", run.all());
    assert!(run.stderr.contains("acceptance passed"), "{}", run.all());
    assert_eq!(
        world.describe(staging).unwrap().health().unwrap().as_str(),
        "Green"
    );
    let diff = world.xtask(&["diff", "staging"], Some(SECRET_VALUE));
    assert_eq!(diff.code, 0, "{}", diff.all());

    // A deploy with nothing to change still runs the acceptance suite against what runs: a
    // service that fails it is not "deployed", though nothing is changed in AWS.
    world.routes.lock().unwrap().default = world.bad.port;
    let before = world.calls().len();
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE));
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("Nothing was changed in AWS"),
        "{}",
        run.all()
    );
    assert!(mutations(&new_calls(&world, before)).is_empty());
    world.routes.lock().unwrap().default = world.good.port;

    // Secrets purged with recovery, then a deploy: the secret is restored, not re-created
    // (CreateSecret would fail on a name scheduled for deletion).
    let run = world.xtask(&["destroy", "staging", "--yes", "--purge-secrets"], None);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains("the next deploy restores it"),
        "{}",
        run.all()
    );
    let diff = world.xtask(&["diff", "staging"], Some(SECRET_VALUE));
    assert_eq!(diff.code, 2, "{}", diff.all());
    assert!(
        diff.stdout.contains("scheduled for deletion"),
        "{}",
        diff.all()
    );
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE));
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("restored"), "{}", run.all());
    let diff = world.xtask(&["diff", "staging"], Some(SECRET_VALUE));
    assert_eq!(diff.code, 0, "{}", diff.all());

    // Purged without recovery: gone at once, and the next deploy creates it anew.
    let run = world.xtask(
        &[
            "destroy",
            "staging",
            "--yes",
            "--purge-secrets",
            "--without-recovery",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains("deleted without recovery"),
        "{}",
        run.all()
    );
    let run = world.deploy("staging", 0, &[], Some(SECRET_VALUE));
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("created"), "{}", run.all());

    world.assert_no_secret_in_output();
}
