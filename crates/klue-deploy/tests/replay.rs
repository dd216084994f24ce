//! AWS's documented sample responses (`tests/aws-samples`), replayed through the real AWS SDK
//! into klue's observe and plan: what EB answers, not what eb-fake answers, must give no
//! change where the config matches it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use klue_deploy::apply::wait::{Verdict, classify};
use klue_deploy::model::*;
use klue_deploy::observe::{Clients, environment_health, observe};
use klue_deploy::plan::ChangeKey;
use klue_deploy::{Desired, plan};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

fn samples() -> Value {
    let path = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("tests/aws-samples/elasticbeanstalk.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A JSON sample as the query protocol's XML: objects are elements, lists hold `member`s.
fn xml(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Null => {}
        Value::Object(fields) => {
            out.push_str(&format!("<{name}>"));
            for (key, field) in fields {
                if !key.starts_with('_') {
                    xml(out, key, field);
                }
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Array(items) => {
            out.push_str(&format!("<{name}>"));
            for item in items {
                xml(out, "member", item);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::String(text) => {
            let escaped = text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            out.push_str(&format!("<{name}>{escaped}</{name}>"));
        }
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn answer(action: &str, result: &Value) -> Response {
    let mut body = format!(
        r#"<{action}Response xmlns="http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/">"#
    );
    let mut inner = String::new();
    xml(&mut inner, &format!("{action}Result"), result);
    body.push_str(&inner);
    body.push_str(&format!(
        "<ResponseMetadata><RequestId>replay</RequestId></ResponseMetadata></{action}Response>"
    ));
    ([("content-type", "text/xml")], body).into_response()
}

/// Answers each action with its documented sample.
async fn replay(samples: Arc<Value>, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let action = form.get("Action").cloned().unwrap_or_default();
    match action.as_str() {
        // The documented DescribeApplications sample lists other applications; the documented
        // UpdateApplication output describes the application every other sample belongs to,
        // in the same `ApplicationDescription` shape.
        "DescribeApplications" => {
            let app = samples["UpdateApplication"]["Application"].clone();
            answer(&action, &serde_json::json!({ "Applications": [app] }))
        }
        // No Auto Scaling sample is replayed: an empty answer (no group) in the documented shape.
        "DescribeAutoScalingGroups" => {
            answer(&action, &serde_json::json!({ "AutoScalingGroups": [] }))
        }
        _ => match samples.get(&action) {
            Some(result) => answer(&action, result),
            None => (
                StatusCode::BAD_REQUEST,
                format!("no documented sample for {action}"),
            )
                .into_response(),
        },
    }
}

/// A config that declares what the samples show: application `my-app`, environment `my-env`,
/// and, as raw options, the four settings of the (abbreviated) configuration sample.
fn deployment() -> Deployment {
    let raw = |namespace: &str, option: &str, value: &str| RawOption {
        namespace: namespace.into(),
        option: option.into(),
        value: value.into(),
    };
    let mut dep = infra_like();
    let env = &mut dep.environments[0];
    env.load_balancer.extra_options = vec![
        raw("aws:autoscaling:asg", "Availability Zones", "Any"),
        raw("aws:autoscaling:asg", "Cooldown", "360"),
        raw("aws:elb:policies", "ConnectionDrainingTimeout", "20"),
        raw("aws:elb:policies", "ConnectionSettingIdleTimeout", "60"),
    ];
    dep
}

fn infra_like() -> Deployment {
    Deployment {
        application: "my-app".into(),
        region: "us-west-2".into(),
        image_repository: "my-app".into(),
        environments: vec![Environment {
            name: "staging".into(),
            eb_name: "my-env".into(),
            cname_prefix: "my-env".into(),
            tier: Tier::WebServer,
            platform: Platform::docker_al2023(),
            instance_types: vec!["t3.small".into()],
            service_role: "aws-elasticbeanstalk-service-role".into(),
            instance_profile: "aws-elasticbeanstalk-ec2-role".into(),
            security_groups: vec![],
            autoscaling: Autoscaling {
                min: 1,
                max: 4,
                trigger: Trigger {
                    measure: "NetworkOut".into(),
                    statistic: "Average".into(),
                    unit: "Bytes".into(),
                    period_minutes: 5,
                    evaluation_periods: 1,
                    breach_duration_minutes: 5,
                    upper_threshold: 6_000_000.0,
                    upper_increment: 1,
                    lower_threshold: 2_000_000.0,
                    lower_increment: -1,
                },
            },
            load_balancer: LoadBalancer {
                kind: LoadBalancerKind::Application,
                http_listener: true,
                https: None,
                health_check: HealthCheck {
                    path: "/ping".into(),
                    interval_seconds: 15,
                    timeout_seconds: 5,
                    healthy_threshold: 3,
                    unhealthy_threshold: 5,
                },
                extra_options: vec![],
            },
            deployment_policy: DeploymentPolicy::AllAtOnce,
            enhanced_health: true,
            logs: LogStreaming {
                stream: false,
                retention_days: 7,
                delete_on_terminate: false,
            },
            env_vars: BTreeMap::new(),
            secrets: vec![],
            tags: BTreeMap::new(),
            blue_green: false,
        }],
        container_port: 8080,
        keep_versions: 10,
    }
}

#[test]
fn documented_answers_observe_and_plan_without_phantom_changes() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let samples = Arc::new(samples());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post({
            let samples = samples.clone();
            move |body: Bytes| replay(samples.clone(), body)
        }),
    );
    runtime.spawn(async move { axum::serve(listener, app).await });

    let dep = deployment();
    let (observed, health) = runtime.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(dep.region.clone()))
            .credentials_provider(aws_credential_types::Credentials::new(
                "replay", "replay", None, None, "replay",
            ))
            .endpoint_url(format!("http://{addr}"))
            .load()
            .await;
        let clients = Clients::from_config(&config);
        (
            observe(&clients, &dep).await.unwrap(),
            environment_health(&clients.eb, "my-env").await.unwrap(),
        )
    });
    assert_eq!(health.color.as_deref(), Some("Green"));
    assert_eq!(health.status.as_deref(), Some("Ok"));
    assert!(health.causes.is_empty());

    let env = &observed.environments["my-env"];
    assert_eq!(env.status, "Ready");
    assert_eq!(env.health.as_deref(), Some("Green"));
    assert_eq!(env.cname_prefix(), Some("my-env"));
    assert_eq!(
        env.version_label.as_deref(),
        Some("7f58-stage-150812_025409")
    );
    assert_eq!(
        observed.application.as_ref().unwrap().versions,
        ["v1", "v2"],
        "newest first"
    );
    // The options EB answers with a ResourceName are observed with their values.
    for (namespace, option, value) in [
        ("aws:autoscaling:asg", "Availability Zones", "Any"),
        ("aws:autoscaling:asg", "Cooldown", "360"),
        ("aws:elb:policies", "ConnectionDrainingTimeout", "20"),
        ("aws:elb:policies", "ConnectionSettingIdleTimeout", "60"),
    ] {
        assert_eq!(
            env.options
                .get(&(namespace.to_string(), option.to_string()))
                .map(String::as_str),
            Some(value),
            "{namespace} {option}: {:?}",
            env.options
        );
    }

    // Planned against a config that declares those values: no row for any of them, and none
    // for what the environment answers about itself (tier, CNAME).
    let planned = plan(&Desired::new(&dep), &observed);
    let changes = &planned.environments[0].changes;
    let sampled: Vec<(String, String)> = env.options.keys().cloned().collect();
    for change in changes {
        if let ChangeKey::Option { namespace, option } = &change.key {
            assert!(
                !sampled.contains(&(namespace.clone(), option.clone())),
                "a phantom change for an option EB answered: {change:?}"
            );
        }
        assert!(
            !matches!(change.key, ChangeKey::Tier | ChangeKey::CnamePrefix),
            "{change:?}"
        );
    }

    // The documented events of a healthy environment are progress, not failures.
    for event in samples["DescribeEvents"]["Events"].as_array().unwrap() {
        assert_eq!(
            classify(
                event["Severity"].as_str().unwrap(),
                event["Message"].as_str().unwrap()
            ),
            Verdict::Info,
            "{event}"
        );
    }
}

#[test]
fn a_changed_option_with_a_resource_name_reads_as_an_update() {
    // The configuration sample, with the config wanting another Cooldown: `~ 360 -> 600`,
    // not a create of a value AWS supposedly lacks.
    let sets: Vec<aws_sdk_elasticbeanstalk::types::ConfigurationSettingsDescription> = {
        let sample = &samples()["DescribeConfigurationSettings"]["ConfigurationSettings"][0];
        let options = sample["OptionSettings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                aws_sdk_elasticbeanstalk::types::ConfigurationOptionSetting::builder()
                    .namespace(o["Namespace"].as_str().unwrap())
                    .option_name(o["OptionName"].as_str().unwrap())
                    .resource_name(o["ResourceName"].as_str().unwrap())
                    .value(o["Value"].as_str().unwrap())
                    .build()
            })
            .collect();
        let deployed = aws_sdk_elasticbeanstalk::types::ConfigurationSettingsDescription::builder()
            .deployment_status(
                aws_sdk_elasticbeanstalk::types::ConfigurationDeploymentStatus::Deployed,
            )
            .set_option_settings(Some(options))
            .build();
        // A draft that failed to deploy, answered beside the deployed set, must not count.
        let failed = aws_sdk_elasticbeanstalk::types::ConfigurationSettingsDescription::builder()
            .deployment_status(
                aws_sdk_elasticbeanstalk::types::ConfigurationDeploymentStatus::Failed,
            )
            .option_settings(
                aws_sdk_elasticbeanstalk::types::ConfigurationOptionSetting::builder()
                    .namespace("aws:autoscaling:asg")
                    .option_name("Cooldown")
                    .resource_name("AWSEBAutoScalingGroup")
                    .value("900")
                    .build(),
            )
            .option_settings(
                aws_sdk_elasticbeanstalk::types::ConfigurationOptionSetting::builder()
                    .namespace("aws:autoscaling:scheduledaction")
                    .option_name("MinSize")
                    .resource_name("night")
                    .value("0")
                    .build(),
            )
            .build();
        vec![failed, deployed]
    };
    let options = klue_deploy::observe::deployed_options(&sets);
    assert_eq!(
        options.get(&("aws:autoscaling:asg".into(), "Cooldown".into())),
        Some(&"360".to_string())
    );
    assert!(
        !options
            .keys()
            .any(|(ns, _)| ns == "aws:autoscaling:scheduledaction")
    );

    let mut dep = deployment();
    dep.environments[0].load_balancer.extra_options[1].value = "600".into();
    let observed = klue_deploy::Observed {
        application: Some(klue_deploy::observed::ObservedApplication {
            name: "my-app".into(),
            versions: vec![],
        }),
        environments: BTreeMap::from([(
            "my-env".to_string(),
            klue_deploy::observed::ObservedEnvironment {
                eb_name: "my-env".into(),
                status: "Ready".into(),
                cname: Some("my-env.elasticbeanstalk.com".into()),
                tier: Some("WebServer".into()),
                options,
                ..Default::default()
            },
        )]),
        secrets: BTreeMap::new(),
    };
    let planned = plan(&Desired::new(&dep), &observed);
    let cooldown = planned.environments[0]
        .changes
        .iter()
        .find(|c| c.name == "aws:autoscaling:asg Cooldown")
        .unwrap();
    assert_eq!(cooldown.action, klue_deploy::plan::ChangeAction::Update);
    assert_eq!(cooldown.current.as_deref(), Some("360"));
    assert_eq!(cooldown.desired.as_deref(), Some("600"));
}
