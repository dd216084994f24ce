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
//! the caller (`cargo xtask deploy`, in `klue-cli`) passes an image reference and an acceptance
//! callback.
//!
//! Features: `aws` (default) compiles [`observe`] and [`apply`], the parts that call AWS. A
//! project's `infra` crate depends on this crate without it: the model is all it needs.

#[cfg(feature = "aws")]
pub mod apply;
#[cfg(feature = "aws")]
pub mod aws_error;
pub mod model;
pub mod normalize;
#[cfg(feature = "aws")]
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
///
/// A line that holds a value (`NAME=value`) is kept as `NAME=… (line N ...)`: the value is
/// dropped here so that no message can print it, and the entry fails validation by name and
/// line number.
pub fn parse_secret_names(text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(number, line)| match line.split_once('=') {
            Some((name, _value)) => format!(
                "{}=… (env.secrets line {number}: names only; the value is not shown)",
                name.trim()
            ),
            None => line.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_secret_names;

    #[test]
    fn names_comments_and_blank_lines() {
        assert_eq!(
            parse_secret_names("# a comment\n\nKLUE_JWT_SECRET\n  API_KEY  # trailing\n"),
            ["KLUE_JWT_SECRET", "API_KEY"]
        );
    }

    #[test]
    fn a_value_is_dropped_and_its_line_named() {
        let names = parse_secret_names("A\nKLUE_JWT_SECRET=hunter2-very-secret\n");
        assert_eq!(names[0], "A");
        assert!(
            names[1].starts_with("KLUE_JWT_SECRET=… (env.secrets line 2"),
            "{names:?}"
        );
        assert!(!names.concat().contains("hunter2"));
    }
}
