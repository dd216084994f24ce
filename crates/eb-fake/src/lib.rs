//! eb-fake: an AWS Elastic Beanstalk API server for offline tests.
//!
//! It speaks the AWS query protocol (form-encoded `POST /` with `Action=...&Version=2010-12-01`)
//! and answers XML in the EB namespace that the AWS SDKs parse, for the operations klue calls:
//! applications, application versions (create, describe with pagination, delete), the storage
//! location, platform versions, environments (create, describe, update with
//! `OptionSettings`/`OptionsToRemove`, abort, CNAME swap, terminate), configuration settings
//! (platform defaults merged with what was set), events (filters and pagination), environment
//! resources, tags and DNS availability. Environments go `Launching`/`Updating` -> `Ready` (with
//! events) after a configurable delay; create-only options are refused on update, and mutations
//! of an environment that is not `Ready` fail with `InvalidParameterValue`, as on AWS.
//! Errors are the query-protocol `ErrorResponse` (HTTP 400, `Type` Sender) with AWS's codes.
//!
//! # Operations
//!
//! - `CreateStorageLocation` -> `S3Bucket` `elasticbeanstalk-{region}-123456789012`.
//! - `ListPlatformVersions`: versions 4.3.0, 4.4.0 and 4.5.1 of
//!   "Docker running on 64bit Amazon Linux 2023", newest first, the newest with
//!   `PlatformLifecycleState` `Recommended`. `Filters.member.N.{Type,Operator,Values.member.1}`
//!   with Type PlatformName, PlatformBranchName, PlatformVersion, PlatformStatus,
//!   PlatformLifecycleState, PlatformOwner, SupportedTier, SupportedAddon, OperatingSystemName,
//!   ProgrammingLanguageName and operators `=`, `!=`, `contains`, `begins_with`, `ends_with`,
//!   `<`, `<=`, `>`, `>=` (versions compare numerically); filters are ANDed. `MaxRecords`,
//!   `NextToken`.
//! - `CreateEnvironment` takes `PlatformArn` and/or `SolutionStackName` (one of the versions
//!   above; both must agree) and records both. Refusals (`InvalidParameterValue`):
//!   "Environment {name} already exists." (among non-terminated), "DNS name
//!   ({prefix}.{region}.elasticbeanstalk.com) is not available." (explicit `CNAMEPrefix` taken;
//!   without one a taken default gets an `eba-` label as AWS does), "No Application Version
//!   named '{label}' found.", "No Solution Stack named '{stack}' found.", "No Platform named
//!   '{arn}' found.". Events: INFO "createEnvironment is starting.", "Using
//!   elasticbeanstalk-{region}-123456789012 as Amazon S3 storage bucket for environment data.",
//!   then at Ready "Created Auto Scaling group named: {asg}", "Application available at
//!   {cname}.", "Successfully launched environment: {name}" (health Green).
//! - `UpdateEnvironment`: INFO "Environment update is starting.", "Updating environment
//!   {name}'s configuration settings." (options given), "Deploying new version to
//!   instance(s)." (VersionLabel given); at Ready: "New application version was deployed to
//!   running EC2 instances.", "Successfully deployed new configuration to environment.",
//!   "Environment update completed successfully.".
//! - `DescribeEnvironmentHealth`: `Color` (the environment's health), `HealthStatus` (Ok,
//!   Severe, Warning, Unknown for Green, Red, Yellow, Grey), `Status`, `InstancesHealth` (one
//!   instance) and, for Red, the cause "ELB health is failing or not available for all
//!   instances." (a guess at EB's wording), whatever `AttributeNames` asks for.
//! - `SwapEnvironmentCNAMEs` (`Source`/`Destination` `EnvironmentName` or `EnvironmentId`):
//!   both must exist, differ, be in the same application, be Ready and have a CNAME. The CNAMEs
//!   swap at once; both environments are `Updating` for one transition, then Ready. Events on
//!   both: "swapEnvironmentCNAMEs is starting.", "Swapping CNAMEs for environments '{src}' and
//!   '{dst}'.", then "'{cname}' now points to '{endpoint}'." and "Completed swapping CNAMEs for
//!   environments '{src}' and '{dst}'." (all INFO).
//! - `AbortEnvironmentUpdate`: only while an update is in progress (`Updating`,
//!   `AbortableOperationInProgress` true), else "Environment named {name} is in an invalid state
//!   for this operation. Must be Updating.". Restores the options and version label from before
//!   the update at once, stays `Updating` (not abortable) for one transition, then Ready/Green.
//!   Events: INFO "abortEnvironmentUpdate is starting."; at Ready, when the aborted update was
//!   deploying a version, ERROR "During an aborted deployment, some instances may have deployed
//!   the new application version. To ensure all instances are running the same version,
//!   re-deploy the appropriate application version."; then WARN "Rollback of environment {name}
//!   completed successfully.".
//! - `DeleteApplicationVersion`: "Unable to delete application version '{label}' because it is
//!   being used by an environment." while a non-terminated environment runs it (or would roll
//!   back to it); "No Application Version named '{label}' found."; `DeleteSourceBundle` is
//!   accepted (no bundles are stored).
//! - `DescribeApplicationVersions` and `DescribeEvents`: newest first, `MaxRecords` (1..=1000;
//!   events default to 1000) and `NextToken` (stable when items are added between pages).
//!   Events filter by ApplicationName, EnvironmentName, EnvironmentId, VersionLabel, RequestId,
//!   StartTime (inclusive), EndTime (exclusive) and Severity (minimum: TRACE < DEBUG < INFO <
//!   WARN < ERROR < FATAL). Timestamps are kept and answered with millisecond precision, so an
//!   `EventDate` read back and sent as `StartTime` includes that event.
//!
//! # Configuration settings
//!
//! `DescribeConfigurationSettings` answers the platform's defaults (options nobody set, as a
//! Docker on Amazon Linux 2023 environment shows them) merged with what was set. Each option
//! carries the `ResourceName` EB gives it: `AWSEBAutoScalingGroup` on `aws:autoscaling:asg`
//! and `AWSEBLoadBalancer` on `aws:elb:policies` as AWS's documented example shows; the
//! alarm, scaling-policy and launch-configuration names on `aws:autoscaling:trigger` and
//! `aws:autoscaling:launchconfiguration` as real answers published by EB users show; the
//! application load balancer's names are a guess (marked in the code). Comma lists come back
//! joined with `", "` (a guess from EB's own defaults). While an update runs, the answer holds
//! the deployed set and a `pending` draft; after an update failed, the deployed set and a
//! `failed` draft until the next update (AWS documents that a draft may be answered beside the
//! deployed set, not exactly when: a guess).
//!
//! # Test hooks
//!
//! Under `/_fake/`: `GET /_fake/calls` (every action received, in order), `GET
//! /_fake/requests` (the form parameters of every call, in order, as JSON objects including
//! `Action`), `POST /_fake/set` (change an environment's options out of band without a
//! transition) and `POST /_fake/fault` with a JSON body tagged by `kind` (answers 204):
//!
//! - `{"kind":"fail_next_update","message":"..."}` (message optional): the next
//!   UpdateEnvironment ends Ready with health Red, the options and version reverted, and ERROR
//!   events: the message (default "Failed to deploy configuration."), "The environment was
//!   reverted to the previous configuration setting.", "Failed to deploy configuration.".
//! - `{"kind":"complete_with_errors_next_update"}`: the next UpdateEnvironment ends Ready with
//!   health Red, the new options kept but the version label NOT changed, and events ERROR
//!   "Instance deployment failed. For details, see 'eb-engine.log'.", ERROR "[Instance: i-0...]
//!   Command failed on instance. Return code: 1 Output: Engine execution has encountered an
//!   error..", INFO "Command execution completed on all instances. Summary: [Successful: 0,
//!   Failed: 1].", ERROR "Update environment operation is complete, but with errors. For more
//!   information, see troubleshooting documentation.".
//! - `{"kind":"hang_next_update"}`: the next UpdateEnvironment or CreateEnvironment stays
//!   Updating/Launching until AbortEnvironmentUpdate (updates only) or `release`.
//! - `{"kind":"release"}` or `{"kind":"release","environment":"{name}"}`: hung transitions
//!   complete now (as they would have).
//! - `{"kind":"busy","environment":"{name}","millis":N}`: a Ready environment goes Updating for
//!   N ms out of band (INFO "Environment update is starting." ... "Environment update completed
//!   successfully."); 404 if no such environment, 409 if it is not Ready.
//! - `{"kind":"unhealthy_next_launch"}`: the next CreateEnvironment ends Ready with health Red
//!   and WARN "Environment health has transitioned from Pending to Severe. ELB health is
//!   failing or not available for all instances.".
//! - `{"kind":"throttle","count":N}`: the next N calls answer `Throttling` "Rate exceeded".
//! - `{"kind":"delay","millis":N}`: the transition delay.
//! - `{"kind":"slow","millis":N}`: every API call answers N ms late (0: at once again), so a
//!   client spends most of its time with a request in flight.
//!
//! It is not a general EB emulator: no S3 access for source bundles, no instances, no real
//! platforms; ARNs use account `123456789012`.

