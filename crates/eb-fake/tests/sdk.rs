//! The real `aws-sdk-elasticbeanstalk` client against eb-fake: every operation parses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_config::{BehaviorVersion, Region};
use aws_sdk_elasticbeanstalk::Client;
use aws_sdk_elasticbeanstalk::types::{
    ConfigurationOptionSetting, EnvironmentTier, OptionSpecification, S3Location, Tag,
};
use std::net::SocketAddr;
use std::time::Duration;

async fn start(delay_ms: u64) -> (Client, String) {
    let config = eb_fake::Config {
        region: "eu-west-1".into(),
        transition: Duration::from_millis(delay_ms),
    };
    let (addr, _fake) = eb_fake::spawn(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .await
        .unwrap();
    let endpoint = format!("http://{addr}");
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_elasticbeanstalk::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .load()
        .await;
    (Client::new(&sdk), endpoint)
}

fn opt(ns: &str, name: &str, value: &str) -> ConfigurationOptionSetting {
    ConfigurationOptionSetting::builder()
        .namespace(ns)
        .option_name(name)
        .value(value)
        .build()
}

async fn wait_ready(
    eb: &Client,
    name: &str,
) -> aws_sdk_elasticbeanstalk::types::EnvironmentDescription {
    for _ in 0..100 {
        let out = eb
            .describe_environments()
            .environment_names(name)
            .include_deleted(false)
            .send()
            .await
            .unwrap();
        let env = out.environments()[0].clone();
        if env.status().map(|s| s.as_str()) == Some("Ready") {
            return env;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{name} never became Ready");
}

#[tokio::test]
async fn every_operation_round_trips_through_the_sdk() {
    let (eb, _) = start(50).await;
    let app = eb
        .create_application()
        .application_name("demo")
        .description("d")
        .send()
        .await
        .unwrap();
    assert_eq!(app.application().unwrap().application_name(), Some("demo"));
    let apps = eb
        .describe_applications()
        .application_names("demo")
        .send()
        .await
        .unwrap();
    assert_eq!(apps.applications().len(), 1);
    assert!(apps.applications()[0].date_created().is_some());

    let v = eb
        .create_application_version()
        .application_name("demo")
        .version_label("v1")
        .source_bundle(
            S3Location::builder()
                .s3_bucket("b")
                .s3_key("k.json")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(v.application_version().unwrap().version_label(), Some("v1"));
    let vs = eb
        .describe_application_versions()
        .application_name("demo")
        .send()
        .await
        .unwrap();
    assert_eq!(
        vs.application_versions()[0]
            .source_bundle()
            .unwrap()
            .s3_key(),
        Some("k.json")
    );
    assert_eq!(
        vs.application_versions()[0].status().unwrap().as_str(),
        "PROCESSED"
    );

    let dns = eb
        .check_dns_availability()
        .cname_prefix("demo-web")
        .send()
        .await
        .unwrap();
    assert_eq!(dns.available(), Some(true));
    assert_eq!(
        dns.fully_qualified_cname(),
        Some("demo-web.eu-west-1.elasticbeanstalk.com")
    );

    let created = eb
        .create_environment()
        .application_name("demo")
        .environment_name("demo-web")
        .cname_prefix("demo-web")
        .version_label("v1")
        .tier(EnvironmentTier::builder().name("WebServer").r#type("Standard").build())
        .platform_arn("arn:aws:elasticbeanstalk:eu-west-1::platform/Docker running on 64bit Amazon Linux 2023/4.3.0")
        .option_settings(opt("aws:elasticbeanstalk:environment", "LoadBalancerType", "application"))
        .option_settings(opt("aws:autoscaling:asg", "MinSize", "2"))
        .option_settings(opt("aws:elasticbeanstalk:application:environment", "A", "1 & <2>"))
        .tags(Tag::builder().key("klue:env").value("web").build())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().unwrap().as_str(), "Launching");
    assert_eq!(created.tier().unwrap().name(), Some("WebServer"));
    let env_id = created.environment_id().unwrap().to_string();
    assert!(
        !eb.check_dns_availability()
            .cname_prefix("demo-web")
            .send()
            .await
            .unwrap()
            .available()
            .unwrap()
    );

    // Not Ready yet: updates are refused.
    let err = eb
        .update_environment()
        .environment_name("demo-web")
        .send()
        .await
        .unwrap_err();
    let text = format!(
        "{}",
        aws_sdk_elasticbeanstalk::error::DisplayErrorContext(&err)
    );
    assert!(
        text.contains("InvalidParameterValue") && text.contains("Must be Ready"),
        "{text}"
    );

    let env = wait_ready(&eb, "demo-web").await;
    assert_eq!(env.cname(), Some("demo-web.eu-west-1.elasticbeanstalk.com"));
    assert_eq!(env.health().unwrap().as_str(), "Green");

    let cfg = eb
        .describe_configuration_settings()
        .application_name("demo")
        .environment_name("demo-web")
        .send()
        .await
        .unwrap();
    let settings = &cfg.configuration_settings()[0];
    let get = |ns: &str, n: &str| {
        settings
            .option_settings()
            .iter()
            .find(|o| o.namespace() == Some(ns) && o.option_name() == Some(n))
            .and_then(|o| o.value().map(str::to_string))
    };
    assert_eq!(get("aws:autoscaling:asg", "MinSize").as_deref(), Some("2"));
    assert_eq!(
        get("aws:autoscaling:asg", "MaxSize").as_deref(),
        Some("4"),
        "platform default"
    );
    assert_eq!(
        get("aws:elasticbeanstalk:application:environment", "A").as_deref(),
        Some("1 & <2>")
    );

    // Create-only option refused on update.
    let err = eb
        .update_environment()
        .environment_name("demo-web")
        .option_settings(opt(
            "aws:elasticbeanstalk:environment",
            "LoadBalancerType",
            "network",
        ))
        .send()
        .await
        .unwrap_err();
    assert!(
        format!(
            "{}",
            aws_sdk_elasticbeanstalk::error::DisplayErrorContext(&err)
        )
        .contains("LoadBalancerType")
    );

    let updated = eb
        .update_environment()
        .environment_id(&env_id)
        .option_settings(opt("aws:autoscaling:asg", "MinSize", "3"))
        .options_to_remove(
            OptionSpecification::builder()
                .namespace("aws:elasticbeanstalk:application:environment")
                .option_name("A")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status().unwrap().as_str(), "Updating");
    wait_ready(&eb, "demo-web").await;
    let cfg = eb
        .describe_configuration_settings()
        .application_name("demo")
        .environment_name("demo-web")
        .send()
        .await
        .unwrap();
    let opts = cfg.configuration_settings()[0].option_settings();
    assert!(
        opts.iter()
            .any(|o| o.option_name() == Some("MinSize") && o.value() == Some("3"))
    );
    assert!(
        !opts
            .iter()
            .any(|o| o.namespace() == Some("aws:elasticbeanstalk:application:environment"))
    );

    let events = eb
        .describe_events()
        .environment_name("demo-web")
        .send()
        .await
        .unwrap();
    let messages: Vec<&str> = events.events().iter().filter_map(|e| e.message()).collect();
    assert!(
        messages.contains(&"Environment update completed successfully."),
        "{messages:?}"
    );
    assert!(events.events()[0].event_date().is_some());
    assert_eq!(events.events()[0].severity().unwrap().as_str(), "INFO");

    let res = eb
        .describe_environment_resources()
        .environment_name("demo-web")
        .send()
        .await
        .unwrap();
    let asg = res.environment_resources().unwrap().auto_scaling_groups()[0]
        .name()
        .unwrap();
    assert!(asg.starts_with("awseb-e-"), "{asg}");

    let tags = eb
        .list_tags_for_resource()
        .resource_arn(env.environment_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        tags.resource_tags()
            .iter()
            .any(|t| t.key() == Some("klue:env") && t.value() == Some("web"))
    );

    let term = eb
        .terminate_environment()
        .environment_name("demo-web")
        .send()
        .await
        .unwrap();
    assert_eq!(term.status().unwrap().as_str(), "Terminating");
    tokio::time::sleep(Duration::from_millis(120)).await;
    let all = eb
        .describe_environments()
        .application_name("demo")
        .send()
        .await
        .unwrap();
    assert_eq!(
        all.environments()[0].status().unwrap().as_str(),
        "Terminated"
    );
    let live = eb
        .describe_environments()
        .application_name("demo")
        .include_deleted(false)
        .send()
        .await
        .unwrap();
    assert!(live.environments().is_empty());
}

#[tokio::test]
async fn injected_update_failure_reverts_with_error_events() {
    let (eb, endpoint) = start(30).await;
    eb.create_application()
        .application_name("demo")
        .send()
        .await
        .unwrap();
    eb.create_environment()
        .application_name("demo")
        .environment_name("demo-web")
        .solution_stack_name("64bit Amazon Linux 2023 v4.3.0 running Docker")
        .option_settings(opt("aws:autoscaling:asg", "MinSize", "1"))
        .send()
        .await
        .unwrap();
    wait_ready(&eb, "demo-web").await;
    let http = reqwest_post(&endpoint, "/_fake/fault", r#"{"kind":"fail_next_update"}"#).await;
    assert_eq!(http, 204);
    eb.update_environment()
        .environment_name("demo-web")
        .option_settings(opt("aws:autoscaling:asg", "MinSize", "5"))
        .send()
        .await
        .unwrap();
    let env = wait_ready(&eb, "demo-web").await;
    assert_eq!(env.health().unwrap().as_str(), "Red");
    let cfg = eb
        .describe_configuration_settings()
        .application_name("demo")
        .environment_name("demo-web")
        .send()
        .await
        .unwrap();
    assert!(
        cfg.configuration_settings()[0]
            .option_settings()
            .iter()
            .any(|o| o.option_name() == Some("MinSize") && o.value() == Some("1"))
    );
    let events = eb
        .describe_events()
        .environment_name("demo-web")
        .severity("ERROR".into())
        .send()
        .await
        .unwrap();
    assert!(events.events().iter().any(|e| {
        e.message()
            .is_some_and(|m| m.contains("reverted to the previous configuration"))
    }));

    // Throttling: the SDK retries and then succeeds.
    assert_eq!(
        reqwest_post(
            &endpoint,
            "/_fake/fault",
            r#"{"kind":"throttle","count":1}"#
        )
        .await,
        204
    );
    eb.describe_applications().send().await.unwrap();
}

/// A minimal HTTP POST over a raw TCP stream (keeps the test free of an HTTP client dependency).
async fn reqwest_post(endpoint: &str, path: &str, body: &str) -> u16 {
    http(endpoint, "POST", path, body).await.0
}

/// A minimal HTTP/1.1 exchange over a raw TCP stream: (status, body).
async fn http(endpoint: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = endpoint.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn fault(endpoint: &str, body: &str) {
    assert_eq!(
        reqwest_post(endpoint, "/_fake/fault", body).await,
        204,
        "{body}"
    );
}

fn err_text<E: std::error::Error>(err: &E) -> String {
    format!(
        "{}",
        aws_sdk_elasticbeanstalk::error::DisplayErrorContext(err)
    )
}

const ARN_430: &str =
    "arn:aws:elasticbeanstalk:eu-west-1::platform/Docker running on 64bit Amazon Linux 2023/4.3.0";

/// An application "demo" with versions v1 and v2.
async fn app_with_versions(eb: &Client) {
    eb.create_application()
        .application_name("demo")
        .send()
        .await
        .unwrap();
    for label in ["v1", "v2"] {
        eb.create_application_version()
            .application_name("demo")
            .version_label(label)
            .source_bundle(
                S3Location::builder()
                    .s3_bucket("b")
                    .s3_key(format!("{label}.json"))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
}

async fn create_env(eb: &Client, name: &str, prefix: &str, version: &str) {
    eb.create_environment()
        .application_name("demo")
        .environment_name(name)
        .cname_prefix(prefix)
        .version_label(version)
        .platform_arn(ARN_430)
        .option_settings(opt("aws:autoscaling:asg", "MinSize", "1"))
        .send()
        .await
        .unwrap();
}

async fn messages(eb: &Client, env: &str) -> Vec<(String, String)> {
    eb.describe_events()
        .environment_name(env)
        .send()
        .await
        .unwrap()
        .events()
        .iter()
        .map(|e| {
            (
                e.severity().unwrap().as_str().to_string(),
                e.message().unwrap().to_string(),
            )
        })
        .collect()
}

async fn env(eb: &Client, name: &str) -> aws_sdk_elasticbeanstalk::types::EnvironmentDescription {
    eb.describe_environments()
        .environment_names(name)
        .include_deleted(false)
        .send()
        .await
        .unwrap()
        .environments()[0]
        .clone()
}

#[tokio::test]
async fn create_storage_location_names_the_account_bucket() {
    let (eb, _) = start(20).await;
    let out = eb.create_storage_location().send().await.unwrap();
    assert_eq!(
        out.s3_bucket(),
        Some("elasticbeanstalk-eu-west-1-123456789012")
    );
}

#[tokio::test]
async fn create_environment_refusals_and_launch_events() {
    let (eb, _) = start(30).await;
    app_with_versions(&eb).await;
    create_env(&eb, "demo-live", "demo-live", "v1").await;

    let dup = eb
        .create_environment()
        .application_name("demo")
        .environment_name("demo-live")
        .cname_prefix("other-prefix")
        .platform_arn(ARN_430)
        .send()
        .await
        .unwrap_err();
    let text = err_text(&dup);
    assert!(
        text.contains("InvalidParameterValue")
            && text.contains("Environment demo-live already exists."),
        "{text}"
    );
    let cname = eb
        .create_environment()
        .application_name("demo")
        .environment_name("demo-other")
        .cname_prefix("demo-live")
        .platform_arn(ARN_430)
        .send()
        .await
        .unwrap_err();
    let text = err_text(&cname);
    assert!(
        text.contains("DNS name (demo-live.eu-west-1.elasticbeanstalk.com) is not available."),
        "{text}"
    );
    let version = eb
        .create_environment()
        .application_name("demo")
        .environment_name("demo-other")
        .version_label("v9")
        .platform_arn(ARN_430)
        .send()
        .await
        .unwrap_err();
    assert!(
        err_text(&version).contains("No Application Version named 'v9' found."),
        "{}",
        err_text(&version)
    );
    let stack = eb
        .create_environment()
        .application_name("demo")
        .environment_name("demo-other")
        .solution_stack_name("64bit Amazon Linux 2023 v9.9.9 running Docker")
        .send()
        .await
        .unwrap_err();
    assert!(
        err_text(&stack).contains("No Solution Stack named"),
        "{}",
        err_text(&stack)
    );

    let live = wait_ready(&eb, "demo-live").await;
    assert_eq!(live.health().unwrap().as_str(), "Green");
    assert_eq!(live.version_label(), Some("v1"));
    assert_eq!(live.platform_arn(), Some(ARN_430));
    assert_eq!(
        live.solution_stack_name(),
        Some("64bit Amazon Linux 2023 v4.3.0 running Docker")
    );
    let msgs = messages(&eb, "demo-live").await;
    assert_eq!(
        msgs[0],
        (
            "INFO".to_string(),
            "Successfully launched environment: demo-live".to_string()
        ),
        "newest first: {msgs:?}"
    );
    assert_eq!(
        msgs.last().unwrap().1,
        "createEnvironment is starting.",
        "{msgs:?}"
    );

    // SolutionStackName alone records the matching platform ARN.
    eb.create_environment()
        .application_name("demo")
        .environment_name("demo-stack")
        .solution_stack_name("64bit Amazon Linux 2023 v4.4.0 running Docker")
        .send()
        .await
        .unwrap();
    let stack_env = env(&eb, "demo-stack").await;
    assert_eq!(
        stack_env.platform_arn(),
        Some(
            "arn:aws:elasticbeanstalk:eu-west-1::platform/Docker running on 64bit Amazon Linux 2023/4.4.0"
        )
    );

    // A terminated environment frees its name and CNAME.
    eb.terminate_environment()
        .environment_name("demo-live")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    create_env(&eb, "demo-live", "demo-live", "v2").await;
    wait_ready(&eb, "demo-live").await;

    // Update: version and options; completes with the AWS messages.
    eb.update_environment()
        .environment_name("demo-live")
        .version_label("v1")
        .option_settings(opt("aws:autoscaling:asg", "MinSize", "2"))
        .send()
        .await
        .unwrap();
    let updated = wait_ready(&eb, "demo-live").await;
    assert_eq!(updated.version_label(), Some("v1"));
    let msgs = messages(&eb, "demo-live").await;
    let texts: Vec<&str> = msgs.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(
        texts[0], "Environment update completed successfully.",
        "{texts:?}"
    );
    for m in [
        "Environment update is starting.",
        "Deploying new version to instance(s).",
        "New application version was deployed to running EC2 instances.",
        "Successfully deployed new configuration to environment.",
    ] {
        assert!(texts.contains(&m), "{m}: {texts:?}");
    }
}

#[tokio::test]
async fn swap_environment_cnames() {
    let (eb, endpoint) = start(30).await;
    app_with_versions(&eb).await;
    create_env(&eb, "demo-blue", "demo-live", "v1").await;
    create_env(&eb, "demo-green", "demo-next", "v2").await;

    // Not Ready yet.
    let err = eb
        .swap_environment_cnames()
        .source_environment_name("demo-green")
        .destination_environment_name("demo-blue")
        .send()
        .await
        .unwrap_err();
    let text = err_text(&err);
    assert!(
        text.contains("InvalidParameterValue") && text.contains("Must be Ready"),
        "{text}"
    );
    wait_ready(&eb, "demo-blue").await;
    wait_ready(&eb, "demo-green").await;

    // Unknown environment.
    let err = eb
        .swap_environment_cnames()
        .source_environment_name("demo-green")
        .destination_environment_name("demo-nope")
        .send()
        .await
        .unwrap_err();
    assert!(
        err_text(&err).contains("No Environment found for EnvironmentName = 'demo-nope'."),
        "{}",
        err_text(&err)
    );

    // Another application.
    eb.create_application()
        .application_name("other")
        .send()
        .await
        .unwrap();
    eb.create_environment()
        .application_name("other")
        .environment_name("other-web")
        .platform_arn(ARN_430)
        .send()
        .await
        .unwrap();
    wait_ready(&eb, "other-web").await;
    let err = eb
        .swap_environment_cnames()
        .source_environment_name("other-web")
        .destination_environment_name("demo-blue")
        .send()
        .await
        .unwrap_err();
    assert!(
        err_text(&err).contains("same application"),
        "{}",
        err_text(&err)
    );

    // By id on one side, by name on the other.
    let green_id = env(&eb, "demo-green")
        .await
        .environment_id()
        .unwrap()
        .to_string();
    let blue_id = env(&eb, "demo-blue")
        .await
        .environment_id()
        .unwrap()
        .to_string();
    // A longer transition, so that the Updating state is observable on a loaded machine.
    fault(&endpoint, r#"{"kind":"delay","millis":300}"#).await;
    eb.swap_environment_cnames()
        .source_environment_id(&green_id)
        .destination_environment_id(&blue_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        env(&eb, "demo-green").await.status().unwrap().as_str(),
        "Updating"
    );
    let green = wait_ready(&eb, "demo-green").await;
    let blue = wait_ready(&eb, "demo-blue").await;
    assert_eq!(
        green.cname(),
        Some("demo-live.eu-west-1.elasticbeanstalk.com")
    );
    assert_eq!(
        blue.cname(),
        Some("demo-next.eu-west-1.elasticbeanstalk.com")
    );
    for name in ["demo-green", "demo-blue"] {
        let msgs = messages(&eb, name).await;
        assert_eq!(
            msgs[0],
            (
                "INFO".to_string(),
                "Completed swapping CNAMEs for environments 'demo-green' and 'demo-blue'."
                    .to_string()
            ),
            "{name}: {msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|(_, m)| m == "swapEnvironmentCNAMEs is starting."),
            "{msgs:?}"
        );
    }
    let dns = eb
        .check_dns_availability()
        .cname_prefix("demo-live")
        .send()
        .await
        .unwrap();
    assert_eq!(dns.available(), Some(false));
    let (status, body) = http(&endpoint, "GET", "/_fake/calls", "").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"SwapEnvironmentCNAMEs\""), "{body}");
}

#[tokio::test]
async fn abort_environment_update_restores_the_previous_configuration() {
    let (eb, endpoint) = start(30).await;
    app_with_versions(&eb).await;
    create_env(&eb, "demo-live", "demo-live", "v1").await;
    wait_ready(&eb, "demo-live").await;

    let err = eb
        .abort_environment_update()
        .environment_name("demo-live")
        .send()
        .await
        .unwrap_err();
    assert!(
        err_text(&err).contains("InvalidParameterValue")
            && err_text(&err).contains("Must be Updating"),
        "{}",
        err_text(&err)
    );

    fault(&endpoint, r#"{"kind":"hang_next_update"}"#).await;
    eb.update_environment()
        .environment_name("demo-live")
        .version_label("v2")
        .option_settings(opt("aws:autoscaling:asg", "MinSize", "3"))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let hung = env(&eb, "demo-live").await;
    assert_eq!(hung.status().unwrap().as_str(), "Updating", "hung");
    assert_eq!(hung.abortable_operation_in_progress(), Some(true));
    assert_eq!(hung.version_label(), Some("v2"));

    eb.abort_environment_update()
        .environment_name("demo-live")
        .send()
        .await
        .unwrap();
    let aborting = env(&eb, "demo-live").await;
    assert_eq!(aborting.abortable_operation_in_progress(), Some(false));
    let back = wait_ready(&eb, "demo-live").await;
    assert_eq!(back.version_label(), Some("v1"));
    let cfg = eb
        .describe_configuration_settings()
        .application_name("demo")
        .environment_name("demo-live")
        .send()
        .await
        .unwrap();
    assert!(
        cfg.configuration_settings()[0]
            .option_settings()
            .iter()
            .any(|o| o.option_name() == Some("MinSize") && o.value() == Some("1"))
    );
    let msgs = messages(&eb, "demo-live").await;
    assert_eq!(
        msgs[0],
        (
            "WARN".to_string(),
            "Rollback of environment demo-live completed successfully.".to_string()
        ),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|(s, m)| s == "INFO" && m == "abortEnvironmentUpdate is starting."),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|(s, m)| s == "ERROR" && m.starts_with("During an aborted deployment")),
        "{msgs:?}"
    );
    assert!(
        !msgs
            .iter()
            .any(|(_, m)| m == "Environment update completed successfully."),
        "{msgs:?}"
    );
}

#[tokio::test]
async fn delete_application_version() {
    let (eb, _) = start(20).await;
    app_with_versions(&eb).await;
    create_env(&eb, "demo-live", "demo-live", "v1").await;
    wait_ready(&eb, "demo-live").await;

    let err = eb
        .delete_application_version()
        .application_name("demo")
        .version_label("v1")
        .delete_source_bundle(true)
        .send()
        .await
        .unwrap_err();
    let text = err_text(&err);
    assert!(
        text.contains("InvalidParameterValue")
            && text.contains(
                "Unable to delete application version 'v1' because it is being used by an environment."
            ),
        "{text}"
    );
    let err = eb
        .delete_application_version()
        .application_name("demo")
        .version_label("v9")
        .send()
        .await
        .unwrap_err();
    assert!(
        err_text(&err).contains("No Application Version named 'v9' found."),
        "{}",
        err_text(&err)
    );
    eb.delete_application_version()
        .application_name("demo")
        .version_label("v2")
        .delete_source_bundle(true)
        .send()
        .await
        .unwrap();
    let vs = eb
        .describe_application_versions()
        .application_name("demo")
        .send()
        .await
        .unwrap();
    let labels: Vec<&str> = vs
        .application_versions()
        .iter()
        .filter_map(|v| v.version_label())
        .collect();
    assert_eq!(labels, ["v1"]);

    // Once its environment is terminated, the version can go.
    eb.terminate_environment()
        .environment_name("demo-live")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    eb.describe_environments().send().await.unwrap();
    eb.delete_application_version()
        .application_name("demo")
        .version_label("v1")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn list_platform_versions_with_filters() {
    let (eb, _) = start(20).await;
    let filter = |t: &str, op: &str, v: &str| {
        aws_sdk_elasticbeanstalk::types::PlatformFilter::builder()
            .r#type(t)
            .operator(op)
            .values(v)
            .build()
    };
    let all = eb.list_platform_versions().send().await.unwrap();
    let versions: Vec<&str> = all
        .platform_summary_list()
        .iter()
        .filter_map(|p| p.platform_version())
        .collect();
    assert_eq!(versions, ["4.5.1", "4.4.0", "4.3.0"]);
    let newest = &all.platform_summary_list()[0];
    assert_eq!(
        newest.platform_arn(),
        Some(
            "arn:aws:elasticbeanstalk:eu-west-1::platform/Docker running on 64bit Amazon Linux 2023/4.5.1"
        )
    );
    assert_eq!(newest.platform_owner(), Some("AWSElasticBeanstalk"));
    assert_eq!(newest.platform_status().unwrap().as_str(), "Ready");
    assert_eq!(newest.platform_category(), Some("Docker"));
    assert_eq!(newest.operating_system_name(), Some("Amazon Linux"));
    assert_eq!(
        newest.supported_tier_list(),
        ["WebServer/Standard", "Worker/SQS/HTTP"]
    );
    assert_eq!(
        newest.platform_branch_name(),
        Some("Docker running on 64bit Amazon Linux 2023")
    );
    assert_eq!(newest.platform_branch_lifecycle_state(), Some("Supported"));
    assert_eq!(newest.platform_lifecycle_state(), Some("Recommended"));
    assert_eq!(
        all.platform_summary_list()[1].platform_lifecycle_state(),
        None
    );

    let out = eb
        .list_platform_versions()
        .filters(filter(
            "PlatformBranchName",
            "=",
            "Docker running on 64bit Amazon Linux 2023",
        ))
        .filters(filter("PlatformStatus", "=", "Ready"))
        .filters(filter("PlatformVersion", "contains", "4.4"))
        .send()
        .await
        .unwrap();
    let versions: Vec<&str> = out
        .platform_summary_list()
        .iter()
        .filter_map(|p| p.platform_version())
        .collect();
    assert_eq!(versions, ["4.4.0"]);
    let out = eb
        .list_platform_versions()
        .filters(filter("PlatformName", "contains", "Amazon Linux 2023"))
        .filters(filter("PlatformVersion", "<", "4.5.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.platform_summary_list().len(), 2);
    let none = eb
        .list_platform_versions()
        .filters(filter(
            "PlatformName",
            "=",
            "Node.js 22 running on 64bit Amazon Linux 2023",
        ))
        .send()
        .await
        .unwrap();
    assert!(none.platform_summary_list().is_empty());
    let rec = eb
        .list_platform_versions()
        .filters(filter("PlatformLifecycleState", "=", "recommended"))
        .send()
        .await
        .unwrap();
    assert_eq!(rec.platform_summary_list().len(), 1);
    let bad = eb
        .list_platform_versions()
        .filters(filter("Colour", "=", "blue"))
        .send()
        .await
        .unwrap_err();
    assert!(
        err_text(&bad).contains("InvalidParameterValue"),
        "{}",
        err_text(&bad)
    );

    // Pagination.
    let first = eb
        .list_platform_versions()
        .max_records(2)
        .send()
        .await
        .unwrap();
    assert_eq!(first.platform_summary_list().len(), 2);
    let second = eb
        .list_platform_versions()
        .max_records(2)
        .next_token(first.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        second.platform_summary_list()[0].platform_version(),
        Some("4.3.0")
    );
    assert!(second.next_token().is_none());

    // An environment created from a listed ARN records the matching solution stack.
    eb.create_application()
        .application_name("demo")
        .send()
        .await
        .unwrap();
    eb.create_environment()
        .application_name("demo")
        .environment_name("demo-live")
        .platform_arn(newest.platform_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        env(&eb, "demo-live").await.solution_stack_name(),
        Some("64bit Amazon Linux 2023 v4.5.1 running Docker")
    );
}

#[tokio::test]
async fn application_versions_paginate_newest_first() {
    let (eb, _) = start(20).await;
    eb.create_application()
        .application_name("demo")
        .send()
        .await
        .unwrap();
    for i in 1..=5 {
        eb.create_application_version()
            .application_name("demo")
            .version_label(format!("v{i}"))
            .send()
            .await
            .unwrap();
    }
    let mut labels = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = eb
            .describe_application_versions()
            .application_name("demo")
            .max_records(2)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        labels.extend(
            out.application_versions()
                .iter()
                .filter_map(|v| v.version_label().map(str::to_string)),
        );
        if pages == 1 {
            // A version created between pages does not shift the next page.
            eb.create_application_version()
                .application_name("demo")
                .version_label("v6")
                .send()
                .await
                .unwrap();
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(labels, ["v5", "v4", "v3", "v2", "v1"]);
    assert_eq!(pages, 3);
    let all = eb
        .describe_application_versions()
        .application_name("demo")
        .send()
        .await
        .unwrap();
    assert_eq!(all.application_versions().len(), 6);
    assert!(all.next_token().is_none());
    let err = eb
        .describe_application_versions()
        .max_records(0)
        .send()
        .await
        .unwrap_err();
    assert!(err_text(&err).contains("maxRecords"), "{}", err_text(&err));
    let err = eb
        .describe_application_versions()
        .next_token("garbage")
        .send()
        .await
        .unwrap_err();
    assert!(
        err_text(&err).contains("Invalid NextToken"),
        "{}",
        err_text(&err)
    );
}

#[tokio::test]
async fn describe_events_filters_and_pages() {
    let (eb, endpoint) = start(20).await;
    app_with_versions(&eb).await;
    create_env(&eb, "demo-live", "demo-live", "v1").await;
    create_env(&eb, "demo-next", "demo-next", "v1").await;
    wait_ready(&eb, "demo-live").await;
    wait_ready(&eb, "demo-next").await;
    let live_id = env(&eb, "demo-live")
        .await
        .environment_id()
        .unwrap()
        .to_string();

    let all = eb
        .describe_events()
        .application_name("demo")
        .send()
        .await
        .unwrap();
    let total = all.events().len();
    assert!(total >= 10, "{total}");
    assert!(all.next_token().is_none());
    let dates: Vec<_> = all
        .events()
        .iter()
        .map(|e| *e.event_date().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // By id, like by name.
    let by_id = eb
        .describe_events()
        .environment_id(&live_id)
        .send()
        .await
        .unwrap();
    let by_name = eb
        .describe_events()
        .environment_name("demo-live")
        .send()
        .await
        .unwrap();
    assert_eq!(by_id.events().len(), by_name.events().len());
    assert!(
        by_id
            .events()
            .iter()
            .all(|e| e.environment_name() == Some("demo-live"))
    );

    // Paging through all of it.
    let mut seen = 0;
    let mut token: Option<String> = None;
    loop {
        let out = eb
            .describe_events()
            .application_name("demo")
            .max_records(3)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        assert!(out.events().len() <= 3);
        seen += out.events().len();
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, total);

    // StartTime is inclusive and takes the SDK's own timestamp format: starting at the newest
    // event's date returns (at least) that event.
    let newest = by_name.events()[0].clone();
    let since = eb
        .describe_events()
        .environment_name("demo-live")
        .start_time(*newest.event_date().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        since
            .events()
            .iter()
            .any(|e| e.message() == newest.message()),
        "{:?}",
        since.events()
    );
    // EndTime is exclusive.
    let before = eb
        .describe_events()
        .environment_name("demo-live")
        .end_time(*newest.event_date().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        before
            .events()
            .iter()
            .all(|e| e.event_date() < newest.event_date())
    );
    // A start time taken before an operation sees all of that operation's events.
    let t0 = aws_sdk_elasticbeanstalk::primitives::DateTime::from(std::time::SystemTime::now());
    eb.update_environment()
        .environment_name("demo-live")
        .version_label("v2")
        .send()
        .await
        .unwrap();
    wait_ready(&eb, "demo-live").await;
    let op = eb
        .describe_events()
        .environment_name("demo-live")
        .start_time(t0)
        .send()
        .await
        .unwrap();
    let texts: Vec<&str> = op.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(
        texts.last(),
        Some(&"Environment update is starting."),
        "{texts:?}"
    );
    assert_eq!(texts[0], "Environment update completed successfully.");
    // VersionLabel filter.
    let v2 = eb
        .describe_events()
        .environment_name("demo-live")
        .version_label("v2")
        .send()
        .await
        .unwrap();
    assert!(!v2.events().is_empty());
    assert!(v2.events().iter().all(|e| e.version_label() == Some("v2")));

    // Severity is a minimum.
    fault(&endpoint, r#"{"kind":"unhealthy_next_launch"}"#).await;
    create_env(&eb, "demo-sick", "demo-sick", "v1").await;
    wait_ready(&eb, "demo-sick").await;
    let warn = eb
        .describe_events()
        .application_name("demo")
        .severity("WARN".into())
        .send()
        .await
        .unwrap();
    assert!(!warn.events().is_empty());
    assert!(
        warn.events()
            .iter()
            .all(|e| e.severity().unwrap().as_str() == "WARN")
    );
    let error = eb
        .describe_events()
        .application_name("demo")
        .severity("ERROR".into())
        .send()
        .await
        .unwrap();
    assert!(error.events().is_empty(), "{:?}", error.events());

    // The SDK's StartTime went over the wire in a form the fake parsed.
    let (_, body) = http(&endpoint, "GET", "/_fake/requests", "").await;
    let reqs: Vec<std::collections::BTreeMap<String, String>> =
        serde_json::from_str(&body).unwrap();
    assert!(reqs.iter().any(
        |r| r.get("Action").map(String::as_str) == Some("DescribeEvents")
            && r.contains_key("StartTime")
    ));
}

#[tokio::test]
async fn fault_complete_with_errors_keeps_the_previous_version() {
    let (eb, endpoint) = start(20).await;
    app_with_versions(&eb).await;
    create_env(&eb, "demo-live", "demo-live", "v1").await;
    wait_ready(&eb, "demo-live").await;
    fault(&endpoint, r#"{"kind":"complete_with_errors_next_update"}"#).await;
    eb.update_environment()
        .environment_name("demo-live")
        .version_label("v2")
        .send()
        .await
        .unwrap();
    let after = wait_ready(&eb, "demo-live").await;
    assert_eq!(after.version_label(), Some("v1"));
    assert_eq!(after.health().unwrap().as_str(), "Red");
    let msgs = messages(&eb, "demo-live").await;
    assert_eq!(
        msgs[0],
        (
            "ERROR".to_string(),
            "Update environment operation is complete, but with errors. For more information, see troubleshooting documentation.".to_string()
        ),
        "{msgs:?}"
    );
    assert!(
        !msgs
            .iter()
            .any(|(_, m)| m == "Environment update completed successfully."),
        "{msgs:?}"
    );
    // One-shot: the next update succeeds.
    eb.update_environment()
        .environment_name("demo-live")
        .version_label("v2")
        .send()
        .await
        .unwrap();
    let ok = wait_ready(&eb, "demo-live").await;
    assert_eq!(ok.version_label(), Some("v2"));
    assert_eq!(ok.health().unwrap().as_str(), "Green");
}

#[tokio::test]
async fn fault_busy_and_hang_and_release() {
    let (eb, endpoint) = start(20).await;
    app_with_versions(&eb).await;
    create_env(&eb, "demo-live", "demo-live", "v1").await;
    wait_ready(&eb, "demo-live").await;

    // busy: Updating out of band for a while, then Ready by itself.
    fault(
        &endpoint,
        r#"{"kind":"busy","environment":"demo-live","millis":400}"#,
    )
    .await;
    assert_eq!(
        reqwest_post(
            &endpoint,
            "/_fake/fault",
            r#"{"kind":"busy","environment":"demo-nope","millis":10}"#
        )
        .await,
        404
    );
    let busy = env(&eb, "demo-live").await;
    assert_eq!(busy.status().unwrap().as_str(), "Updating");
    let err = eb
        .update_environment()
        .environment_name("demo-live")
        .version_label("v2")
        .send()
        .await
        .unwrap_err();
    assert!(
        err_text(&err).contains("Must be Ready"),
        "{}",
        err_text(&err)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        env(&eb, "demo-live").await.status().unwrap().as_str(),
        "Updating",
        "still busy after 100 ms"
    );
    wait_ready(&eb, "demo-live").await;
    let msgs = messages(&eb, "demo-live").await;
    assert_eq!(msgs[0].1, "Environment update completed successfully.");

    // hang on an update, then release: completes normally.
    fault(&endpoint, r#"{"kind":"hang_next_update"}"#).await;
    eb.update_environment()
        .environment_name("demo-live")
        .version_label("v2")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        env(&eb, "demo-live").await.status().unwrap().as_str(),
        "Updating"
    );
    fault(&endpoint, r#"{"kind":"release","environment":"demo-live"}"#).await;
    let done = env(&eb, "demo-live").await;
    assert_eq!(done.status().unwrap().as_str(), "Ready");
    assert_eq!(done.version_label(), Some("v2"));

    // hang on a launch: Launching until released.
    fault(&endpoint, r#"{"kind":"hang_next_update"}"#).await;
    create_env(&eb, "demo-next", "demo-next", "v2").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        env(&eb, "demo-next").await.status().unwrap().as_str(),
        "Launching"
    );
    fault(&endpoint, r#"{"kind":"release"}"#).await;
    let launched = env(&eb, "demo-next").await;
    assert_eq!(launched.status().unwrap().as_str(), "Ready");
    assert_eq!(launched.health().unwrap().as_str(), "Green");
}

#[tokio::test]
async fn fault_unhealthy_next_launch_and_requests_log() {
    let (eb, endpoint) = start(20).await;
    app_with_versions(&eb).await;
    fault(&endpoint, r#"{"kind":"unhealthy_next_launch"}"#).await;
    create_env(&eb, "demo-live", "demo-live", "v1").await;
    let sick = wait_ready(&eb, "demo-live").await;
    assert_eq!(sick.health().unwrap().as_str(), "Red");
    let msgs = messages(&eb, "demo-live").await;
    assert!(
        msgs.iter().any(|(s, m)| s == "WARN"
            && m.starts_with("Environment health has transitioned from Pending to Severe.")),
        "{msgs:?}"
    );
    // One-shot.
    create_env(&eb, "demo-next", "demo-next", "v1").await;
    assert_eq!(
        wait_ready(&eb, "demo-next")
            .await
            .health()
            .unwrap()
            .as_str(),
        "Green"
    );

    eb.update_environment()
        .environment_name("demo-next")
        .option_settings(opt("aws:autoscaling:asg", "MaxSize", "6"))
        .options_to_remove(
            OptionSpecification::builder()
                .namespace("aws:autoscaling:asg")
                .option_name("MinSize")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = http(&endpoint, "GET", "/_fake/requests", "").await;
    assert_eq!(status, 200);
    let reqs: Vec<std::collections::BTreeMap<String, String>> =
        serde_json::from_str(&body).unwrap();
    let update = reqs
        .iter()
        .rev()
        .find(|r| r.get("Action").map(String::as_str) == Some("UpdateEnvironment"))
        .unwrap();
    let settings: Vec<(&str, &str)> = update
        .iter()
        .filter(|(k, _)| k.starts_with("OptionSettings.") || k.starts_with("OptionsToRemove."))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        settings,
        [
            ("OptionSettings.member.1.Namespace", "aws:autoscaling:asg"),
            ("OptionSettings.member.1.OptionName", "MaxSize"),
            ("OptionSettings.member.1.Value", "6"),
            ("OptionsToRemove.member.1.Namespace", "aws:autoscaling:asg"),
            ("OptionsToRemove.member.1.OptionName", "MinSize"),
        ]
    );
    let (_, calls) = http(&endpoint, "GET", "/_fake/calls", "").await;
    let calls: Vec<String> = serde_json::from_str(&calls).unwrap();
    assert_eq!(calls.len(), reqs.len());
    assert_eq!(calls.last().map(String::as_str), Some("UpdateEnvironment"));
}

/// DescribeConfigurationSettings answers as EB does: a `ResourceName` on the options of the
/// stack's resources (the Auto Scaling group, the alarms and policies of the trigger, the
/// launch configuration, the load balancer's listener and process) and none on the
/// environment's own; lists joined with ", "; the deployed set first, and a draft beside it
/// while an update runs ("pending") and after one failed ("failed").
#[tokio::test]
async fn configuration_settings_answer_resource_names_lists_and_drafts() {
    let (eb, endpoint) = start(50).await;
    eb.create_application()
        .application_name("demo")
        .send()
        .await
        .unwrap();
    eb.create_environment()
        .application_name("demo")
        .environment_name("demo-web")
        .solution_stack_name("64bit Amazon Linux 2023 v4.3.0 running Docker")
        .option_settings(opt(
            "aws:elasticbeanstalk:environment",
            "LoadBalancerType",
            "application",
        ))
        .option_settings(opt("aws:autoscaling:asg", "MaxSize", "2"))
        .option_settings(opt("aws:autoscaling:trigger", "UpperThreshold", "70"))
        .option_settings(opt(
            "aws:ec2:instances",
            "InstanceTypes",
            "t3.small,t3a.small",
        ))
        .option_settings(opt(
            "aws:elasticbeanstalk:application:environment",
            "RUST_LOG",
            "info",
        ))
        .send()
        .await
        .unwrap();
    wait_ready(&eb, "demo-web").await;
    let settings = |eb: Client| async move {
        eb.describe_configuration_settings()
            .application_name("demo")
            .environment_name("demo-web")
            .send()
            .await
            .unwrap()
            .configuration_settings()
            .to_vec()
    };
    let sets = settings(eb.clone()).await;
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].deployment_status().unwrap().as_str(), "deployed");
    let find = |set: &aws_sdk_elasticbeanstalk::types::ConfigurationSettingsDescription,
                ns: &str,
                name: &str| {
        set.option_settings()
            .iter()
            .find(|o| o.namespace() == Some(ns) && o.option_name() == Some(name))
            .cloned()
            .unwrap_or_else(|| panic!("{ns} {name} missing"))
    };
    for (ns, name, resource) in [
        (
            "aws:autoscaling:asg",
            "MaxSize",
            Some("AWSEBAutoScalingGroup"),
        ),
        (
            "aws:autoscaling:asg",
            "MinSize",
            Some("AWSEBAutoScalingGroup"),
        ),
        (
            "aws:autoscaling:trigger",
            "UpperThreshold",
            Some("AWSEBCloudwatchAlarmHigh"),
        ),
        (
            "aws:autoscaling:trigger",
            "LowerThreshold",
            Some("AWSEBCloudwatchAlarmLow"),
        ),
        (
            "aws:autoscaling:trigger",
            "UpperBreachScaleIncrement",
            Some("AWSEBAutoScalingScaleUpPolicy"),
        ),
        (
            "aws:autoscaling:launchconfiguration",
            "SecurityGroups",
            Some("AWSEBAutoScalingLaunchConfiguration"),
        ),
        (
            "aws:elbv2:listener:default",
            "ListenerEnabled",
            Some("AWSEBV2LoadBalancerListener"),
        ),
        (
            "aws:elasticbeanstalk:environment:process:default",
            "HealthCheckPath",
            Some("AWSEBV2LoadBalancerTargetGroup"),
        ),
        (
            "aws:elasticbeanstalk:application:environment",
            "RUST_LOG",
            None,
        ),
        ("aws:elasticbeanstalk:command", "DeploymentPolicy", None),
    ] {
        assert_eq!(
            find(&sets[0], ns, name).resource_name(),
            resource,
            "{ns} {name}"
        );
    }
    assert_eq!(
        find(&sets[0], "aws:ec2:instances", "InstanceTypes").value(),
        Some("t3.small, t3a.small")
    );

    // While an update runs: the deployed set still holds the old value, a pending draft the new.
    fault(&endpoint, r#"{"kind":"hang_next_update"}"#).await;
    eb.update_environment()
        .environment_name("demo-web")
        .option_settings(opt("aws:autoscaling:asg", "MaxSize", "3"))
        .send()
        .await
        .unwrap();
    // (DeploymentStatus, MaxSize) of each set answered.
    let max_sizes =
        |sets: Vec<aws_sdk_elasticbeanstalk::types::ConfigurationSettingsDescription>| {
            sets.iter()
                .map(|set| {
                    (
                        set.deployment_status().unwrap().as_str().to_string(),
                        find(set, "aws:autoscaling:asg", "MaxSize")
                            .value()
                            .unwrap()
                            .to_string(),
                    )
                })
                .collect::<Vec<_>>()
        };
    let pair = |status: &str, size: &str| (status.to_string(), size.to_string());
    assert_eq!(
        max_sizes(settings(eb.clone()).await),
        [pair("deployed", "2"), pair("pending", "3")]
    );
    fault(&endpoint, r#"{"kind":"release"}"#).await;
    wait_ready(&eb, "demo-web").await;
    assert_eq!(
        max_sizes(settings(eb.clone()).await),
        [pair("deployed", "3")]
    );

    // After a failed update: the reverted deployed set, and the failed draft beside it.
    fault(&endpoint, r#"{"kind":"fail_next_update"}"#).await;
    eb.update_environment()
        .environment_name("demo-web")
        .option_settings(opt("aws:autoscaling:asg", "MaxSize", "9"))
        .send()
        .await
        .unwrap();
    wait_ready(&eb, "demo-web").await;
    assert_eq!(
        max_sizes(settings(eb.clone()).await),
        [pair("deployed", "3"), pair("failed", "9")]
    );
}
