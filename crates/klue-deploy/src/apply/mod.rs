//! Applying a plan: `deploy`, `rollback`, `destroy` and `status` for one environment.
//!
//! A deploy uploads the source bundle ([`bundle`]), creates the application version (an
//! existing label is reused), upserts the secrets ([`secrets`]), then either creates the
//! environment, updates it with exactly the planned options (one `UpdateEnvironment`), or, for
//! a blue/green environment getting a new version, creates the other physical environment,
//! tests it, swaps CNAMEs and retires the old one. Every mutation is followed by [`wait`].
//! Nothing is changed before every precondition holds (config valid, secrets available,
//! environments Ready, plan confirmed). Image building and the acceptance suite are the
//! caller's: this crate gets an image reference and an acceptance callback.

pub mod bundle;
pub mod platform;
pub mod secrets;
pub mod wait;

use crate::model::{Deployment, Environment};
use crate::observe::{Clients, ObserveError, application_versions, environment_health, observe};
use crate::observed::{Observed, ObservedEnvironment};
use crate::options::{ASG, ENV_SECRETS, desired_options, desired_tags, secret_id};
use crate::plan::{
    ChangeAction, ChangeKey, Desired, EnvironmentAction, EnvironmentPlan, Plan, live_environment,
    plan, standby_environments,
};
use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::{
    ConfigurationOptionSetting, EnvironmentDescription, EnvironmentTier, OptionSpecification,
    S3Location, Tag,
};
use bundle::Bundle;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use wait::{WaitFor, describe};

/// Why an apply stopped. Every variant says whether anything changed and how to recover.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] ObserveError),
    /// The config is invalid (nothing was changed).
    #[error("invalid config: {0}")]
    Invalid(#[from] crate::ValidationError),
    /// A precondition does not hold; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// A mutation failed.
    #[error("{environment}: {reason}\n{recovery}")]
    Failed {
        /// Logical environment name.
        environment: String,
        /// What went wrong.
        reason: String,
        /// What state things are in and what to run next.
        recovery: String,
    },
    /// The environment did not settle in time.
    #[error(
        "timed out after {}s waiting for {environment} (status {status}). The environment is still \
         working: follow it with `cargo xtask status {logical}`, or abort the update with \
         `aws elasticbeanstalk abort-environment-update --environment-name {environment}`.",
        waited.as_secs()
    )]
    Timeout {
        /// EB environment name.
        environment: String,
        /// Logical name.
        logical: String,
        /// The last status seen.
        status: String,
        /// How long we waited.
        waited: Duration,
    },
    /// Ctrl-C while waiting, without aborting.
    #[error(
        "interrupted while waiting for {environment}; EB goes on with the operation. Follow it \
         with `cargo xtask status {logical}`, then run the command again."
    )]
    Interrupted {
        /// EB environment name.
        environment: String,
        /// Logical name.
        logical: String,
    },
    /// The plan was not confirmed.
    #[error("{0}: nothing was changed")]
    Cancelled(String),
}

pub(crate) fn aws<E, R>(
    operation: &'static str,
) -> impl FnOnce(aws_sdk_elasticbeanstalk::error::SdkError<E, R>) -> ApplyError
where
    E: aws_sdk_elasticbeanstalk::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |e| ApplyError::Aws(crate::aws_error::from_sdk(operation, &e))
}

/// Where progress goes: lines, EB events, a status (a spinner on a terminal), confirmations.
pub trait Progress: Sync {
    /// One line of progress.
    fn line(&self, text: &str);
    /// An EB event.
    fn event(&self, when: &str, severity: &str, message: &str) {
        self.line(&format!("{when} {severity:<5} {message}"));
    }
    /// The current status while waiting (called on every poll).
    fn status(&self, _environment: &str, _status: &str, _health: &str) {}
    /// The wait is over (clears a spinner).
    fn done(&self) {}
    /// Asks a yes/no question; `false` when nobody can answer.
    fn confirm(&self, question: &str) -> bool;
}

/// Timeouts and choices of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long to wait for an environment that is busy before starting.
    pub ready_timeout: Duration,
    /// How long each operation may take (create, update, swap, terminate).
    pub timeout: Duration,
    /// Blue/green: keep the previous environment after the swap (instant rollback).
    pub keep_previous: bool,
    /// Blue/green: how long the previous environment keeps running after the swap before it
    /// is terminated (clients holding the old DNS answer drain).
    pub grace: Duration,
    /// A plan the user already confirmed (from [`Deployer::preview`]): a deploy whose plan has
    /// the same changes does not ask again.
    pub confirmed: Option<EnvironmentPlan>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ready_timeout: Duration::from_secs(20 * 60),
            timeout: Duration::from_secs(30 * 60),
            keep_previous: false,
            grace: Duration::from_secs(60),
            confirmed: None,
        }
    }
}

/// The image to deploy.
#[derive(Debug, Clone)]
pub struct Release {
    /// `registry/repository@sha256:...`.
    pub image: String,
    /// The service version (first part of the version label).
    pub version: String,
}

/// Runs the acceptance suite against a base URL; `Err` carries the failure summary.
pub type Acceptance<'a> = &'a (dyn Fn(&str) -> Result<(), String> + Sync);

/// What `destroy` does with the environment's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretPurge {
    /// Keep them (a later deploy uses them again).
    Keep,
    /// Schedule their deletion with Secrets Manager's 7-day recovery window; a deploy in
    /// that window restores them.
    WithRecovery,
    /// Delete them at once, without recovery.
    WithoutRecovery,
}

