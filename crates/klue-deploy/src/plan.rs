//! `plan(desired, observed)`: a pure function from the config and the live state to the list of
//! changes, per resource and per option.

use crate::model::{Deployment, Environment};
use crate::normalize::{normalize, same};
use crate::observed::{Observed, ObservedEnvironment};
use crate::options::{
    self, CREATE_ONLY, ENV_SECRETS, OWNED_NAMESPACES, OptionKey, desired_options, desired_tags,
    secret_id,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// Options that are switched off, rather than ignored, when the config does not declare them:
/// removing the HTTPS listener from the config must disable it.
const OFF_WHEN_UNDECLARED: &[(&str, &str, &str)] =
    &[(options::LISTENER_443, "ListenerEnabled", "false")];

/// The desired state: the config plus the fingerprints of the secret values the deployer has
/// (values themselves are never kept).
#[derive(Debug, Clone)]
pub struct Desired<'a> {
    /// The config.
    pub deployment: &'a Deployment,
    /// Fingerprints of the deployer's secret values, by secret name (`<application>/<env>/<NAME>`:
    /// each secret's fingerprint is salted on its own).
    pub secret_fingerprints: BTreeMap<String, String>,
}

impl<'a> Desired<'a> {
    /// The config alone (no secret values known: values are not compared).
    pub fn new(deployment: &'a Deployment) -> Self {
        Desired {
            deployment,
            secret_fingerprints: BTreeMap::new(),
        }
    }

    /// Reads each secret's value through `lookup` (e.g. the process environment) and keeps only
    /// its fingerprint, made with the salt of the fingerprint `observed` holds for that secret
    /// (so that equal values compare equal), or a fresh one.
    pub fn with_secret_values(
        mut self,
        observed: &Observed,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let app = &self.deployment.application;
        for env in &self.deployment.environments {
            for name in &env.secrets {
                if let Some(value) = lookup(name) {
                    let id = secret_id(app, &env.name, name);
                    let stored = observed
                        .secrets
                        .get(&id)
                        .and_then(|s| s.fingerprint.as_deref());
                    let print = match stored {
                        Some(stored) if fingerprint_matches(stored, &value) => stored.to_string(),
                        _ => fingerprint(&value),
                    };
                    self.secret_fingerprints.insert(id, print);
                }
            }
        }
        self
    }
}

/// PBKDF2 rounds of a fingerprint: slow enough that the tag is no cheap guess-check for a weak
/// secret, fast enough for the few secrets of a deploy.
const FINGERPRINT_ROUNDS: u32 = 100_000;
const FINGERPRINT_PREFIX: &str = "pbkdf2-sha256";

/// A salted, slow fingerprint of a secret value, kept in the secret's `klue:fingerprint` tag to
/// tell whether the deployer's value changed without reading the secret:
/// `pbkdf2-sha256:<rounds>:<salt>:<digest>`, a fresh random salt each time.
pub fn fingerprint(value: &str) -> String {
    let salt: [u8; 12] = rand::random();
    fingerprint_with(value, FINGERPRINT_ROUNDS, &salt)
}

