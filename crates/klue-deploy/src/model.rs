//! The typed model of a deployment: what `infra::deployment()` returns.
//!
//! Every field maps to Elastic Beanstalk option settings (see [`crate::options`]); nothing here
//! talks to AWS. [`Deployment::validate`] refuses invalid combinations before any AWS call.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One application on Elastic Beanstalk and its environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// The EB application name (also the `klue:app` tag and the Secrets Manager prefix).
    pub application: String,
    /// The AWS region, e.g. `eu-west-1`.
    pub region: String,
    /// The ECR repository the image is pushed to (name, not URI), e.g. `klue/helloworld`.
    pub image_repository: String,
    /// The environments, e.g. `staging` and `live`.
    pub environments: Vec<Environment>,
    /// The port the container listens on (`Dockerrun.aws.json` `Ports`; the image exposes 8080).
    #[serde(default = "default_container_port")]
    pub container_port: u16,
    /// Application versions kept after a deploy: older ones that no environment runs are
    /// deleted (with their source bundles).
    #[serde(default = "default_keep_versions")]
    pub keep_versions: u32,
}

fn default_container_port() -> u16 {
    8080
}

fn default_keep_versions() -> u32 {
    10
}

/// One EB environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Logical name (`staging`, `live`): `cargo xtask diff staging`, the `klue:env` tag.
    pub name: String,
    /// The EB environment name (4-40 characters: letters, digits, hyphens).
    pub eb_name: String,
    /// The CNAME prefix: `<prefix>.<region>.elasticbeanstalk.com`. Create-only.
    pub cname_prefix: String,
    /// Web server or worker. Create-only.
    pub tier: Tier,
    /// The platform branch (and optionally a pinned version).
    pub platform: Platform,
    /// EC2 instance types, in order of preference (the first is the on-demand type).
    pub instance_types: Vec<String>,
    /// EB service role (name or ARN), e.g. `aws-elasticbeanstalk-service-role`.
    pub service_role: String,
    /// Instance profile (name or ARN), e.g. `aws-elasticbeanstalk-ec2-role`.
    pub instance_profile: String,
    /// Extra security groups for the instances (order does not matter).
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Auto Scaling group size and trigger.
    pub autoscaling: Autoscaling,
    /// The load balancer (web server tier only).
    pub load_balancer: LoadBalancer,
    /// How new versions roll out.
    pub deployment_policy: DeploymentPolicy,
    /// Enhanced health reporting (`SystemType=enhanced`) instead of basic.
    pub enhanced_health: bool,
    /// Instance log streaming to CloudWatch Logs.
    pub logs: LogStreaming,
    /// Plain environment variables (the `aws:elasticbeanstalk:application:environment`
    /// namespace is owned exactly: a variable in AWS but not here is drift).
    #[serde(default)]
    pub env_vars: BTreeMap<String, String>,
    /// Names of secret environment variables (from `env.secrets`). Values live in Secrets
    /// Manager as `<application>/<env name>/<NAME>`; the environment gets references only.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Tags on the environment (`klue:app` and `klue:env` are added by klue).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Deploy a new version blue/green: a new EB environment is created beside the live one,
    /// tested, and swapped in by CNAME (the two physical environments alternate between
    /// `eb_name` and `eb_name-b`). Off: the version is rolled out in place with
    /// `deployment_policy`.
    #[serde(default)]
    pub blue_green: bool,
}

impl Environment {
    /// The EB names this environment's physical environments may have: `eb_name`, and
    /// `eb_name-b` for the other half of a blue/green pair.
    pub fn physical_names(&self) -> [String; 2] {
        [self.eb_name.clone(), format!("{}-b", self.eb_name)]
    }
}

/// The environment tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Tier {
    /// `WebServer/Standard/1.0`: behind a load balancer, serves HTTP.
    WebServer,
    /// `Worker/SQS/HTTP/1.0`: consumes an SQS queue.
    Worker,
}

impl Tier {
    /// The EB tier name (`EnvironmentTier.Name`).
    pub fn eb_name(self) -> &'static str {
        match self {
            Tier::WebServer => "WebServer",
            Tier::Worker => "Worker",
        }
    }
    /// The EB tier type (`EnvironmentTier.Type`).
    pub fn eb_type(self) -> &'static str {
        match self {
            Tier::WebServer => "Standard",
            Tier::Worker => "SQS/HTTP",
        }
    }
}

