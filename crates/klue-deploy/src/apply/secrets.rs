//! Secret values into Secrets Manager: created, restored (when scheduled for deletion) or
//! updated from the deployer's environment, skipped when the `klue:fingerprint` tag (a salted,
//! slow hash) says the value is unchanged. Values are never logged, returned or compared in
//! clear.

use super::{ApplyError, Progress, aws};
use crate::model::Environment;
use crate::observed::Observed;
use crate::options::secret_id;
use crate::plan::{fingerprint, fingerprint_matches, is_legacy_fingerprint};
use aws_sdk_secretsmanager::types::Tag;
use std::collections::BTreeMap;

/// Checks, before any change, that every secret has a value or already exists.
pub fn check(
    application: &str,
    env: &Environment,
    observed: &Observed,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ApplyError> {
    let missing: Vec<&str> = env
        .secrets
        .iter()
        .filter(|name| {
            lookup(name).is_none()
                && !observed
                    .secrets
                    .contains_key(&secret_id(application, &env.name, name))
        })
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::Refused(format!(
            "no value for secret {} (named in env.secrets): it is not set in this shell and \
             Secrets Manager has no {application}/{}/<NAME> secret yet. Export it \
             (e.g. `export {}=...`) and deploy again. Nothing was changed.",
            missing.join(", "),
            env.name,
            missing[0]
        )))
    }
}

/// Creates or updates the environment's secrets; returns their ARNs by variable name.
pub async fn upsert(
    client: &aws_sdk_secretsmanager::Client,
    application: &str,
    env: &Environment,
    observed: &Observed,
    lookup: &dyn Fn(&str) -> Option<String>,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, String>, ApplyError> {
    let mut arns = BTreeMap::new();
    for name in &env.secrets {
        let id = secret_id(application, &env.name, name);
        let existing = observed.secrets.get(&id);
        let value = lookup(name);
        if let Some(secret) = existing
            && secret.scheduled_for_deletion.is_some()
        {
            client
                .restore_secret()
                .secret_id(&secret.arn)
                .send()
                .await
                .map_err(aws("secretsmanager:RestoreSecret"))?;
            progress.line(&format!(
                "secret {id}: restored (it was scheduled for deletion)"
            ));
        }
        let arn = match (existing, value) {
            (Some(secret), None) => secret.arn.clone(),
            (Some(secret), Some(value)) => {
                let stored = secret.fingerprint.as_deref();
                let same = stored.is_some_and(|s| fingerprint_matches(s, &value));
                if same && stored.is_some_and(is_legacy_fingerprint) {
                    // The value is unchanged; only its unsalted tag of an earlier version is
                    // replaced.
                    client
                        .tag_resource()
                        .secret_id(&secret.arn)
                        .tags(tag("klue:fingerprint", &fingerprint(&value)))
                        .send()
                        .await
                        .map_err(aws("secretsmanager:TagResource"))?;
                    progress.line(&format!("secret {id}: fingerprint tag renewed"));
                } else if !same {
                    let fp = fingerprint(&value);
                    client
                        .put_secret_value()
                        .secret_id(&secret.arn)
                        .secret_string(value)
                        .send()
                        .await
                        .map_err(aws("secretsmanager:PutSecretValue"))?;
                    client
                        .tag_resource()
                        .secret_id(&secret.arn)
                        .tags(tag("klue:fingerprint", &fp))
                        .send()
                        .await
                        .map_err(aws("secretsmanager:TagResource"))?;
                    progress.line(&format!("secret {id}: value updated"));
                }
                secret.arn.clone()
            }
            (None, Some(value)) => {
                let fp = fingerprint(&value);
                let out = client
                    .create_secret()
                    .name(&id)
                    .description(format!("{name} for {application} {}", env.name))
                    .secret_string(value)
                    .tags(tag("klue:app", application))
                    .tags(tag("klue:env", &env.name))
                    .tags(tag("klue:fingerprint", &fp))
                    .send()
                    .await
                    .map_err(aws("secretsmanager:CreateSecret"))?;
                progress.line(&format!("secret {id}: created"));
                out.arn().unwrap_or_default().to_string()
            }
            (None, None) => {
                // `check` runs first; this is a second line of defence.
                return Err(ApplyError::Refused(format!("no value for secret {name}")));
            }
        };
        arns.insert(name.clone(), arn);
    }
    Ok(arns)
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}
