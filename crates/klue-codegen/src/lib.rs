//! klue-codegen: generates Rust from OpenAPI / Swagger specs at build time, for services and
//! clients built on the `klue` runtime.
//!
//! From the same IR the runtime serves (`klue-spec`), it emits, per API (spec file):
//! - `models`: one type per named schema and per inline schema that needs a name (serde
//!   structs and enums; see the mapping below);
//! - `responses`: one enum per operation with a variant per documented status;
//! - `server` (served APIs only): a trait with one async method per operation, and
//!   `handlers(impl)` binding an implementation onto the runtime's dynamic `klue::Handlers`;
//! - `client`: a typed client on `klue::client` (reqwest) for every operation, klue's
//!   built-ins included;
//!
//! and `specs()`, the spec files embedded with `include_str!` so a binary needs no spec folder.
//!
//! Use it from a build script:
//! ```no_run
//! // build.rs
//! fn main() -> std::process::ExitCode {
//!     klue_codegen::Config::new("../apis").serve("helloworld").build_script()
//! }
//! ```
//! and include the output in a module: `include!(concat!(env!("OUT_DIR"), "/klue_api.rs"));`.
//!
//! The generated code needs only `klue` as a dependency: it names serde, serde_json, chrono
//! and uuid through klue's re-exports (`::klue::serde`, ...), so their versions are always the
//! ones the runtime was built with. It also checks at compile time that `klue` is of the same
//! release line as the klue-codegen that generated it (same major and minor version while 0.x):
//! a mismatch is a compile error asking to regenerate with a matching klue-codegen.
//!
//! It is not a runtime (that is `klue`: generated code is a typed layer over its dynamic
//! handlers and client) and does not validate: the runtime validates values against the spec
//! before they reach generated types. It does not write into the source tree: output goes to
//! `OUT_DIR` (or to a string, [`Config::render`]).
//!
//! Schema mapping: nullability -> `Option`; `$ref` -> the named type (boxed where it closes a
//! cycle); `allOf` -> one merged struct; `oneOf`/`anyOf` -> an enum dispatched on the
//! discriminator, or `#[serde(untagged)]` when members have distinct JSON shapes, else
//! `serde_json::Value`; string enums -> enums; objects -> structs (an `additionalProperties`
//! schema -> a flattened `BTreeMap`), maps -> `BTreeMap<String, T>`; `date-time` ->
//! `chrono::DateTime<Utc>`, `date` -> `chrono::NaiveDate`, `uuid` -> `uuid::Uuid`,
//! `binary`/`byte` -> `klue::client::Binary`; integers -> `i64` (`i32` for `int32`, and so on
//! for the other sized formats), numbers -> `f64` (`f32` for `float`). Anything else is
//! `serde_json::Value`.

mod models;
mod names;
mod ops;

use klue_spec::{Api, SpecErrors};
use proc_macro2::TokenStream;
use quote::quote;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// This crate's version, which generated code checks against klue's at compile time.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What can go wrong while generating.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// The specs do not load.
    #[error("{0}")]
    Spec(#[from] SpecErrors),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A schema codegen cannot translate.
    #[error("API {api}, {location}: {message}")]
    Schema {
        api: String,
        location: String,
        message: String,
    },
    /// `serve(name)` or `only(name)` names an API that is not in the folder.
    #[error("no API `{name}` in the specs (APIs found: {found})")]
    UnknownApi { name: String, found: String },
    /// The generated code does not parse (a bug in klue-codegen).
    #[error("generated code for API {api} does not parse: {message}")]
    Syntax { api: String, message: String },
}

/// What to generate: the spec folder, which APIs are served (every API gets a client).
#[derive(Debug, Clone)]
pub struct Config {
    apis_dir: PathBuf,
    serve: BTreeSet<String>,
    serve_all: bool,
    embed_specs: bool,
    out_name: String,
    only: Option<String>,
}

impl Config {
    /// Generates from every spec in `apis_dir` (relative paths are relative to the current
    /// directory; in a build script, the crate's manifest directory).
    pub fn new(apis_dir: impl Into<PathBuf>) -> Config {
        Config {
            apis_dir: apis_dir.into(),
            serve: BTreeSet::new(),
            serve_all: false,
            embed_specs: true,
            out_name: "klue_api.rs".to_string(),
            only: None,
        }
    }

