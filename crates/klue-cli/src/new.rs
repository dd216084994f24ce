//! `cargo klue new <dir> --name <service>`: writes a complete service repository.
//!
//! The repository: a workspace (`service`, `testaccept`, `infra`, `xtask`), the contract
//! `apis/<name>.yaml` (one public and one authenticated operation), handlers that compile and
//! pass the acceptance suite, `staging` and `live` environments, `env.secrets`, cargo's
//! development defaults, CI and the scheduled drift check, and a README whose commands work.
//! The files come from the templates in this crate's `templates/` folder.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Options of `cargo klue new`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The directory to create (it must not exist, or be empty).
    pub dir: PathBuf,
    /// The service's name: lowercase letters, digits and single dashes, starting with a letter
    /// (it names the API file, the image, the EB application and its environments). Default:
    /// the directory's name.
    #[arg(long)]
    pub name: Option<String>,
    /// Depend on the klue crates of this local checkout (by path), and start from its
    /// Cargo.lock so both resolve the same dependency versions. Default: the checkout this
    /// `cargo klue` was built from, when it was built from one and it is still there;
    /// otherwise crates.io.
    #[arg(long, value_name = "CHECKOUT", conflicts_with = "crates_io")]
    pub klue_path: Option<PathBuf>,
    /// Depend on the klue crates of crates.io (this version of klue-cli), even when this
    /// `cargo klue` was built from a checkout.
    #[arg(long)]
    pub crates_io: bool,
    /// Do not make the new directory a git repository (by default it becomes one, as with
    /// `cargo new`, unless it is inside one already).
    #[arg(long)]
    pub no_git: bool,
}

/// The longest service name: EB's CNAME prefix `<name>-staging` must stay within a DNS label.
const MAX_NAME_LEN: usize = 40;

/// Rust keywords (2024 edition, strict and reserved): the API's module is the name in
/// snake_case.
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// A valid service name, and the forms of it the templates use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceName {
    /// As given: `order-book`.
    pub kebab: String,
    /// The API module: `order_book`.
    pub snake: String,
    /// The type prefix: `OrderBook` (`OrderBookApi`, `OrderBookClient`).
    pub pascal: String,
}

impl ServiceName {
    /// Checks `name` and derives its forms; the error says what a name may be.
    pub fn parse(name: &str) -> Result<ServiceName> {
        const RULE: &str = "lowercase ASCII letters, digits and single dashes, starting with a \
                            letter and not ending with a dash";
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        if !valid_chars || !starts_with_letter || name.ends_with('-') || name.contains("--") {
            bail!("invalid service name {name:?}: use {RULE} (e.g. `orders`, `order-book`)");
        }
        if name.len() > MAX_NAME_LEN {
            bail!(
                "invalid service name {name:?}: at most {MAX_NAME_LEN} characters (it prefixes \
                 the environments' DNS names)"
            );
        }
        let snake = name.replace('-', "_");
        if RUST_KEYWORDS.contains(&snake.as_str()) {
            bail!("invalid service name {name:?}: `{snake}` is a Rust keyword");
        }
        let pascal = capitalized_words(name).concat();
        Ok(ServiceName {
            kebab: name.to_string(),
            snake,
            pascal,
        })
    }
}

