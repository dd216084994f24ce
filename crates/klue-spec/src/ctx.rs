//! The per-API loading context: `$ref` resolution across files, schema naming, and the schema
//! walk that rewrites references to `#/$defs/<Name>` and normalizes to JSON Schema 2020-12.
//!
//! Naming rules:
//! - a `$ref` to `#/components/schemas/X` or `#/definitions/X` (in any file), to `#/X` in a
//!   fragment file, or to a whole fragment file (name = its stem) names a schema `X`;
//! - the API's own schemas keep their names; a schema pulled from another file keeps its name
//!   unless a different schema already has it, then it becomes `<stem>_<X>` (then `_2`, ...);
//! - a `$ref` to any other place (e.g. `#/components/schemas/Item/properties/tags`) is inlined;
//!   inlined references may not be recursive (named ones may).

use crate::loader::Doc;
use crate::normalize;
use crate::yaml::child;
use crate::{SpecError, SpecVersion};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// A node in some file: document index and (escaped) JSON pointer.
pub(crate) type At = (usize, String);

pub(crate) struct Ctx<'a> {
    pub docs: &'a [Doc],
    /// The API's document.
    pub api: usize,
    pub builtin: usize,
    pub version: SpecVersion,
    pub errors: &'a mut Vec<SpecError>,
    /// Named schema -> where its definition is.
    names: BTreeMap<String, At>,
    by_origin: HashMap<At, String>,
    queue: Vec<String>,
    pub schemas: BTreeMap<String, Value>,
    /// Unnamed `$ref` targets being inlined right now (to catch recursion).
    inlining: Vec<At>,
}

/// Keywords whose value is a schema.
const SCHEMA_KEYWORDS: &[&str] = &[
    "items",
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
    "contentSchema",
];
/// Keywords whose value is a map of schemas.
const SCHEMA_MAP_KEYWORDS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// Keywords whose value is a list of schemas.
const SCHEMA_LIST_KEYWORDS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];

impl<'a> Ctx<'a> {
    pub fn new(
        docs: &'a [Doc],
        api: usize,
        builtin: usize,
        version: SpecVersion,
        errors: &'a mut Vec<SpecError>,
    ) -> Self {
        Ctx {
            docs,
            api,
            builtin,
            version,
            errors,
            names: BTreeMap::new(),
            by_origin: HashMap::new(),
            queue: Vec::new(),
            schemas: BTreeMap::new(),
            inlining: Vec::new(),
        }
    }