/// What a deploy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The environment already ran this version with this config: no AWS change.
    NoChange,
    /// The environment was created.
    Created,
    /// The environment was updated in place.
    Updated,
    /// Blue/green: a new environment took the CNAME.
    Swapped {
        /// The environment that now serves.
        live: String,
        /// The previous one, if kept.
        kept: Option<String>,
    },
}

/// Whether an environment is in the state a finished deploy must leave it in: Ready and
/// Green. (klue's environments use EB's default health threshold, so Green is the bar.)
fn serves_healthy(env: &ObservedEnvironment) -> bool {
    env.status == "Ready" && env.health.as_deref() == Some("Green")
}

/// Applies deployments with one set of clients.
pub struct Deployer<'a> {
    /// AWS clients.
    pub clients: &'a Clients,
    /// The config.
    pub deployment: &'a Deployment,
    /// Progress output.
    pub progress: &'a dyn Progress,
    /// Timeouts and choices.
    pub settings: Settings,
}

fn now() -> DateTime {
    DateTime::from(SystemTime::now())
}

impl Deployer<'_> {
    fn environment(&self, name: &str) -> Result<&Environment, ApplyError> {
        self.deployment.environment(name).ok_or_else(|| {
            ApplyError::Refused(format!(
                "no environment {name:?} in infra (known: {})",
                self.deployment.environment_names().join(", ")
            ))
        })
    }

    async fn observe(&self) -> Result<Observed, ApplyError> {
        Ok(observe(self.clients, self.deployment).await?)
    }

    /// Waits until every physical environment of `env` is Ready (bounded), then observes.
    async fn observe_when_ready(&self, env: &Environment) -> Result<Observed, ApplyError> {
        let observed = self.observe().await?;
        let busy: Vec<&ObservedEnvironment> = env
            .physical_names()
            .iter()
            .filter_map(|n| observed.environments.get(n))
            .filter(|e| e.status != "Ready")
            .collect();
        if busy.is_empty() {
            return Ok(observed);
        }
        for e in busy {
            self.progress.line(&format!(
                "{} is {}: waiting for it to be Ready before changing anything (up to {}s)",
                e.eb_name,
                e.status,
                self.settings.ready_timeout.as_secs()
            ));
            let what = WaitFor::new(&e.eb_name, &env.name, now(), self.settings.ready_timeout)
                .terminated_if(e.status == "Terminating");
            match wait::wait(&self.clients.eb, &what, self.progress).await {
                Ok(_) => {}
                Err(ApplyError::Timeout {
                    environment,
                    logical,
                    status,
                    waited,
                }) => {
                    return Err(ApplyError::Refused(format!(
                        "{environment} is still {status} after {}s: another operation is in \
                         progress. Nothing was changed. Follow it with `cargo xtask status \
                         {logical}` and deploy again when it is Ready.",
                        waited.as_secs()
                    )));
                }
                Err(ApplyError::Failed { .. }) => {
                    // The earlier operation failed, but the environment settled: go on.
                }
                Err(other) => return Err(other),
            }
        }
        self.observe().await
    }

    /// Checks that every secret of `env` has a value or exists, then plans the deployment;
    /// returns the whole plan and `env`'s part of it.
    fn plan_for(
        &self,
        env: &Environment,
        observed: &Observed,
        secret_values: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Plan, EnvironmentPlan), ApplyError> {
        secrets::check(&self.deployment.application, env, observed, secret_values)?;
        let desired =
            Desired::new(self.deployment).with_secret_values(observed, |n| secret_values(n));
        let full = plan(&desired, observed);
        let env_plan = full
            .environments
            .iter()
            .find(|e| e.name == env.name)
            .cloned()
            .ok_or_else(|| ApplyError::Refused(format!("no plan for {}", env.name)))?;
        Ok((full, env_plan))
    }

    /// The plan a deploy of `name` would apply, shown through the progress output, without
    /// changing anything. `cargo xtask deploy` asks for confirmation on it before it builds or
    /// pushes anything, then passes it back in [`Settings::confirmed`].
    pub async fn preview(
        &self,
        name: &str,
        secret_values: &dyn Fn(&str) -> Option<String>,
    ) -> Result<EnvironmentPlan, ApplyError> {
        self.deployment.validate()?;
        let env = self.environment(name)?;
        let observed = self.observe().await?;
        let (full, env_plan) = self.plan_for(env, &observed, secret_values)?;
        let mut only = full.clone();
        only.environments.retain(|e| e.name == env_plan.name);
        self.progress
            .line(crate::render::table(&only, false).trim_end());
        let live = live_environment(env, &observed);
        let current = live
            .and_then(|l| l.version_label.clone())
            .unwrap_or_else(|| "(none)".into());
        self.progress.line(&format!(
            "version: {current} -> the image built from this tree"
        ));
        if let Some(live) = live.filter(|l| !serves_healthy(l)) {
            self.progress.line(&format!(
                "{} is {} with health {}: the deploy redeploys it",
                live.eb_name,
                live.status,
                live.health.as_deref().unwrap_or("unknown")
            ));
        }
        Ok(env_plan)
    }

    /// Deploys `release` to the environment `name`.
    ///
    /// Succeeds only when, at the end of this run, the environment serving `name` is Ready,
    /// Green, runs `release`, and passed the acceptance suite in this run. An environment
    /// found unhealthy is repaired (its version redeployed, or for a blue/green environment,
    /// replaced by a new one), even when nothing else changes.
    pub async fn deploy(
        &self,
        name: &str,
        release: &Release,
        secret_values: &dyn Fn(&str) -> Option<String>,
        accept: Acceptance<'_>,
    ) -> Result<Outcome, ApplyError> {
        self.deployment.validate()?;
        let env = self.environment(name)?;
        let app = &self.deployment.application;
        let bundle = Bundle::new(
            app,
            &release.version,
            &release.image,
            self.deployment.container_port,
        );
        let observed = self.observe_when_ready(env).await?;
        let (full, env_plan) = self.plan_for(env, &observed, secret_values)?;
        let live = live_environment(env, &observed);
        let version_changes = live.and_then(|l| l.version_label.as_deref()) != Some(&bundle.label);
        let unhealthy = live.is_some_and(|l| !serves_healthy(l));
        let label_exists = observed
            .application
            .as_ref()
            .is_some_and(|a| a.versions.contains(&bundle.label));
        if let Some(live) = live
            && !version_changes
            && !unhealthy
            && env_plan.changes.is_empty()
            && full.changes.is_empty()
        {
            self.progress.line(&format!(
                "{name}: no changes ({} already runs {} with this config)",
                env_plan.eb_name, bundle.label
            ));
            let url = self.url(env, live.cname.as_deref().unwrap_or_default());
            self.accept_or_fail(env, &url, accept, || {
                format!(
                    "Nothing was changed in AWS: {} runs {} as before. Look at the service's \
                     logs and events (`cargo xtask status {name}`); fix the service and deploy \
                     a new version, or `cargo xtask rollback {name}`.",
                    live.eb_name, bundle.label
                )
            })?;
            return Ok(Outcome::NoChange);
        }
        let blue_green = env.blue_green
            && live.is_some()
            && (version_changes || unhealthy || env_plan.action == EnvironmentAction::Replace);
        if env_plan.action == EnvironmentAction::Replace && !blue_green {
            let keys: Vec<&str> = env_plan
                .changes
                .iter()
                .filter(|c| c.action == ChangeAction::Replace)
                .map(|c| c.name.as_str())
                .collect();
            return Err(ApplyError::Refused(format!(
                "{name}: {} can only be set when an environment is created. Nothing was changed. \
                 Replace the environment: `cargo xtask destroy {name}` then `cargo xtask deploy \
                 {name}` (or set blue_green in infra to replace it without downtime).",
                keys.join(", ")
            )));
        }
        if blue_green
            && env_plan
                .changes
                .iter()
                .any(|c| c.key == ChangeKey::CnamePrefix)
        {
            return Err(ApplyError::Refused(format!(
                "{name}: the CNAME prefix changed; a blue/green swap keeps the CNAME. Nothing was \
                 changed. Destroy and deploy the environment to move it to a new CNAME."
            )));
        }

        self.show(&full, &env_plan, live, &bundle, label_exists, blue_green);
        let confirmed_before = self
            .settings
            .confirmed
            .as_ref()
            .is_some_and(|c| c.changes == env_plan.changes);
        if !confirmed_before
            && !self
                .progress
                .confirm(&format!("Deploy {} to {name}?", bundle.label))
        {
            return Err(ApplyError::Cancelled("not confirmed".into()));
        }

        if observed.application.is_none() {
            self.create_application().await?;
        }
        if !label_exists {
            self.create_version(&bundle).await?;
        } else {
            self.progress.line(&format!(
                "application version {} exists: reusing it",
                bundle.label
            ));
        }
        let arns = secrets::upsert(
            &self.clients.secrets,
            app,
            env,
            &observed,
            secret_values,
            self.progress,
        )
        .await?;

        let outcome = match live {
            None => {
                let url = self
                    .create_environment(env, &env.eb_name, &env.cname_prefix, &bundle, &arns)
                    .await?;
                self.accept_or_fail(env, &url, accept, || {
                    format!(
                        "{} was created and runs {}; it served no traffic before. Fix the \
                         service and deploy again.",
                        env.eb_name, bundle.label
                    )
                })?;
                Outcome::Created
            }
            Some(live) if blue_green => {
                self.blue_green(env, live, &observed, &bundle, &arns, accept)
                    .await?
            }
            Some(live) => {
                // Instances read secret values when the application is deployed: a changed or
                // restored value takes effect only with a redeploy of the version.
                let secrets_changed = env_plan.changes.iter().any(|c| {
                    matches!(c.key, ChangeKey::SecretValue { .. })
                        && c.action == ChangeAction::Update
                });
                let redeploy = version_changes || unhealthy || secrets_changed;
                if unhealthy && !version_changes {
                    self.progress.line(&format!(
                        "{}: health {}; redeploying {}",
                        live.eb_name,
                        live.health.as_deref().unwrap_or("unknown"),
                        bundle.label
                    ));
                } else if secrets_changed && !version_changes {
                    self.progress.line(&format!(
                        "{}: secret values changed; redeploying {} so that the instances read them",
                        live.eb_name, bundle.label
                    ));
                }
                self.update_in_place(env, live, &env_plan, redeploy, &bundle, &arns)
                    .await?;
                let url = self.url(env, live.cname.as_deref().unwrap_or_default());
                self.accept_or_fail(env, &url, accept, || {
                    format!(
                        "{} now runs {}. Roll back with `cargo xtask rollback {}`.",
                        live.eb_name, bundle.label, env.name
                    )
                })?;
                Outcome::Updated
            }
        };
        self.prune_versions(&bundle.label).await?;
        Ok(outcome)
    }

    fn show(
        &self,
        full: &Plan,
        env_plan: &EnvironmentPlan,
        live: Option<&ObservedEnvironment>,
        bundle: &Bundle,
        label_exists: bool,
        blue_green: bool,
    ) {
        let mut only = full.clone();
        only.environments.retain(|e| e.name == env_plan.name);
        self.progress
            .line(crate::render::table(&only, false).trim_end());
        let current = live
            .and_then(|l| l.version_label.clone())
            .unwrap_or_else(|| "(none)".into());
        self.progress.line(&format!(
            "version: {current} -> {}{}",
            bundle.label,
            if label_exists { "" } else { " (new)" }
        ));
        let how = match live {
            None => "create the environment".to_string(),
            Some(_) if blue_green => format!(
                "blue/green: new environment beside {}, acceptance tests, CNAME swap",
                env_plan.eb_name
            ),
            Some(_) => format!("update {} in place", env_plan.eb_name),
        };
        self.progress.line(&format!("how: {how}"));
    }

    async fn create_application(&self) -> Result<(), ApplyError> {
        let app = &self.deployment.application;
        self.clients
            .eb
            .create_application()
            .application_name(app)
            .description("managed by klue")
            .tags(Tag::builder().key("klue:app").value(app).build())
            .send()
            .await
            .map_err(aws("elasticbeanstalk:CreateApplication"))?;
        self.progress.line(&format!("application {app}: created"));
        Ok(())
    }

    async fn create_version(&self, bundle: &Bundle) -> Result<(), ApplyError> {
        let bucket = self
            .clients
            .eb
            .create_storage_location()
            .send()
            .await
            .map_err(aws("elasticbeanstalk:CreateStorageLocation"))?
            .s3_bucket()
            .unwrap_or_default()
            .to_string();
        if bucket.is_empty() {
            return Err(ApplyError::Refused(
                "CreateStorageLocation returned no bucket".into(),
            ));
        }
        self.ensure_bucket(&bucket).await?;
        let exists = self
            .clients
            .s3
            .head_object()
            .bucket(&bucket)
            .key(&bundle.key)
            .send()
            .await
            .is_ok();
        if !exists {
            self.clients
                .s3
                .put_object()
                .bucket(&bucket)
                .key(&bundle.key)
                .content_type("application/json")
                .body(bundle.body.clone().into())
                .send()
                .await
                .map_err(aws("s3:PutObject"))?;
        }
        self.clients
            .eb
            .create_application_version()
            .application_name(&self.deployment.application)
            .version_label(&bundle.label)
            .description(&bundle.description)
            .source_bundle(
                S3Location::builder()
                    .s3_bucket(&bucket)
                    .s3_key(&bundle.key)
                    .build(),
            )
            .send()
            .await
            .map_err(aws("elasticbeanstalk:CreateApplicationVersion"))?;
        self.progress.line(&format!(
            "application version {}: created (s3://{bucket}/{})",
            bundle.label, bundle.key
        ));
        Ok(())
    }

    /// CreateStorageLocation creates the bucket on AWS; emulators may not, so a missing
    /// bucket is created here.
    async fn ensure_bucket(&self, bucket: &str) -> Result<(), ApplyError> {
        if self
            .clients
            .s3
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        let mut create = self.clients.s3.create_bucket().bucket(bucket);
        if self.deployment.region != "us-east-1" {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                        self.deployment.region.as_str(),
                    ))
                    .build(),
            );
        }
        create.send().await.map_err(aws("s3:CreateBucket"))?;
        Ok(())
    }

    /// All option settings of `env` for a new environment, secret names replaced by ARNs.
    fn all_settings(
        &self,
        env: &Environment,
        arns: &BTreeMap<String, String>,
    ) -> Vec<ConfigurationOptionSetting> {
        desired_options(&self.deployment.application, env)
            .into_iter()
            .map(|((ns, opt), value)| setting(&ns, &opt, resolve(&ns, &opt, value, arns)))
            .collect()
    }

    async fn create_environment(
        &self,
        env: &Environment,
        eb_name: &str,
        cname_prefix: &str,
        bundle: &Bundle,
        arns: &BTreeMap<String, String>,
    ) -> Result<String, ApplyError> {
        let platform = platform::resolve(&self.clients.eb, &env.platform).await?;
        let since = now();
        let mut create = self
            .clients
            .eb
            .create_environment()
            .application_name(&self.deployment.application)
            .environment_name(eb_name)
            .cname_prefix(cname_prefix)
            .tier(
                EnvironmentTier::builder()
                    .name(env.tier.eb_name())
                    .r#type(env.tier.eb_type())
                    .build(),
            )
            .platform_arn(&platform)
            .version_label(&bundle.label)
            .set_option_settings(Some(self.all_settings(env, arns)));
        for (k, v) in desired_tags(&self.deployment.application, env) {
            create = create.tags(Tag::builder().key(k).value(v).build());
        }
        create
            .send()
            .await
            .map_err(aws("elasticbeanstalk:CreateEnvironment"))?;
        self.progress
            .line(&format!("{eb_name}: creating ({cname_prefix}, {platform})"));
        let ready = wait::wait(
            &self.clients.eb,
            &WaitFor::new(eb_name, &env.name, since, self.settings.timeout)
                .version(&bundle.label)
                .healthy()
                .creating(),
            self.progress,
        )
        .await?;
        let url = self.url(env, ready.cname().unwrap_or_default());
        self.progress
            .line(&format!("{eb_name}: Ready, Green, at {url}"));
        Ok(url)
    }

    fn url(&self, env: &Environment, cname: &str) -> String {
        let scheme = if env.load_balancer.http_listener || env.load_balancer.https.is_none() {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{cname}")
    }

    fn accept(&self, env: &Environment, url: &str, accept: Acceptance<'_>) -> Result<(), String> {
        self.progress.line(&format!(
            "{}: running the acceptance suite against {url}",
            env.name
        ));
        let result = tokio::task::block_in_place(|| accept(url));
        if result.is_ok() {
            self.progress
                .line(&format!("{}: acceptance passed", env.name));
        }
        result
    }

    /// [`Self::accept`], failing with `recovery` (what state things are in, what to run next).
    fn accept_or_fail(
        &self,
        env: &Environment,
        url: &str,
        accept: Acceptance<'_>,
        recovery: impl FnOnce() -> String,
    ) -> Result<(), ApplyError> {
        self.accept(env, url, accept)
            .map_err(|failure| ApplyError::Failed {
                environment: env.name.clone(),
                reason: format!("the acceptance suite failed against {url}: {failure}"),
                recovery: recovery(),
            })
    }

    async fn update_in_place(
        &self,
        env: &Environment,
        live: &ObservedEnvironment,
        env_plan: &EnvironmentPlan,
        redeploy: bool,
        bundle: &Bundle,
        arns: &BTreeMap<String, String>,
    ) -> Result<(), ApplyError> {
        let (settings, removals) = self.planned_settings(env, env_plan, arns);
        let platform_changes = env_plan
            .changes
            .iter()
            .any(|c| c.key == ChangeKey::Platform);
        if !settings.is_empty() || !removals.is_empty() || redeploy || platform_changes {
            let since = now();
            let mut update = self
                .clients
                .eb
                .update_environment()
                .environment_name(&live.eb_name)
                .set_option_settings((!settings.is_empty()).then_some(settings))
                .set_options_to_remove((!removals.is_empty()).then_some(removals));
            if redeploy {
                update = update.version_label(&bundle.label);
            }
            if platform_changes {
                update =
                    update.platform_arn(platform::resolve(&self.clients.eb, &env.platform).await?);
            }
            update
                .send()
                .await
                .map_err(aws("elasticbeanstalk:UpdateEnvironment"))?;
            self.progress.line(&format!("{}: updating", live.eb_name));
            let expected = live
                .version_label
                .as_deref()
                .filter(|_| !redeploy)
                .unwrap_or(&bundle.label);
            wait::wait(
                &self.clients.eb,
                &WaitFor::new(&live.eb_name, &env.name, since, self.settings.timeout)
                    .version(expected)
                    .healthy(),
                self.progress,
            )
            .await?;
        }
        self.update_tags(env, &live.eb_name, env_plan).await?;
        self.progress.line(&format!("{}: updated", live.eb_name));
        Ok(())
    }

    /// The OptionSettings and OptionsToRemove of the plan, exactly: secret names replaced by
    /// ARNs, and the ASG size re-sent when the group itself was changed behind EB's back.
    fn planned_settings(
        &self,
        env: &Environment,
        env_plan: &EnvironmentPlan,
        arns: &BTreeMap<String, String>,
    ) -> (Vec<ConfigurationOptionSetting>, Vec<OptionSpecification>) {
        let want = desired_options(&self.deployment.application, env);
        let mut keys: Vec<(String, String)> = env_plan
            .option_settings()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        for c in &env_plan.changes {
            if let ChangeKey::AutoScalingGroup { setting } = &c.key {
                let key = (ASG.to_string(), setting.clone());
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        let settings = keys
            .into_iter()
            .filter_map(|(ns, opt)| {
                let value = want.get(&(ns.clone(), opt.clone()))?.clone();
                Some(setting(&ns, &opt, resolve(&ns, &opt, value, arns)))
            })
            .collect();
        let removals = env_plan
            .options_to_remove()
            .into_iter()
            .map(|(ns, opt)| {
                OptionSpecification::builder()
                    .namespace(ns)
                    .option_name(opt)
                    .build()
            })
            .collect();
        (settings, removals)
    }

    async fn update_tags(
        &self,
        env: &Environment,
        eb_name: &str,
        env_plan: &EnvironmentPlan,
    ) -> Result<(), ApplyError> {
        let want = desired_tags(&self.deployment.application, env);
        let mut add = Vec::new();
        let mut remove = Vec::new();
        for c in &env_plan.changes {
            if let ChangeKey::Tag { key } = &c.key {
                match want.get(key) {
                    Some(v) => add.push(Tag::builder().key(key).value(v).build()),
                    None => remove.push(key.clone()),
                }
            }
        }
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let arn = describe(&self.clients.eb, eb_name, false)
            .await?
            .and_then(|e| e.environment_arn().map(str::to_string))
            .unwrap_or_default();
        self.clients
            .eb
            .update_tags_for_resource()
            .resource_arn(arn)
            .set_tags_to_add((!add.is_empty()).then_some(add))
            .set_tags_to_remove((!remove.is_empty()).then_some(remove))
            .send()
            .await
            .map_err(aws("elasticbeanstalk:UpdateTagsForResource"))?;
        Ok(())
    }

    async fn blue_green(
        &self,
        env: &Environment,
        live: &ObservedEnvironment,
        observed: &Observed,
        bundle: &Bundle,
        arns: &BTreeMap<String, String>,
        accept: Acceptance<'_>,
    ) -> Result<Outcome, ApplyError> {
        let names = env.physical_names();
        let candidate = names
            .iter()
            .find(|n| **n != live.eb_name)
            .cloned()
            .unwrap_or_else(|| format!("{}-b", env.eb_name));
        // A standby from an earlier run: reuse it when it already runs this version and is
        // healthy (a rerun after an interruption), otherwise make room for the new one.
        let mut reuse = None;
        for standby in standby_environments(env, observed) {
            if standby.version_label.as_deref() == Some(bundle.label.as_str())
                && standby.status == "Ready"
                && standby.health.as_deref() == Some("Green")
            {
                self.progress.line(&format!(
                    "{}: already runs {} (an earlier run): reusing it",
                    standby.eb_name, bundle.label
                ));
                reuse = Some(self.url(env, standby.cname.as_deref().unwrap_or_default()));
            } else {
                self.progress.line(&format!(
                    "{}: terminating the previous standby environment to make room",
                    standby.eb_name
                ));
                self.terminate(env, &standby.eb_name).await?;
            }
        }
        let url = match reuse {
            Some(url) => url,
            None => {
                let prefix = self.free_cname(env, bundle).await?;
                match self
                    .create_environment(env, &candidate, &prefix, bundle, arns)
                    .await
                {
                    Ok(url) => url,
                    Err(error) => return Err(self.retire(env, &candidate, live, error).await),
                }
            }
        };
        if let Err(failure) = self.accept(env, &url, accept) {
            self.progress.line(&format!(
                "{}: acceptance failed; terminating {candidate} ({} keeps serving)",
                env.name, live.eb_name
            ));
            let cleanup = self.terminate(env, &candidate).await;
            return Err(ApplyError::Failed {
                environment: env.name.clone(),
                reason: format!("the acceptance suite failed against {url}: {failure}"),
                recovery: match cleanup {
                    Ok(()) => format!(
                        "{} is untouched and keeps serving {}; {candidate} was terminated.",
                        live.eb_name,
                        live.version_label.as_deref().unwrap_or("its version")
                    ),
                    Err(e) => format!(
                        "{} is untouched and keeps serving; terminating {candidate} failed too \
                         ({e}): `cargo xtask deploy {}` will clean it up.",
                        live.eb_name, env.name
                    ),
                },
            });
        }
        self.swap(env, &candidate, &live.eb_name).await?;
        if self.settings.keep_previous {
            self.progress.line(&format!(
                "{}: kept for instant rollback (`cargo xtask rollback {}`)",
                live.eb_name, env.name
            ));
            return Ok(Outcome::Swapped {
                live: candidate,
                kept: Some(live.eb_name.clone()),
            });
        }
        if !self.settings.grace.is_zero() {
            self.progress.line(&format!(
                "{}: terminating in {}s (grace period for clients of the old DNS answer)",
                live.eb_name,
                self.settings.grace.as_secs()
            ));
            tokio::time::sleep(self.settings.grace).await;
        }
        self.terminate(env, &live.eb_name).await?;
        Ok(Outcome::Swapped {
            live: candidate,
            kept: None,
        })
    }

    /// A candidate that failed to come up healthy is terminated, so live stays the only
    /// environment; one still working (timeout, Ctrl-C) is left to the next run.
    async fn retire(
        &self,
        env: &Environment,
        candidate: &str,
        live: &ObservedEnvironment,
        error: ApplyError,
    ) -> ApplyError {
        let settled = matches!(error, ApplyError::Failed { .. });
        let cleanup = if settled {
            self.progress.line(&format!(
                "{candidate}: did not come up healthy; terminating it ({} keeps serving)",
                live.eb_name
            ));
            Some(self.terminate(env, candidate).await)
        } else {
            None
        };
        let what = match cleanup {
            Some(Ok(())) => format!("{candidate} was terminated."),
            Some(Err(e)) => format!(
                "terminating {candidate} failed too ({e}); `cargo xtask deploy {}` cleans it up.",
                env.name
            ),
            None => format!(
                "{candidate} is still being created: `cargo xtask deploy {}` reuses it once it is \
                 Ready and healthy, or terminates it; `cargo xtask status {}` shows it.",
                env.name, env.name
            ),
        };
        ApplyError::Failed {
            environment: env.name.clone(),
            reason: format!("creating {candidate} failed: {error}"),
            recovery: format!("{} is untouched and keeps serving. {what}", live.eb_name),
        }
    }

    /// A CNAME prefix for a blue/green candidate that EB says is available.
    async fn free_cname(&self, env: &Environment, bundle: &Bundle) -> Result<String, ApplyError> {
        let hash: String = bundle
            .label
            .rsplit('-')
            .next()
            .unwrap_or("next")
            .chars()
            .take(6)
            .collect();
        let base: String = env.cname_prefix.chars().take(50).collect();
        for n in 0..5 {
            let prefix = if n == 0 {
                format!("{base}-{hash}")
            } else {
                format!("{base}-{hash}-{n}")
            };
            let out = self
                .clients
                .eb
                .check_dns_availability()
                .cname_prefix(&prefix)
                .send()
                .await
                .map_err(aws("elasticbeanstalk:CheckDNSAvailability"))?;
            if out.available() == Some(true) {
                return Ok(prefix);
            }
        }
        Err(ApplyError::Refused(format!(
            "no free CNAME prefix {base}-{hash}[-N] for the new environment"
        )))
    }

    async fn swap(&self, env: &Environment, new: &str, old: &str) -> Result<(), ApplyError> {
        let since = now();
        self.clients
            .eb
            .swap_environment_cnames()
            .source_environment_name(new)
            .destination_environment_name(old)
            .send()
            .await
            .map_err(aws("elasticbeanstalk:SwapEnvironmentCNAMEs"))?;
        self.progress
            .line(&format!("{}: swapping CNAMEs {new} <-> {old}", env.name));
        for name in [new, old] {
            wait::wait(
                &self.clients.eb,
                &WaitFor::new(name, &env.name, since, self.settings.timeout),
                self.progress,
            )
            .await?;
        }
        let serving = describe(&self.clients.eb, new, false).await?;
        let prefix = serving
            .as_ref()
            .and_then(EnvironmentDescription::cname)
            .and_then(|c| c.split('.').next())
            .unwrap_or_default()
            .to_string();
        if !prefix.eq_ignore_ascii_case(&env.cname_prefix) {
            return Err(ApplyError::Failed {
                environment: env.name.clone(),
                reason: format!(
                    "after the swap {new} holds {prefix:?}, not {:?}",
                    env.cname_prefix
                ),
                recovery: format!(
                    "Check both environments with `cargo xtask status {}`; `cargo xtask rollback {}` swaps back.",
                    env.name, env.name
                ),
            });
        }
        self.progress.line(&format!(
            "{}: {new} now serves {}",
            env.name, env.cname_prefix
        ));
        Ok(())
    }

    async fn terminate(&self, env: &Environment, eb_name: &str) -> Result<(), ApplyError> {
        let since = now();
        self.clients
            .eb
            .terminate_environment()
            .environment_name(eb_name)
            .terminate_resources(true)
            .send()
            .await
            .map_err(aws("elasticbeanstalk:TerminateEnvironment"))?;
        self.progress.line(&format!("{eb_name}: terminating"));
        wait::wait(
            &self.clients.eb,
            &WaitFor::new(eb_name, &env.name, since, self.settings.timeout).terminated(),
            self.progress,
        )
        .await?;
        self.progress.line(&format!("{eb_name}: terminated"));
        Ok(())
    }

    /// Deletes application versions beyond the newest `keep_versions` that no environment
    /// runs (with their source bundles).
    async fn prune_versions(&self, deployed: &str) -> Result<(), ApplyError> {
        let app = &self.deployment.application;
        let versions = application_versions(&self.clients.eb, app).await?;
        let in_use: Vec<String> = self
            .clients
            .eb
            .describe_environments()
            .application_name(app)
            .include_deleted(false)
            .send()
            .await
            .map_err(aws("elasticbeanstalk:DescribeEnvironments"))?
            .environments()
            .iter()
            .filter_map(|e| e.version_label().map(str::to_string))
            .collect();
        let keep = usize::try_from(self.deployment.keep_versions).unwrap_or(usize::MAX);
        for v in versions.iter().skip(keep) {
            let Some(label) = v.version_label() else {
                continue;
            };
            if label == deployed || in_use.iter().any(|u| u == label) {
                continue;
            }
            self.clients
                .eb
                .delete_application_version()
                .application_name(app)
                .version_label(label)
                .delete_source_bundle(true)
                .send()
                .await
                .map_err(aws("elasticbeanstalk:DeleteApplicationVersion"))?;
            self.progress.line(&format!(
                "application version {label}: deleted (older than the last {keep})"
            ));
        }
        Ok(())
    }

    /// Rolls `name` back: swaps back to a kept previous environment, or redeploys the previous
    /// application version (or `to`) in place.
    pub async fn rollback(&self, name: &str, to: Option<&str>) -> Result<String, ApplyError> {
        let env = self.environment(name)?;
        let observed = self.observe_when_ready(env).await?;
        let live = live_environment(env, &observed)
            .ok_or_else(|| ApplyError::Refused(format!("{name}: no environment to roll back")))?;
        let standby = standby_environments(env, &observed)
            .into_iter()
            .find(|s| s.status == "Ready");
        if to.is_none()
            && let Some(previous) = standby
        {
            if !self.progress.confirm(&format!(
                "Swap {name} back to {} (runs {})?",
                previous.eb_name,
                previous.version_label.as_deref().unwrap_or("?")
            )) {
                return Err(ApplyError::Cancelled("not confirmed".into()));
            }
            self.swap(env, &previous.eb_name, &live.eb_name).await?;
            return Ok(format!(
                "{name}: {} serves again ({}); {} is kept",
                previous.eb_name,
                previous.version_label.as_deref().unwrap_or("?"),
                live.eb_name
            ));
        }
        let current = live.version_label.clone().unwrap_or_default();
        let target = match to {
            Some(label) => label.to_string(),
            None => {
                let versions =
                    application_versions(&self.clients.eb, &self.deployment.application).await?;
                let labels: Vec<&str> = versions.iter().filter_map(|v| v.version_label()).collect();
                let position = labels.iter().position(|l| *l == current);
                position
                    .and_then(|i| labels.get(i + 1))
                    .map(|l| l.to_string())
                    .ok_or_else(|| {
                        ApplyError::Refused(format!(
                            "{name}: no version older than {current:?} to roll back to \
                             (pass --to <label>)"
                        ))
                    })?
            }
        };
        if !self.progress.confirm(&format!(
            "Roll {name} ({}) back from {current} to {target}?",
            live.eb_name
        )) {
            return Err(ApplyError::Cancelled("not confirmed".into()));
        }
        let since = now();
        self.clients
            .eb
            .update_environment()
            .environment_name(&live.eb_name)
            .version_label(&target)
            .send()
            .await
            .map_err(aws("elasticbeanstalk:UpdateEnvironment"))?;
        wait::wait(
            &self.clients.eb,
            &WaitFor::new(&live.eb_name, &env.name, since, self.settings.timeout).version(&target),
            self.progress,
        )
        .await?;
        Ok(format!("{name}: {} runs {target} again", live.eb_name))
    }

    /// Terminates every physical environment of `name`; with `purge` also deletes its secrets
    /// (recoverable for 7 days, or at once with [`SecretPurge::WithoutRecovery`]).
    pub async fn destroy(&self, name: &str, purge: SecretPurge) -> Result<String, ApplyError> {
        let env = self.environment(name)?;
        let observed = self.observe_when_ready(env).await?;
        let targets: Vec<&ObservedEnvironment> = env
            .physical_names()
            .iter()
            .filter_map(|n| observed.environments.get(n))
            .collect();
        // Secrets already scheduled for deletion are only deleted again to skip the recovery.
        let secret_ids: Vec<String> = env
            .secrets
            .iter()
            .map(|s| secret_id(&self.deployment.application, &env.name, s))
            .filter(|id| {
                observed.secrets.get(id).is_some_and(|s| {
                    s.scheduled_for_deletion.is_none() || purge == SecretPurge::WithoutRecovery
                })
            })
            .collect();
        let purging = purge != SecretPurge::Keep;
        if targets.is_empty() && (!purging || secret_ids.is_empty()) {
            return Ok(format!("{name}: nothing to destroy"));
        }
        let mut what: Vec<String> = targets.iter().map(|e| e.eb_name.clone()).collect();
        if purging {
            let how = match purge {
                SecretPurge::WithoutRecovery => "deleted at once, without recovery",
                _ => "recoverable for 7 days",
            };
            what.extend(secret_ids.iter().map(|s| format!("secret {s} ({how})")));
        }
        if !self
            .progress
            .confirm(&format!("Destroy {name}: {}?", what.join(", ")))
        {
            return Err(ApplyError::Cancelled("not confirmed".into()));
        }
        for e in &targets {
            self.terminate(env, &e.eb_name).await?;
        }
        if purging {
            for id in &secret_ids {
                let delete = self.clients.secrets.delete_secret().secret_id(id);
                let delete = if purge == SecretPurge::WithoutRecovery {
                    delete.force_delete_without_recovery(true)
                } else {
                    delete.recovery_window_in_days(7)
                };
                delete
                    .send()
                    .await
                    .map_err(aws("secretsmanager:DeleteSecret"))?;
                self.progress
                    .line(&if purge == SecretPurge::WithoutRecovery {
                        format!("secret {id}: deleted without recovery")
                    } else {
                        format!(
                            "secret {id}: scheduled for deletion (recoverable for 7 days; the next \
                         deploy restores it)"
                        )
                    });
            }
        } else if !secret_ids.is_empty() {
            self.progress.line(&format!(
                "kept {} secret(s) in Secrets Manager (--purge-secrets deletes them)",
                secret_ids.len()
            ));
        }
        Ok(format!("{name}: destroyed"))
    }

    /// Health, version, URL and recent events of `name`'s environments.
    pub async fn status(&self, name: &str, events: usize) -> Result<String, ApplyError> {
        let env = self.environment(name)?;
        let observed = self.observe().await?;
        let mut out = String::new();
        let live = live_environment(env, &observed);
        let mut shown = Vec::new();
        if let Some(l) = live {
            shown.push(("live", l));
        }
        for s in standby_environments(env, &observed) {
            shown.push(("standby", s));
        }
        if shown.is_empty() {
            return Ok(format!(
                "{name}: no environment ({} does not exist)\n",
                env.eb_name
            ));
        }
        for (role, e) in shown {
            // With enhanced health, EB says why an environment is not Ok.
            let enhanced = if env.enhanced_health {
                environment_health(&self.clients.eb, &e.eb_name).await.ok()
            } else {
                None
            };
            let health = match enhanced.as_ref().and_then(|h| h.status.as_deref()) {
                Some(status) => format!("{} ({status})", e.health.as_deref().unwrap_or("-")),
                None => e.health.as_deref().unwrap_or("-").to_string(),
            };
            out.push_str(&format!(
                "{name} ({role}): {}\n  status  {}\n  health  {}\n  version {}\n  url     {}\n",
                e.eb_name,
                e.status,
                health,
                e.version_label.as_deref().unwrap_or("-"),
                e.cname
                    .as_deref()
                    .map(|c| self.url(env, c))
                    .unwrap_or_else(|| "-".into()),
            ));
            for cause in enhanced.iter().flat_map(|h| &h.causes) {
                out.push_str(&format!("  cause   {cause}\n"));
            }
            let recent = self
                .clients
                .eb
                .describe_events()
                .environment_name(&e.eb_name)
                .max_records(i32::try_from(events.max(1)).unwrap_or(10))
                .send()
                .await
                .map_err(aws("elasticbeanstalk:DescribeEvents"))?;
            out.push_str("  recent events:\n");
            for ev in recent.events().iter().take(events) {
                out.push_str(&format!(
                    "    {} {:<5} {}\n",
                    ev.event_date()
                        .and_then(|d| d
                            .fmt(aws_sdk_elasticbeanstalk::primitives::DateTimeFormat::DateTime)
                            .ok())
                        .unwrap_or_default(),
                    ev.severity().map(|s| s.as_str()).unwrap_or("INFO"),
                    ev.message().unwrap_or_default()
                ));
            }
        }
        Ok(out)
    }
}

fn setting(ns: &str, opt: &str, value: String) -> ConfigurationOptionSetting {
    ConfigurationOptionSetting::builder()
        .namespace(ns)
        .option_name(opt)
        .value(value)
        .build()
}

/// Secret references go to EB as ARNs (the config names them).
fn resolve(ns: &str, opt: &str, value: String, arns: &BTreeMap<String, String>) -> String {
    if ns == ENV_SECRETS {
        arns.get(opt).cloned().unwrap_or(value)
    } else {
        value
    }
}