/// The dash-separated words of a (valid, ASCII) name, each with its first letter in upper case:
/// `order-book` -> `["Order", "Book"]`.
fn capitalized_words(name: &str) -> Vec<String> {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Where the generated repository takes the klue crates from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KlueSource {
    /// crates.io, at this version of klue-cli.
    Registry(String),
    /// A local checkout of the klue repository.
    Checkout(PathBuf),
}

impl KlueSource {
    /// The `[workspace.dependencies]` lines of the klue crates.
    fn dependencies(&self) -> String {
        const CRATES: [&str; 5] = [
            "klue",
            "klue-codegen",
            "klue-accept",
            "klue-deploy",
            "klue-cli",
        ];
        CRATES
            .iter()
            .map(|name| {
                // The model only by default: the AWS SDK comes with klue-cli's `aws` feature.
                let features = if *name == "klue-deploy" {
                    ", default-features = false"
                } else {
                    ""
                };
                match self {
                    KlueSource::Registry(version) => {
                        format!("{name} = {{ version = \"{version}\"{features} }}")
                    }
                    KlueSource::Checkout(root) => format!(
                        "{name} = {{ path = {}{features} }}",
                        toml_string(&root.join("crates").join(name).to_string_lossy())
                    ),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The files of a new repository: (path relative to its root, template).
const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/workspace.Cargo.toml.tmpl"),
    ),
    (
        "apis/{{name}}.yaml",
        include_str!("../templates/api.yaml.tmpl"),
    ),
    (
        "service/Cargo.toml",
        include_str!("../templates/service/Cargo.toml.tmpl"),
    ),
    (
        "service/build.rs",
        include_str!("../templates/service/build.rs.tmpl"),
    ),
    (
        "service/src/main.rs",
        include_str!("../templates/service/main.rs.tmpl"),
    ),
    (
        "service/src/api.rs",
        include_str!("../templates/service/api.rs.tmpl"),
    ),
    (
        "service/src/handlers.rs",
        include_str!("../templates/service/handlers.rs.tmpl"),
    ),
    (
        "infra/Cargo.toml",
        include_str!("../templates/infra/Cargo.toml.tmpl"),
    ),
    (
        "infra/src/lib.rs",
        include_str!("../templates/infra/lib.rs.tmpl"),
    ),
    (
        "testaccept/Cargo.toml",
        include_str!("../templates/testaccept/Cargo.toml.tmpl"),
    ),
    (
        "testaccept/build.rs",
        include_str!("../templates/testaccept/build.rs.tmpl"),
    ),
    (
        "testaccept/src/lib.rs",
        include_str!("../templates/testaccept/lib.rs.tmpl"),
    ),
    (
        "testaccept/src/api.rs",
        include_str!("../templates/testaccept/api.rs.tmpl"),
    ),
    (
        "testaccept/tests/acceptance.rs",
        include_str!("../templates/testaccept/acceptance.rs.tmpl"),
    ),
    (
        "xtask/Cargo.toml",
        include_str!("../templates/xtask/Cargo.toml.tmpl"),
    ),
    (
        "xtask/src/main.rs",
        include_str!("../templates/xtask/main.rs.tmpl"),
    ),
    ("env.secrets", include_str!("../templates/env.secrets.tmpl")),
    (
        ".cargo/config.toml",
        include_str!("../templates/cargo-config.toml.tmpl"),
    ),
    (".gitignore", include_str!("../templates/gitignore.tmpl")),
    (
        ".github/workflows/ci.yml",
        include_str!("../templates/github/ci.yml.tmpl"),
    ),
    (
        ".github/workflows/drift.yml",
        include_str!("../templates/github/drift.yml.tmpl"),
    ),
    ("README.md", include_str!("../templates/README.md.tmpl")),
];

/// The placeholders of the templates and their values.
fn placeholders(name: &ServiceName, source: &KlueSource) -> Vec<(&'static str, String)> {
    let title = capitalized_words(&name.kebab).join(" ");
    vec![
        ("{{name}}", name.kebab.clone()),
        ("{{snake}}", name.snake.clone()),
        ("{{pascal}}", name.pascal.clone()),
        ("{{title}}", title),
        ("{{klue_dependencies}}", source.dependencies()),
        (
            "{{dev_secret}}",
            format!("{}-dev-secret-do-not-deploy-0123456789", name.kebab),
        ),
    ]
}

fn fill(template: &str, values: &[(&str, String)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |text, (key, value)| {
            text.replace(key, value)
        })
}

/// The files of a new repository for `name`, with their contents.
pub fn render(name: &ServiceName, source: &KlueSource) -> Vec<(PathBuf, String)> {
    let values = placeholders(name, source);
    FILES
        .iter()
        .map(|(path, template)| (PathBuf::from(fill(path, &values)), fill(template, &values)))
        .collect()
}

/// Runs `cargo klue new`.
pub fn run(args: &Args) -> Result<()> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("name the service with --name")?,
    };
    let name = ServiceName::parse(&name)?;
    let source = match &args.klue_path {
        Some(path) => KlueSource::Checkout(klue_checkout(path)?),
        None if args.crates_io => registry(),
        None => default_source(),
    };
    create(&args.dir, &name, &source)?;
    if !args.no_git {
        git_init(&args.dir);
    }
    let from = match &source {
        KlueSource::Checkout(root) => format!(
            "the klue crates of the checkout {} (--crates-io for the published ones)",
            root.display()
        ),
        KlueSource::Registry(version) => format!("the klue crates {version} of crates.io"),
    };
    let dir = args.dir.display();
    println!(
        "created the {} service in {dir}, on {from}\n\n  cd {dir}\n  cargo run -p service -- --port 8080\n  cargo xtask accept --local",
        name.kebab
    );
    Ok(())
}

fn registry() -> KlueSource {
    KlueSource::Registry(env!("CARGO_PKG_VERSION").to_string())
}

/// The klue checkout this binary was built from (`cargo install --path crates/klue-cli`),
/// when it still exists; else crates.io. A build from crates.io's sources has no checkout
/// around it.
fn default_source() -> KlueSource {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR"));
    built_from
        .parent()
        .and_then(Path::parent)
        .and_then(|root| klue_checkout(root).ok())
        .map(KlueSource::Checkout)
        .unwrap_or_else(registry)
}

/// `git init` in `dir`, unless it is inside a work tree already or git is missing (said, not
/// fatal: the repository is complete without it).
fn git_init(dir: &Path) {
    let inside = std::process::Command::new("git")
        .current_dir(dir)
        .args(["rev-parse", "--is-inside-work-tree"])
        .output();
    match inside {
        Ok(out) if out.status.success() => {}
        Ok(_) => {
            let init = std::process::Command::new("git")
                .current_dir(dir)
                .args(["init", "--quiet"])
                .status();
            if !init.is_ok_and(|status| status.success()) {
                eprintln!(
                    "note: git init failed in {}; the files are written",
                    dir.display()
                );
            }
        }
        Err(_) => eprintln!(
            "note: git is not installed: {} is not a git repository",
            dir.display()
        ),
    }
}

/// Checks that `path` is a klue checkout (its crates are where the dependencies point) and
/// returns it absolute.
fn klue_checkout(path: &Path) -> Result<PathBuf> {
    let root = std::fs::canonicalize(path)
        .with_context(|| format!("--klue-path {}: no such directory", path.display()))?;
    let manifest = root.join("crates").join("klue").join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "--klue-path {}: not a klue checkout (no crates/klue/Cargo.toml)",
            path.display()
        );
    }
    Ok(root)
}