mod platform;
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

// Event messages, worded as AWS Elastic Beanstalk words them (see the crate docs).
const MSG_UPDATE_STARTING: &str = "Environment update is starting.";
const MSG_UPDATE_COMPLETED: &str = "Environment update completed successfully.";
const MSG_DEPLOYING_VERSION: &str = "Deploying new version to instance(s).";
const MSG_NEW_VERSION_DEPLOYED: &str =
    "New application version was deployed to running EC2 instances.";
const MSG_CONFIG_DEPLOYED: &str = "Successfully deployed new configuration to environment.";
const MSG_REVERTED: &str = "The environment was reverted to the previous configuration setting.";
const MSG_FAILED_CONFIG: &str = "Failed to deploy configuration.";
const MSG_INSTANCE_DEPLOY_FAILED: &str =
    "Instance deployment failed. For details, see 'eb-engine.log'.";
const MSG_COMMAND_SUMMARY_FAILED: &str =
    "Command execution completed on all instances. Summary: [Successful: 0, Failed: 1].";
const MSG_UPDATE_WITH_ERRORS: &str = "Update environment operation is complete, but with errors. For more information, see troubleshooting documentation.";
const MSG_LAUNCH_UNHEALTHY: &str = "Environment health has transitioned from Pending to Severe. ELB health is failing or not available for all instances.";
const MSG_ABORTED_DEPLOYMENT: &str = "During an aborted deployment, some instances may have deployed the new application version. To ensure all instances are running the same version, re-deploy the appropriate application version.";

/// Now, truncated to milliseconds: the precision of every timestamp the API answers, so
/// that a timestamp read back from a response compares equal to the stored one.
fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

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
    /// Creation order (newest = highest); pagination tokens refer to it.
    seq: u64,
    app: String,
    label: String,
    description: Option<String>,
    bucket: Option<String>,
    key: Option<String>,
    created: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
