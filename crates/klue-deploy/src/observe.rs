//! Reads the live state with the AWS SDK for Rust: EB (applications, versions, environments,
//! configuration settings, tags, resources), Auto Scaling (group sizes) and Secrets Manager
//! (secret metadata; values are never read).
//!
//! Clients come from `aws_config::defaults(BehaviorVersion::latest())`, so `AWS_PROFILE`,
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_ELASTIC_BEANSTALK`, ... work as usual.

use crate::model::Deployment;
use crate::observed::{
    AsgSize, Observed, ObservedApplication, ObservedEnvironment, ObservedSecret,
};
use crate::options::secret_id;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::collections::BTreeMap;

/// An AWS call failed (see [`crate::aws_error`]).
pub type ObserveError = crate::aws_error::AwsError;

pub(crate) use crate::aws_error::err;

/// The AWS clients observation uses.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Elastic Beanstalk.
    pub eb: aws_sdk_elasticbeanstalk::Client,
    /// Secrets Manager.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// Auto Scaling.
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// S3 (source bundles).
    pub s3: aws_sdk_s3::Client,
    /// STS (who the caller is, before anything else).
    pub sts: aws_sdk_sts::Client,
    /// The configuration the clients were made from (region, credentials provider).
    pub config: SdkConfig,
}

impl Clients {
    /// Clients from the standard AWS configuration chain, in the deployment's region: the
    /// region comes from `infra` alone, whatever `AWS_REGION` says (see [`region_note`]).
    pub async fn from_env(region: &str) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .load()
            .await;
        Self::from_config(&config)
    }

    /// Clients from a loaded configuration.
    pub fn from_config(config: &SdkConfig) -> Self {
        Clients {
            eb: aws_sdk_elasticbeanstalk::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            autoscaling: aws_sdk_autoscaling::Client::new(config),
            s3: aws_sdk_s3::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            config: config.clone(),
        }
    }
}

/// A note when `AWS_REGION` or `AWS_DEFAULT_REGION` names another region than the deployment's:
/// klue ignores them (every client uses the deployment's region) and says so.
pub fn region_note(region: &str) -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| {
            let value = std::env::var(name).ok()?;
            (!value.is_empty() && value != region).then(|| {
            format!(
                "note: {name}={value} is ignored: infra deploys to {region}, and every AWS call \
                 (Elastic Beanstalk, S3, Secrets Manager, Auto Scaling, ECR) goes there"
            )
        })
        })
}

/// Who is calling AWS, as STS says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account id.
    pub account: String,
    /// The caller's ARN.
    pub arn: String,
}

/// Checks, in seconds and before anything is built, that AWS can be used for this deployment:
/// credentials exist, STS accepts them, and Elastic Beanstalk can be read in the deployment's
/// region. The error names what is missing and how to provide it.
pub async fn preflight(clients: &Clients, dep: &Deployment) -> Result<Caller, ObserveError> {
    use aws_credential_types::provider::ProvideCredentials;
    let no_credentials = |message: String| ObserveError {
        operation: "loading AWS credentials",
        code: None,
        message,
        hint: Some(crate::aws_error::CREDENTIALS_HINT),
    };
    let Some(provider) = clients.config.credentials_provider() else {
        return Err(no_credentials(
            "no credentials provider is configured".into(),
        ));
    };
    if let Err(e) = provider.provide_credentials().await {
        return Err(no_credentials(crate::aws_error::root_cause(&e)));
    }
    let me = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(err("sts:GetCallerIdentity"))?;
    clients
        .eb
        .describe_applications()
        .application_names(&dep.application)
        .send()
        .await
        .map_err(err("elasticbeanstalk:DescribeApplications"))?;
    Ok(Caller {
        account: me.account().unwrap_or_default().to_string(),
        arn: me.arn().unwrap_or_default().to_string(),
    })
}

/// Reads everything the plan compares for this deployment.
pub async fn observe(clients: &Clients, dep: &Deployment) -> Result<Observed, ObserveError> {
    let mut observed = Observed::default();
    let apps = clients
        .eb
        .describe_applications()
        .application_names(&dep.application)
        .send()
        .await
        .map_err(err("elasticbeanstalk:DescribeApplications"))?;
    if apps
        .applications()
        .iter()
        .any(|a| a.application_name() == Some(dep.application.as_str()))
    {
        observed.application = Some(ObservedApplication {
            name: dep.application.clone(),
            versions: application_versions(&clients.eb, &dep.application)
                .await?
                .into_iter()
                .filter_map(|v| v.version_label)
                .collect(),
        });
        let envs = clients
            .eb
            .describe_environments()
            .application_name(&dep.application)
            .include_deleted(false)
            .send()
            .await
            .map_err(err("elasticbeanstalk:DescribeEnvironments"))?;
        for e in envs.environments() {
            let status = e
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            let Some(name) = e.environment_name() else {
                continue;
            };
            let configured = dep
                .environments
                .iter()
                .any(|d| d.physical_names().iter().any(|n| n == name));
            if status == "Terminated" || !configured {
                continue;
            }
            let mut live = ObservedEnvironment {
                eb_name: name.to_string(),
                environment_id: e.environment_id().unwrap_or_default().to_string(),
                status,
                health: e.health().map(|h| h.as_str().to_string()),
                cname: e.cname().map(str::to_string),
                tier: e.tier().and_then(|t| t.name()).map(str::to_string),
                platform_arn: e.platform_arn().map(str::to_string),
                solution_stack: e.solution_stack_name().map(str::to_string),
                version_label: e.version_label().map(str::to_string),
                ..Default::default()
            };
            live.options = option_settings(clients, &dep.application, name).await?;
            if let Some(arn) = e.environment_arn() {
                let tags = clients
                    .eb
                    .list_tags_for_resource()
                    .resource_arn(arn)
                    .send()
                    .await
                    .map_err(err("elasticbeanstalk:ListTagsForResource"))?;
                live.tags = Some(
                    tags.resource_tags()
                        .iter()
                        .filter_map(|t| {
                            Some((
                                t.key()?.to_string(),
                                t.value().unwrap_or_default().to_string(),
                            ))
                        })
                        .collect(),
                );
            }
            live.asg = asg_size(clients, name).await?;
            observed.environments.insert(name.to_string(), live);
        }
    }
    for env in &dep.environments {
        for secret in &env.secrets {
            let id = secret_id(&dep.application, &env.name, secret);
            match clients
                .secrets
                .describe_secret()
                .secret_id(&id)
                .send()
                .await
            {
                Ok(s) => {
                    let fingerprint = s
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some("klue:fingerprint"))
                        .and_then(|t| t.value().map(str::to_string));
                    let scheduled_for_deletion = s.deleted_date().map(|d| {
                        d.fmt(aws_sdk_secretsmanager::primitives::DateTimeFormat::DateTime)
                            .unwrap_or_else(|_| d.to_string())
                    });
                    observed.secrets.insert(
                        id,
                        ObservedSecret {
                            arn: s.arn().unwrap_or_default().to_string(),
                            fingerprint,
                            scheduled_for_deletion,
                        },
                    );
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) => {}
                Err(e) => return Err(err("secretsmanager:DescribeSecret")(e)),
            }
        }
    }
    Ok(observed)
}

/// An environment's health as enhanced health reporting sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvironmentHealth {
    /// `Green`, `Yellow`, `Red`, `Grey`.
    pub color: Option<String>,
    /// `Ok`, `Info`, `Warning`, `Degraded`, `Severe`, `Pending`, `NoData`, `Unknown`, `Suspended`.
    pub status: Option<String>,
    /// Why the health is what it is, in EB's words (empty when Ok).
    pub causes: Vec<String>,
}

/// `DescribeEnvironmentHealth` of `environment` (enhanced health reporting only: EB refuses
/// the call for an environment with basic health).
pub async fn environment_health(
    eb: &aws_sdk_elasticbeanstalk::Client,
    environment: &str,
) -> Result<EnvironmentHealth, ObserveError> {
    use aws_sdk_elasticbeanstalk::types::EnvironmentHealthAttribute;
    let out = eb
        .describe_environment_health()
        .environment_name(environment)
        .attribute_names(EnvironmentHealthAttribute::Color)
        .attribute_names(EnvironmentHealthAttribute::HealthStatus)
        .attribute_names(EnvironmentHealthAttribute::Causes)
        .send()
        .await
        .map_err(err("elasticbeanstalk:DescribeEnvironmentHealth"))?;
    Ok(EnvironmentHealth {
        color: out.color().map(str::to_string),
        status: out.health_status().map(str::to_string),
        causes: out.causes().to_vec(),
    })
}

/// Every application version of `application`, newest first (all pages).
pub async fn application_versions(
    eb: &aws_sdk_elasticbeanstalk::Client,
    application: &str,
) -> Result<Vec<aws_sdk_elasticbeanstalk::types::ApplicationVersionDescription>, ObserveError> {
    let mut versions = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = eb
            .describe_application_versions()
            .application_name(application)
            .max_records(100)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(err("elasticbeanstalk:DescribeApplicationVersions"))?;
        versions.extend(page.application_versions().iter().cloned());
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    versions.sort_by(|a, b| b.date_created().cmp(&a.date_created()));
    Ok(versions)
}

async fn option_settings(
    clients: &Clients,
    app: &str,
    env: &str,
) -> Result<BTreeMap<(String, String), String>, ObserveError> {
    let out = clients
        .eb
        .describe_configuration_settings()
        .application_name(app)
        .environment_name(env)
        .send()
        .await
        .map_err(err("elasticbeanstalk:DescribeConfigurationSettings"))?;
    Ok(deployed_options(out.configuration_settings()))
}

/// The option settings of the configuration set an environment runs.
///
/// EB may answer two sets for one environment: the deployed one and a draft (an update in
/// progress, or one that failed to deploy); only the deployed set is what runs. Options that
/// carry a `ResourceName` are kept: EB names the resource an option configures (the Auto
/// Scaling group, the scaling alarms and policies, the launch configuration, the load
/// balancer's listeners and target group), and those are exactly the options klue declares.
/// Scheduled actions are the exception: their `ResourceName` is the action's name, several
/// share one option name, and klue's model declares none, so they are left out.
pub fn deployed_options(
    sets: &[aws_sdk_elasticbeanstalk::types::ConfigurationSettingsDescription],
) -> BTreeMap<(String, String), String> {
    use aws_sdk_elasticbeanstalk::types::ConfigurationDeploymentStatus;
    let deployed = sets
        .iter()
        .find(|s| s.deployment_status() == Some(&ConfigurationDeploymentStatus::Deployed))
        .or_else(|| sets.first());
    let mut options = BTreeMap::new();
    for o in deployed.map(|s| s.option_settings()).unwrap_or_default() {
        let (Some(ns), Some(name)) = (o.namespace(), o.option_name()) else {
            continue;
        };
        if ns == SCHEDULED_ACTION {
            continue;
        }
        options.insert(
            (ns.to_string(), name.to_string()),
            o.value().unwrap_or_default().to_string(),
        );
    }
    options
}

/// The namespace of time-based scaling actions (one `ResourceName` per action).
const SCHEDULED_ACTION: &str = "aws:autoscaling:scheduledaction";

async fn asg_size(clients: &Clients, env: &str) -> Result<Option<AsgSize>, ObserveError> {
    let resources = clients
        .eb
        .describe_environment_resources()
        .environment_name(env)
        .send()
        .await
        .map_err(err("elasticbeanstalk:DescribeEnvironmentResources"))?;
    let Some(name) = resources
        .environment_resources()
        .and_then(|r| r.auto_scaling_groups().first())
        .and_then(|g| g.name())
    else {
        return Ok(None);
    };
    let groups = clients
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(err("autoscaling:DescribeAutoScalingGroups"))?;
    Ok(groups.auto_scaling_groups().first().map(|g| AsgSize {
        name: name.to_string(),
        min: i64::from(g.min_size().unwrap_or_default()),
        max: i64::from(g.max_size().unwrap_or_default()),
    }))
}
