//! This service's environments on AWS Elastic Beanstalk, as typed Rust config.
//!
//! Edit [`deployment`] to change instance types, scaling, the load balancer, variables...;
//! `cargo xtask diff` shows what would change in AWS. Secret variables are listed by NAME in
//! `env.secrets` at the repository root (values never live here). The model is documented in
//! `klue_deploy::model`. This crate holds configuration only: no AWS calls.

use klue_deploy::model::*;
use std::collections::BTreeMap;

/// The `env.secrets` file at the repository root.
pub fn secrets_file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("env.secrets")
}

/// Secret variable names from `env.secrets` (none when the file does not exist).
pub fn secret_names() -> Vec<String> {
    std::fs::read_to_string(secrets_file())
        .map(|t| klue_deploy::parse_secret_names(&t))
        .unwrap_or_default()
}

/// The whole deployment: the application and its `staging` and `live` environments.
pub fn deployment() -> Deployment {
    deployment_with_secrets(secret_names())
}

/// [`deployment`] with an explicit list of secret names (tests).
pub fn deployment_with_secrets(secrets: Vec<String>) -> Deployment {
    let application = "klue-helloworld".to_string();
    let env =
        |name: &str, min: u32, max: u32, policy: DeploymentPolicy, blue_green: bool| Environment {
            name: name.into(),
            eb_name: format!("{application}-{name}"),
            cname_prefix: format!("{application}-{name}"),
            tier: Tier::WebServer,
            platform: Platform::docker_al2023(),
            instance_types: vec!["t3.small".into(), "t3a.small".into()],
            service_role: "aws-elasticbeanstalk-service-role".into(),
            instance_profile: "klue-eb-instance".into(),
            security_groups: vec![],
            autoscaling: Autoscaling {
                min,
                max,
                trigger: Trigger {
                    measure: "CPUUtilization".into(),
                    statistic: "Average".into(),
                    unit: "Percent".into(),
                    period_minutes: 1,
                    evaluation_periods: 5,
                    breach_duration_minutes: 5,
                    upper_threshold: 70.0,
                    upper_increment: 1,
                    lower_threshold: 25.0,
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
            deployment_policy: policy,
            enhanced_health: true,
            logs: LogStreaming {
                stream: true,
                retention_days: 30,
                delete_on_terminate: false,
            },
            env_vars: BTreeMap::from([
                ("KLUE_LOG_FORMAT".to_string(), "json".to_string()),
                (
                    "KLUE_JWT_AUDIENCE".to_string(),
                    "klue-helloworld".to_string(),
                ),
                ("RUST_LOG".to_string(), "info".to_string()),
            ]),
            secrets: secrets.clone(),
            tags: BTreeMap::from([("service".to_string(), "helloworld".to_string())]),
            blue_green,
        };
    Deployment {
        application: application.clone(),
        region: "eu-west-1".into(),
        image_repository: "klue/helloworld".into(),
        environments: vec![
            env("staging", 1, 2, DeploymentPolicy::AllAtOnce, false),
            env("live", 2, 6, DeploymentPolicy::Immutable, true),
        ],
        container_port: 8080,
        keep_versions: 10,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_deployment_is_valid() {
        if let Err(e) = super::deployment().validate() {
            panic!("{e}");
        }
    }
}
