//! Plan unit tests: one snapshot per normalization rule and per create-only key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use klue_deploy::model::*;
use klue_deploy::observed::{AsgSize, ObservedApplication, ObservedEnvironment, ObservedSecret};
use klue_deploy::options::{self, desired_options, desired_tags};
use klue_deploy::plan::{ChangeAction, EnvironmentAction};
use klue_deploy::{Desired, Observed, plan, render};
use std::collections::BTreeMap;

fn deployment() -> Deployment {
    Deployment {
        application: "klue-hello".into(),
        region: "eu-west-1".into(),
        image_repository: "klue/hello".into(),
        environments: vec![Environment {
            name: "staging".into(),
            eb_name: "klue-hello-staging".into(),
            cname_prefix: "klue-hello-staging".into(),
            tier: Tier::WebServer,
            platform: Platform::docker_al2023(),
            instance_types: vec!["t3.small".into(), "t3.medium".into()],
            service_role: "aws-elasticbeanstalk-service-role".into(),
            instance_profile: "aws-elasticbeanstalk-ec2-role".into(),
            security_groups: vec!["sg-0b".into(), "sg-0a".into()],
            autoscaling: Autoscaling {
                min: 1,
                max: 4,
                trigger: Trigger {
                    measure: "CPUUtilization".into(),
                    statistic: "Average".into(),
                    unit: "Percent".into(),
                    period_minutes: 5,
                    evaluation_periods: 2,
                    breach_duration_minutes: 10,
                    upper_threshold: 70.0,
                    upper_increment: 1,
                    lower_threshold: 20.0,
                    lower_increment: -1,
                },
            },
            load_balancer: LoadBalancer {
                kind: LoadBalancerKind::Application,
                http_listener: true,
                https: Some(HttpsListener {
                    certificate_arn: "arn:aws:acm:eu-west-1:123456789012:certificate/abc".into(),
                    ssl_policy: None,
                }),
                health_check: HealthCheck {
                    path: "/ping".into(),
                    interval_seconds: 15,
                    timeout_seconds: 5,
                    healthy_threshold: 3,
                    unhealthy_threshold: 5,
                },
                extra_options: vec![RawOption {
                    namespace: "aws:elbv2:loadbalancer".into(),
                    option: "AccessLogsS3Prefix".into(),
                    value: "".into(),
                }],
            },
            deployment_policy: DeploymentPolicy::Rolling { batch_percent: 50 },
            enhanced_health: true,
            logs: LogStreaming {
                stream: true,
                retention_days: 7,
                delete_on_terminate: false,
            },
            env_vars: BTreeMap::from([("RUST_LOG".into(), "info".into())]),
            secrets: vec!["KLUE_JWT_SECRET".into()],
            tags: BTreeMap::from([("team".into(), "api".into())]),
            blue_green: false,
        }],
        container_port: 8080,
        keep_versions: 10,
    }
}

const SECRET_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:klue-hello/staging/KLUE_JWT_SECRET-Ab12Cd";

/// The live state EB would report after applying the config, plus platform defaults.
fn reconciled(dep: &Deployment) -> Observed {
    let env = &dep.environments[0];
    let mut opts = desired_options(&dep.application, env);
    opts.remove(&("aws:elbv2:loadbalancer".into(), "AccessLogsS3Prefix".into()));
    for (k, v) in opts.iter_mut() {
        if k.0 == options::ENV_SECRETS {
            *v = SECRET_ARN.into();
        }
    }
    for (ns, name, v) in [
        (
            "aws:elasticbeanstalk:environment:proxy",
            "ProxyServer",
            "nginx",
        ),
        ("aws:autoscaling:asg", "Cooldown", "360"),
        (
            "aws:elasticbeanstalk:environment",
            "LoadBalancerIsShared",
            "false",
        ),
        ("aws:elasticbeanstalk:command", "Timeout", "600"),
    ] {
        opts.insert((ns.into(), name.into()), v.into());
    }
    let mut tags = desired_tags(&dep.application, env);
    tags.insert(
        "elasticbeanstalk:environment-name".into(),
        env.eb_name.clone(),
    );
    tags.insert("Name".into(), env.eb_name.clone());
    Observed {
        application: Some(ObservedApplication { name: dep.application.clone(), versions: vec![] }),
        environments: BTreeMap::from([(
            env.eb_name.clone(),
            ObservedEnvironment {
                eb_name: env.eb_name.clone(),
                environment_id: "e-abc123".into(),
                status: "Ready".into(),
                health: Some("Green".into()),
                cname: Some("klue-hello-staging.eu-west-1.elasticbeanstalk.com".into()),
                tier: Some("WebServer".into()),
                platform_arn: Some(
                    "arn:aws:elasticbeanstalk:eu-west-1::platform/Docker running on 64bit Amazon Linux 2023/4.3.0".into(),
                ),
                solution_stack: Some("64bit Amazon Linux 2023 v4.3.0 running Docker".into()),
                version_label: Some("v1".into()),
                options: opts,
                tags: Some(tags),
                asg: Some(AsgSize { name: "awseb-e-abc123-stack-AWSEBAutoScalingGroup-X".into(), min: 1, max: 4 }),
            },
        )]),
        secrets: BTreeMap::from([(
            "klue-hello/staging/KLUE_JWT_SECRET".into(),
            ObservedSecret { arn: SECRET_ARN.into(), fingerprint: Some(klue_deploy::plan::fingerprint("s3cret-value")), scheduled_for_deletion: None },
        )]),
    }
}