    pub fn doc(&self, index: usize) -> &'a Doc {
        &self.docs[index]
    }

    pub fn error(&mut self, doc: usize, pointer: &str, message: impl Into<String>) {
        let e = self.docs[doc].error(pointer, message);
        self.errors.push(e);
    }

    /// The spec version rules that apply to schemas in `doc`: its own for API files, the
    /// referencing API's for fragments.
    pub fn version_of(&self, doc: usize) -> SpecVersion {
        self.docs[doc].version.unwrap_or(self.version)
    }

    /// Registers the API's own schemas and then the built-in ones (the API's win: a built-in
    /// schema whose name the API uses is renamed `klue_<Name>`, except `Error`, for which the
    /// API's own error model is taken).
    pub fn register_named_schemas(&mut self) {
        let own = match self.version {
            SpecVersion::Swagger2 => "/definitions",
            _ => "/components/schemas",
        };
        if let Some(map) = self.docs[self.api]
            .value
            .pointer(own)
            .and_then(Value::as_object)
        {
            for name in map.keys() {
                self.register(name.clone(), (self.api, child(own, name)));
            }
        }
        let builtin = self.builtin;
        if let Some(map) = self.docs[builtin]
            .value
            .pointer("/components/schemas")
            .and_then(Value::as_object)
        {
            for name in map.keys() {
                let at = (builtin, child("/components/schemas", name));
                if !self.names.contains_key(name) {
                    self.register(name.clone(), at);
                } else if name == "Error" {
                    self.by_origin.insert(at, name.clone());
                } else {
                    let unique = self.unique_name(&format!("klue_{name}"));
                    self.register(unique, at);
                }
            }
        }
    }

    fn register(&mut self, name: String, at: At) {
        self.by_origin.insert(at.clone(), name.clone());
        self.names.insert(name.clone(), at);
        self.queue.push(name);
    }

    fn unique_name(&self, base: &str) -> String {
        if !self.names.contains_key(base) {
            return base.to_string();
        }
        (2..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| !self.names.contains_key(n))
            .unwrap_or_else(|| base.to_string())
    }

    /// The name for the schema defined at `at` (candidate name `wanted`), registering it.
    fn name_for(&mut self, at: At, wanted: &str) -> String {
        if let Some(name) = self.by_origin.get(&at) {
            return name.clone();
        }
        if let Some(existing) = self.names.get(wanted) {
            // The same definition reached through another path (`./common.yaml` vs
            // `common.yaml`) normalizes to the same origin; a byte-identical schema without
            // references elsewhere is the same schema too.
            let same = self.docs[existing.0].value.pointer(&existing.1)
                == self.docs[at.0].value.pointer(&at.1)
                && !self.docs[at.0]
                    .value
                    .pointer(&at.1)
                    .is_some_and(contains_ref);
            if same {
                let name = wanted.to_string();
                self.by_origin.insert(at, name.clone());
                return name;
            }
            let stem = self.docs[at.0].stem.clone();
            let name = self.unique_name(&format!("{stem}_{wanted}"));
            self.register(name.clone(), at);
            return name;
        }
        let name = wanted.to_string();
        self.register(name.clone(), at);
        name
    }

    /// Processes queued named schemas until none is left (processing may name more).
    pub fn drain_schemas(&mut self) {
        while let Some(name) = self.queue.pop() {
            if self.schemas.contains_key(&name) {
                continue;
            }
            let Some((doc, pointer)) = self.names.get(&name).cloned() else {
                continue;
            };
            let value = match self.docs[doc].value.pointer(&pointer) {
                Some(v) => v,
                None => continue,
            };
            // Placeholder first, so a schema refers to itself without re-queuing.
            self.schemas.insert(name.clone(), Value::Bool(true));
            let schema = self.schema(doc, &pointer, value);
            self.schemas.insert(name, schema);
        }
    }

    /// Parses a `$ref` found at `(doc, pointer)` into its target; reports what is wrong.
    pub fn resolve_ref(&mut self, doc: usize, pointer: &str, reference: &str) -> Option<At> {
        let ref_pointer = child(pointer, "$ref");
        let (file, fragment) = match reference.split_once('#') {
            Some((f, frag)) => (f, frag),
            None => (reference, ""),
        };
        let fragment = percent_encoding::percent_decode_str(fragment)
            .decode_utf8_lossy()
            .into_owned();
        if !fragment.is_empty() && !fragment.starts_with('/') {
            self.error(
                doc,
                &ref_pointer,
                format!("$ref '{reference}': only JSON pointer fragments (`#/...`) are supported"),
            );
            return None;
        }
        let target_doc = if file.is_empty() {
            doc
        } else if file.contains("://") || file.starts_with('/') {
            self.error(
                doc,
                &ref_pointer,
                format!(
                    "$ref '{reference}': only references within the spec folder (relative file paths) are supported"
                ),
            );
            return None;
        } else {
            let base = self.docs[doc].key.parent().unwrap_or(Path::new(""));
            let wanted = crate::loader::normalize_path(&base.join(file));
            match self.docs.iter().position(|d| d.key == wanted) {
                Some(i) => i,
                None => {
                    self.error(
                        doc,
                        &ref_pointer,
                        format!(
                            "$ref '{reference}' does not resolve: no file {} among the loaded specs",
                            wanted.display()
                        ),
                    );
                    return None;
                }
            }
        };
        if self.docs[target_doc].value.pointer(&fragment).is_some() {
            return Some((target_doc, fragment));
        }
        // Schemas an API file uses without defining them (`#/components/schemas/Error`)
        // come from klue's built-in spec.
        if self.docs[target_doc].version.is_some() {
            let name = fragment
                .strip_prefix("/components/schemas/")
                .or_else(|| fragment.strip_prefix("/definitions/"))
                .filter(|n| !n.contains('/'));
            if let Some(name) = name {
                let builtin_pointer = child("/components/schemas", name);
                if self.docs[self.builtin]
                    .value
                    .pointer(&builtin_pointer)
                    .is_some()
                {
                    return Some((self.builtin, builtin_pointer));
                }
            }
        }
        let file_note = if target_doc == doc {
            String::new()
        } else {
            format!(" in {}", self.docs[target_doc].path.display())
        };
        self.error(
            doc,
            &ref_pointer,
            format!("$ref '{reference}' does not resolve: nothing at #{fragment}{file_note}"),
        );
        None
    }

    /// Follows `$ref`s (parameters, responses, request bodies, path items, security
    /// schemes) to the node they point to; inlining is the caller's business.
    pub fn deref<'v>(
        &mut self,
        doc: usize,
        pointer: &str,
        value: &'v Value,
    ) -> Option<(usize, String, &'v Value)>
    where
        'a: 'v,
    {
        let (mut doc, mut pointer, mut value) = (doc, pointer.to_string(), value);
        for _ in 0..32 {
            let Some(reference) = value.get("$ref") else {
                return Some((doc, pointer, value));
            };
            let Some(reference) = reference.as_str() else {
                self.error(doc, &child(&pointer, "$ref"), "$ref must be a string");
                return None;
            };
            let (d, p) = self.resolve_ref(doc, &pointer, reference)?;
            value = self.docs[d].value.pointer(&p)?;
            doc = d;
            pointer = p;
        }
        self.error(doc, &pointer, "$ref chain too long (a cycle?)");
        None
    }

    /// The candidate name for a schema defined at `(doc, pointer)`, if it is a named place.
    fn schema_name_at(&self, doc: usize, pointer: &str) -> Option<String> {
        let unescape = |s: &str| s.replace("~1", "/").replace("~0", "~");
        let single = |rest: &str| (!rest.contains('/')).then(|| unescape(rest));
        if let Some(name) = pointer
            .strip_prefix("/components/schemas/")
            .or_else(|| pointer.strip_prefix("/definitions/"))
            .and_then(single)
        {
            return Some(name);
        }
        let d = &self.docs[doc];
        if d.version.is_none() && doc != self.builtin {
            if pointer.is_empty() {
                return Some(d.stem.clone());
            }
            if let Some(rest) = pointer.strip_prefix('/') {
                return single(rest);
            }
        }
        None
    }

    /// A schema reference as the IR writes it (registering the target's name), or the
    /// inlined target for places that are not named.
    fn schema_ref(&mut self, doc: usize, pointer: &str, reference: &str) -> Value {
        let Some((tdoc, tpointer)) = self.resolve_ref(doc, pointer, reference) else {
            return json!({});
        };
        if let Some(wanted) = self.schema_name_at(tdoc, &tpointer) {
            let name = self.name_for((tdoc, tpointer), &wanted);
            return json!({ "$ref": format!("#/$defs/{name}") });
        }
        let at = (tdoc, tpointer.clone());
        if self.inlining.contains(&at) {
            self.error(
                doc,
                &child(pointer, "$ref"),
                format!(
                    "$ref '{reference}' is recursive but does not point to a named schema (components/schemas or definitions): klue cannot inline it"
                ),
            );
            return json!({});
        }
        let Some(target) = self.docs[tdoc].value.pointer(&tpointer) else {
            return json!({});
        };
        self.inlining.push(at);
        let out = self.schema(tdoc, &tpointer, target);
        self.inlining.pop();
        out
    }

    /// A schema in the IR's form: references rewritten, normalized to JSON Schema 2020-12.
    pub fn schema(&mut self, doc: usize, pointer: &str, value: &Value) -> Value {
        let map = match value {
            Value::Bool(_) => return value.clone(),
            Value::Object(map) => map,
            _ => {
                self.error(
                    doc,
                    pointer,
                    "a schema must be an object (or a boolean in 3.1)",
                );
                return json!({});
            }
        };
        let version = self.version_of(doc);
        let mut out = Map::new();
        for (key, v) in map {
            let p = child(pointer, key);
            let new = match key.as_str() {
                "$ref" => match v.as_str() {
                    Some(reference) => {
                        let target = self.schema_ref(doc, pointer, reference);
                        if map.len() == 1 || !is_plain_ref(&target) {
                            if map.len() == 1 {
                                return target;
                            }
                            // Inlined target with siblings: keep both through allOf.
                            out.insert("allOf".into(), Value::Array(vec![target]));
                            continue;
                        }
                        target.get("$ref").cloned().unwrap_or(Value::Null)
                    }
                    None => {
                        self.error(doc, &p, "$ref must be a string");
                        continue;
                    }
                },
                k if SCHEMA_KEYWORDS.contains(&k) => match v {
                    Value::Array(items) if k == "items" || k == "additionalItems" => {
                        // Draft-4 tuple form: 2020-12 calls it prefixItems.
                        let list = items
                            .iter()
                            .enumerate()
                            .map(|(i, s)| self.schema(doc, &child(&p, &i.to_string()), s))
                            .collect();
                        if k == "items" {
                            out.insert("prefixItems".into(), Value::Array(list));
                            continue;
                        }
                        Value::Array(list)
                    }
                    _ => self.schema(doc, &p, v),
                },
                k if SCHEMA_MAP_KEYWORDS.contains(&k) => match v.as_object() {
                    Some(m) => Value::Object(
                        m.iter()
                            .map(|(name, s)| (name.clone(), self.schema(doc, &child(&p, name), s)))
                            .collect(),
                    ),
                    None => {
                        self.error(doc, &p, format!("`{k}` must be a map of schemas"));
                        continue;
                    }
                },
                k if SCHEMA_LIST_KEYWORDS.contains(&k) => match v.as_array() {
                    Some(list) => Value::Array(
                        list.iter()
                            .enumerate()
                            .map(|(i, s)| self.schema(doc, &child(&p, &i.to_string()), s))
                            .collect(),
                    ),
                    None => {
                        self.error(doc, &p, format!("`{k}` must be a list of schemas"));
                        continue;
                    }
                },
                "discriminator" => self.discriminator(doc, &p, v, version),
                _ => v.clone(),
            };
            out.insert(key.clone(), new);
        }
        if version != SpecVersion::OpenApi31 {
            for problem in normalize::openapi30(&mut out, version == SpecVersion::Swagger2) {
                self.error(doc, &child(pointer, &problem.keyword), problem.message);
            }
        }
        Value::Object(out)
    }

    /// `discriminator` with its mapping's references rewritten to `#/$defs/<Name>` (2.0's
    /// string form becomes `{propertyName}`).
    fn discriminator(
        &mut self,
        doc: usize,
        pointer: &str,
        value: &Value,
        version: SpecVersion,
    ) -> Value {
        if let Value::String(property) = value {
            return json!({ "propertyName": property });
        }
        let mut out = value.clone();
        let Some(mapping) = out.get_mut("mapping").and_then(Value::as_object_mut) else {
            return out;
        };
        let mapping_pointer = child(pointer, "mapping");
        for (key, target) in mapping.iter_mut() {
            let Some(t) = target.as_str() else { continue };
            let reference = if t.contains('#')
                || t.ends_with(".yaml")
                || t.ends_with(".yml")
                || t.ends_with(".json")
            {
                t.to_string()
            } else if version == SpecVersion::Swagger2 {
                format!("#/definitions/{t}")
            } else {
                format!("#/components/schemas/{t}")
            };
            let rewritten = self.schema_ref(doc, &child(&mapping_pointer, key), &reference);
            if let Some(r) = rewritten.get("$ref") {
                *target = r.clone();
            }
        }
        out
    }
}

fn is_plain_ref(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key("$ref"))
}

fn contains_ref(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("$ref") || m.values().any(contains_ref),
        Value::Array(a) => a.iter().any(contains_ref),
        _ => false,
    }
}