/// A platform branch, resolved to a platform ARN at deploy time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// The branch.
    pub branch: PlatformBranch,
    /// A pinned platform version (e.g. `4.3.0`); `None` accepts any version of the branch
    /// (a platform update is then not a change).
    #[serde(default)]
    pub version: Option<String>,
}

/// Supported platform branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PlatformBranch {
    /// Docker running on 64bit Amazon Linux 2023.
    DockerAl2023,
}

impl PlatformBranch {
    /// The platform name as in a platform ARN.
    pub fn platform_name(self) -> &'static str {
        match self {
            PlatformBranch::DockerAl2023 => "Docker running on 64bit Amazon Linux 2023",
        }
    }
}

impl Platform {
    /// Docker on Amazon Linux 2023, any version.
    pub fn docker_al2023() -> Self {
        Platform {
            branch: PlatformBranch::DockerAl2023,
            version: None,
        }
    }

    /// The platform ARN for a version in a region
    /// (`arn:aws:elasticbeanstalk:<region>::platform/<name>/<version>`).
    pub fn arn(&self, region: &str, version: &str) -> String {
        format!(
            "arn:aws:elasticbeanstalk:{region}::platform/{}/{version}",
            self.branch.platform_name()
        )
    }

    /// The solution stack name for a version (`64bit Amazon Linux 2023 v4.3.0 running Docker`).
    pub fn solution_stack(&self, version: &str) -> String {
        match self.branch {
            PlatformBranch::DockerAl2023 => {
                format!("64bit Amazon Linux 2023 v{version} running Docker")
            }
        }
    }
}

/// Auto Scaling group size and scaling trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    /// `aws:autoscaling:asg MinSize`.
    pub min: u32,
    /// `aws:autoscaling:asg MaxSize`.
    pub max: u32,
    /// `aws:autoscaling:trigger`.
    pub trigger: Trigger,
}

/// The scaling trigger (`aws:autoscaling:trigger`). Times are in minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// `MeasureName`, e.g. `CPUUtilization`, `NetworkOut`, `Latency`, `RequestCount`.
    pub measure: String,
    /// `Statistic`: `Minimum`, `Maximum`, `Sum` or `Average`.
    pub statistic: String,
    /// `Unit`, e.g. `Percent`, `Bytes`, `Seconds`, `Count`.
    pub unit: String,
    /// `Period` (minutes between metric evaluations).
    pub period_minutes: u32,
    /// `EvaluationPeriods`.
    pub evaluation_periods: u32,
    /// `BreachDuration` (minutes); must equal period x evaluation periods.
    pub breach_duration_minutes: u32,
    /// `UpperThreshold`.
    pub upper_threshold: f64,
    /// `UpperBreachScaleIncrement` (instances added, > 0).
    pub upper_increment: i32,
    /// `LowerThreshold`.
    pub lower_threshold: f64,
    /// `LowerBreachScaleIncrement` (instances removed, < 0).
    pub lower_increment: i32,
}

/// The load balancer. Only the application load balancer is supported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    /// `aws:elasticbeanstalk:environment LoadBalancerType`. Create-only.
    pub kind: LoadBalancerKind,
    /// The HTTP listener on port 80 (`aws:elbv2:listener:default`).
    pub http_listener: bool,
    /// The HTTPS listener on port 443 (`aws:elbv2:listener:443`), if any.
    #[serde(default)]
    pub https: Option<HttpsListener>,
    /// The default process's health check.
    pub health_check: HealthCheck,
    /// Raw options in load-balancer namespaces (escape hatch). Classic-LB namespaces
    /// (`aws:elb:*`) are refused with an application load balancer.
    #[serde(default)]
    pub extra_options: Vec<RawOption>,
}

/// Load balancer types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LoadBalancerKind {
    /// `application` (ALB).
    Application,
}

/// An HTTPS listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpsListener {
    /// ACM certificate ARN (`SSLCertificateArns`).
    pub certificate_arn: String,
    /// `SSLPolicy`, e.g. `ELBSecurityPolicy-TLS13-1-2-2021-06`.
    #[serde(default)]
    pub ssl_policy: Option<String>,
}