/// Writes the repository for `name` into `dir` (created if missing; refused if not empty).
pub fn create(dir: &Path, name: &ServiceName, source: &KlueSource) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: cargo klue new writes only into a new or empty directory",
                    dir.display()
                );
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => bail!("cannot read {}: {error}", dir.display()),
    }
    for (path, contents) in render(name, source) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    // A checkout's lock file pins the versions its own builds use: starting from it, the new
    // repository compiles the same dependency versions (and can share their builds).
    if let KlueSource::Checkout(root) = source {
        let lock = root.join("Cargo.lock");
        if lock.is_file() {
            std::fs::copy(&lock, dir.join("Cargo.lock"))
                .with_context(|| format!("copying {}", lock.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_converted() -> Result<()> {
        let name = ServiceName::parse("order-book2")?;
        assert_eq!(name.snake, "order_book2");
        assert_eq!(name.pascal, "OrderBook2");
        for bad in [
            "", "Orders", "2fa", "-x", "x-", "a--b", "a_b", "a b", "type", "sélect",
        ] {
            let error = ServiceName::parse(bad).err().map(|e| e.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains("invalid service name")),
                "{bad:?}: {error:?}"
            );
        }
        assert!(ServiceName::parse(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
        Ok(())
    }

    #[test]
    fn every_placeholder_is_filled() -> Result<()> {
        let name = ServiceName::parse("order-book")?;
        let files = render(&name, &KlueSource::Registry("0.1.0".into()));
        assert_eq!(files.len(), FILES.len());
        for (path, text) in &files {
            for (key, _) in placeholders(&name, &KlueSource::Registry("0.1.0".into())) {
                assert!(!text.contains(key), "{} keeps {key}", path.display());
            }
        }
        assert!(
            files
                .iter()
                .any(|(p, _)| p == Path::new("apis/order-book.yaml"))
        );
        Ok(())
    }

    #[test]
    fn built_from_a_checkout_the_default_is_that_checkout() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let expected = std::fs::canonicalize(root).ok().map(KlueSource::Checkout);
        assert_eq!(Some(default_source()), expected);
    }

    #[test]
    fn a_checkout_path_is_a_quoted_toml_string() {
        let deps = KlueSource::Checkout(PathBuf::from("/tmp/with \"quote\"")).dependencies();
        assert!(
            deps.contains(r#"klue = { path = "/tmp/with \"quote\"/crates/klue" }"#),
            "{deps}"
        );
    }

    #[test]
    fn a_non_empty_directory_is_refused_and_kept() -> Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("notes.txt"), "mine")?;
        let name = ServiceName::parse("orders")?;
        let error = create(dir.path(), &name, &KlueSource::Registry("0.1.0".into()));
        assert!(error.is_err_and(|e| e.to_string().contains("is not empty")));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes.txt"))?,
            "mine"
        );
        assert!(!dir.path().join("Cargo.toml").exists());
        Ok(())
    }
}