fn set(o: &mut Observed, ns: &str, name: &str, value: &str) {
    o.environments.values_mut().for_each(|e| {
        e.options.insert((ns.into(), name.into()), value.into());
    });
}

fn table(dep: &Deployment, o: &Observed) -> String {
    render::table(&plan(&Desired::new(dep), o), false)
}

fn assert_no_changes(dep: &Deployment, o: &Observed) {
    let p = plan(&Desired::new(dep), o);
    assert!(
        !p.has_changes(),
        "expected no changes, got:\n{}",
        render::table(&p, false)
    );
}

#[test]
fn reconciled_environment_has_no_changes_and_platform_defaults_are_ignored() {
    let dep = deployment();
    dep.validate().unwrap();
    let o = reconciled(&dep);
    assert_no_changes(&dep, &o);
    insta::assert_snapshot!(table(&dep, &o));
}

#[test]
fn comma_lists_are_trimmed_and_instance_type_order_matters() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    set(
        &mut o,
        "aws:ec2:instances",
        "InstanceTypes",
        " t3.small ,t3.medium, ",
    );
    assert_no_changes(&dep, &o);
    set(
        &mut o,
        "aws:ec2:instances",
        "InstanceTypes",
        "t3.medium,t3.small",
    );
    insta::assert_snapshot!(table(&dep, &o));
}

#[test]
fn security_groups_are_sorted_and_eb_added_groups_ignored() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    set(
        &mut o,
        options::LAUNCH,
        "SecurityGroups",
        "sg-0a, awseb-e-abc123-stack-AWSEBSecurityGroup-1XYZ,sg-0b",
    );
    assert_no_changes(&dep, &o);
    set(
        &mut o,
        options::LAUNCH,
        "SecurityGroups",
        "sg-0a,awseb-e-abc123-stack-AWSEBSecurityGroup-1XYZ",
    );
    insta::assert_snapshot!(table(&dep, &o));
}

#[test]
fn empty_and_missing_are_equal() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    // The config declares AccessLogsS3Prefix="" and EB does not report it.
    assert_no_changes(&dep, &o);
    set(&mut o, "aws:elbv2:loadbalancer", "AccessLogsS3Prefix", "");
    assert_no_changes(&dep, &o);
    set(
        &mut o,
        "aws:elbv2:loadbalancer",
        "AccessLogsS3Prefix",
        "logs/",
    );
    insta::assert_snapshot!(table(&dep, &o));
}

#[test]
fn booleans_and_numbers_compare_as_values() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    set(&mut o, options::LOGS, "StreamLogs", "TRUE");
    set(&mut o, options::LOGS, "DeleteOnTerminate", "False");
    set(&mut o, options::TRIGGER, "UpperThreshold", "70.0");
    set(&mut o, options::ASG, "MinSize", "1.0");
    assert_no_changes(&dep, &o);
    set(&mut o, options::TRIGGER, "UpperThreshold", "70.5");
    set(&mut o, options::LOGS, "StreamLogs", "false");
    insta::assert_snapshot!(table(&dep, &o));
}

#[test]
fn role_arn_and_name_are_equal() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    set(
        &mut o,
        options::ENVIRONMENT,
        "ServiceRole",
        "arn:aws:iam::123456789012:role/service-role/aws-elasticbeanstalk-service-role",
    );
    set(
        &mut o,
        options::LAUNCH,
        "IamInstanceProfile",
        "arn:aws:iam::123456789012:instance-profile/aws-elasticbeanstalk-ec2-role",
    );
    assert_no_changes(&dep, &o);
    set(
        &mut o,
        options::ENVIRONMENT,
        "ServiceRole",
        "arn:aws:iam::123456789012:role/other-role",
    );
    insta::assert_snapshot!(table(&dep, &o));
}

