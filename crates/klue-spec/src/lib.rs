//! klue-spec: loads API contracts (a klue service's `apis/` folder) into one internal model
//! (IR), the input of both the `klue` runtime and `klue-codegen`.
//!
//! It reads Swagger 2.0, OpenAPI 3.0.x and 3.1.x YAML or JSON, resolves local and
//! relative-file `$ref`s, upconverts 2.0 and normalizes 3.0 schemas to JSON Schema 2020-12, and
//! produces one [`Api`] per spec file: from a folder ([`load_dir`]) or from texts already in
//! memory ([`load_sources`], e.g. specs embedded in a binary). Problems are collected and
//! reported all at once, each with file, JSON pointer, line and what is wrong ([`SpecErrors`]).
//!
//! Decisions worth knowing:
//! - `$ref`s to `components/schemas/X` / `definitions/X` (in any file), to `#/X` in a fragment
//!   file or to a whole fragment file name a schema (see the `ctx` module for collisions:
//!   `<stem>_<Name>`); a `$ref` to any other place (`.../Item/properties/tags`) is inlined.
//! - Schemas an API references but does not define (`#/components/schemas/Error`) come from
//!   the built-in spec. A built-in schema whose name the API uses is renamed `klue_<Name>`,
//!   except `Error`: the API's own error model wins.
//! - Unsupported, and reported: XML-only bodies (XML beside JSON is dropped), `callbacks`,
//!   3.1 `webhooks`, `servers` on paths or operations, `in: querystring`, parameter `content`
//!   other than `application/json`, 2.0 `tsv` and cookie parameters, remote (`http://`) refs.
//!   Ignored as documentation only: response `headers` and `links`, `examples`, `encoding`.
//! - The served `document` lists full paths (base path included) and no `servers`.
//!
//! It is not a validator of request or response values and not an HTTP server: the `klue`
//! runtime and `klue-codegen` read the IR it produces. It stays light (no async, no network)
//! because build scripts compile it too.

mod api;
mod builtin;
mod ctx;
mod document;
mod ir;
mod loader;
mod normalize;
mod operations;
mod swagger2;
mod yaml;

pub use ir::*;

use std::fmt;
use std::path::{Path, PathBuf};

/// One spec file's text with the path it is known by (on disk, or embedded in a binary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// One problem found in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: PathBuf,
    /// JSON pointer to the offending node (empty for the whole file).
    pub pointer: String,
    /// 1-based line, when the parser gives it.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": #{}: {}", self.pointer, self.message)
    }
}

/// Every problem found while loading, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the API specs:", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// klue's built-in API (`/ping`, `/version`, `/auth/version`, the `Error` model).
pub const BUILTIN_SPEC: &str = include_str!("builtin.yaml");

/// Reads every `*.yaml`, `*.yml` and `*.json` file of `dir` (not recursively, sorted by name)
/// and loads them ([`load_sources`]).
pub fn load_dir(dir: &Path) -> Result<Vec<Api>, SpecErrors> {
    let (sources, mut errors) = loader::read_dir(dir);
    match load_sources(&sources) {
        Ok(apis) if errors.is_empty() => Ok(apis),
        Ok(_) => Err(SpecErrors(errors)),
        Err(SpecErrors(more)) => {
            errors.extend(more);
            loader::sort_errors(&mut errors);
            Err(SpecErrors(errors))
        }
    }
}

/// Loads spec files given as text. Files with an `openapi` or `swagger` key each become an
/// [`Api`] (sorted by name); other files are fragments, usable only as `$ref` targets.
/// Built-in operations and schemas are merged into every API.
pub fn load_sources(sources: &[Source]) -> Result<Vec<Api>, SpecErrors> {
    loader::load(sources)
}
