//! Reading files, parsing every source, sorting out APIs from fragments, and collecting errors.

use crate::yaml::{self, Parsed};
use crate::{Api, BUILTIN_SPEC, Source, SpecError, SpecErrors, SpecVersion};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

/// The path the built-in spec is known by in locations and errors.
pub(crate) const BUILTIN_PATH: &str = "<klue>/builtin.yaml";

/// One parsed file.
#[derive(Debug)]
pub(crate) struct Doc {
    /// As given to the loader (used in errors and locations).
    pub path: PathBuf,
    /// Lexically normalized, used to match relative `$ref`s.
    pub key: PathBuf,
    /// File stem: the API name, or the prefix for colliding schema names.
    pub stem: String,
    pub value: Value,
    pub lines: HashMap<String, usize>,
    /// `Some` for API files (with an `openapi` or `swagger` key of a supported version).
    pub version: Option<SpecVersion>,
}

impl Doc {
    /// The line of `pointer`, or of its nearest ancestor the parser gave a line for.
    pub fn line(&self, pointer: &str) -> Option<usize> {
        let mut p = pointer;
        loop {
            if let Some(line) = self.lines.get(p) {
                return Some(*line);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }

    pub fn error(&self, pointer: &str, message: impl Into<String>) -> SpecError {
        SpecError {
            file: self.path.clone(),
            pointer: pointer.to_string(),
            line: self.line(pointer),
            message: message.into(),
        }
    }
}

/// Lexical normalization (`a/./b/../c` -> `a/c`), so `./common.yaml` and `common.yaml` match.
pub(crate) fn normalize_path(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    out.iter().collect()
}

pub(crate) fn read_dir(dir: &Path) -> (Vec<Source>, Vec<SpecError>) {
    let mut errors = Vec::new();
    let whole = |message: String| SpecError {
        file: dir.to_path_buf(),
        pointer: String::new(),
        line: None,
        message,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            return (
                Vec::new(),
                vec![whole(format!("cannot read the directory: {e}"))],
            );
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                let spec_ext = matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                );
                if spec_ext && path.is_file() {
                    paths.push(path);
                }
            }
            Err(e) => errors.push(whole(format!("cannot read the directory: {e}"))),
        }
    }
    paths.sort();
    let mut sources = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(Source { path, text }),
            Err(e) => errors.push(SpecError {
                file: path,
                pointer: String::new(),
                line: None,
                message: format!("cannot read the file: {e}"),
            }),
        }
    }
    (sources, errors)
}

/// Sorts by file then line (errors without a line first), and drops duplicates (a fragment
/// shared by two APIs reports its problems once).
pub(crate) fn sort_errors(errors: &mut Vec<SpecError>) {
    errors.sort_by(|a, b| {
        (&a.file, a.line, &a.pointer, &a.message).cmp(&(&b.file, b.line, &b.pointer, &b.message))
    });
    errors.dedup();
}

fn parse_doc(path: &Path, text: &str, errors: &mut Vec<SpecError>) -> Option<Doc> {
    let (parsed, problems) = yaml::parse(text);
    errors.extend(problems.into_iter().map(|p| SpecError {
        file: path.to_path_buf(),
        pointer: p.pointer,
        line: Some(p.line),
        message: p.message,
    }));
    let Parsed { value, lines } = parsed?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut doc = Doc {
        path: path.to_path_buf(),
        key: normalize_path(path),
        stem,
        value,
        lines,
        version: None,
    };
    doc.version = detect_version(&doc, errors);
    Some(doc)
}

/// The spec version of an API file; `None` for fragments and unsupported versions (reported).
fn detect_version(doc: &Doc, errors: &mut Vec<SpecError>) -> Option<SpecVersion> {
    let root = doc.value.as_object()?;
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(v) = root.get("openapi") {
        let version = text(v);
        let parts: Vec<&str> = version.split('.').collect();
        let patch_ok = parts.len() == 3
            && parts[2]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        return match (parts.first(), parts.get(1)) {
            (Some(&"3"), Some(&"0")) if patch_ok && v.is_string() => Some(SpecVersion::OpenApi30),
            (Some(&"3"), Some(&"1")) if patch_ok && v.is_string() => Some(SpecVersion::OpenApi31),
            _ => {
                errors.push(doc.error(
                    "/openapi",
                    format!(
                        "unsupported OpenAPI version {v}: klue reads \"3.0.x\" and \"3.1.x\" (as strings) and swagger \"2.0\""
                    ),
                ));
                None
            }
        };
    }
    if let Some(v) = root.get("swagger") {
        return if text(v) == "2.0" || v.as_f64() == Some(2.0) {
            Some(SpecVersion::Swagger2)
        } else {
            errors.push(doc.error(
                "/swagger",
                format!("unsupported Swagger version {v}: klue reads swagger \"2.0\", OpenAPI 3.0.x and 3.1.x"),
            ));
            None
        };
    }
    None
}

pub(crate) fn load(sources: &[Source]) -> Result<Vec<Api>, SpecErrors> {
    let mut errors = Vec::new();
    let mut docs: Vec<Doc> = Vec::new();
    let mut failed_apis = false;
    for source in sources {
        match parse_doc(&source.path, &source.text, &mut errors) {
            Some(doc) => {
                let is_api_root = doc
                    .value
                    .as_object()
                    .is_some_and(|m| m.contains_key("openapi") || m.contains_key("swagger"));
                if is_api_root && doc.version.is_none() {
                    failed_apis = true;
                }
                docs.push(doc);
            }
            None => failed_apis = true,
        }
    }
    let builtin = match parse_doc(Path::new(BUILTIN_PATH), BUILTIN_SPEC, &mut errors) {
        Some(doc) => {
            docs.push(doc);
            docs.len() - 1
        }
        None => return Err(finish(errors)),
    };

    let mut names: BTreeMap<&str, &Doc> = BTreeMap::new();
    for doc in docs.iter().filter(|d| d.version.is_some()) {
        if let Some(first) = names.insert(&doc.stem, doc) {
            errors.push(doc.error(
                "",
                format!(
                    "API name `{}` is already used by {}: API file stems must be unique",
                    doc.stem,
                    first.path.display()
                ),
            ));
        }
    }

    let mut apis = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        if doc.version.is_some()
            && index != builtin
            && let Some(api) = crate::api::build(&docs, index, builtin, &mut errors)
        {
            apis.push(api);
        }
    }
    if !errors.is_empty() || failed_apis {
        return Err(finish(errors));
    }
    apis.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(apis)
}

fn finish(mut errors: Vec<SpecError>) -> SpecErrors {
    sort_errors(&mut errors);
    SpecErrors(errors)
}
