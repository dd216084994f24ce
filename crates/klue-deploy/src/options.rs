//! The mapping from the model to Elastic Beanstalk option settings
//! (namespace, option name, value), exactly as EB names them.

use crate::model::{DeploymentPolicy, Environment, LoadBalancerKind, Tier};
use std::collections::BTreeMap;

/// `aws:autoscaling:asg`: MinSize, MaxSize.
pub const ASG: &str = "aws:autoscaling:asg";
/// `aws:autoscaling:trigger`: the scaling alarms.
pub const TRIGGER: &str = "aws:autoscaling:trigger";
/// `aws:autoscaling:launchconfiguration`: IamInstanceProfile, SecurityGroups.
pub const LAUNCH: &str = "aws:autoscaling:launchconfiguration";
/// `aws:ec2:instances`: InstanceTypes.
pub const INSTANCES: &str = "aws:ec2:instances";
/// `aws:elasticbeanstalk:environment`: EnvironmentType, LoadBalancerType, ServiceRole.
pub const ENVIRONMENT: &str = "aws:elasticbeanstalk:environment";
/// `aws:elbv2:listener:default`: the port 80 listener.
pub const LISTENER_DEFAULT: &str = "aws:elbv2:listener:default";
/// `aws:elbv2:listener:443`: the HTTPS listener.
pub const LISTENER_443: &str = "aws:elbv2:listener:443";
/// `aws:elasticbeanstalk:environment:process:default`: the health check.
pub const PROCESS_DEFAULT: &str = "aws:elasticbeanstalk:environment:process:default";
/// `aws:elasticbeanstalk:command`: DeploymentPolicy.
pub const COMMAND: &str = "aws:elasticbeanstalk:command";
/// `aws:elasticbeanstalk:healthreporting:system`: SystemType.
pub const HEALTH: &str = "aws:elasticbeanstalk:healthreporting:system";
/// `aws:elasticbeanstalk:cloudwatch:logs`: StreamLogs.
pub const LOGS: &str = "aws:elasticbeanstalk:cloudwatch:logs";
/// `aws:elasticbeanstalk:application:environment`: plain variables (owned exactly).
pub const ENV_VARS: &str = "aws:elasticbeanstalk:application:environment";
/// `aws:elasticbeanstalk:application:environmentsecrets`: secret references (owned exactly).
pub const ENV_SECRETS: &str = "aws:elasticbeanstalk:application:environmentsecrets";

/// Namespaces klue owns exactly: an option there that the config does not declare is drift.
pub const OWNED_NAMESPACES: &[&str] = &[ENV_VARS, ENV_SECRETS];

/// Options that cannot change after the environment exists (a change means a new environment).
pub const CREATE_ONLY: &[(&str, &str)] = &[
    (ENVIRONMENT, "LoadBalancerType"),
    (ENVIRONMENT, "LoadBalancerIsShared"),
];

/// An option's address: (namespace, option name).
pub type OptionKey = (String, String);

/// The Secrets Manager name of an environment's secret: `<application>/<env>/<NAME>`.
pub fn secret_id(application: &str, env: &str, name: &str) -> String {
    format!("{application}/{env}/{name}")
}