#[test]
fn env_var_namespace_is_owned_exactly() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    set(&mut o, options::ENV_VARS, "DEBUG", "1");
    set(&mut o, options::ENV_VARS, "RUST_LOG", "info ");
    insta::assert_snapshot!(table(&dep, &o));
}

#[test]
fn secret_references_compare_arn_with_name_and_are_owned() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    o.environments.values_mut().for_each(|e| {
        e.options
            .remove(&(options::ENV_SECRETS.into(), "KLUE_JWT_SECRET".into()));
    });
    set(
        &mut o,
        options::ENV_SECRETS,
        "OLD_TOKEN",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:klue-hello/staging/OLD_TOKEN-Zz99Yy",
    );
    insta::assert_snapshot!(table(&dep, &o));
}

#[test]
fn secret_values_and_fingerprints_are_never_shown() {
    let dep = deployment();
    let o = reconciled(&dep);
    let same = Desired::new(&dep).with_secret_values(&o, |_| Some("s3cret-value".into()));
    assert!(!plan(&same, &o).has_changes());
    let changed = Desired::new(&dep).with_secret_values(&o, |_| Some("n3w-secret-value".into()));
    let p = plan(&changed, &o);
    let text = render::table(&p, false);
    let json = render::json(&p);
    for out in [&text, &json, &render::markdown(&p)] {
        assert!(
            !out.contains("n3w-secret-value") && !out.contains("s3cret-value"),
            "{out}"
        );
    }
    insta::assert_snapshot!(text);
    let mut missing = o.clone();
    missing.secrets.clear();
    insta::assert_snapshot!("secret_missing", table(&dep, &missing));
}

#[test]
fn out_of_band_min_size_is_one_key() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    set(&mut o, options::ASG, "MinSize", "3");
    o.environments
        .values_mut()
        .for_each(|e| e.asg.as_mut().unwrap().min = 3);
    let p = plan(&Desired::new(&dep), &o);
    assert_eq!(p.environments[0].changes.len(), 1);
    assert_eq!(
        p.environments[0].option_settings(),
        vec![((options::ASG.into(), "MinSize".into()), "1".into())]
    );
    insta::assert_snapshot!(render::table(&p, false));
}

#[test]
fn auto_scaling_group_changed_behind_eb() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    o.environments
        .values_mut()
        .for_each(|e| e.asg.as_mut().unwrap().max = 9);
    insta::assert_snapshot!(table(&dep, &o));
}

#[test]
fn create_only_load_balancer_type_is_replace() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    set(&mut o, options::ENVIRONMENT, "LoadBalancerType", "classic");
    let p = plan(&Desired::new(&dep), &o);
    assert_eq!(p.environments[0].action, EnvironmentAction::Replace);
    insta::assert_snapshot!(render::table(&p, false));
}

#[test]
fn create_only_cname_prefix_is_replace() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    o.environments
        .values_mut()
        .for_each(|e| e.cname = Some("klue-old.eu-west-1.elasticbeanstalk.com".into()));
    let p = plan(&Desired::new(&dep), &o);
    assert_eq!(p.environments[0].action, EnvironmentAction::Replace);
    insta::assert_snapshot!(render::table(&p, false));
}

#[test]
fn create_only_tier_is_replace() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    o.environments
        .values_mut()
        .for_each(|e| e.tier = Some("Worker".into()));
    let p = plan(&Desired::new(&dep), &o);
    assert_eq!(p.environments[0].action, EnvironmentAction::Replace);
    insta::assert_snapshot!(render::table(&p, false));
}

#[test]
fn platform_branch_change_is_replace_and_pinned_version_is_update() {
    let mut dep = deployment();
    let mut o = reconciled(&dep);
    dep.environments[0].platform.version = Some("4.4.0".into());
    insta::assert_snapshot!("platform_pinned", table(&dep, &o));
    dep.environments[0].platform.version = None;
    o.environments.values_mut().for_each(|e| {
        e.platform_arn = Some("arn:aws:elasticbeanstalk:eu-west-1::platform/Docker running on 64bit Amazon Linux 2/4.0.1".into())
    });
    insta::assert_snapshot!("platform_branch", table(&dep, &o));
}

#[test]
fn removing_https_from_config_disables_the_listener() {
    let mut dep = deployment();
    let o = reconciled(&dep);
    dep.environments[0].load_balancer.https = None;
    insta::assert_snapshot!(table(&dep, &o));
}

#[test]
fn tags_are_compared_and_eb_tags_ignored() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    o.environments.values_mut().for_each(|e| {
        let tags = e.tags.as_mut().unwrap();
        tags.insert("team".into(), "web".into());
        tags.insert("cost-center".into(), "42".into());
    });
    insta::assert_snapshot!(table(&dep, &o));
}