/// The default process's health check (`aws:elasticbeanstalk:environment:process:default`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// `HealthCheckPath`, e.g. `/ping`.
    pub path: String,
    /// `HealthCheckInterval` in seconds (5-300).
    pub interval_seconds: u32,
    /// `HealthCheckTimeout` in seconds (2-60, less than the interval).
    pub timeout_seconds: u32,
    /// `HealthyThresholdCount` (2-10).
    pub healthy_threshold: u32,
    /// `UnhealthyThresholdCount` (2-10).
    pub unhealthy_threshold: u32,
}

/// A raw EB option setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOption {
    /// e.g. `aws:elbv2:loadbalancer`.
    pub namespace: String,
    /// e.g. `IdleTimeout`.
    pub option: String,
    /// The value.
    pub value: String,
}

/// `aws:elasticbeanstalk:command DeploymentPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeploymentPolicy {
    /// `AllAtOnce`.
    AllAtOnce,
    /// `Rolling` with a batch size in percent.
    Rolling {
        /// `BatchSize` (percentage of instances per batch, 1-100).
        batch_percent: u32,
    },
    /// `Immutable`.
    Immutable,
}

/// CloudWatch Logs streaming (`aws:elasticbeanstalk:cloudwatch:logs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogStreaming {
    /// `StreamLogs`.
    pub stream: bool,
    /// `RetentionInDays` (one of CloudWatch's allowed values).
    pub retention_days: u32,
    /// `DeleteOnTerminate`.
    pub delete_on_terminate: bool,
}

/// One problem found by [`Deployment::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where: `environments[staging].autoscaling.trigger`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// The config is invalid; every problem is listed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid deployment config:\n{}", problems.iter().map(|p| format!("  - {}: {}", p.path, p.message)).collect::<Vec<_>>().join("\n"))]
pub struct ValidationError {
    /// All problems, in config order.
    pub problems: Vec<Problem>,
}

const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653,
];

fn valid_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_dns_label(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Deployment {
    /// The environment with this logical name.
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// The logical names of the environments, in config order (for "known: ..." messages).
    pub fn environment_names(&self) -> Vec<&str> {
        self.environments.iter().map(|e| e.name.as_str()).collect()
    }

    /// The JSON Schema of the model.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Deployment)).unwrap_or_default()
    }

    /// Checks the whole config; returns every problem at once.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut problems = Vec::new();
        let mut push = |path: String, message: String| problems.push(Problem { path, message });
        if self.application.trim().is_empty() || self.application.len() > 100 {
            push("application".into(), "must be 1-100 characters".into());
        }
        if self.region.trim().is_empty()
            || !self
                .region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            push(
                "region".into(),
                format!("{:?} is not a region name like eu-west-1", self.region),
            );
        }
        if self.container_port == 0 {
            push(
                "container_port".into(),
                "must be a port number (1-65535)".into(),
            );
        }
        if self.keep_versions == 0 {
            push(
                "keep_versions".into(),
                "keep at least 1 application version (the one deployed)".into(),
            );
        }
        if self.image_repository.trim().is_empty() {
            push("image_repository".into(), "must not be empty".into());
        }
        if self.environments.is_empty() {
            push(
                "environments".into(),
                "declare at least one environment".into(),
            );
        }
        let mut seen = BTreeMap::new();
        for env in &self.environments {
            for (what, value) in [
                ("name", &env.name),
                ("eb_name", &env.eb_name),
                ("cname_prefix", &env.cname_prefix),
            ] {
                if let Some(other) = seen.insert((what, value.clone()), env.name.clone()) {
                    push(
                        format!("environments[{}].{what}", env.name),
                        format!("{value:?} is also used by environment {other:?}"),
                    );
                }
            }
            env.check(&mut push);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ValidationError { problems })
        }
    }
}