fn fingerprint_with(value: &str, rounds: u32, salt: &[u8]) -> String {
    let mut digest = [0u8; 12];
    pbkdf2::pbkdf2_hmac::<Sha256>(value.as_bytes(), salt, rounds, &mut digest);
    format!(
        "{FINGERPRINT_PREFIX}:{rounds}:{}:{}",
        hex(salt),
        hex(&digest)
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether `stored` (a `klue:fingerprint` tag) is the fingerprint of `value`. Also reads the
/// unsalted `sha256:<12 hex>` tags of earlier versions, which a deploy replaces.
pub fn fingerprint_matches(stored: &str, value: &str) -> bool {
    if let Some(rest) = stored.strip_prefix("sha256:") {
        return legacy_fingerprint(value) == rest;
    }
    let mut parts = stored.split(':');
    let (Some(FINGERPRINT_PREFIX), Some(rounds), Some(salt), Some(_), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    match (rounds.parse::<u32>(), unhex(salt)) {
        // A cap on rounds, so that a planted tag cannot stall a deploy.
        (Ok(rounds), Some(salt)) if (1..=10_000_000).contains(&rounds) => {
            fingerprint_with(value, rounds, &salt) == stored
        }
        _ => false,
    }
}

/// Whether `stored` is an unsalted fingerprint of an earlier version.
pub fn is_legacy_fingerprint(stored: &str) -> bool {
    stored.starts_with("sha256:")
}

fn legacy_fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    hex(&digest[..6])
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    /// Set something that does not exist yet.
    Create,
    /// Change a value in place.
    Update,
    /// Remove something the config does not declare.
    Remove,
    /// A create-only key differs: the environment must be recreated.
    Replace,
}

/// What a change is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeKey {
    /// The EB application.
    Application,
    /// The EB environment itself.
    Environment,
    /// The platform (branch and version).
    Platform,
    /// The tier (create-only).
    Tier,
    /// The CNAME prefix (create-only).
    CnamePrefix,
    /// An option setting.
    Option {
        /// e.g. `aws:autoscaling:asg`.
        namespace: String,
        /// e.g. `MinSize`.
        option: String,
    },
    /// A secret's value in Secrets Manager (compared by fingerprint, never shown).
    SecretValue {
        /// The variable name.
        name: String,
    },
    /// A tag on the environment.
    Tag {
        /// The tag key.
        key: String,
    },
    /// The Auto Scaling group's own size setting, changed behind EB's back.
    AutoScalingGroup {
        /// `MinSize` or `MaxSize`.
        setting: String,
    },
}

impl fmt::Display for ChangeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeKey::Application => write!(f, "application"),
            ChangeKey::Environment => write!(f, "environment"),
            ChangeKey::Platform => write!(f, "platform"),
            ChangeKey::Tier => write!(f, "tier"),
            ChangeKey::CnamePrefix => write!(f, "cname_prefix"),
            ChangeKey::Option { namespace, option } => write!(f, "{namespace} {option}"),
            ChangeKey::SecretValue { name } => write!(f, "secret {name}"),
            ChangeKey::Tag { key } => write!(f, "tag {key}"),
            ChangeKey::AutoScalingGroup { setting } => write!(f, "auto scaling group {setting}"),
        }
    }
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Create, update, remove or replace.
    pub action: ChangeAction,
    /// What changes.
    #[serde(flatten)]
    pub key: ChangeKey,
    /// `key` as one string (`aws:autoscaling:asg MinSize`).
    pub name: String,
    /// The value in AWS (none when absent). Secret values are never shown, nor their
    /// fingerprints: a secret change says only what changes.
    pub current: Option<String>,
    /// The value the config wants (none for a removal).
    pub desired: Option<String>,
}

impl Change {
    fn new(
        action: ChangeAction,
        key: ChangeKey,
        current: Option<String>,
        desired: Option<String>,
    ) -> Self {
        Change {
            action,
            name: key.to_string(),
            key,
            current,
            desired,
        }
    }
}

/// What happens to an environment as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentAction {
    /// Nothing to do.
    NoChange,
    /// The environment does not exist: create it.
    Create,
    /// Update it in place (one UpdateEnvironment).
    Update,
    /// A create-only key differs: a new environment is needed.
    Replace,
}

/// The plan for one environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentPlan {
    /// Logical name (`staging`).
    pub name: String,
    /// EB environment name.
    pub eb_name: String,
    /// The overall action.
    pub action: EnvironmentAction,
    /// The changes, sorted by key.
    pub changes: Vec<Change>,
}

