//! eb-fake: an AWS Elastic Beanstalk API server for offline tests.
//!
//! It speaks the AWS query protocol (form-encoded `POST /` with `Action=...&Version=2010-12-01`)
//! and answers XML in the EB namespace that the AWS SDKs parse, for the operations klue calls:
//! applications, application versions, environments (create, describe, update with
//! `OptionSettings`/`OptionsToRemove`, terminate), configuration settings (platform defaults
//! merged with what was set), events, environment resources, tags and DNS availability.
//! Environments go `Launching`/`Updating` -> `Ready` (with events) after a configurable delay;
//! create-only options are refused on update, and mutations of an environment that is not
//! `Ready` fail with `InvalidParameterValue`, as on AWS.
//!
//! Test hooks live under `/_fake/`: `POST /_fake/fault` (fail the next update with ERROR events
//! and a revert, throttle the next N calls), `GET /_fake/calls` (actions received), and
//! `POST /_fake/set` (change an environment's options out of band without a transition).
//!
//! It is not a general EB emulator: no S3 access for source bundles, no instances, no real
//! platforms; ARNs use account `123456789012`.

mod xml;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use xml::Xml;

/// The fake account id used in ARNs.
pub const ACCOUNT: &str = "123456789012";

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Region used in ARNs and CNAMEs.
    pub region: String,
    /// How long Launching/Updating/Terminating last.
    pub transition: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            region: "us-east-1".into(),
            transition: Duration::from_millis(300),
        }
    }
}

type OptionKey = (String, String);

