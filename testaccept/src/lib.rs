//! testaccept: the acceptance suite of the helloworld service, run against any base URL over
//! HTTP with the client generated from `apis/` (see `build.rs`).
//!
//! [`suite`] lists klue's built-in checks (`klue_accept::builtin_checks`) and then the checks of
//! the helloworld API ([`helloworld`]). The harness (targets, runner, report, assertion helpers)
//! is `klue-accept`; `cargo xtask accept` runs the suite against a local process, any URL or an
//! image, and `cargo test -p testaccept --test acceptance` against `KLUE_BASE_URL`.
//!
//! The suite leaves nothing behind that breaks a second run: it asserts on the items it
//! created (by id), never on totals.

pub mod api;
pub mod helloworld;

use klue_accept::{Check, check};

/// Every check, in the order they run: klue's built-ins first, then the helloworld API.
pub fn suite() -> Vec<Check> {
    let mut checks = klue_accept::builtin_checks();
    checks.extend([
        check!("hello", |ctx| helloworld::hello(&ctx)),
        check!("item_lifecycle", |ctx| helloworld::item_lifecycle(&ctx)),
        check!("create_needs_token", |ctx| helloworld::create_needs_token(
            &ctx
        )),
        check!(
            "unknown_item_is_404",
            |ctx| helloworld::unknown_item_is_404(&ctx)
        ),
        check!("invalid_input_is_400", |ctx| {
            helloworld::invalid_input_is_400(&ctx)
        }),
    ]);
    checks
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_names_are_unique() {
        let mut names: Vec<_> = super::suite().iter().map(|c| c.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