enum Pending {
    Launch,
    Update,
    Terminate,
    /// A CNAME swap between `source` and `destination` (environment names, in request order).
    Swap {
        source: String,
        destination: String,
    },
    /// Rolling back after AbortEnvironmentUpdate; `version_changed` when the aborted update
    /// was deploying another application version.
    Abort {
        version_changed: bool,
    },
    /// An out-of-band update (the `busy` fault).
    Busy,
}

/// How the pending Launch/Update ends.
#[derive(Debug, Clone, Default, PartialEq)]
enum Outcome {
    #[default]
    Success,
    /// ERROR events and the configuration reverted (`fail_next_update`).
    Fail(String),
    /// Ready, ERROR "... complete, but with errors", version label kept at the previous one.
    CompleteWithErrors,
    /// Launch ends Ready with health Red and a WARN event (`unhealthy_next_launch`).
    Unhealthy,
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
    /// The pending transition never completes by itself (`hang_next_update`): only
    /// AbortEnvironmentUpdate or the `release` fault ends it.
    hung: bool,
    /// Options and version to restore if the pending update fails or is aborted.
    revert: Option<(BTreeMap<OptionKey, String>, Option<String>)>,
    /// The options of the last update that failed to deploy: DescribeConfigurationSettings
    /// answers them as a second set with `DeploymentStatus` `failed`, beside the deployed one,
    /// until the next update.
    failed_draft: Option<BTreeMap<OptionKey, String>>,
    outcome: Outcome,
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
    fn endpoint(&self, region: &str) -> String {
        format!("awseb-{}.{region}.elb.amazonaws.com", self.id)
    }
}

#[derive(Debug, Clone)]
struct Event {
    /// Creation order (newest = highest); pagination tokens refer to it.
    seq: u64,
    date: DateTime<Utc>,
    app: String,
    env: Option<String>,
    env_id: Option<String>,
    version: Option<String>,
    message: String,
    severity: &'static str,
    request_id: String,
}

#[derive(Debug, Default)]
struct Faults {
    fail_next_update: Option<String>,
    complete_with_errors_next_update: bool,
    hang_next_update: bool,
    unhealthy_next_launch: bool,
    throttle: u32,
    /// How late every API call answers.
    slow: Duration,
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
    /// The form parameters of every query-protocol call, in order.
    requests: Vec<BTreeMap<String, String>>,
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
            requests: vec![],
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
            .route("/_fake/requests", get(requests))
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
/// `MaxRecords` (1..=1000, `default` when absent) and the item bound of `NextToken`.
fn page_params(p: &Params, default: usize) -> Result<(usize, Option<u64>), ApiError> {
    let max = match p.get("MaxRecords") {
        None => default,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(ApiError::InvalidParameterValue(format!(
                    "1 validation error detected: Value '{m}' at 'maxRecords' failed to satisfy constraint: Member must have value between 1 and 1000"
                )));
            }
        },
    };
    let before = p
        .get("NextToken")
        .map(|t| {
            t.strip_prefix(TOKEN_PREFIX)
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| ApiError::InvalidParameterValue("Invalid NextToken".into()))
        })
        .transpose()?;
    Ok((max, before))
}

const TOKEN_PREFIX: &str = "eb-fake-next-";

/// One page of `items` (sorted newest first, by the sequence `seq` gives): those older than
/// `before`, at most `max`, and the NextToken when more remain. A token names the last item
/// returned, so items created between two pages never shift the next page.
fn paginate<T>(
    items: Vec<T>,
    seq: impl Fn(&T) -> u64,
    max: usize,
    before: Option<u64>,
) -> (Vec<T>, Option<String>) {
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|i| before.is_none_or(|b| seq(i) < b))
        .collect();
    if rest.len() <= max {
        return (rest, None);
    }
    rest.truncate(max);
    let next = rest.last().map(|i| format!("{TOKEN_PREFIX}{}", seq(i)));
    (rest, next)
}

/// A timestamp parameter (ISO 8601, as the SDKs send it), truncated to milliseconds like the
/// stored timestamps, so that StartTime = an EventDate read back includes that event.
fn time_param(p: &Params, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = p.get(name) else {
        return Ok(None);
    };
    let t = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            raw.parse::<f64>()
                .ok()
                .and_then(|secs| DateTime::from_timestamp_millis((secs * 1000.0) as i64))
                .ok_or(())
        })
        .map_err(|()| {
            ApiError::InvalidParameterValue(format!(
                "Invalid {name}: '{raw}' is not an ISO 8601 timestamp."
            ))
        })?;
    Ok(Some(
        DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t),
    ))
}

/// TRACE < DEBUG < INFO < WARN < ERROR < FATAL.
fn severity_rank(s: &str) -> Option<usize> {
    ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
        .iter()
        .position(|x| *x == s)
}

