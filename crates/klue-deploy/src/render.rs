//! Plan rendering: a table per environment (optionally coloured), Markdown, JSON.

use crate::plan::{ChangeAction, EnvironmentAction, Plan};
use std::fmt::Write as _;

fn symbol(action: ChangeAction) -> &'static str {
    match action {
        ChangeAction::Create => "+",
        ChangeAction::Update => "~",
        ChangeAction::Remove => "-",
        ChangeAction::Replace => "!",
    }
}

fn colour(action: ChangeAction) -> &'static str {
    match action {
        ChangeAction::Create => "\x1b[32m",
        ChangeAction::Update => "\x1b[33m",
        ChangeAction::Remove => "\x1b[31m",
        ChangeAction::Replace => "\x1b[1;35m",
    }
}

fn action_text(action: EnvironmentAction) -> &'static str {
    match action {
        EnvironmentAction::NoChange => "no changes",
        EnvironmentAction::Create => "will be created",
        EnvironmentAction::Update => "will be updated in place",
        EnvironmentAction::Replace => "must be REPLACED (a create-only key differs)",
    }
}

fn cell(v: &Option<String>) -> String {
    match v {
        None => "-".into(),
        // Quoted when whitespace would otherwise be invisible.
        Some(s) if s.is_empty() || s.trim() != s => format!("{s:?}"),
        Some(s) => s.clone(),
    }
}

/// A human table per environment: key, current, desired. `colour` adds ANSI colours.
pub fn table(plan: &Plan, colour_on: bool) -> String {
    let mut out = String::new();
    let (reset, bold) = if colour_on {
        ("\x1b[0m", "\x1b[1m")
    } else {
        ("", "")
    };
    for c in &plan.changes {
        let _ = writeln!(out, "{} {} {}", symbol(c.action), c.name, cell(&c.desired));
    }
    for env in &plan.environments {
        let _ = writeln!(
            out,
            "{bold}{} ({}): {}{reset}",
            env.name,
            env.eb_name,
            action_text(env.action)
        );
        if env.changes.is_empty() {
            continue;
        }
        let rows: Vec<[String; 3]> = env
            .changes
            .iter()
            .map(|c| {
                [
                    format!("{} {}", symbol(c.action), c.name),
                    cell(&c.current),
                    cell(&c.desired),
                ]
            })
            .collect();
        let header = [
            "  key".to_string(),
            "current".to_string(),
            "desired".to_string(),
        ];
        let width = |i: usize| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        };
        let (w0, w1) = (width(0), width(1));
        let _ = writeln!(
            out,
            "  {:<w0$}  {:<w1$}  {}",
            header[0].trim(),
            header[1],
            header[2]
        );
        for (row, change) in rows.iter().zip(&env.changes) {
            let (on, off) = if colour_on {
                (colour(change.action), reset)
            } else {
                ("", "")
            };
            let _ = writeln!(
                out,
                "  {on}{:<w0$}{off}  {:<w1$}  {}",
                row[0], row[1], row[2]
            );
        }
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('`', "'")
}

/// A Markdown report (for `$GITHUB_STEP_SUMMARY`).
pub fn markdown(plan: &Plan) -> String {
    let mut out = format!("## Drift: {}\n\n", plan.application);
    for c in &plan.changes {
        let _ = writeln!(out, "- {} `{}`\n", symbol(c.action), md_escape(&c.name));
    }
    for env in &plan.environments {
        let _ = writeln!(
            out,
            "### {} (`{}`): {}\n",
            env.name,
            env.eb_name,
            action_text(env.action)
        );
        if env.changes.is_empty() {
            continue;
        }
        out.push_str("| | key | current | desired |\n|---|---|---|---|\n");
        for c in &env.changes {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} |",
                symbol(c.action),
                md_escape(&c.name),
                md_escape(&cell(&c.current)),
                md_escape(&cell(&c.desired))
            );
        }
        out.push('\n');
    }
    out
}

/// The plan as pretty JSON.
pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
