//! klue's deploy engine for AWS Elastic Beanstalk.
//!
//! - [`model`]: the typed config (`infra::deployment()` returns a [`Deployment`]), its
//!   validation and JSON Schema;
//! - [`options`]: the mapping to EB option settings (`desired_options`);
//! - [`observe`]: reads the live state with the AWS SDK into [`Observed`];
//! - [`plan()`]: a pure function `plan(desired, observed) -> Plan`, with the normalization that
//!   keeps a reconciled environment at "no changes";
//! - [`render`]: the plan as a table, Markdown or JSON;
//! - [`apply`]: deploy (create, update in place, or blue/green), rollback, destroy, status,
//!   waiting on status and events.
//!
//! It is not a general EB client: it knows the options klue's model maps to, and ignores the
//! rest (platform defaults). It does not build or push images, nor run the acceptance suite:
//! the caller (`cargo xtask deploy`) passes an image reference and an acceptance callback.

pub mod apply;
pub mod model;
pub mod normalize;
pub mod observe;
pub mod observed;
pub mod options;
pub mod plan;
pub mod render;

pub use model::{Deployment, Environment, ValidationError};
pub use observed::Observed;
pub use plan::{Desired, Plan, plan};

/// Reads secret variable NAMES from an `env.secrets` file body: one per line, `#` comments,
/// blank lines ignored.
pub fn parse_secret_names(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