#[derive(Debug, Clone)]
struct App {
    name: String,
    description: Option<String>,
    created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Version {
    app: String,
    label: String,
    description: Option<String>,
    bucket: Option<String>,
    key: Option<String>,
    created: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Pending {
    Launch,
    Update,
    Terminate,
}

#[derive(Debug, Clone)]
struct Env {
    id: String,
    name: String,
    app: String,
    cname: String,
    tier_name: String,
    tier_type: String,
    platform_arn: String,
    solution_stack: String,
    version_label: Option<String>,
    status: String,
    health: String,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    options: BTreeMap<OptionKey, String>,
    tags: BTreeMap<String, String>,
    pending: Option<(Pending, Instant)>,
    /// Options and version to restore if the pending update fails.
    revert: Option<(BTreeMap<OptionKey, String>, Option<String>)>,
    fail_pending: Option<String>,
}

impl Env {
    fn arn(&self, region: &str) -> String {
        format!(
            "arn:aws:elasticbeanstalk:{region}:{ACCOUNT}:environment/{}/{}",
            self.app, self.name
        )
    }
    fn asg_name(&self) -> String {
        format!("awseb-{}-stack-AWSEBAutoScalingGroup-FAKE", self.id)
    }
}

#[derive(Debug, Clone)]
struct Event {
    date: DateTime<Utc>,
    app: String,
    env: Option<String>,
    version: Option<String>,
    message: String,
    severity: &'static str,
    request_id: String,
}

#[derive(Debug, Default)]
struct Faults {
    fail_next_update: Option<String>,
    throttle: u32,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    apps: Vec<App>,
    versions: Vec<Version>,
    envs: Vec<Env>,
    events: Vec<Event>,
    faults: Faults,
    calls: Vec<String>,
    counter: u64,
}

/// The shared state of one fake server.
#[derive(Debug, Clone)]
pub struct Fake(Arc<Mutex<Inner>>);

impl Fake {
    /// A fake with no applications.
    pub fn new(config: Config) -> Self {
        Fake(Arc::new(Mutex::new(Inner {
            config,
            apps: vec![],
            versions: vec![],
            envs: vec![],
            events: vec![],
            faults: Faults::default(),
            calls: vec![],
            counter: 0,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The axum router (query API on `POST /`, test hooks under `/_fake/`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(query))
            .route("/_fake/fault", post(fault))
            .route("/_fake/set", post(set_options))
            .route("/_fake/calls", get(calls))
            .with_state(self.clone())
    }
}

/// Binds `addr` and serves in a background task; returns the bound address.
pub async fn spawn(addr: SocketAddr, config: Config) -> std::io::Result<(SocketAddr, Fake)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let fake = Fake::new(config);
    let app = fake.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((local, fake))
}

/// Errors answered in the query-protocol error document.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    MissingParameter(String),
    #[error("Rate exceeded")]
    Throttling,
    #[error("{0}")]
    InvalidAction(String),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidParameterValue(_) => "InvalidParameterValue",
            ApiError::MissingParameter(_) => "MissingParameter",
            ApiError::Throttling => "Throttling",
            ApiError::InvalidAction(_) => "InvalidAction",
        }
    }
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

/// Form parameters with helpers for query-protocol lists and structures.
struct Params(HashMap<String, String>);

impl Params {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
    fn req(&self, k: &str) -> Result<&str, ApiError> {
        self.get(k)
            .ok_or_else(|| ApiError::MissingParameter(format!("{k} is required")))
    }
    /// `Prefix.member.N` values.
    fn list(&self, prefix: &str) -> Vec<String> {
        (1..)
            .map_while(|i| self.0.get(&format!("{prefix}.member.{i}")).cloned())
            .collect()
    }
    /// `Prefix.member.N.Field` structures, as maps of field -> value.
    fn structs(&self, prefix: &str) -> Vec<HashMap<String, String>> {
        let mut out = Vec::new();
        for i in 1.. {
            let p = format!("{prefix}.member.{i}.");
            let item: HashMap<String, String> = self
                .0
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&p).map(|f| (f.to_string(), v.clone())))
                .collect();
            if item.is_empty() {
                break;
            }
            out.push(item);
        }
        out
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn query(State(fake): State<Fake>, body: Bytes) -> Response {
    let params = Params(form_urlencoded::parse(&body).into_owned().collect());
    let action = params.get("Action").unwrap_or("").to_string();
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = {
        let mut inner = fake.lock();
        inner.calls.push(action.clone());
        inner.tick();
        if inner.faults.throttle > 0 {
            inner.faults.throttle -= 1;
            Err(ApiError::Throttling)
        } else {
            inner.dispatch(&action, &params, &request_id)
        }
    };
    match result {
        Ok(body) => xml_response(StatusCode::OK, xml::response(&action, &request_id, &body)),
        Err(e) => xml_response(
            StatusCode::BAD_REQUEST,
            xml::error("Sender", e.code(), &e.to_string(), &request_id),
        ),
    }
}

/// `POST /_fake/fault` body.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum FaultRequest {
    /// The next UpdateEnvironment fails while Updating: ERROR event, configuration reverted.
    FailNextUpdate { message: Option<String> },
    /// The next `count` calls answer `Throttling`.
    Throttle { count: u32 },
    /// Change the transition delay.
    Delay { millis: u64 },
}

async fn fault(State(fake): State<Fake>, axum::Json(req): axum::Json<FaultRequest>) -> StatusCode {
    let mut inner = fake.lock();
    match req {
        FaultRequest::FailNextUpdate { message } => {
            inner.faults.fail_next_update =
                Some(message.unwrap_or_else(|| "Failed to deploy configuration.".into()));
        }
        FaultRequest::Throttle { count } => inner.faults.throttle = count,
        FaultRequest::Delay { millis } => inner.config.transition = Duration::from_millis(millis),
    }
    StatusCode::NO_CONTENT
}

/// `POST /_fake/set` body: set or remove options on an environment with no transition.
#[derive(Debug, Deserialize)]
struct SetRequest {
    environment: String,
    #[serde(default)]
    set: Vec<(String, String, String)>,
    #[serde(default)]
    remove: Vec<(String, String)>,
}

async fn set_options(
    State(fake): State<Fake>,
    axum::Json(req): axum::Json<SetRequest>,
) -> StatusCode {
    let mut inner = fake.lock();
    let Some(env) = inner
        .envs
        .iter_mut()
        .find(|e| e.name == req.environment && e.status != "Terminated")
    else {
        return StatusCode::NOT_FOUND;
    };
    for (ns, name, value) in req.set {
        env.options.insert((ns, name), value);
    }
    for key in req.remove {
        env.options.remove(&key);
    }
    StatusCode::NO_CONTENT
}

async fn calls(State(fake): State<Fake>) -> axum::Json<Vec<String>> {
    axum::Json(fake.lock().calls.clone())
}

/// Options that cannot change after creation.
const CREATE_ONLY: &[(&str, &str)] = &[
    ("aws:elasticbeanstalk:environment", "LoadBalancerType"),
    ("aws:elasticbeanstalk:environment", "LoadBalancerIsShared"),
];

const PLATFORM_NAME: &str = "Docker running on 64bit Amazon Linux 2023";
const PLATFORM_VERSION: &str = "4.3.0";

/// EB's defaults for a Docker AL2023 environment, as DescribeConfigurationSettings shows them.
fn platform_defaults(env: &Env) -> BTreeMap<OptionKey, String> {
    let lb_type = env
        .options
        .get(&(
            "aws:elasticbeanstalk:environment".into(),
            "LoadBalancerType".into(),
        ))
        .cloned()
        .unwrap_or_else(|| "classic".into());
    let mut d: Vec<(&str, &str, String)> = vec![
        ("aws:autoscaling:asg", "MinSize", "1".into()),
        ("aws:autoscaling:asg", "MaxSize", "4".into()),
        ("aws:autoscaling:asg", "Cooldown", "360".into()),
        ("aws:autoscaling:asg", "Availability Zones", "Any".into()),
        (
            "aws:autoscaling:launchconfiguration",
            "SecurityGroups",
            format!("awseb-{}-stack-AWSEBSecurityGroup-1FAKE", env.id),
        ),
        (
            "aws:autoscaling:launchconfiguration",
            "DisableIMDSv1",
            "true".into(),
        ),
        (
            "aws:autoscaling:launchconfiguration",
            "EC2KeyName",
            String::new(),
        ),
        (
            "aws:ec2:instances",
            "InstanceTypes",
            "t3.micro, t3.small".into(),
        ),
        ("aws:ec2:instances", "EnableSpot", "false".into()),
        (
            "aws:autoscaling:trigger",
            "MeasureName",
            "NetworkOut".into(),
        ),
        ("aws:autoscaling:trigger", "Statistic", "Average".into()),
        ("aws:autoscaling:trigger", "Unit", "Bytes".into()),
        ("aws:autoscaling:trigger", "Period", "5".into()),
        ("aws:autoscaling:trigger", "EvaluationPeriods", "1".into()),
        ("aws:autoscaling:trigger", "BreachDuration", "5".into()),
        (
            "aws:autoscaling:trigger",
            "UpperThreshold",
            "6000000".into(),
        ),
        (
            "aws:autoscaling:trigger",
            "UpperBreachScaleIncrement",
            "1".into(),
        ),
        (
            "aws:autoscaling:trigger",
            "LowerThreshold",
            "2000000".into(),
        ),
        (
            "aws:autoscaling:trigger",
            "LowerBreachScaleIncrement",
            "-1".into(),
        ),
        (
            "aws:elasticbeanstalk:environment",
            "EnvironmentType",
            "LoadBalanced".into(),
        ),
        (
            "aws:elasticbeanstalk:environment",
            "LoadBalancerType",
            lb_type.clone(),
        ),
        (
            "aws:elasticbeanstalk:environment",
            "LoadBalancerIsShared",
            "false".into(),
        ),
        (
            "aws:elasticbeanstalk:environment:proxy",
            "ProxyServer",
            "nginx".into(),
        ),
        (
            "aws:elasticbeanstalk:command",
            "DeploymentPolicy",
            "AllAtOnce".into(),
        ),
        (
            "aws:elasticbeanstalk:command",
            "BatchSizeType",
            "Percentage".into(),
        ),
        ("aws:elasticbeanstalk:command", "BatchSize", "100".into()),
        ("aws:elasticbeanstalk:command", "Timeout", "600".into()),
        (
            "aws:elasticbeanstalk:command",
            "IgnoreHealthCheck",
            "false".into(),
        ),
        (
            "aws:elasticbeanstalk:healthreporting:system",
            "SystemType",
            "enhanced".into(),
        ),
        (
            "aws:elasticbeanstalk:cloudwatch:logs",
            "StreamLogs",
            "false".into(),
        ),
        (
            "aws:elasticbeanstalk:cloudwatch:logs",
            "DeleteOnTerminate",
            "false".into(),
        ),
        (
            "aws:elasticbeanstalk:cloudwatch:logs",
            "RetentionInDays",
            "7".into(),
        ),
        (
            "aws:elasticbeanstalk:managedactions",
            "ManagedActionsEnabled",
            "true".into(),
        ),
    ];
    if lb_type == "application" {
        d.extend([
            (
                "aws:elbv2:listener:default",
                "ListenerEnabled",
                "true".into(),
            ),
            ("aws:elbv2:listener:default", "Protocol", "HTTP".into()),
            (
                "aws:elbv2:listener:default",
                "DefaultProcess",
                "default".into(),
            ),
            (
                "aws:elasticbeanstalk:environment:process:default",
                "HealthCheckPath",
                "/".into(),
            ),
            (
                "aws:elasticbeanstalk:environment:process:default",
                "HealthCheckInterval",
                "15".into(),
            ),
            (
                "aws:elasticbeanstalk:environment:process:default",
                "HealthCheckTimeout",
                "5".into(),
            ),
            (
                "aws:elasticbeanstalk:environment:process:default",
                "HealthyThresholdCount",
                "3".into(),
            ),
            (
                "aws:elasticbeanstalk:environment:process:default",
                "UnhealthyThresholdCount",
                "5".into(),
            ),
            (
                "aws:elasticbeanstalk:environment:process:default",
                "Port",
                "80".into(),
            ),
            (
                "aws:elasticbeanstalk:environment:process:default",
                "Protocol",
                "HTTP".into(),
            ),
            (
                "aws:elasticbeanstalk:environment:process:default",
                "MatcherHTTPCode",
                "200".into(),
            ),
        ]);
    }
    d.into_iter()
        .map(|(ns, n, v)| ((ns.to_string(), n.to_string()), v))
        .collect()
}

/// How EB stores a value it was given (the rewrites real EB does).
fn stored_value(env_id: &str, ns: &str, name: &str, value: &str) -> String {
    match (ns, name) {
        // EB reports the service role as an ARN even when given a name.
        ("aws:elasticbeanstalk:environment", "ServiceRole") if !value.starts_with("arn:") => {
            format!("arn:aws:iam::{ACCOUNT}:role/{value}")
        }
        // EB adds its own security group to the instances' groups.
        ("aws:autoscaling:launchconfiguration", "SecurityGroups") => {
            format!("{value},awseb-{env_id}-stack-AWSEBSecurityGroup-1FAKE")
        }
        _ => value.to_string(),
    }
}

impl Inner {
    fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn event(&mut self, env: &Env, severity: &'static str, message: String, request_id: &str) {
        self.events.push(Event {
            date: Utc::now(),
            app: env.app.clone(),
            env: Some(env.name.clone()),
            version: env.version_label.clone(),
            message,
            severity,
            request_id: request_id.to_string(),
        });
    }

    /// Completes transitions whose time has come.
    fn tick(&mut self) {
        let now = Instant::now();
        let mut events = Vec::new();
        for env in &mut self.envs {
            let Some((kind, until)) = env.pending else {
                continue;
            };
            if now < until {
                continue;
            }
            env.pending = None;
            env.updated = Utc::now();
            match kind {
                Pending::Launch => {
                    env.status = "Ready".into();
                    env.health = "Green".into();
                    events.push((
                        env.clone(),
                        "INFO",
                        "Successfully launched environment: ".to_string() + &env.name,
                    ));
                }
                Pending::Update => {
                    env.status = "Ready".into();
                    if let Some(message) = env.fail_pending.take() {
                        if let Some((options, version)) = env.revert.take() {
                            env.options = options;
                            env.version_label = version;
                        }
                        env.health = "Red".into();
                        events.push((env.clone(), "ERROR", message));
                        events.push((
                            env.clone(),
                            "ERROR",
                            "The environment was reverted to the previous configuration setting."
                                .into(),
                        ));
                        events.push((
                            env.clone(),
                            "ERROR",
                            "Failed to deploy configuration.".into(),
                        ));
                    } else {
                        env.revert = None;
                        env.health = "Green".into();
                        events.push((
                            env.clone(),
                            "INFO",
                            "Environment update completed successfully.".into(),
                        ));
                    }
                }
                Pending::Terminate => {
                    env.status = "Terminated".into();
                    env.health = "Grey".into();
                    events.push((
                        env.clone(),
                        "INFO",
                        "terminateEnvironment completed successfully.".to_string(),
                    ));
                }
            }
        }
        for (env, severity, message) in events {
            self.event(&env, severity, message, "");
        }
    }

    fn live_env(&self, params: &Params) -> Result<usize, ApiError> {
        let by_id = params.get("EnvironmentId");
        let by_name = params.get("EnvironmentName");
        if by_id.is_none() && by_name.is_none() {
            return Err(ApiError::MissingParameter(
                "EnvironmentId or EnvironmentName is required".into(),
            ));
        }
        self.envs
            .iter()
            .position(|e| {
                e.status != "Terminated"
                    && (Some(e.id.as_str()) == by_id || Some(e.name.as_str()) == by_name)
            })
            .ok_or_else(|| {
                ApiError::InvalidParameterValue(format!(
                    "No Environment found for {}.",
                    by_id
                        .map(|i| format!("EnvironmentId = '{i}'"))
                        .unwrap_or_else(|| format!(
                            "EnvironmentName = '{}'",
                            by_name.unwrap_or("")
                        ))
                ))
            })
    }

    fn dispatch(&mut self, action: &str, p: &Params, rid: &str) -> Result<String, ApiError> {
        let mut x = Xml::default();
        match action {
            "CreateApplication" => {
                let name = p.req("ApplicationName")?.to_string();
                if self.apps.iter().any(|a| a.name == name) {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "Application {name} already exists."
                    )));
                }
                let app = App {
                    name,
                    description: p.get("Description").map(str::to_string),
                    created: Utc::now(),
                };
                self.apps.push(app.clone());
                x.el("Application", |x| self.write_app(x, &app));
            }
            "DescribeApplications" => {
                let names = p.list("ApplicationNames");
                let apps: Vec<App> = self
                    .apps
                    .iter()
                    .filter(|a| names.is_empty() || names.contains(&a.name))
                    .cloned()
                    .collect();
                x.list("Applications", apps, |x, a| self.write_app(x, &a));
            }
            "CreateApplicationVersion" => {
                let app = p.req("ApplicationName")?.to_string();
                let label = p.req("VersionLabel")?.to_string();
                if !self.apps.iter().any(|a| a.name == app) {
                    if p.get("AutoCreateApplication") == Some("true") {
                        self.apps.push(App {
                            name: app.clone(),
                            description: None,
                            created: Utc::now(),
                        });
                    } else {
                        return Err(ApiError::InvalidParameterValue(format!(
                            "No Application named '{app}' found."
                        )));
                    }
                }
                if self
                    .versions
                    .iter()
                    .any(|v| v.app == app && v.label == label)
                {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "Application Version {label} already exists."
                    )));
                }
                let v = Version {
                    app,
                    label,
                    description: p.get("Description").map(str::to_string),
                    bucket: p.get("SourceBundle.S3Bucket").map(str::to_string),
                    key: p.get("SourceBundle.S3Key").map(str::to_string),
                    created: Utc::now(),
                };
                self.versions.push(v.clone());
                x.el("ApplicationVersion", |x| self.write_version(x, &v));
            }
            "DescribeApplicationVersions" => {
                let app = p.get("ApplicationName");
                let labels = p.list("VersionLabels");
                let mut vs: Vec<Version> = self
                    .versions
                    .iter()
                    .filter(|v| {
                        app.is_none_or(|a| a == v.app)
                            && (labels.is_empty() || labels.contains(&v.label))
                    })
                    .cloned()
                    .collect();
                vs.reverse();
                x.list("ApplicationVersions", vs, |x, v| self.write_version(x, &v));
            }
            "CheckDNSAvailability" => {
                let prefix = p.req("CNAMEPrefix")?.to_ascii_lowercase();
                let cname = format!("{prefix}.{}.elasticbeanstalk.com", self.config.region);
                let taken = self
                    .envs
                    .iter()
                    .any(|e| e.status != "Terminated" && e.cname == cname);
                x.text("Available", if taken { "false" } else { "true" });
                x.text("FullyQualifiedCNAME", &cname);
            }
            "CreateEnvironment" => {
                let app = p.req("ApplicationName")?.to_string();
                let name = p.req("EnvironmentName")?.to_string();
                if !self.apps.iter().any(|a| a.name == app) {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "No Application named '{app}' found."
                    )));
                }
                if !(4..=40).contains(&name.len()) {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "Value {name} at 'EnvironmentName' failed to satisfy constraint: Member must have length between 4 and 40"
                    )));
                }
                if self
                    .envs
                    .iter()
                    .any(|e| e.name == name && e.status != "Terminated")
                {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "Environment {name} already exists."
                    )));
                }
                if let Some(label) = p.get("VersionLabel")
                    && !self
                        .versions
                        .iter()
                        .any(|v| v.app == app && v.label == label)
                {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "No Application Version named '{label}' found."
                    )));
                }
                let (platform_arn, stack) = match (p.get("PlatformArn"), p.get("SolutionStackName"))
                {
                    (Some(arn), _) => (
                        arn.to_string(),
                        format!(
                            "64bit Amazon Linux 2023 v{} running Docker",
                            arn.rsplit('/').next().unwrap_or(PLATFORM_VERSION)
                        ),
                    ),
                    (None, Some(stack)) => (
                        format!(
                            "arn:aws:elasticbeanstalk:{}::platform/{PLATFORM_NAME}/{PLATFORM_VERSION}",
                            self.config.region
                        ),
                        stack.to_string(),
                    ),
                    (None, None) => {
                        return Err(ApiError::InvalidParameterValue(
                            "No solution stack or platform specified.".into(),
                        ));
                    }
                };
                let tier_name = p.get("Tier.Name").unwrap_or("WebServer").to_string();
                let prefix = p
                    .get("CNAMEPrefix")
                    .map(str::to_ascii_lowercase)
                    .unwrap_or_else(|| name.to_ascii_lowercase());
                let cname = format!("{prefix}.{}.elasticbeanstalk.com", self.config.region);
                if tier_name == "WebServer"
                    && self
                        .envs
                        .iter()
                        .any(|e| e.status != "Terminated" && e.cname == cname)
                {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "DNS name ({cname}) is not available."
                    )));
                }
                let id = format!("e-fake{:06}", self.next_id());
                let mut options = BTreeMap::new();
                for o in p.structs("OptionSettings") {
                    if let (Some(ns), Some(n)) = (o.get("Namespace"), o.get("OptionName")) {
                        let v = o.get("Value").cloned().unwrap_or_default();
                        options.insert((ns.clone(), n.clone()), stored_value(&id, ns, n, &v));
                    }
                }
                let mut tags: BTreeMap<String, String> = p
                    .structs("Tags")
                    .into_iter()
                    .filter_map(|t| {
                        Some((
                            t.get("Key")?.clone(),
                            t.get("Value").cloned().unwrap_or_default(),
                        ))
                    })
                    .collect();
                tags.insert("elasticbeanstalk:environment-name".into(), name.clone());
                tags.insert("elasticbeanstalk:environment-id".into(), id.clone());
                tags.insert("Name".into(), name.clone());
                let now = Utc::now();
                let env = Env {
                    id,
                    name,
                    app,
                    cname: if tier_name == "WebServer" {
                        cname
                    } else {
                        String::new()
                    },
                    tier_type: p
                        .get("Tier.Type")
                        .unwrap_or(if tier_name == "Worker" {
                            "SQS/HTTP"
                        } else {
                            "Standard"
                        })
                        .to_string(),
                    tier_name,
                    platform_arn,
                    solution_stack: stack,
                    version_label: p.get("VersionLabel").map(str::to_string),
                    status: "Launching".into(),
                    health: "Grey".into(),
                    created: now,
                    updated: now,
                    options,
                    tags,
                    pending: Some((Pending::Launch, Instant::now() + self.config.transition)),
                    revert: None,
                    fail_pending: None,
                };
                self.event(&env, "INFO", "createEnvironment is starting.".into(), rid);
                self.envs.push(env.clone());
                self.write_env(&mut x, &env);
            }
            "DescribeEnvironments" => {
                let app = p.get("ApplicationName");
                let names = p.list("EnvironmentNames");
                let ids = p.list("EnvironmentIds");
                let include_deleted = p.get("IncludeDeleted") != Some("false");
                let envs: Vec<Env> = self
                    .envs
                    .iter()
                    .filter(|e| app.is_none_or(|a| a == e.app))
                    .filter(|e| names.is_empty() || names.contains(&e.name))
                    .filter(|e| ids.is_empty() || ids.contains(&e.id))
                    .filter(|e| include_deleted || e.status != "Terminated")
                    .cloned()
                    .collect();
                x.list("Environments", envs, |x, e| self.write_env(x, &e));
            }
            "UpdateEnvironment" => {
                let i = self.live_env(p)?;
                let env = &self.envs[i];
                if env.status != "Ready" {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "Environment named {} is in an invalid state for this operation. Must be Ready.",
                        env.name
                    )));
                }
                let settings = p.structs("OptionSettings");
                let removals = p.structs("OptionsToRemove");
                for o in settings.iter().chain(&removals) {
                    let (ns, n) = (
                        o.get("Namespace").map(String::as_str).unwrap_or(""),
                        o.get("OptionName").map(String::as_str).unwrap_or(""),
                    );
                    if CREATE_ONLY.contains(&(ns, n)) {
                        let current = env.options.get(&(ns.to_string(), n.to_string()));
                        if o.get("Value") != current || current.is_none() {
                            return Err(ApiError::InvalidParameterValue(format!(
                                "Configuration validation exception: Invalid option specification (Namespace: '{ns}', OptionName: '{n}'): You can't change this option after the environment is created."
                            )));
                        }
                    }
                }
                if let Some(label) = p.get("VersionLabel")
                    && !self
                        .versions
                        .iter()
                        .any(|v| v.app == env.app && v.label == label)
                {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "No Application Version named '{label}' found."
                    )));
                }
                let fail = self.faults.fail_next_update.take();
                let transition = self.config.transition;
                let env = &mut self.envs[i];
                env.revert = Some((env.options.clone(), env.version_label.clone()));
                for o in &settings {
                    if let (Some(ns), Some(n)) = (o.get("Namespace"), o.get("OptionName")) {
                        let v = o.get("Value").cloned().unwrap_or_default();
                        let stored = stored_value(&env.id, ns, n, &v);
                        env.options.insert((ns.clone(), n.clone()), stored);
                    }
                }
                for o in &removals {
                    if let (Some(ns), Some(n)) = (o.get("Namespace"), o.get("OptionName")) {
                        env.options.remove(&(ns.clone(), n.clone()));
                    }
                }
                if let Some(label) = p.get("VersionLabel") {
                    env.version_label = Some(label.to_string());
                }
                if let Some(arn) = p.get("PlatformArn") {
                    env.platform_arn = arn.to_string();
                }
                env.status = "Updating".into();
                env.fail_pending = fail;
                env.pending = Some((Pending::Update, Instant::now() + transition));
                env.updated = Utc::now();
                let env = env.clone();
                self.event(&env, "INFO", "Environment update is starting.".into(), rid);
                self.write_env(&mut x, &env);
            }
            "TerminateEnvironment" => {
                let i = self.live_env(p)?;
                if self.envs[i].status != "Ready" {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "Environment named {} is in an invalid state for this operation. Must be Ready.",
                        self.envs[i].name
                    )));
                }
                let transition = self.config.transition;
                let env = &mut self.envs[i];
                env.status = "Terminating".into();
                env.pending = Some((Pending::Terminate, Instant::now() + transition));
                let env = env.clone();
                self.event(
                    &env,
                    "INFO",
                    "terminateEnvironment is starting.".into(),
                    rid,
                );
                self.write_env(&mut x, &env);
            }
            "DescribeConfigurationSettings" => {
                let app = p.req("ApplicationName")?.to_string();
                if p.get("TemplateName").is_some() {
                    return Err(ApiError::InvalidParameterValue(
                        "Configuration templates are not supported by eb-fake.".into(),
                    ));
                }
                let i = self.live_env(p)?;
                let env = &self.envs[i];
                if env.app != app {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "No Environment found for EnvironmentName = '{}'.",
                        env.name
                    )));
                }
                let mut all = platform_defaults(env);
                all.extend(env.options.clone());
                let env = env.clone();
                x.list("ConfigurationSettings", [()], |x, ()| {
                    x.text("SolutionStackName", &env.solution_stack)
                        .text("PlatformArn", &env.platform_arn)
                        .text("ApplicationName", &env.app)
                        .text("EnvironmentName", &env.name)
                        .text("DeploymentStatus", "deployed")
                        .text("DateCreated", &ts(env.created))
                        .text("DateUpdated", &ts(env.updated))
                        .list("OptionSettings", &all, |x, ((ns, n), v)| {
                            x.text("Namespace", ns)
                                .text("OptionName", n)
                                .text("Value", v);
                        });
                });
            }
            "DescribeEnvironmentResources" => {
                let i = self.live_env(p)?;
                let env = self.envs[i].clone();
                x.el("EnvironmentResources", |x| {
                    x.text("EnvironmentName", &env.name)
                        .list("AutoScalingGroups", [env.asg_name()], |x, n| {
                            x.text("Name", &n);
                        })
                        .list("Instances", Vec::<String>::new(), |_, _| {})
                        .list("LaunchConfigurations", Vec::<String>::new(), |_, _| {})
                        .list("LaunchTemplates", [format!("lt-{}", env.id)], |x, n| {
                            x.text("Id", &n);
                        })
                        .list(
                            "LoadBalancers",
                            [format!("awseb-AWSEB-{}", env.id)],
                            |x, n| {
                                x.text("Name", &n);
                            },
                        )
                        .list("Triggers", Vec::<String>::new(), |_, _| {})
                        .list("Queues", Vec::<String>::new(), |_, _| {});
                });
            }
            "DescribeEvents" => {
                let app = p.get("ApplicationName");
                let env_name = p.get("EnvironmentName");
                let env_id = p.get("EnvironmentId");
                let env_by_id = env_id.and_then(|id| {
                    self.envs
                        .iter()
                        .find(|e| e.id == id)
                        .map(|e| e.name.clone())
                });
                let start = p
                    .get("StartTime")
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc));
                let severities = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
                let min_sev = p
                    .get("Severity")
                    .and_then(|s| severities.iter().position(|x| *x == s))
                    .unwrap_or(0);
                let max = p
                    .get("MaxRecords")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(1000usize);
                let mut evs: Vec<Event> = self
                    .events
                    .iter()
                    .filter(|e| app.is_none_or(|a| a == e.app))
                    .filter(|e| env_name.is_none_or(|n| Some(n) == e.env.as_deref()))
                    .filter(|e| env_id.is_none() || env_by_id.as_deref() == e.env.as_deref())
                    .filter(|e| start.is_none_or(|s| e.date >= s))
                    .filter(|e| {
                        severities
                            .iter()
                            .position(|x| *x == e.severity)
                            .unwrap_or(0)
                            >= min_sev
                    })
                    .cloned()
                    .collect();
                evs.reverse();
                evs.truncate(max);
                x.list("Events", evs, |x, e| {
                    x.text("EventDate", &ts(e.date))
                        .text("Message", &e.message)
                        .text("ApplicationName", &e.app)
                        .opt("VersionLabel", e.version.as_deref())
                        .opt("EnvironmentName", e.env.as_deref())
                        .opt(
                            "RequestId",
                            Some(e.request_id.as_str()).filter(|r| !r.is_empty()),
                        )
                        .text("Severity", e.severity);
                });
            }
            "ListTagsForResource" => {
                let arn = p.req("ResourceArn")?.to_string();
                let region = self.config.region.clone();
                let env = self
                    .envs
                    .iter()
                    .find(|e| e.status != "Terminated" && e.arn(&region) == arn)
                    .ok_or_else(|| {
                        ApiError::InvalidParameterValue(format!("Resource {arn} not found."))
                    })?;
                x.text("ResourceArn", &arn)
                    .list("ResourceTags", &env.tags, |x, (k, v)| {
                        x.text("Key", k).text("Value", v);
                    });
            }
            "UpdateTagsForResource" => {
                let arn = p.req("ResourceArn")?.to_string();
                let region = self.config.region.clone();
                let add = p.structs("TagsToAdd");
                let remove = p.list("TagsToRemove");
                let env = self
                    .envs
                    .iter_mut()
                    .find(|e| e.status != "Terminated" && e.arn(&region) == arn)
                    .ok_or_else(|| {
                        ApiError::InvalidParameterValue(format!("Resource {arn} not found."))
                    })?;
                for t in add {
                    if let Some(k) = t.get("Key") {
                        env.tags
                            .insert(k.clone(), t.get("Value").cloned().unwrap_or_default());
                    }
                }
                for k in remove {
                    env.tags.remove(&k);
                }
            }
            "" => return Err(ApiError::MissingParameter("Action is required".into())),
            other => {
                return Err(ApiError::InvalidAction(format!(
                    "The action {other} is not valid for this web service (eb-fake)."
                )));
            }
        }
        Ok(x.0)
    }

    fn write_app(&self, x: &mut Xml, a: &App) {
        let versions: Vec<&str> = self
            .versions
            .iter()
            .filter(|v| v.app == a.name)
            .map(|v| v.label.as_str())
            .collect();
        x.text(
            "ApplicationArn",
            &format!(
                "arn:aws:elasticbeanstalk:{}:{ACCOUNT}:application/{}",
                self.config.region, a.name
            ),
        )
        .text("ApplicationName", &a.name)
        .opt("Description", a.description.as_deref())
        .text("DateCreated", &ts(a.created))
        .text("DateUpdated", &ts(a.created))
        .list("Versions", versions, |x, v| {
            x.0.push_str(&xml::esc(v));
        })
        .list("ConfigurationTemplates", Vec::<String>::new(), |_, _| {});
    }

    fn write_version(&self, x: &mut Xml, v: &Version) {
        x.text(
            "ApplicationVersionArn",
            &format!(
                "arn:aws:elasticbeanstalk:{}:{ACCOUNT}:applicationversion/{}/{}",
                self.config.region, v.app, v.label
            ),
        )
        .text("ApplicationName", &v.app)
        .opt("Description", v.description.as_deref())
        .text("VersionLabel", &v.label);
        if let (Some(b), Some(k)) = (&v.bucket, &v.key) {
            x.el("SourceBundle", |x| {
                x.text("S3Bucket", b).text("S3Key", k);
            });
        }
        x.text("DateCreated", &ts(v.created))
            .text("DateUpdated", &ts(v.created))
            .text("Status", "PROCESSED");
    }

    fn write_env(&self, x: &mut Xml, e: &Env) {
        x.text("EnvironmentName", &e.name)
            .text("EnvironmentId", &e.id)
            .text("ApplicationName", &e.app)
            .opt("VersionLabel", e.version_label.as_deref())
            .text("SolutionStackName", &e.solution_stack)
            .text("PlatformArn", &e.platform_arn);
        if !e.cname.is_empty() {
            x.text(
                "EndpointURL",
                &format!("awseb-{}.{}.elb.amazonaws.com", e.id, self.config.region),
            )
            .text("CNAME", &e.cname);
        }
        x.text("DateCreated", &ts(e.created))
            .text("DateUpdated", &ts(e.updated))
            .text("Status", &e.status)
            .text(
                "AbortableOperationInProgress",
                if e.status == "Updating" {
                    "true"
                } else {
                    "false"
                },
            )
            .text("Health", &e.health)
            .text(
                "HealthStatus",
                if e.health == "Green" {
                    "Ok"
                } else if e.health == "Red" {
                    "Severe"
                } else {
                    "Unknown"
                },
            )
            .el("Tier", |x| {
                x.text("Name", &e.tier_name)
                    .text("Type", &e.tier_type)
                    .text("Version", "1.0");
            })
            .text("EnvironmentArn", &e.arn(&self.config.region));
    }
}