impl EnvironmentPlan {
    /// The option settings an UpdateEnvironment must send (created or updated options).
    pub fn option_settings(&self) -> Vec<(OptionKey, String)> {
        self.changes
            .iter()
            .filter(|c| matches!(c.action, ChangeAction::Create | ChangeAction::Update))
            .filter_map(|c| match (&c.key, &c.desired) {
                (ChangeKey::Option { namespace, option }, Some(v)) => {
                    Some(((namespace.clone(), option.clone()), v.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// The options an UpdateEnvironment must remove (OptionsToRemove).
    pub fn options_to_remove(&self) -> Vec<OptionKey> {
        self.changes
            .iter()
            .filter(|c| c.action == ChangeAction::Remove)
            .filter_map(|c| match &c.key {
                ChangeKey::Option { namespace, option } => {
                    Some((namespace.clone(), option.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

/// The plan for a deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The EB application name.
    pub application: String,
    /// Application-level changes (creating the application).
    pub changes: Vec<Change>,
    /// One entry per configured environment, in config order.
    pub environments: Vec<EnvironmentPlan>,
}

impl Plan {
    /// Whether anything would change.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || self.environments.iter().any(|e| !e.changes.is_empty())
    }

    /// Keeps only the named environment (and drops application-level changes when it has none).
    pub fn only(mut self, name: &str) -> Self {
        self.environments.retain(|e| e.name == name);
        self
    }
}

/// Computes the plan. Pure: no I/O, deterministic order.
pub fn plan(desired: &Desired<'_>, observed: &Observed) -> Plan {
    let dep = desired.deployment;
    let mut changes = Vec::new();
    if observed.application.is_none() {
        changes.push(Change::new(
            ChangeAction::Create,
            ChangeKey::Application,
            None,
            Some(dep.application.clone()),
        ));
    }
    let environments = dep
        .environments
        .iter()
        .map(|env| plan_environment(desired, env, observed))
        .collect();
    Plan {
        application: dep.application.clone(),
        changes,
        environments,
    }
}

/// The physical environment that serves `env`: of the environments named
/// [`Environment::physical_names`], the one holding the configured CNAME prefix, else the one
/// named `eb_name`. (During a blue/green deploy the other one is the candidate or the kept
/// previous environment.)
pub fn live_environment<'o>(
    env: &Environment,
    observed: &'o Observed,
) -> Option<&'o ObservedEnvironment> {
    let candidates: Vec<&ObservedEnvironment> = env
        .physical_names()
        .iter()
        .filter_map(|name| observed.environments.get(name))
        .collect();
    candidates
        .iter()
        .find(|e| {
            e.cname_prefix()
                .is_some_and(|p| p.eq_ignore_ascii_case(&env.cname_prefix))
        })
        .or_else(|| candidates.iter().find(|e| e.eb_name == env.eb_name))
        .copied()
}

/// The other physical environments of `env` (not the live one): a blue/green candidate, or
/// the previous environment kept for rollback.
pub fn standby_environments<'o>(
    env: &Environment,
    observed: &'o Observed,
) -> Vec<&'o ObservedEnvironment> {
    let live = live_environment(env, observed).map(|e| e.eb_name.as_str());
    env.physical_names()
        .iter()
        .filter_map(|name| observed.environments.get(name))
        .filter(|e| Some(e.eb_name.as_str()) != live)
        .collect()
}

fn secret_display(value: &str) -> String {
    format!("ref {}", crate::normalize::secret_name(value))
}

fn plan_environment(
    desired: &Desired<'_>,
    env: &Environment,
    observed: &Observed,
) -> EnvironmentPlan {
    let app = &desired.deployment.application;
    let want = desired_options(app, env);
    let mut changes = Vec::new();
    let show = |ns: &str, v: &str| {
        if ns == ENV_SECRETS {
            secret_display(v)
        } else {
            v.to_string()
        }
    };

    // Secrets Manager: the secret must exist; its value is compared by fingerprint only, and
    // neither values nor fingerprints are shown.
    for name in &env.secrets {
        let id = secret_id(app, &env.name, name);
        let local = desired.secret_fingerprints.get(&id);
        let from_shell = format!("the value of ${name} in this shell");
        match observed.secrets.get(&id) {
            None => changes.push(Change::new(
                ChangeAction::Create,
                ChangeKey::SecretValue { name: name.clone() },
                None,
                Some(match local {
                    Some(_) => from_shell,
                    None => format!("${name} at deploy time"),
                }),
            )),
            Some(secret) if secret.scheduled_for_deletion.is_some() => changes.push(Change::new(
                ChangeAction::Update,
                ChangeKey::SecretValue { name: name.clone() },
                Some(format!(
                    "scheduled for deletion ({})",
                    secret.scheduled_for_deletion.as_deref().unwrap_or_default()
                )),
                Some(match local {
                    Some(local) if secret.fingerprint.as_deref() != Some(local.as_str()) => {
                        format!("restored, {from_shell}")
                    }
                    _ => "restored".into(),
                }),
            )),
            Some(secret) => {
                if let Some(local) = local
                    && secret.fingerprint.as_deref() != Some(local.as_str())
                {
                    changes.push(Change::new(
                        ChangeAction::Update,
                        ChangeKey::SecretValue { name: name.clone() },
                        Some(if secret.fingerprint.is_some() {
                            "another value".into()
                        } else {
                            "a value klue did not set".into()
                        }),
                        Some(from_shell),
                    ));
                }
            }
        }
    }

    let Some(live) = live_environment(env, observed) else {
        changes.push(Change::new(
            ChangeAction::Create,
            ChangeKey::Environment,
            None,
            Some(env.eb_name.clone()),
        ));
        changes.push(Change::new(
            ChangeAction::Create,
            ChangeKey::Tier,
            None,
            Some(env.tier.eb_name().into()),
        ));
        changes.push(Change::new(
            ChangeAction::Create,
            ChangeKey::CnamePrefix,
            None,
            Some(env.cname_prefix.clone()),
        ));
        changes.push(Change::new(
            ChangeAction::Create,
            ChangeKey::Platform,
            None,
            Some(platform_display(env)),
        ));
        for ((ns, opt), v) in &want {
            changes.push(Change::new(
                ChangeAction::Create,
                ChangeKey::Option {
                    namespace: ns.clone(),
                    option: opt.clone(),
                },
                None,
                Some(show(ns, v)),
            ));
        }
        for (k, v) in desired_tags(app, env) {
            changes.push(Change::new(
                ChangeAction::Create,
                ChangeKey::Tag { key: k },
                None,
                Some(v),
            ));
        }
        changes.sort_by(|a, b| a.key.cmp(&b.key));
        return EnvironmentPlan {
            name: env.name.clone(),
            eb_name: env.eb_name.clone(),
            action: EnvironmentAction::Create,
            changes,
        };
    };

    // Create-only resource attributes.
    if live.tier.as_deref() != Some(env.tier.eb_name()) {
        changes.push(Change::new(
            ChangeAction::Replace,
            ChangeKey::Tier,
            live.tier.clone(),
            Some(env.tier.eb_name().into()),
        ));
    }
    let prefix = live.cname_prefix();
    if env.tier == crate::model::Tier::WebServer
        && !prefix.is_some_and(|p| p.eq_ignore_ascii_case(&env.cname_prefix))
    {
        changes.push(Change::new(
            ChangeAction::Replace,
            ChangeKey::CnamePrefix,
            prefix.map(str::to_string),
            Some(env.cname_prefix.clone()),
        ));
    }
    plan_platform(env, live, &mut changes);

    // Options declared by the config.
    for ((ns, opt), v) in &want {
        let current = live.options.get(&(ns.clone(), opt.clone()));
        if same(ns, opt, current.map(String::as_str), Some(v)) {
            continue;
        }
        let action = if CREATE_ONLY.contains(&(ns.as_str(), opt.as_str())) {
            ChangeAction::Replace
        } else if current.is_none() {
            ChangeAction::Create
        } else {
            ChangeAction::Update
        };
        changes.push(Change::new(
            action,
            ChangeKey::Option {
                namespace: ns.clone(),
                option: opt.clone(),
            },
            current.map(|c| show(ns, c)),
            Some(show(ns, v)),
        ));
    }
    // Options in AWS that the config does not declare: ignored (platform defaults), except in
    // owned namespaces (drift) and options that must be switched off.
    for ((ns, opt), v) in &live.options {
        let key = (ns.clone(), opt.clone());
        if want.contains_key(&key) {
            continue;
        }
        if OWNED_NAMESPACES.contains(&ns.as_str()) {
            changes.push(Change::new(
                ChangeAction::Remove,
                ChangeKey::Option {
                    namespace: ns.clone(),
                    option: opt.clone(),
                },
                Some(show(ns, v)),
                None,
            ));
        } else if let Some((_, _, off)) = OFF_WHEN_UNDECLARED
            .iter()
            .find(|(n, o, _)| *n == ns && *o == opt)
            && normalize(ns, opt, v) != *off
        {
            changes.push(Change::new(
                ChangeAction::Update,
                ChangeKey::Option {
                    namespace: ns.clone(),
                    option: opt.clone(),
                },
                Some(v.clone()),
                Some((*off).to_string()),
            ));
        }
    }

    // The Auto Scaling group itself, when it disagrees with an EB setting that is in order.
    if let Some(asg) = &live.asg {
        for (setting, actual, wanted) in [
            ("MinSize", asg.min, i64::from(env.autoscaling.min)),
            ("MaxSize", asg.max, i64::from(env.autoscaling.max)),
        ] {
            let option_changed = changes.iter().any(|c| {
                matches!(&c.key, ChangeKey::Option { namespace, option } if namespace == options::ASG && option == setting)
            });
            if !option_changed && actual != wanted {
                changes.push(Change::new(
                    ChangeAction::Update,
                    ChangeKey::AutoScalingGroup {
                        setting: setting.into(),
                    },
                    Some(actual.to_string()),
                    Some(wanted.to_string()),
                ));
            }
        }
    }

    // Tags (EB's own `elasticbeanstalk:*`/`aws:*` tags and its `Name` tag are not ours).
    if let Some(tags) = &live.tags {
        let want_tags = desired_tags(app, env);
        for (k, v) in &want_tags {
            match tags.get(k) {
                Some(cur) if cur == v => {}
                cur => changes.push(Change::new(
                    if cur.is_some() {
                        ChangeAction::Update
                    } else {
                        ChangeAction::Create
                    },
                    ChangeKey::Tag { key: k.clone() },
                    cur.cloned(),
                    Some(v.clone()),
                )),
            }
        }
        for (k, v) in tags {
            let system = k.starts_with("aws:") || k.starts_with("elasticbeanstalk:") || k == "Name";
            if !system && !want_tags.contains_key(k) {
                changes.push(Change::new(
                    ChangeAction::Remove,
                    ChangeKey::Tag { key: k.clone() },
                    Some(v.clone()),
                    None,
                ));
            }
        }
    }

    changes.sort_by(|a, b| a.key.cmp(&b.key));
    let action = if changes.iter().any(|c| c.action == ChangeAction::Replace) {
        EnvironmentAction::Replace
    } else if changes.is_empty() {
        EnvironmentAction::NoChange
    } else {
        EnvironmentAction::Update
    };
    EnvironmentPlan {
        name: env.name.clone(),
        eb_name: live.eb_name.clone(),
        action,
        changes,
    }
}

fn platform_display(env: &Environment) -> String {
    match &env.platform.version {
        Some(v) => format!("{} {v}", env.platform.branch.platform_name()),
        None => format!("{} (latest)", env.platform.branch.platform_name()),
    }
}

fn plan_platform(env: &Environment, live: &ObservedEnvironment, changes: &mut Vec<Change>) {
    let want_name = env.platform.branch.platform_name();
    match live.platform() {
        None => changes.push(Change::new(
            ChangeAction::Update,
            ChangeKey::Platform,
            None,
            Some(platform_display(env)),
        )),
        Some((name, version)) if name != want_name => changes.push(Change::new(
            ChangeAction::Replace,
            ChangeKey::Platform,
            Some(format!("{name} {version}")),
            Some(platform_display(env)),
        )),
        Some((name, version)) => {
            if let Some(pinned) = &env.platform.version
                && *pinned != version
            {
                changes.push(Change::new(
                    ChangeAction::Update,
                    ChangeKey::Platform,
                    Some(format!("{name} {version}")),
                    Some(platform_display(env)),
                ));
            }
        }
    }
}