#[test]
fn missing_application_and_environment_are_created() {
    let dep = deployment();
    let p = plan(
        &Desired::new(&dep).with_secret_values(&Observed::default(), |_| Some("v".into())),
        &Observed::default(),
    );
    assert_eq!(p.environments[0].action, EnvironmentAction::Create);
    assert!(p.changes.iter().all(|c| c.action == ChangeAction::Create));
    insta::assert_snapshot!(render::table(&p, false));
    insta::assert_json_snapshot!("create_json", p.environments[0].changes[..3]);
}

#[test]
fn owned_namespace_removals_become_options_to_remove() {
    let dep = deployment();
    let mut o = reconciled(&dep);
    set(&mut o, options::ENV_VARS, "DEBUG", "1");
    let p = plan(&Desired::new(&dep), &o);
    assert_eq!(
        p.environments[0].options_to_remove(),
        vec![(options::ENV_VARS.into(), "DEBUG".into())]
    );
    insta::assert_snapshot!(render::markdown(&p));
}

#[test]
fn invalid_combinations_are_refused_with_clear_messages() {
    let mut dep = deployment();
    let env = &mut dep.environments[0];
    env.autoscaling.trigger.breach_duration_minutes = 5;
    env.autoscaling.min = 5;
    env.load_balancer.extra_options.push(RawOption {
        namespace: "aws:elb:loadbalancer".into(),
        option: "CrossZone".into(),
        value: "true".into(),
    });
    env.load_balancer.https = Some(HttpsListener {
        certificate_arn: "my-cert".into(),
        ssl_policy: None,
    });
    env.env_vars.insert("KLUE_JWT_SECRET".into(), "x".into());
    env.logs.retention_days = 2;
    env.load_balancer.health_check.path = "ping".into();
    let err = dep.validate().unwrap_err();
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn json_schema_is_exported() {
    let schema = Deployment::json_schema();
    let text = schema.to_string();
    for needle in [
        "breach_duration_minutes",
        "cname_prefix",
        "Application",
        "Immutable",
        "health_check",
    ] {
        assert!(text.contains(needle), "{needle} missing from the schema");
    }
}

#[test]
fn fingerprints_are_salted_and_still_detect_a_change() {
    use klue_deploy::plan::{fingerprint, fingerprint_matches, is_legacy_fingerprint};
    let a = fingerprint("s3cret-value");
    let b = fingerprint("s3cret-value");
    assert_ne!(
        a, b,
        "a fresh salt each time: equal values give unequal tags"
    );
    assert!(a.starts_with("pbkdf2-sha256:100000:"), "{a}");
    assert!(fingerprint_matches(&a, "s3cret-value"));
    assert!(fingerprint_matches(&b, "s3cret-value"));
    assert!(!fingerprint_matches(&a, "s3cret-valuf"));
    // The unsalted tags of earlier versions are still read (and replaced by the next deploy).
    let legacy = "sha256:bf496b76b91b";
    assert!(is_legacy_fingerprint(legacy));
    assert!(fingerprint_matches(legacy, "s3cret-value"));
    assert!(!fingerprint_matches(legacy, "another-value"));
    // Malformed or planted tags never match.
    for bad in [
        "",
        "pbkdf2-sha256",
        "pbkdf2-sha256:0:00:00",
        "pbkdf2-sha256:99999999999:00:00",
        "md5:x",
    ] {
        assert!(!fingerprint_matches(bad, "s3cret-value"), "{bad}");
    }
}

#[test]
fn a_secret_line_with_a_value_is_refused_by_line_and_name_only() {
    let mut dep = deployment();
    dep.environments[0].secrets =
        klue_deploy::parse_secret_names("KLUE_JWT_SECRET\nAPI_KEY=hunter2-pasted-by-mistake\n");
    dep.environments[0].env_vars.clear();
    let errors = dep.validate().unwrap_err().to_string();
    assert!(errors.contains("API_KEY=… (env.secrets line 2"), "{errors}");
    assert!(errors.contains("lists variable NAMES only"), "{errors}");
    assert!(!errors.contains("hunter2"), "{errors}");
    // A value set in code (not read from env.secrets) is not shown either.
    dep.environments[0].secrets = vec!["TOKEN=s3cr3t-in-code".into()];
    let errors = dep.validate().unwrap_err().to_string();
    assert!(errors.contains("TOKEN: env.secrets lists"), "{errors}");
    assert!(!errors.contains("s3cr3t"), "{errors}");
}