impl Environment {
    fn check(&self, push: &mut impl FnMut(String, String)) {
        let at = |field: &str| format!("environments[{}].{field}", self.name);
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            push(
                at("name"),
                "use lowercase letters, digits and hyphens".into(),
            );
        }
        if !valid_dns_label(&self.eb_name, 4, 40) {
            push(
                at("eb_name"),
                format!(
                    "{:?}: 4-40 letters, digits or hyphens, not starting or ending with a hyphen",
                    self.eb_name
                ),
            );
        }
        if self.blue_green && self.eb_name.len() > 38 {
            push(
                at("eb_name"),
                "blue/green needs room for the `-b` suffix: at most 38 characters".into(),
            );
        }
        if !valid_dns_label(&self.cname_prefix, 4, 63) {
            push(
                at("cname_prefix"),
                format!(
                    "{:?}: 4-63 letters, digits or hyphens, not starting or ending with a hyphen",
                    self.cname_prefix
                ),
            );
        }
        if let Some(version) = &self.platform.version
            && (version.is_empty() || !version.chars().all(|c| c.is_ascii_digit() || c == '.'))
        {
            push(
                at("platform.version"),
                format!("{version:?} is not a version like 4.3.0"),
            );
        }
        if self.instance_types.is_empty() {
            push(
                at("instance_types"),
                "declare at least one instance type".into(),
            );
        }
        for t in &self.instance_types {
            if t.trim().is_empty() || t.contains(',') || t.trim() != t {
                push(
                    at("instance_types"),
                    format!("{t:?} is not an instance type like t3.small"),
                );
            }
        }
        if self.instance_types.len() > 40 {
            push(at("instance_types"), "at most 40 instance types".into());
        }
        for (field, value) in [
            ("service_role", &self.service_role),
            ("instance_profile", &self.instance_profile),
        ] {
            if value.trim().is_empty() || value.contains(',') {
                push(at(field), "must be a name or an ARN".into());
            }
        }
        for sg in &self.security_groups {
            if sg.trim().is_empty() || sg.contains(',') {
                push(
                    at("security_groups"),
                    format!("{sg:?} is not a security group id or name"),
                );
            }
        }
        let a = &self.autoscaling;
        if a.max == 0 {
            push(at("autoscaling.max"), "MaxSize must be at least 1".into());
        }
        if a.min > a.max {
            push(
                at("autoscaling"),
                format!("MinSize ({}) must not exceed MaxSize ({})", a.min, a.max),
            );
        }
        if a.max > 10000 {
            push(
                at("autoscaling.max"),
                "MaxSize must be at most 10000".into(),
            );
        }
        let t = &a.trigger;
        if !["Minimum", "Maximum", "Sum", "Average"].contains(&t.statistic.as_str()) {
            push(
                at("autoscaling.trigger.statistic"),
                format!("{:?}: use Minimum, Maximum, Sum or Average", t.statistic),
            );
        }
        if t.measure.trim().is_empty() || t.unit.trim().is_empty() {
            push(
                at("autoscaling.trigger"),
                "measure and unit must not be empty".into(),
            );
        }
        if t.period_minutes == 0 || t.evaluation_periods == 0 {
            push(
                at("autoscaling.trigger"),
                "Period and EvaluationPeriods must be at least 1".into(),
            );
        } else if t.breach_duration_minutes != t.period_minutes * t.evaluation_periods {
            push(
                at("autoscaling.trigger.breach_duration_minutes"),
                format!(
                    "BreachDuration ({}) must equal Period ({}) x EvaluationPeriods ({}) = {}",
                    t.breach_duration_minutes,
                    t.period_minutes,
                    t.evaluation_periods,
                    t.period_minutes * t.evaluation_periods
                ),
            );
        }
        if t.lower_threshold >= t.upper_threshold
            || !t.lower_threshold.is_finite()
            || !t.upper_threshold.is_finite()
        {
            push(
                at("autoscaling.trigger"),
                format!(
                    "LowerThreshold ({}) must be below UpperThreshold ({})",
                    t.lower_threshold, t.upper_threshold
                ),
            );
        }
        if t.upper_increment <= 0 {
            push(
                at("autoscaling.trigger.upper_increment"),
                "UpperBreachScaleIncrement must add instances (> 0)".into(),
            );
        }
        if t.lower_increment >= 0 {
            push(
                at("autoscaling.trigger.lower_increment"),
                "LowerBreachScaleIncrement must remove instances (< 0)".into(),
            );
        }
        let lb = &self.load_balancer;
        if self.tier == Tier::Worker && (lb.https.is_some() || lb.http_listener) {
            push(
                at("load_balancer"),
                "a worker environment has no load balancer: disable the listeners".into(),
            );
        }
        if self.tier == Tier::WebServer && !lb.http_listener && lb.https.is_none() {
            push(
                at("load_balancer"),
                "a web server needs the HTTP or the HTTPS listener".into(),
            );
        }
        if let Some(https) = &lb.https {
            let arn = &https.certificate_arn;
            if !(arn.starts_with("arn:aws")
                && arn.contains(":acm:")
                && arn.contains(":certificate/"))
            {
                push(
                    at("load_balancer.https.certificate_arn"),
                    format!(
                        "{arn:?} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)"
                    ),
                );
            }
        }
        let h = &lb.health_check;
        if !h.path.starts_with('/') {
            push(
                at("load_balancer.health_check.path"),
                format!("{:?} must start with /", h.path),
            );
        }
        if !(5..=300).contains(&h.interval_seconds) {
            push(
                at("load_balancer.health_check.interval_seconds"),
                "HealthCheckInterval must be 5-300 seconds".into(),
            );
        }
        if !(2..=120).contains(&h.timeout_seconds) || h.timeout_seconds >= h.interval_seconds {
            push(
                at("load_balancer.health_check.timeout_seconds"),
                "HealthCheckTimeout must be 2-120 seconds and less than the interval".into(),
            );
        }
        for (field, n) in [
            ("healthy_threshold", h.healthy_threshold),
            ("unhealthy_threshold", h.unhealthy_threshold),
        ] {
            if !(2..=10).contains(&n) {
                push(
                    at(&format!("load_balancer.health_check.{field}")),
                    "must be 2-10".into(),
                );
            }
        }
        for raw in &lb.extra_options {
            let ns = raw.namespace.as_str();
            if ns.starts_with("aws:elb:") {
                push(
                    at("load_balancer.extra_options"),
                    format!(
                        "{ns} {} is a classic load balancer option; this environment uses an application load balancer (use aws:elbv2:* namespaces)",
                        raw.option
                    ),
                );
            } else if !(ns.starts_with("aws:elbv2:")
                || ns.starts_with("aws:elasticbeanstalk:environment:process:"))
            {
                push(
                    at("load_balancer.extra_options"),
                    format!(
                        "{ns} is not a load balancer namespace (aws:elbv2:* or aws:elasticbeanstalk:environment:process:*)"
                    ),
                );
            }
        }
        if let DeploymentPolicy::Rolling { batch_percent } = self.deployment_policy
            && !(1..=100).contains(&batch_percent)
        {
            push(
                at("deployment_policy"),
                "Rolling batch_percent must be 1-100".into(),
            );
        }
        if !RETENTION_DAYS.contains(&self.logs.retention_days) {
            push(
                at("logs.retention_days"),
                format!(
                    "{} is not a CloudWatch retention ({RETENTION_DAYS:?})",
                    self.logs.retention_days
                ),
            );
        }
        for name in self.env_vars.keys() {
            if !valid_env_var_name(name) {
                push(
                    at("env_vars"),
                    format!("{name:?} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"),
                );
            }
        }
        for name in &self.secrets {
            if let Some((variable, _)) = name.split_once('=') {
                // `parse_secret_names` already dropped the value; a name set in code may not.
                let shown = if name.contains("(env.secrets line") {
                    name.as_str()
                } else {
                    variable
                };
                push(
                    at("secrets"),
                    format!(
                        "{shown}: env.secrets lists variable NAMES only. Remove the value, and \
                         rotate it if it was committed: deploy reads values from your shell"
                    ),
                );
            } else if !valid_env_var_name(name) {
                push(
                    at("secrets"),
                    format!("{name:?} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"),
                );
            }
            if self.env_vars.contains_key(name) {
                push(
                    at("secrets"),
                    format!("{name} is both a plain variable and a secret; keep one"),
                );
            }
        }
        for key in self.tags.keys() {
            if key.starts_with("aws:")
                || key.starts_with("klue:")
                || key.is_empty()
                || key.len() > 128
            {
                push(
                    at("tags"),
                    format!(
                        "{key:?}: tag keys are 1-128 characters and aws:/klue: prefixes are reserved"
                    ),
                );
            }
        }
    }
}
