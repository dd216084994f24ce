//! `cargo xtask diff` / `drift` end to end: the real binary, the real AWS SDK, eb-fake for
//! Elastic Beanstalk and moto for Secrets Manager and Auto Scaling, all on loopback.
//!
//! Brings both environments of `infra` to their desired state through the EB API -> `diff`
//! and `drift` exit 0; then changes staging out of band (a MinSize, an added variable, a
//! removed secret reference) -> `drift` exits 2 and names exactly that key.
//!
//! Needs python3-venv for moto: a missing tool fails the test, naming the package to install.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_elasticbeanstalk::types::{
    ConfigurationOptionSetting, EnvironmentTier, OptionSpecification, Tag,
};
use klue_deploy::options::{ENV_SECRETS, ENV_VARS, desired_options, desired_tags, secret_id};
use klue_testkit::doubles::Moto;
use klue_testkit::workspace_root;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
const SECRET_VALUE: &str = "e2e-secret-value-never-printed";

struct Doubles {
    eb_endpoint: String,
    moto_endpoint: String,
    _moto: Moto,
    runtime: tokio::runtime::Runtime,
}

impl Doubles {
    fn xtask(&self, args: &[&str]) -> Output {
        Command::new(XTASK)
            .args(args)
            .current_dir(workspace_root())
            .env("AWS_ENDPOINT_URL", &self.moto_endpoint)
            .env("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", &self.eb_endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("AWS_PROFILE")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("NO_COLOR", "1")
            .env("KLUE_JWT_SECRET", SECRET_VALUE)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    async fn autoscaling(&self, region: &str) -> aws_sdk_autoscaling::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(aws_sdk_elasticbeanstalk::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(&self.moto_endpoint)
            .load()
            .await;
        aws_sdk_autoscaling::Client::new(&config)
    }

    async fn clients(
        &self,
        region: &str,
    ) -> (
        aws_sdk_elasticbeanstalk::Client,
        aws_sdk_secretsmanager::Client,
    ) {
        let load = |endpoint: &str| {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(region.to_string()))
                .credentials_provider(aws_sdk_elasticbeanstalk::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .endpoint_url(endpoint)
                .load()
        };
        let eb = load(&self.eb_endpoint).await;
        let sm = load(&self.moto_endpoint).await;
        (
            aws_sdk_elasticbeanstalk::Client::new(&eb),
            aws_sdk_secretsmanager::Client::new(&sm),
        )
    }
}

fn start() -> Doubles {
    let moto = Moto::start_pinned();
    let moto_endpoint = moto.endpoint.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config = eb_fake::Config {
        region: infra::deployment().region,
        transition: Duration::from_millis(50),
    };
    let (addr, _fake) = runtime
        .block_on(eb_fake::spawn(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            config,
        ))
        .unwrap();
    Doubles {
        eb_endpoint: format!("http://{addr}"),
        moto_endpoint,
        _moto: moto,
        runtime,
    }
}

async fn wait_ready(eb: &aws_sdk_elasticbeanstalk::Client, name: &str) {
    for _ in 0..200 {
        let out = eb
            .describe_environments()
            .environment_names(name)
            .include_deleted(false)
            .send()
            .await
            .unwrap();
        if out
            .environments()
            .first()
            .and_then(|e| e.status())
            .map(|s| s.as_str())
            == Some("Ready")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{name} never became Ready");
}

fn setting(ns: &str, name: &str, value: &str) -> ConfigurationOptionSetting {
    ConfigurationOptionSetting::builder()
        .namespace(ns)
        .option_name(name)
        .value(value)
        .build()
}

/// What a correct deploy would do: secrets in Secrets Manager, application, environments with
/// exactly the desired options (secret references as ARNs) and tags.
async fn reconcile(d: &Doubles) {
    let dep = infra::deployment();
    let (eb, sm) = d.clients(&dep.region).await;
    eb.create_application()
        .application_name(&dep.application)
        .send()
        .await
        .unwrap();
    for env in &dep.environments {
        let mut arns = BTreeMap::new();
        for name in &env.secrets {
            let out = sm
                .create_secret()
                .name(secret_id(&dep.application, &env.name, name))
                .secret_string(SECRET_VALUE)
                .tags(
                    aws_sdk_secretsmanager::types::Tag::builder()
                        .key("klue:fingerprint")
                        .value(klue_deploy::plan::fingerprint(SECRET_VALUE))
                        .build(),
                )
                .send()
                .await
                .unwrap();
            arns.insert(name.clone(), out.arn().unwrap().to_string());
        }
        let mut create = eb
            .create_environment()
            .application_name(&dep.application)
            .environment_name(&env.eb_name)
            .cname_prefix(&env.cname_prefix)
            .tier(
                EnvironmentTier::builder()
                    .name(env.tier.eb_name())
                    .r#type(env.tier.eb_type())
                    .build(),
            )
            .platform_arn(env.platform.arn(&dep.region, "4.3.0"));
        for ((ns, name), value) in desired_options(&dep.application, env) {
            let value = if ns == ENV_SECRETS {
                arns[&name].clone()
            } else {
                value
            };
            create = create.option_settings(setting(&ns, &name, &value));
        }
        for (k, v) in desired_tags(&dep.application, env) {
            create = create.tags(Tag::builder().key(k).value(v).build());
        }
        create.send().await.unwrap();
        wait_ready(&eb, &env.eb_name).await;
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn show(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `drift --json`, expects exit 2 and returns the names of the changed keys.
fn drifted_keys(d: &Doubles) -> Vec<String> {
    let out = d.xtask(&["drift", "--json"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(!show(&out).contains(SECRET_VALUE));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut keys = Vec::new();
    for env in plan["environments"].as_array().unwrap() {
        for c in env["changes"].as_array().unwrap() {
            keys.push(format!(
                "{} {}",
                env["name"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            ));
        }
    }
    keys
}

#[test]
fn diff_is_clean_after_reconcile_and_drift_names_each_out_of_band_change() {
    let d = start();
    let dep = infra::deployment();
    let staging = dep.environment("staging").unwrap().clone();
    assert!(
        !staging.secrets.is_empty(),
        "env.secrets must name at least one secret for this test"
    );
    let secret = staging.secrets[0].clone();

    // Nothing exists yet: everything is a change, and the error-free exit code is 2.
    let out = d.xtask(&["diff", "staging"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("will be created"),
        "{}",
        show(&out)
    );

    d.runtime.block_on(reconcile(&d));
    for args in [
        &["diff", "staging"][..],
        &["diff", "--all"],
        &["diff", "--all", "--json"],
        &["drift"],
    ] {
        let out = d.xtask(args);
        assert_eq!(code(&out), 0, "{args:?} after reconcile:\n{}", show(&out));
        assert!(!show(&out).contains(SECRET_VALUE));
    }

    let (eb, _) = d.runtime.block_on(d.clients(&dep.region));
    let update = |set: Vec<ConfigurationOptionSetting>, remove: Vec<(&str, &str)>| {
        d.runtime.block_on(async {
            let mut u = eb.update_environment().environment_name(&staging.eb_name);
            for s in set {
                u = u.option_settings(s);
            }
            for (ns, name) in remove {
                u = u.options_to_remove(
                    OptionSpecification::builder()
                        .namespace(ns)
                        .option_name(name)
                        .build(),
                );
            }
            u.send().await.unwrap();
            wait_ready(&eb, &staging.eb_name).await;
        })
    };

    // 1. MinSize changed in the console.
    update(vec![setting("aws:autoscaling:asg", "MinSize", "7")], vec![]);
    assert_eq!(drifted_keys(&d), ["staging aws:autoscaling:asg MinSize"]);
    let summary = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(XTASK)
        .args(["drift", "staging"])
        .current_dir(workspace_root())
        .env("AWS_ENDPOINT_URL", &d.moto_endpoint)
        .env("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", &d.eb_endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("GITHUB_STEP_SUMMARY", summary.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", show(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("aws:autoscaling:asg MinSize") && table.contains('7'),
        "{table}"
    );
    let md = std::fs::read_to_string(summary.path()).unwrap();
    assert!(
        md.contains("| ~ | `aws:autoscaling:asg MinSize` | 7 | "),
        "{md}"
    );
    update(
        vec![setting(
            "aws:autoscaling:asg",
            "MinSize",
            &staging.autoscaling.min.to_string(),
        )],
        vec![],
    );
    assert_eq!(code(&d.xtask(&["drift"])), 0);

    // 1b. A scaling trigger changed in the console: EB answers trigger options with a
    // ResourceName (the alarm they configure); drift still names the key, as an update from
    // the value in AWS.
    let configured = staging.autoscaling.trigger.upper_threshold;
    let changed = format!("{}", configured + 20.0);
    update(
        vec![setting(
            "aws:autoscaling:trigger",
            "UpperThreshold",
            &changed,
        )],
        vec![],
    );
    let out = d.xtask(&["drift", "--json"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let staging_plan = plan["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "staging")
        .unwrap();
    let rows = staging_plan["changes"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["name"], "aws:autoscaling:trigger UpperThreshold");
    assert_eq!(rows[0]["action"], "update");
    assert_eq!(rows[0]["current"], changed.as_str());
    update(
        vec![setting(
            "aws:autoscaling:trigger",
            "UpperThreshold",
            &format!("{configured}"),
        )],
        vec![],
    );
    assert_eq!(code(&d.xtask(&["drift"])), 0);

    // 2. A variable added out of band: the namespace is owned exactly.
    update(vec![setting(ENV_VARS, "DEBUG_BACKDOOR", "1")], vec![]);
    assert_eq!(
        drifted_keys(&d),
        [format!("staging {ENV_VARS} DEBUG_BACKDOOR")]
    );
    update(vec![], vec![(ENV_VARS, "DEBUG_BACKDOOR")]);
    assert_eq!(code(&d.xtask(&["drift"])), 0);

    // 3. A secret reference removed out of band.
    update(vec![], vec![(ENV_SECRETS, secret.as_str())]);
    assert_eq!(
        drifted_keys(&d),
        [format!("staging {ENV_SECRETS} {secret}")]
    );

    // 4. The Auto Scaling group's own size changed behind EB's back (console, autoscaling API).
    // moto plays Auto Scaling: the group EB reports for staging is created there at the
    // configured size (no drift), then resized directly.
    let live = d.runtime.block_on(async {
        eb.describe_environment_resources()
            .environment_name(&staging.eb_name)
            .send()
            .await
            .unwrap()
    });
    let group = live
        .environment_resources()
        .unwrap()
        .auto_scaling_groups()
        .first()
        .and_then(|g| g.name())
        .unwrap()
        .to_string();
    let asg = d.runtime.block_on(d.autoscaling(&dep.region));
    d.runtime.block_on(async {
        asg.create_launch_configuration()
            .launch_configuration_name("klue-test-lc")
            .image_id("ami-12c6146b")
            .instance_type("t3.small")
            .send()
            .await
            .unwrap();
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(&group)
            .launch_configuration_name("klue-test-lc")
            .min_size(i32::try_from(staging.autoscaling.min).unwrap())
            .max_size(i32::try_from(staging.autoscaling.max).unwrap())
            .availability_zones(format!("{}a", dep.region))
            .send()
            .await
            .unwrap();
    });
    let out = d.xtask(&["diff", "staging", "--json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = plan["environments"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("auto scaling group")),
        "{names:?}"
    );
    d.runtime.block_on(async {
        asg.update_auto_scaling_group()
            .auto_scaling_group_name(&group)
            .min_size(0)
            .send()
            .await
            .unwrap();
    });
    let keys = drifted_keys(&d);
    assert!(
        keys.contains(&"staging auto scaling group MinSize".to_string()),
        "{keys:?}"
    );
    let out = d.xtask(&["drift", "staging", "--json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let resized = plan["environments"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "auto scaling group MinSize")
        .cloned()
        .unwrap();
    assert_eq!(resized["current"], "0", "the size in AWS: {resized}");
    assert_eq!(
        resized["desired"],
        staging.autoscaling.min.to_string().as_str()
    );

    // A usage error is neither "no change" (0) nor "changes" (2): a typo in a CI job must not
    // read as drift.
    let out = d.xtask(&["drift", "--no-such-flag"]);
    assert_eq!(code(&out), 64, "{}", show(&out));

    // An unknown environment is an error (exit 1), not drift.
    let out = d.xtask(&["diff", "nope"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
}