fn b(v: bool) -> String {
    if v { "true".into() } else { "false".into() }
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The option settings an environment should have. Secret references are given as the
/// Secrets Manager secret *name* ([`secret_id`]); the plan compares them with the ARNs EB
/// holds (the apply step substitutes the ARN).
pub fn desired_options(application: &str, env: &Environment) -> BTreeMap<OptionKey, String> {
    let mut o = BTreeMap::new();
    let mut set = |ns: &str, name: &str, value: String| {
        o.insert((ns.to_string(), name.to_string()), value);
    };
    set(ENVIRONMENT, "ServiceRole", env.service_role.clone());
    set(LAUNCH, "IamInstanceProfile", env.instance_profile.clone());
    if !env.security_groups.is_empty() {
        set(LAUNCH, "SecurityGroups", env.security_groups.join(","));
    }
    set(INSTANCES, "InstanceTypes", env.instance_types.join(","));
    let a = &env.autoscaling;
    set(ASG, "MinSize", a.min.to_string());
    set(ASG, "MaxSize", a.max.to_string());
    let t = &a.trigger;
    set(TRIGGER, "MeasureName", t.measure.clone());
    set(TRIGGER, "Statistic", t.statistic.clone());
    set(TRIGGER, "Unit", t.unit.clone());
    set(TRIGGER, "Period", t.period_minutes.to_string());
    set(
        TRIGGER,
        "EvaluationPeriods",
        t.evaluation_periods.to_string(),
    );
    set(
        TRIGGER,
        "BreachDuration",
        t.breach_duration_minutes.to_string(),
    );
    set(TRIGGER, "UpperThreshold", num(t.upper_threshold));
    set(
        TRIGGER,
        "UpperBreachScaleIncrement",
        t.upper_increment.to_string(),
    );
    set(TRIGGER, "LowerThreshold", num(t.lower_threshold));
    set(
        TRIGGER,
        "LowerBreachScaleIncrement",
        t.lower_increment.to_string(),
    );
    if env.tier == Tier::WebServer {
        let lb = &env.load_balancer;
        set(ENVIRONMENT, "EnvironmentType", "LoadBalanced".into());
        let kind = match lb.kind {
            LoadBalancerKind::Application => "application",
        };
        set(ENVIRONMENT, "LoadBalancerType", kind.into());
        set(LISTENER_DEFAULT, "ListenerEnabled", b(lb.http_listener));
        if let Some(https) = &lb.https {
            set(LISTENER_443, "ListenerEnabled", "true".into());
            set(LISTENER_443, "Protocol", "HTTPS".into());
            set(
                LISTENER_443,
                "SSLCertificateArns",
                https.certificate_arn.clone(),
            );
            if let Some(policy) = &https.ssl_policy {
                set(LISTENER_443, "SSLPolicy", policy.clone());
            }
        }
        let h = &lb.health_check;
        set(PROCESS_DEFAULT, "HealthCheckPath", h.path.clone());
        set(
            PROCESS_DEFAULT,
            "HealthCheckInterval",
            h.interval_seconds.to_string(),
        );
        set(
            PROCESS_DEFAULT,
            "HealthCheckTimeout",
            h.timeout_seconds.to_string(),
        );
        set(
            PROCESS_DEFAULT,
            "HealthyThresholdCount",
            h.healthy_threshold.to_string(),
        );
        set(
            PROCESS_DEFAULT,
            "UnhealthyThresholdCount",
            h.unhealthy_threshold.to_string(),
        );
        for raw in &lb.extra_options {
            set(&raw.namespace, &raw.option, raw.value.clone());
        }
    }
    match env.deployment_policy {
        DeploymentPolicy::AllAtOnce => set(COMMAND, "DeploymentPolicy", "AllAtOnce".into()),
        DeploymentPolicy::Immutable => set(COMMAND, "DeploymentPolicy", "Immutable".into()),
        DeploymentPolicy::Rolling { batch_percent } => {
            set(COMMAND, "DeploymentPolicy", "Rolling".into());
            set(COMMAND, "BatchSizeType", "Percentage".into());
            set(COMMAND, "BatchSize", batch_percent.to_string());
        }
    }
    set(
        HEALTH,
        "SystemType",
        if env.enhanced_health {
            "enhanced"
        } else {
            "basic"
        }
        .into(),
    );
    set(LOGS, "StreamLogs", b(env.logs.stream));
    set(LOGS, "RetentionInDays", env.logs.retention_days.to_string());
    set(LOGS, "DeleteOnTerminate", b(env.logs.delete_on_terminate));
    for (name, value) in &env.env_vars {
        set(ENV_VARS, name, value.clone());
    }
    for name in &env.secrets {
        set(ENV_SECRETS, name, secret_id(application, &env.name, name));
    }
    o
}

/// Tags klue puts on every environment, on top of the configured ones.
pub fn desired_tags(application: &str, env: &Environment) -> BTreeMap<String, String> {
    let mut tags = env.tags.clone();
    tags.insert("klue:app".into(), application.into());
    tags.insert("klue:env".into(), env.name.clone());
    tags
}
