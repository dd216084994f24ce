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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = endpoint.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split_whitespace().nth(1).unwrap().parse().unwrap()
}