async fn query(State(fake): State<Fake>, body: Bytes) -> Response {
    let params = Params(form_urlencoded::parse(&body).into_owned().collect());
    let action = params.get("Action").unwrap_or("").to_string();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (result, slow) = {
        let mut inner = fake.lock();
        inner.calls.push(action.clone());
        inner.requests.push(
            params
                .0
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        inner.tick();
        let result = if inner.faults.throttle > 0 {
            inner.faults.throttle -= 1;
            Err(ApiError::Throttling)
        } else {
            inner.dispatch(&action, &params, &request_id)
        };
        (result, inner.faults.slow)
    };
    if !slow.is_zero() {
        tokio::time::sleep(slow).await;
    }
    match result {
        Ok(body) => xml_response(StatusCode::OK, xml::response(&action, &request_id, &body)),
        Err(e) => xml_response(
            StatusCode::BAD_REQUEST,
            xml::error("Sender", e.code(), &e.to_string(), &request_id),
        ),
    }
}

/// `POST /_fake/fault` body (see the crate docs for each kind).
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum FaultRequest {
    /// The next UpdateEnvironment fails while Updating: ERROR events, configuration reverted.
    FailNextUpdate { message: Option<String> },
    /// The next UpdateEnvironment ends Ready with "... complete, but with errors." and the
    /// previous version label.
    CompleteWithErrorsNextUpdate,
    /// The next UpdateEnvironment/CreateEnvironment stays Updating/Launching until
    /// AbortEnvironmentUpdate or `release`.
    HangNextUpdate,
    /// Lets hung transitions complete now (all of them, or one environment's).
    Release { environment: Option<String> },
    /// Puts a Ready environment into Updating for `millis`, out of band.
    Busy { environment: String, millis: u64 },
    /// The next CreateEnvironment ends Ready with health Red and a WARN event.
    UnhealthyNextLaunch,
    /// The next `count` calls answer `Throttling`.
    Throttle { count: u32 },
    /// Change the transition delay.
    Delay { millis: u64 },
    /// Every API call answers `millis` late.
    Slow { millis: u64 },
}

async fn fault(State(fake): State<Fake>, axum::Json(req): axum::Json<FaultRequest>) -> StatusCode {
    let mut inner = fake.lock();
    inner.tick();
    match req {
        FaultRequest::FailNextUpdate { message } => {
            inner.faults.fail_next_update =
                Some(message.unwrap_or_else(|| MSG_FAILED_CONFIG.into()));
        }
        FaultRequest::CompleteWithErrorsNextUpdate => {
            inner.faults.complete_with_errors_next_update = true;
        }
        FaultRequest::HangNextUpdate => inner.faults.hang_next_update = true,
        FaultRequest::Release { environment } => {
            let now = Instant::now();
            for env in &mut inner.envs {
                if env.hung && environment.as_ref().is_none_or(|n| *n == env.name) {
                    env.hung = false;
                    if let Some((_, until)) = &mut env.pending {
                        *until = now;
                    }
                }
            }
            inner.tick();
        }
        FaultRequest::Busy {
            environment,
            millis,
        } => {
            let Some(i) = inner
                .envs
                .iter()
                .position(|e| e.name == environment && e.status != "Terminated")
            else {
                return StatusCode::NOT_FOUND;
            };
            if inner.envs[i].status != "Ready" {
                return StatusCode::CONFLICT;
            }
            let env = &mut inner.envs[i];
            env.status = "Updating".into();
            env.revert = Some((env.options.clone(), env.version_label.clone()));
            env.pending = Some((
                Pending::Busy,
                Instant::now() + Duration::from_millis(millis),
            ));
            env.updated = now_millis();
            let env = env.clone();
            inner.event(&env, "INFO", MSG_UPDATE_STARTING.into(), "");
        }
        FaultRequest::UnhealthyNextLaunch => inner.faults.unhealthy_next_launch = true,
        FaultRequest::Throttle { count } => inner.faults.throttle = count,
        FaultRequest::Delay { millis } => inner.config.transition = Duration::from_millis(millis),
        FaultRequest::Slow { millis } => inner.faults.slow = Duration::from_millis(millis),
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

async fn requests(State(fake): State<Fake>) -> axum::Json<Vec<BTreeMap<String, String>>> {
    axum::Json(fake.lock().requests.clone())
}

/// Options that cannot change after creation.
const CREATE_ONLY: &[(&str, &str)] = &[
    ("aws:elasticbeanstalk:environment", "LoadBalancerType"),
    ("aws:elasticbeanstalk:environment", "LoadBalancerIsShared"),
];

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
        (
            "aws:autoscaling:asg",
            "Custom Availability Zones",
            String::new(),
        ),
        (
            "aws:autoscaling:launchconfiguration",
            "MonitoringInterval",
            "5 minute".into(),
        ),
        (
            "aws:autoscaling:launchconfiguration",
            "RootVolumeType",
            String::new(),
        ),
        (
            "aws:autoscaling:updatepolicy:rollingupdate",
            "RollingUpdateEnabled",
            "false".into(),
        ),
        (
            "aws:autoscaling:updatepolicy:rollingupdate",
            "RollingUpdateType",
            "Time".into(),
        ),
        (
            "aws:elasticbeanstalk:healthreporting:system",
            "HealthCheckSuccessThreshold",
            "Ok".into(),
        ),
        (
            "aws:elasticbeanstalk:monitoring",
            "Automatically Terminate Unhealthy Instances",
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

/// The `ResourceName` EB puts on an option in DescribeConfigurationSettings: the resource of
/// the environment's CloudFormation stack that the option configures. Options of the
/// environment as a whole (variables, deployment policy, health reporting, logs) carry none.
fn resource_name(namespace: &str, option: &str) -> Option<&'static str> {
    const ASG: &str = "AWSEBAutoScalingGroup";
    const LAUNCH: &str = "AWSEBAutoScalingLaunchConfiguration";
    match namespace {
        // Documented: AWS's own DescribeConfigurationSettings example (API reference, CLI
        // reference) shows these two.
        "aws:autoscaling:asg" => Some(ASG),
        "aws:elb:policies" => Some("AWSEBLoadBalancer"),
        // Not in AWS's documentation; as real answers published by EB users show them.
        "aws:autoscaling:launchconfiguration" => match option {
            "InstanceType" | "SSHSourceRestriction" => None,
            _ => Some(LAUNCH),
        },
        "aws:autoscaling:trigger" => Some(match option {
            "UpperThreshold" => "AWSEBCloudwatchAlarmHigh",
            "UpperBreachScaleIncrement" => "AWSEBAutoScalingScaleUpPolicy",
            "LowerBreachScaleIncrement" => "AWSEBAutoScalingScaleDownPolicy",
            _ => "AWSEBCloudwatchAlarmLow",
        }),
        "aws:autoscaling:updatepolicy:rollingupdate" => Some(ASG),
        "aws:ec2:vpc" => match option {
            "Subnets" => Some(ASG),
            "ELBSubnets" | "ELBScheme" => Some("AWSEBLoadBalancer"),
            "VPCId" => Some("AWSEBSecurityGroup"),
            "AssociatePublicIpAddress" => Some(LAUNCH),
            _ => None,
        },
        // GUESS (undocumented, and no published answer of an application load balancer
        // environment was found): the ALB's resources, named like the others.
        "aws:elbv2:loadbalancer" => Some("AWSEBV2LoadBalancer"),
        "aws:elbv2:listener:default" => Some("AWSEBV2LoadBalancerListener"),
        "aws:elbv2:listener:443" => Some("AWSEBV2LoadBalancerListener443"),
        "aws:elasticbeanstalk:environment:process:default" => {
            Some("AWSEBV2LoadBalancerTargetGroup")
        }
        _ => None,
    }
}

/// Options whose value is a comma-separated list.
const LIST_OPTIONS: &[(&str, &str)] = &[
    ("aws:autoscaling:launchconfiguration", "SecurityGroups"),
    ("aws:ec2:instances", "InstanceTypes"),
    ("aws:ec2:vpc", "Subnets"),
    ("aws:ec2:vpc", "ELBSubnets"),
    ("aws:elbv2:loadbalancer", "SecurityGroups"),
    ("aws:elbv2:listener:443", "SSLCertificateArns"),
];

/// How EB stores a value it was given (the rewrites real EB does).
fn stored_value(env_id: &str, ns: &str, name: &str, value: &str) -> String {
    match (ns, name) {
        // EB reports the service role as an ARN even when given a name.
        ("aws:elasticbeanstalk:environment", "ServiceRole") if !value.starts_with("arn:") => {
            format!("arn:aws:iam::{ACCOUNT}:role/{value}")
        }
        // EB adds its own security group to the instances' groups.
        ("aws:autoscaling:launchconfiguration", "SecurityGroups") => join_list(&format!(
            "{value},awseb-{env_id}-stack-AWSEBSecurityGroup-1FAKE"
        )),
        // GUESS (undocumented; as EB's own defaults read, e.g. InstanceTypes
        // "t3.micro, t3.small"): lists come back joined with ", " whatever the separator sent.
        key if LIST_OPTIONS.contains(&key) => join_list(value),
        _ => value.to_string(),
    }
}

fn join_list(value: &str) -> String {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Inner {
    fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn event(&mut self, env: &Env, severity: &'static str, message: String, request_id: &str) {
        let seq = self.next_id();
        self.events.push(Event {
            seq,
            date: now_millis(),
            app: env.app.clone(),
            env: Some(env.name.clone()),
            env_id: Some(env.id.clone()),
            version: env.version_label.clone(),
            message,
            severity,
            request_id: request_id.to_string(),
        });
    }

    /// Completes transitions whose time has come.
    fn tick(&mut self) {
        let now = Instant::now();
        let region = self.config.region.clone();
        let mut events: Vec<(Env, &'static str, String)> = Vec::new();
        for env in &mut self.envs {
            let Some((kind, until)) = env.pending.clone() else {
                continue;
            };
            if env.hung || now < until {
                continue;
            }
            env.pending = None;
            env.updated = now_millis();
            let outcome = std::mem::take(&mut env.outcome);
            let mut push = |env: &Env, severity: &'static str, message: String| {
                events.push((env.clone(), severity, message));
            };
            match kind {
                Pending::Launch => {
                    env.status = "Ready".into();
                    push(
                        env,
                        "INFO",
                        format!("Created Auto Scaling group named: {}", env.asg_name()),
                    );
                    if !env.cname.is_empty() {
                        push(
                            env,
                            "INFO",
                            format!("Application available at {}.", env.cname),
                        );
                    }
                    push(
                        env,
                        "INFO",
                        format!("Successfully launched environment: {}", env.name),
                    );
                    if outcome == Outcome::Unhealthy {
                        env.health = "Red".into();
                        push(env, "WARN", MSG_LAUNCH_UNHEALTHY.into());
                    } else {
                        env.health = "Green".into();
                    }
                }
                Pending::Update => {
                    env.status = "Ready".into();
                    let revert = env.revert.take();
                    match outcome {
                        Outcome::Fail(message) => {
                            env.failed_draft = Some(env.options.clone());
                            if let Some((options, version)) = revert {
                                env.options = options;
                                env.version_label = version;
                            }
                            env.health = "Red".into();
                            push(env, "ERROR", message);
                            push(env, "ERROR", MSG_REVERTED.into());
                            push(env, "ERROR", MSG_FAILED_CONFIG.into());
                        }
                        Outcome::CompleteWithErrors => {
                            if let Some((_, version)) = revert {
                                env.version_label = version;
                            }
                            env.health = "Red".into();
                            push(env, "ERROR", MSG_INSTANCE_DEPLOY_FAILED.into());
                            push(
                                env,
                                "ERROR",
                                format!(
                                    "[Instance: i-0{}] Command failed on instance. Return code: 1 Output: Engine execution has encountered an error..",
                                    env.id.trim_start_matches("e-")
                                ),
                            );
                            push(env, "INFO", MSG_COMMAND_SUMMARY_FAILED.into());
                            push(env, "ERROR", MSG_UPDATE_WITH_ERRORS.into());
                        }
                        Outcome::Success | Outcome::Unhealthy => {
                            env.health = "Green".into();
                            let (options_changed, version_changed) = match &revert {
                                Some((options, version)) => {
                                    (*options != env.options, *version != env.version_label)
                                }
                                None => (false, false),
                            };
                            if version_changed {
                                push(env, "INFO", MSG_NEW_VERSION_DEPLOYED.into());
                            }
                            if options_changed {
                                push(env, "INFO", MSG_CONFIG_DEPLOYED.into());
                            }
                            push(env, "INFO", MSG_UPDATE_COMPLETED.into());
                        }
                    }
                }
                Pending::Busy => {
                    env.status = "Ready".into();
                    env.revert = None;
                    push(env, "INFO", MSG_UPDATE_COMPLETED.into());
                }
                Pending::Abort { version_changed } => {
                    env.status = "Ready".into();
                    env.health = "Green".into();
                    if version_changed {
                        push(env, "ERROR", MSG_ABORTED_DEPLOYMENT.into());
                    }
                    push(
                        env,
                        "WARN",
                        format!(
                            "Rollback of environment {} completed successfully.",
                            env.name
                        ),
                    );
                }
                Pending::Swap {
                    source,
                    destination,
                } => {
                    env.status = "Ready".into();
                    push(
                        env,
                        "INFO",
                        format!("'{}' now points to '{}'.", env.cname, env.endpoint(&region)),
                    );
                    push(
                        env,
                        "INFO",
                        format!(
                            "Completed swapping CNAMEs for environments '{source}' and '{destination}'."
                        ),
                    );
                }
                Pending::Terminate => {
                    env.status = "Terminated".into();
                    env.health = "Grey".into();
                    push(
                        env,
                        "INFO",
                        "terminateEnvironment completed successfully.".to_string(),
                    );
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
        self.find_env(by_id, by_name)
    }

    /// The non-terminated environment with this id (preferred) or name.
    fn find_env(&self, by_id: Option<&str>, by_name: Option<&str>) -> Result<usize, ApiError> {
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
                    created: now_millis(),
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
                            created: now_millis(),
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
                    seq: self.next_id(),
                    app,
                    label,
                    description: p.get("Description").map(str::to_string),
                    bucket: p.get("SourceBundle.S3Bucket").map(str::to_string),
                    key: p.get("SourceBundle.S3Key").map(str::to_string),
                    created: now_millis(),
                };
                self.versions.push(v.clone());
                x.el("ApplicationVersion", |x| self.write_version(x, &v));
            }
            "DescribeApplicationVersions" => {
                let app = p.get("ApplicationName");
                let labels = p.list("VersionLabels");
                let (max, before) = page_params(p, usize::MAX)?;
                let mut vs: Vec<Version> = self
                    .versions
                    .iter()
                    .filter(|v| {
                        app.is_none_or(|a| a == v.app)
                            && (labels.is_empty() || labels.contains(&v.label))
                    })
                    .cloned()
                    .collect();
                vs.sort_by_key(|v| std::cmp::Reverse(v.seq));
                let (vs, next) = paginate(vs, |v| v.seq, max, before);
                x.list("ApplicationVersions", vs, |x, v| self.write_version(x, &v))
                    .opt("NextToken", next.as_deref());
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
                let platform = platform::resolve(
                    &self.config.region,
                    p.get("PlatformArn"),
                    p.get("SolutionStackName"),
                )?;
                let (platform_arn, stack) =
                    (platform.arn(&self.config.region), platform.solution_stack());
                let tier_name = p.get("Tier.Name").unwrap_or("WebServer").to_string();
                let explicit_prefix = p.get("CNAMEPrefix").map(str::to_ascii_lowercase);
                let prefix = explicit_prefix
                    .clone()
                    .unwrap_or_else(|| name.to_ascii_lowercase());
                let mut cname = format!("{prefix}.{}.elasticbeanstalk.com", self.config.region);
                let taken = |cname: &str| {
                    self.envs
                        .iter()
                        .any(|e| e.status != "Terminated" && e.cname == cname)
                };
                if tier_name == "WebServer" && taken(&cname) {
                    if explicit_prefix.is_some() {
                        return Err(ApiError::InvalidParameterValue(format!(
                            "DNS name ({cname}) is not available."
                        )));
                    }
                    // Without CNAMEPrefix, AWS picks a free name under an `eba-` label.
                    cname = format!(
                        "{prefix}.eba-fake{:04}.{}.elasticbeanstalk.com",
                        self.counter + 1,
                        self.config.region
                    );
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
                let now = now_millis();
                let hung = std::mem::take(&mut self.faults.hang_next_update);
                let outcome = if std::mem::take(&mut self.faults.unhealthy_next_launch) {
                    Outcome::Unhealthy
                } else {
                    Outcome::Success
                };
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
                    hung,
                    revert: None,
                    failed_draft: None,
                    outcome,
                };
                self.event(&env, "INFO", "createEnvironment is starting.".into(), rid);
                self.event(
                    &env,
                    "INFO",
                    format!(
                        "Using elasticbeanstalk-{}-{ACCOUNT} as Amazon S3 storage bucket for environment data.",
                        self.config.region
                    ),
                    rid,
                );
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
                let region = self.config.region.clone();
                let platform = match (p.get("PlatformArn"), p.get("SolutionStackName")) {
                    (None, None) => None,
                    (arn, stack) => Some(platform::resolve(&region, arn, stack)?),
                };
                let outcome = if let Some(message) = self.faults.fail_next_update.take() {
                    Outcome::Fail(message)
                } else if std::mem::take(&mut self.faults.complete_with_errors_next_update) {
                    Outcome::CompleteWithErrors
                } else {
                    Outcome::Success
                };
                let hung = std::mem::take(&mut self.faults.hang_next_update);
                let transition = self.config.transition;
                let env = &mut self.envs[i];
                env.revert = Some((env.options.clone(), env.version_label.clone()));
                env.failed_draft = None;
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
                if let Some(platform) = &platform {
                    env.platform_arn = platform.arn(&region);
                    env.solution_stack = platform.solution_stack();
                }
                env.status = "Updating".into();
                env.outcome = outcome;
                env.hung = hung;
                env.pending = Some((Pending::Update, Instant::now() + transition));
                env.updated = now_millis();
                let env = env.clone();
                let version_changed = p.get("VersionLabel").is_some();
                let options_changed = !settings.is_empty() || !removals.is_empty();
                self.event(&env, "INFO", MSG_UPDATE_STARTING.into(), rid);
                if options_changed {
                    self.event(
                        &env,
                        "INFO",
                        format!(
                            "Updating environment {}'s configuration settings.",
                            env.name
                        ),
                        rid,
                    );
                }
                if version_changed {
                    self.event(&env, "INFO", MSG_DEPLOYING_VERSION.into(), rid);
                }
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
                // The deployed set first; beside it, the draft of an update in progress
                // ("pending") or of the last update that failed ("failed").
                let updating = matches!(env.pending, Some((Pending::Update, _)));
                let (deployed, draft) = match (&env.revert, &env.failed_draft) {
                    (Some((before, _)), _) if updating => {
                        (before.clone(), Some(("pending", env.options.clone())))
                    }
                    (_, Some(failed)) => (env.options.clone(), Some(("failed", failed.clone()))),
                    _ => (env.options.clone(), None),
                };
                let with_defaults = |options: BTreeMap<OptionKey, String>| {
                    let mut all = platform_defaults(env);
                    all.extend(options);
                    all
                };
                let mut sets = vec![("deployed", with_defaults(deployed))];
                if let Some((status, options)) = draft {
                    sets.push((status, with_defaults(options)));
                }
                let env = env.clone();
                x.list("ConfigurationSettings", sets, |x, (status, all)| {
                    x.text("SolutionStackName", &env.solution_stack)
                        .text("PlatformArn", &env.platform_arn)
                        .text("ApplicationName", &env.app)
                        .text("EnvironmentName", &env.name)
                        .text("DeploymentStatus", status)
                        .text("DateCreated", &ts(env.created))
                        .text("DateUpdated", &ts(env.updated))
                        .list("OptionSettings", &all, |x, ((ns, n), v)| {
                            x.text("Namespace", ns).text("OptionName", n);
                            if let Some(resource) = resource_name(ns, n) {
                                x.text("ResourceName", resource);
                            }
                            x.text("Value", v);
                        });
                });
            }
            "DescribeEnvironmentHealth" => {
                let i = self.live_env(p)?;
                let env = self.envs[i].clone();
                let (status, causes): (&str, Vec<&str>) = match env.health.as_str() {
                    "Green" => ("Ok", vec![]),
                    // GUESS: the cause EB gives when the load balancer's checks fail (the
                    // wording of its "transitioned to Severe" event).
                    "Red" => (
                        "Severe",
                        vec!["ELB health is failing or not available for all instances."],
                    ),
                    "Yellow" => ("Warning", vec![]),
                    _ => ("Unknown", vec![]),
                };
                let (ok, severe) = if status == "Ok" { (1, 0) } else { (0, 1) };
                x.text("EnvironmentName", &env.name)
                    .text("HealthStatus", status)
                    .text("Status", &env.status)
                    .text("Color", &env.health)
                    .list("Causes", causes, |x, cause| {
                        x.raw_member(cause);
                    })
                    .el("InstancesHealth", |x| {
                        x.text("NoData", "0")
                            .text("Unknown", "0")
                            .text("Pending", "0")
                            .text("Ok", &ok.to_string())
                            .text("Info", "0")
                            .text("Warning", "0")
                            .text("Degraded", "0")
                            .text("Severe", &severe.to_string());
                    })
                    .text("RefreshedAt", &ts(now_millis()));
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
                let version = p.get("VersionLabel");
                let request_id = p.get("RequestId");
                let start = time_param(p, "StartTime")?;
                let end = time_param(p, "EndTime")?;
                let min_sev = match p.get("Severity") {
                    None => 0,
                    Some(s) => severity_rank(s).ok_or_else(|| {
                        ApiError::InvalidParameterValue(format!(
                            "1 validation error detected: Value '{s}' at 'severity' failed to satisfy constraint: Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]"
                        ))
                    })?,
                };
                let (max, before) = page_params(p, 1000)?;
                let mut evs: Vec<Event> = self
                    .events
                    .iter()
                    .filter(|e| app.is_none_or(|a| a == e.app))
                    .filter(|e| env_name.is_none_or(|n| Some(n) == e.env.as_deref()))
                    .filter(|e| env_id.is_none_or(|i| Some(i) == e.env_id.as_deref()))
                    .filter(|e| version.is_none_or(|v| Some(v) == e.version.as_deref()))
                    .filter(|e| request_id.is_none_or(|r| r == e.request_id))
                    .filter(|e| start.is_none_or(|s| e.date >= s))
                    .filter(|e| end.is_none_or(|t| e.date < t))
                    .filter(|e| severity_rank(e.severity).unwrap_or(0) >= min_sev)
                    .cloned()
                    .collect();
                evs.sort_by_key(|e| std::cmp::Reverse(e.seq));
                let (evs, next) = paginate(evs, |e| e.seq, max, before);
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
                })
                .opt("NextToken", next.as_deref());
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
            "CreateStorageLocation" => {
                x.text(
                    "S3Bucket",
                    &format!("elasticbeanstalk-{}-{ACCOUNT}", self.config.region),
                );
            }
            "SwapEnvironmentCNAMEs" => {
                let side = |which: &str| -> Result<usize, ApiError> {
                    let id = p.get(&format!("{which}EnvironmentId"));
                    let name = p.get(&format!("{which}EnvironmentName"));
                    if id.is_none() && name.is_none() {
                        return Err(ApiError::MissingParameter(format!(
                            "{which}EnvironmentName or {which}EnvironmentId is required"
                        )));
                    }
                    self.find_env(id, name)
                };
                let (s, d) = (side("Source")?, side("Destination")?);
                let (src, dst) = (&self.envs[s], &self.envs[d]);
                if s == d {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "Cannot swap the CNAME of environment {} with itself.",
                        src.name
                    )));
                }
                if src.app != dst.app {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "Environments {} and {} must belong to the same application to swap CNAMEs.",
                        src.name, dst.name
                    )));
                }
                for e in [src, dst] {
                    if e.status != "Ready" {
                        return Err(ApiError::InvalidParameterValue(format!(
                            "Environment named {} is in an invalid state for this operation. Must be Ready.",
                            e.name
                        )));
                    }
                    if e.cname.is_empty() {
                        return Err(ApiError::InvalidParameterValue(format!(
                            "Environment named {} has no CNAME to swap (worker environment).",
                            e.name
                        )));
                    }
                }
                let (source, destination) = (src.name.clone(), dst.name.clone());
                let until = Instant::now() + self.config.transition;
                let src_cname = std::mem::take(&mut self.envs[s].cname);
                let dst_cname = std::mem::replace(&mut self.envs[d].cname, src_cname);
                self.envs[s].cname = dst_cname;
                for i in [s, d] {
                    let env = &mut self.envs[i];
                    env.status = "Updating".into();
                    env.updated = now_millis();
                    env.pending = Some((
                        Pending::Swap {
                            source: source.clone(),
                            destination: destination.clone(),
                        },
                        until,
                    ));
                    let env = env.clone();
                    self.event(
                        &env,
                        "INFO",
                        "swapEnvironmentCNAMEs is starting.".into(),
                        rid,
                    );
                    self.event(
                        &env,
                        "INFO",
                        format!("Swapping CNAMEs for environments '{source}' and '{destination}'."),
                        rid,
                    );
                }
            }
            "AbortEnvironmentUpdate" => {
                let i = self.live_env(p)?;
                let transition = self.config.transition;
                let env = &mut self.envs[i];
                if !matches!(env.pending, Some((Pending::Update | Pending::Busy, _))) {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "Environment named {} is in an invalid state for this operation. Must be Updating.",
                        env.name
                    )));
                }
                let mut version_changed = false;
                if let Some((options, version)) = env.revert.take() {
                    version_changed = version != env.version_label;
                    env.options = options;
                    env.version_label = version;
                }
                env.outcome = Outcome::Success;
                env.hung = false;
                env.updated = now_millis();
                env.pending = Some((
                    Pending::Abort { version_changed },
                    Instant::now() + transition,
                ));
                let env = env.clone();
                self.event(
                    &env,
                    "INFO",
                    "abortEnvironmentUpdate is starting.".into(),
                    rid,
                );
            }
            "DeleteApplicationVersion" => {
                let app = p.req("ApplicationName")?.to_string();
                let label = p.req("VersionLabel")?.to_string();
                if !self.apps.iter().any(|a| a.name == app) {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "No Application named '{app}' found."
                    )));
                }
                let Some(i) = self
                    .versions
                    .iter()
                    .position(|v| v.app == app && v.label == label)
                else {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "No Application Version named '{label}' found."
                    )));
                };
                let in_use = self.envs.iter().any(|e| {
                    e.app == app
                        && e.status != "Terminated"
                        && (e.version_label.as_deref() == Some(label.as_str())
                            || e.pending.is_some()
                                && e.revert.as_ref().and_then(|(_, v)| v.as_deref())
                                    == Some(label.as_str()))
                });
                if in_use {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "Unable to delete application version '{label}' because it is being used by an environment."
                    )));
                }
                // DeleteSourceBundle is accepted; eb-fake stores no bundles.
                self.versions.remove(i);
            }
            "ListPlatformVersions" => {
                let filters = p.structs("Filters");
                let (max, before) = page_params(p, usize::MAX)?;
                let found = platform::list(&filters)?;
                let total = found.len() as u64;
                let numbered: Vec<(u64, platform::Platform)> = found
                    .into_iter()
                    .enumerate()
                    .map(|(i, pl)| (total - i as u64, pl))
                    .collect();
                let (page, next) = paginate(numbered, |(n, _)| *n, max, before);
                let region = self.config.region.clone();
                x.list("PlatformSummaryList", page, |x, (_, pl)| {
                    platform::write_summary(x, &pl, &region);
                })
                .opt("NextToken", next.as_deref());
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
            x.text("EndpointURL", &e.endpoint(&self.config.region))
                .text("CNAME", &e.cname);
        }
        x.text("DateCreated", &ts(e.created))
            .text("DateUpdated", &ts(e.updated))
            .text("Status", &e.status)
            .text(
                "AbortableOperationInProgress",
                if matches!(e.pending, Some((Pending::Update | Pending::Busy, _))) {
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