    /// Generates the server trait of this API (its file stem). APIs not served get a client only.
    pub fn serve(mut self, api: impl Into<String>) -> Config {
        self.serve.insert(api.into());
        self
    }

    /// Generates server traits for every API.
    pub fn serve_all(mut self) -> Config {
        self.serve_all = true;
        self
    }

    /// Whether to emit `specs()` with the spec files embedded (default: yes).
    pub fn embed_specs(mut self, embed: bool) -> Config {
        self.embed_specs = embed;
        self
    }

    /// Generates only this API (e.g. to print it: `cargo xtask codegen helloworld`).
    pub fn only(mut self, api: impl Into<String>) -> Config {
        self.only = Some(api.into());
        self
    }

    /// The file name written under `OUT_DIR` by [`Config::build_script`] (default
    /// `klue_api.rs`).
    pub fn out_name(mut self, name: impl Into<String>) -> Config {
        self.out_name = name.into();
        self
    }

    /// The spec files of the folder, sorted.
    fn spec_files(&self) -> Result<Vec<PathBuf>, CodegenError> {
        let io = |source| CodegenError::Io {
            path: self.apis_dir.clone(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.apis_dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if path.is_file() && matches!(ext, "yaml" | "yml" | "json") {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    /// Loads the specs and returns the generated code, formatted.
    pub fn render(&self) -> Result<String, CodegenError> {
        let mut apis = klue_spec::load_dir(&self.apis_dir)?;
        let files = if self.embed_specs {
            self.spec_files()?
        } else {
            Vec::new()
        };
        let served: BTreeSet<String> = if self.serve_all {
            apis.iter().map(|a| a.name.clone()).collect()
        } else {
            self.serve.clone()
        };
        for name in &served {
            if !apis.iter().any(|a| &a.name == name) {
                let found = apis
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(CodegenError::UnknownApi {
                    name: name.clone(),
                    found,
                });
            }
        }
        if let Some(only) = &self.only {
            let found = apis
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            apis.retain(|a| &a.name == only);
            if apis.is_empty() {
                return Err(CodegenError::UnknownApi {
                    name: only.clone(),
                    found,
                });
            }
        }
        let embedded = if self.embed_specs {
            Some(embed_specs(&self.apis_dir, &files))
        } else {
            None
        };
        generate(&apis, &served, embedded)
    }

    /// For build scripts: writes `$OUT_DIR/<out_name>`, prints `cargo:rerun-if-changed` for
    /// the folder and each file, and reports errors on stderr (exit code 1).
    pub fn build_script(self) -> std::process::ExitCode {
        match self.write_to_out_dir() {
            Ok(_) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("klue-codegen: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    }

    /// [`Config::build_script`] returning the error instead of printing it.
    pub fn write_to_out_dir(self) -> Result<PathBuf, CodegenError> {
        println!("cargo:rerun-if-changed={}", self.apis_dir.display());
        if let Ok(files) = self.spec_files() {
            for f in files {
                println!("cargo:rerun-if-changed={}", f.display());
            }
        }
        let out_dir = std::env::var_os("OUT_DIR")
            .map(PathBuf::from)
            .ok_or_else(|| CodegenError::Io {
                path: PathBuf::from("$OUT_DIR"),
                source: std::io::Error::other("OUT_DIR is not set (not in a build script?)"),
            })?;
        let code = self.render()?;
        let path = out_dir.join(&self.out_name);
        // Only rewrite on change, so dependents are not rebuilt for nothing.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(code.as_str()) {
            std::fs::write(&path, code).map_err(|source| CodegenError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(path)
    }
}

/// `specs()`: the spec files with their text embedded at compile time.
fn embed_specs(dir: &Path, files: &[PathBuf]) -> TokenStream {
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "apis".to_string());
    let entries = files.iter().map(|f| {
        let file_name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let known_as = format!("{dir_name}/{file_name}");
        let include = if f.is_absolute() {
            let p = f.to_string_lossy().replace('\\', "/");
            quote!(include_str!(#p))
        } else {
            let p = format!("/{}", f.to_string_lossy().replace('\\', "/"));
            quote!(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), #p)))
        };
        quote! {
            ::klue::spec::Source { path: ::std::path::PathBuf::from(#known_as), text: #include.to_string() },
        }
    });
    quote! {
        /// The spec files this code was generated from, embedded in the binary (a container
        /// needs no `apis/` folder): what `klue::server::run_service` serves.
        pub fn specs() -> Vec<::klue::spec::Source> {
            Vec::from([#(#entries)*])
        }
    }
}

/// Generates the code for loaded APIs: `served` get a server trait; every API gets models,
/// response enums and a client. `specs` is the `specs()` function to emit, if any.
pub fn generate(
    apis: &[Api],
    served: &BTreeSet<String>,
    specs: Option<TokenStream>,
) -> Result<String, CodegenError> {
    let mut modules = Vec::new();
    let mut scope = names::Scope::with_reserved(&["specs"]);
    for api in apis {
        let module = names::ident(&scope.claim(&names::snake_name(&api.name)));
        let tokens = generate_api(api, served.contains(&api.name))?;
        let file = api
            .source
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut doc_text = format!("{} {} (`{file}`)", api.title, api.version);
        if let Some(d) = &api.description {
            doc_text.push_str("\n\n");
            doc_text.push_str(d);
        }
        let doc = models::doc_attrs(Some(&doc_text));
        modules.push(quote! {
            #doc
            #[allow(
                clippy::large_enum_variant,
                clippy::result_large_err,
                clippy::enum_variant_names,
                clippy::too_many_arguments,
                clippy::doc_lazy_continuation,
                clippy::doc_overindented_list_items,
                clippy::empty_docs,
                rustdoc::bare_urls,
                rustdoc::broken_intra_doc_links,
                rustdoc::invalid_html_tags,
                rustdoc::invalid_rust_codeblocks
            )]
            pub mod #module {
                #tokens
            }
        });
    }
    let specs = specs.unwrap_or_default();
    let file = quote! {
        const _: () = ::klue::__private::check_codegen_version(#VERSION);

        #specs
        #(#modules)*
    };
    let parsed = syn::parse2::<syn::File>(file).map_err(|e| CodegenError::Syntax {
        api: apis
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        message: e.to_string(),
    })?;
    Ok(format!(
        "// @generated by klue-codegen from the API specs. Do not edit: edit the specs.\n\n{}",
        space_items(&prettyplease::unparse(&parsed))
    ))
}

/// A blank line between consecutive items (prettyplease packs them), for readability.
fn space_items(code: &str) -> String {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = String::with_capacity(code.len() + code.len() / 20);
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        out.push('\n');
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let Some(next) = lines.get(i + 1) else {
            continue;
        };
        let next_trimmed = next.trim_start();
        let next_indent = next.len() - next_trimmed.len();
        let closes_item = trimmed == "}"
            || trimmed.ends_with(" {}")
            || trimmed.ends_with("+ Send;")
            || (trimmed.ends_with(';')
                && ["pub type ", "type ", "use ", "pub use ", "const "]
                    .iter()
                    .any(|p| trimmed.starts_with(p)));
        if closes_item && next_indent == indent && is_item_start(next_trimmed) {
            out.push('\n');
        }
    }
    out
}

fn is_item_start(line: &str) -> bool {
    [
        "///", "#[", "pub ", "impl", "fn ", "mod ", "struct ", "enum ", "type ", "use ",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// The modules of one API: `models`, `responses`, `server` (when served) and `client`.
fn generate_api(api: &Api, serve: bool) -> Result<TokenStream, CodegenError> {
    let mut models = models::Models::new(api);
    models.define_all()?;
    let ops = ops::generate(api, &mut models, serve)?;
    let model_items = models.into_items();
    let responses = ops.responses;
    let client = ops.client;
    let server = ops.server.map(|s| {
        quote! {
            /// The server side: the trait a service implements and its binding to the runtime.
            pub mod server {
                #s
            }
        }
    });
    Ok(quote! {
        /// Types for the API's schemas (named and inline).
        pub mod models {
            #(#model_items)*
        }

        /// One enum per operation with a variant per documented response.
        pub mod responses {
            #responses
        }

        #server

        /// The typed client.
        pub mod client {
            #client
        }
    })
}
