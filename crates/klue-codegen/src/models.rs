//! JSON Schema 2020-12 (as the IR holds it) to Rust types.
//!
//! Mapping, in order of precedence:
//! - nullability (`type: [T, "null"]`, `null` in `enum`, a `{"type": "null"}` member of
//!   `anyOf`/`oneOf`) -> `Option<T>`;
//! - `$ref: #/$defs/X` -> the type of `X` (boxed where the reference closes a cycle of direct
//!   containment);
//! - `allOf` -> one struct with the members' properties merged (later members win);
//! - `oneOf`/`anyOf` -> an enum: dispatched on the discriminator property when there is one,
//!   `#[serde(untagged)]` when the members have distinct JSON shapes (different JSON types, or
//!   objects with different required-property sets), else `serde_json::Value` (documented);
//! - string `enum` -> a Rust enum; other enums -> their base type;
//! - `object` with properties -> a struct (unknown properties are ignored; an
//!   `additionalProperties` schema becomes a flattened map); without properties, a
//!   `BTreeMap<String, T>` for an `additionalProperties` schema, else `serde_json::Map`;
//! - `array` -> `Vec<T>`; formats: `date-time` -> `chrono::DateTime<Utc>`, `date` ->
//!   `chrono::NaiveDate`, `uuid` -> `uuid::Uuid`, `binary`/`byte` -> `klue::client::Binary`
//!   (base64 in JSON), `int32` -> `i32`, `int64`/none -> `i64`, `float` -> `f32`, number -> `f64`;
//! - anything else (no type, several types, `true`) -> `serde_json::Value`.

use crate::CodegenError;
use crate::names::{Scope, ident, ident_string, snake_name, type_ident, type_name, variant_name};
use heck::ToUpperCamelCase;
use klue_spec::{Api, ref_name};
use proc_macro2::TokenStream;
use quote::quote;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Annotation keywords: they do not change the shape of a value.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "default",
    "example",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
    "format",
    "externalDocs",
    "xml",
    "nullable",
    "discriminator",
];

/// Marks a merged "property" that is a union member of an `allOf` (flattened, not a field).
const FLATTEN: &str = "\u{0}flatten:";

/// A Rust type for a schema.
#[derive(Debug, Clone)]
pub struct Ty {
    /// The type without the `Option` nullability adds.
    pub tokens: TokenStream,
    /// Whether `null` is a valid value (the field or argument is then an `Option`).
    pub nullable: bool,
    /// Whether the type is `Copy` (generated clients take it by value).
    pub copy: bool,
    /// Whether the type is `String` (generated clients take `&str`).
    pub string: bool,
    /// For `Vec<T>`, `T` (generated clients take `&[T]`).
    pub vec_item: Option<TokenStream>,
}

impl Ty {
    fn plain(tokens: TokenStream) -> Ty {
        Ty {
            tokens,
            nullable: false,
            copy: false,
            string: false,
            vec_item: None,
        }
    }

    fn copy(tokens: TokenStream) -> Ty {
        Ty {
            tokens,
            nullable: false,
            copy: true,
            string: false,
            vec_item: None,
        }
    }

    pub fn value() -> Ty {
        Ty::plain(quote!(::klue::serde_json::Value))
    }

    fn string() -> Ty {
        Ty {
            tokens: quote!(String),
            nullable: false,
            copy: false,
            string: true,
            vec_item: None,
        }
    }

    /// The type with nullability: `Option<T>` when nullable.
    pub fn full(&self) -> TokenStream {
        let t = &self.tokens;
        if self.nullable {
            quote!(Option<#t>)
        } else {
            t.clone()
        }
    }
}

/// The shape of a union member, to decide whether `#[serde(untagged)]` can tell members apart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Object(BTreeSet<String>),
    Array,
    String,
    Integer,
    Number,
    Boolean,
    Unknown,
}

/// The models of one API: every named schema and every inline type that needs a name.
pub struct Models<'a> {
    api: &'a Api,
    /// Schema name -> Rust type name.
    names: BTreeMap<String, String>,
    /// Type names used in the models module.
    scope: Scope,
    /// Emitted items, in a readable order (a type before the inline types it owns).
    items: Vec<TokenStream>,
    /// Direct-containment references between named schemas (not through arrays or maps).
    direct: BTreeMap<String, BTreeSet<String>>,
    /// The named schema being emitted (boxing decisions are made against it).
    root: Option<String>,
    /// Named schemas whose type is `Copy` (string enums).
    copy_named: BTreeSet<String>,
    /// Named schemas that accept `null`.
    nullable_named: BTreeSet<String>,
    /// Where we are, for error messages.
    at: String,
    /// How named types are referred to from where the returned tokens are used: empty inside
    /// the models module, `models::` from the other modules of an API.
    prefix: TokenStream,
    /// Whether a type with the prefix was handed out since [`Models::take_prefix_used`].
    prefix_used: bool,
}

impl<'a> Models<'a> {
    pub fn new(api: &'a Api) -> Models<'a> {
        let mut scope = Scope::new();
        let mut names = BTreeMap::new();
        let mut copy_named = BTreeSet::new();
        let mut nullable_named = BTreeSet::new();
        let mut direct = BTreeMap::new();
        for (name, schema) in &api.schemas {
            names.insert(name.clone(), scope.claim(&type_name(name)));
            let (stripped, nullable) = strip_null(schema);
            if nullable {
                nullable_named.insert(name.clone());
            }
            if string_enum(&stripped).is_some() {
                copy_named.insert(name.clone());
            }
            let mut refs = BTreeSet::new();
            direct_refs(schema, &mut refs);
            direct.insert(name.clone(), refs);
        }
        Models {
            api,
            names,
            scope,
            items: Vec::new(),
            direct,
            root: None,
            copy_named,
            nullable_named,
            at: String::new(),
            prefix: TokenStream::new(),
            prefix_used: false,
        }
    }

    /// Emits every named schema.
    pub fn define_all(&mut self) -> Result<(), CodegenError> {
        let api = self.api;
        for (name, schema) in &api.schemas {
            self.root = Some(name.clone());
            self.at = format!("schema {name}");
            let rust = self
                .names
                .get(name)
                .cloned()
                .unwrap_or_else(|| type_name(name));
            self.define_named(&rust, schema)?;
        }
        self.root = None;
        Ok(())
    }

    /// Sets the error location for types defined from now on (operations' inline schemas).
    pub fn set_location(&mut self, at: impl Into<String>) {
        self.root = None;
        self.at = at.into();
    }

    /// Types returned from now on are referred to as `<prefix>Name` (e.g. `models::Item`).
    pub fn set_prefix(&mut self, prefix: TokenStream) {
        self.prefix = prefix;
    }

    /// Whether a prefixed type was handed out since the last call.
    pub fn take_prefix_used(&mut self) -> bool {
        std::mem::take(&mut self.prefix_used)
    }

    fn named(&mut self, name: &str) -> TokenStream {
        let id = type_ident(name);
        if self.prefix.is_empty() {
            quote!(#id)
        } else {
            self.prefix_used = true;
            let p = &self.prefix;
            quote!(#p #id)
        }
    }

    /// Runs `f` with no prefix: for the insides of type definitions in the models module.
    fn inside<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = std::mem::take(&mut self.prefix);
        let out = f(self);
        self.prefix = saved;
        out
    }

    /// The emitted items.
    pub fn into_items(self) -> Vec<TokenStream> {
        self.items
    }

    fn error(&self, message: impl Into<String>) -> CodegenError {
        CodegenError::Schema {
            api: self.api.name.clone(),
            location: self.at.clone(),
            message: message.into(),
        }
    }

    fn reserve(&mut self) -> usize {
        self.items.push(TokenStream::new());
        self.items.len() - 1
    }

    /// The Rust type for `schema`; inline types that need a name are named after `hint`.
    pub fn ty(&mut self, schema: &Value, hint: &str) -> Result<Ty, CodegenError> {
        let (stripped, nullable) = strip_null(schema);
        let mut ty = self.ty_non_null(&stripped, hint)?;
        ty.nullable |= nullable;
        Ok(ty)
    }

    /// Whether the schema is a (possibly nullable) direct reference to a named schema that
    /// contains the schema being emitted: such a field or variant must be boxed.
    fn needs_box(&self, schema: &Value) -> bool {
        let Some(root) = &self.root else { return false };
        let (stripped, _) = strip_null(schema);
        let mut target = None;
        if let Some(r) = stripped.get("$ref").and_then(Value::as_str) {
            target = ref_name(r).map(str::to_string);
        } else if let Some([only]) = stripped
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            && let Some(r) = only.get("$ref").and_then(Value::as_str)
        {
            target = ref_name(r).map(str::to_string);
        }
        match target {
            Some(t) => self.reaches(&t, root),
            None => false,
        }
    }

    fn reaches(&self, from: &str, to: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if !seen.insert(n.clone()) {
                continue;
            }
            if let Some(next) = self.direct.get(&n) {
                stack.extend(next.iter().cloned());
            }
        }
        false
    }

    fn ref_ty(&mut self, reference: &Value) -> Result<Ty, CodegenError> {
        let r = reference
            .as_str()
            .ok_or_else(|| self.error("`$ref` is not a string"))?;
        let name = ref_name(r).ok_or_else(|| {
            self.error(format!(
                "unresolved reference `{r}` (expected #/$defs/<Name>)"
            ))
        })?;
        let rust = self
            .names
            .get(name)
            .ok_or_else(|| self.error(format!("reference to an unknown schema `{name}`")))?
            .clone();
        Ok(Ty {
            tokens: self.named(&rust),
            nullable: self.nullable_named.contains(name),
            copy: self.copy_named.contains(name),
            string: false,
            vec_item: None,
        })
    }

    fn named_schema(&self, reference: &str) -> Result<(&'a str, &'a Value), CodegenError> {
        let name = ref_name(reference).ok_or_else(|| {
            self.error(format!(
                "unresolved reference `{reference}` (expected #/$defs/<Name>)"
            ))
        })?;
        self.api
            .schemas
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| self.error(format!("reference to an unknown schema `{name}`")))
    }

    fn ty_non_null(&mut self, s: &Value, hint: &str) -> Result<Ty, CodegenError> {
        let Some(obj) = s.as_object() else {
            return Ok(Ty::value());
        };
        if let Some(r) = obj.get("$ref") {
            return self.ref_ty(r);
        }
        if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
            if let [only] = all.as_slice()
                && !has_structure(obj, "allOf")
            {
                return self.ty(only, hint);
            }
            let name = self.scope.claim(&type_name(hint));
            self.define_struct(&name, s)?;
            return Ok(Ty::plain(self.named(&name)));
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(members) = obj.get(key).and_then(Value::as_array) {
                if let [only] = members.as_slice()
                    && !has_structure(obj, key)
                {
                    return self.ty(only, hint);
                }
                let name = type_name(hint);
                if self.union_plan(obj, members)?.is_some() {
                    let name = self.scope.claim(&name);
                    self.define_union(&name, obj, members)?;
                    return Ok(Ty::plain(self.named(&name)));
                }
                return Ok(Ty::value());
            }
        }
        if let Some(values) = string_enum(s) {
            let name = self.scope.claim(&type_name(hint));
            self.define_enum(&name, obj, &values);
            return Ok(Ty::copy(self.named(&name)));
        }
        if obj.get("const").is_some_and(Value::is_string) {
            return Ok(Ty::string());
        }
        let ty = match obj.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(_) => return Ok(Ty::value()),
            None if obj.contains_key("properties") || obj.contains_key("additionalProperties") => {
                "object"
            }
            None if obj.contains_key("items") => "array",
            None => return Ok(Ty::value()),
        };
        let format = obj.get("format").and_then(Value::as_str).unwrap_or("");
        Ok(match ty {
            "string" => match format {
                "date-time" => Ty::copy(quote!(::klue::chrono::DateTime<::klue::chrono::Utc>)),
                "date" => Ty::copy(quote!(::klue::chrono::NaiveDate)),
                "uuid" => Ty::copy(quote!(::klue::uuid::Uuid)),
                "binary" | "byte" => Ty::plain(quote!(::klue::client::Binary)),
                _ => Ty::string(),
            },
            "integer" => Ty::copy(match format {
                "int8" => quote!(i8),
                "int16" => quote!(i16),
                "int32" => quote!(i32),
                "uint8" => quote!(u8),
                "uint16" => quote!(u16),
                "uint32" => quote!(u32),
                "uint64" => quote!(u64),
                _ => quote!(i64),
            }),
            "number" => Ty::copy(if format == "float" {
                quote!(f32)
            } else {
                quote!(f64)
            }),
            "boolean" => Ty::copy(quote!(bool)),
            "array" => match obj.get("items") {
                Some(items) => {
                    let item = self.ty(items, &format!("{hint}Item"))?.full();
                    let mut ty = Ty::plain(quote!(Vec<#item>));
                    ty.vec_item = Some(item);
                    ty
                }
                None => Ty::plain(quote!(Vec<::klue::serde_json::Value>)),
            },
            "object" => {
                let has_props = obj
                    .get("properties")
                    .and_then(Value::as_object)
                    .is_some_and(|p| !p.is_empty());
                if has_props {
                    let name = self.scope.claim(&type_name(hint));
                    self.define_struct(&name, s)?;
                    Ty::plain(self.named(&name))
                } else {
                    match obj.get("additionalProperties") {
                        Some(ap @ Value::Object(m)) if !m.is_empty() => {
                            let value = self.ty(ap, &format!("{hint}Value"))?.full();
                            Ty::plain(quote!(::std::collections::BTreeMap<String, #value>))
                        }
                        _ => Ty::plain(
                            quote!(::klue::serde_json::Map<String, ::klue::serde_json::Value>),
                        ),
                    }
                }
            }
            _ => Ty::value(),
        })
    }

    /// A named schema: a struct, enum or union where it is one, else a type alias.
    fn define_named(&mut self, rust: &str, schema: &Value) -> Result<(), CodegenError> {
        let (s, _) = strip_null(schema);
        let doc = doc_attrs(description(&s));
        let Some(obj) = s.as_object() else {
            let id = type_ident(rust);
            self.items
                .push(quote!(#doc pub type #id = ::klue::serde_json::Value;));
            return Ok(());
        };
        let is_struct = !obj.contains_key("$ref")
            && !obj.contains_key("oneOf")
            && !obj.contains_key("anyOf")
            && string_enum(&s).is_none()
            && (obj.contains_key("properties")
                || matches!(obj.get("allOf").and_then(Value::as_array), Some(a) if a.len() > 1 || has_structure(obj, "allOf"))
                || (obj.get("type").and_then(Value::as_str) == Some("object")
                    && !matches!(obj.get("additionalProperties"), Some(Value::Object(m)) if !m.is_empty())));
        if is_struct {
            return self.define_struct(rust, &s);
        }
        if let Some(values) = string_enum(&s) {
            self.define_enum(rust, obj, &values);
            return Ok(());
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(members) = obj.get(key).and_then(Value::as_array)
                && (members.len() > 1 || has_structure(obj, key))
            {
                if self.union_plan(obj, members)?.is_some() {
                    return self.define_union(rust, obj, members);
                }
                let id = type_ident(rust);
                let fallback = doc_attrs(Some(
                    "Kept as JSON: the members of this `oneOf`/`anyOf` have no discriminator and no \
                     distinct shapes serde could tell apart.",
                ));
                let sep = if doc.is_empty() {
                    quote!()
                } else {
                    quote!(#[doc = ""])
                };
                self.items
                    .push(quote!(#doc #sep #fallback pub type #id = ::klue::serde_json::Value;));
                return Ok(());
            }
        }
        let idx = self.reserve();
        let ty = self.ty_non_null(&s, &format!("{rust}Inner"))?.full();
        let id = type_ident(rust);
        self.items[idx] = quote!(#doc pub type #id = #ty;);
        Ok(())
    }

    /// Properties (document order, later definitions win), required names and the
    /// `additionalProperties` schema of an object schema with its `allOf` members merged.
    fn merge_object(
        &self,
        s: &Value,
        visited: &mut BTreeSet<String>,
        props: &mut Vec<(String, Value)>,
        required: &mut BTreeSet<String>,
        additional: &mut Option<Value>,
    ) -> Result<(), CodegenError> {
        let (s, _) = strip_null(s);
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let (name, target) = self.named_schema(r)?;
            let (stripped, _) = strip_null(target);
            let is_union = stripped.get("properties").is_none()
                && (stripped.get("oneOf").is_some() || stripped.get("anyOf").is_some());
            if is_union {
                // A union member of an allOf: kept whole, as a flattened field.
                let key = format!("{FLATTEN}{name}");
                if !props.iter().any(|(k, _)| *k == key) {
                    props.push((
                        key,
                        Value::Object(Map::from_iter([(
                            "$ref".to_string(),
                            Value::String(r.to_string()),
                        )])),
                    ));
                }
            } else if visited.insert(name.to_string()) {
                self.merge_object(target, visited, props, required, additional)?;
            }
            return Ok(());
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for member in all {
                self.merge_object(member, visited, props, required, additional)?;
            }
        }
        if let Some(p) = s.get("properties").and_then(Value::as_object) {
            for (k, v) in p {
                match props.iter_mut().find(|(name, _)| name == k) {
                    Some(existing) => existing.1 = v.clone(),
                    None => props.push((k.clone(), v.clone())),
                }
            }
        }
        if let Some(r) = s.get("required").and_then(Value::as_array) {
            required.extend(r.iter().filter_map(Value::as_str).map(str::to_string));
        }
        match s.get("additionalProperties") {
            Some(ap @ Value::Object(m)) if !m.is_empty() => *additional = Some(ap.clone()),
            Some(Value::Bool(false)) => *additional = None,
            _ => {}
        }
        Ok(())
    }

    fn define_struct_inner(&mut self, rust: &str, s: &Value) -> Result<(), CodegenError> {
        let idx = self.reserve();
        let mut props = Vec::new();
        let mut required = BTreeSet::new();
        let mut additional = None;
        self.merge_object(
            s,
            &mut BTreeSet::new(),
            &mut props,
            &mut required,
            &mut additional,
        )?;
        let mut fields = Scope::with_reserved(&["additional_properties"]);
        let mut tokens = Vec::new();
        let mut all_optional = true;
        for (pname, pschema) in &props {
            if let Some(union) = pname.strip_prefix(FLATTEN) {
                let id = ident(&fields.claim(&snake_name(union)));
                let ty = self.ty(pschema, rust)?.full();
                let doc = format!(" The `{union}` part of this `allOf` (a union, flattened).");
                tokens.push(quote!(#[doc = #doc] #[serde(flatten)] pub #id: #ty,));
                all_optional = false;
                continue;
            }
            let fname = fields.claim(&snake_name(pname));
            let id = ident(&fname);
            let hint = format!("{rust}{}", pname.to_upper_camel_case());
            let mut ty = self.ty(pschema, &hint)?;
            if self.needs_box(pschema) {
                let t = &ty.tokens;
                ty.tokens = quote!(Box<#t>);
            }
            let is_required = required.contains(pname);
            let mut attrs = Vec::new();
            if ident_string(&fname) != *pname {
                attrs.push(quote!(rename = #pname));
            }
            let inner = &ty.tokens;
            let field_ty = if is_required && !ty.nullable {
                all_optional = false;
                quote!(#inner)
            } else if is_required {
                // Required but nullable: always sent, `null` when `None`.
                attrs.push(quote!(default));
                quote!(Option<#inner>)
            } else {
                attrs.push(quote!(default, skip_serializing_if = "Option::is_none"));
                quote!(Option<#inner>)
            };
            let serde = if attrs.is_empty() {
                quote!()
            } else {
                quote!(#[serde(#(#attrs),*)])
            };
            let doc = doc_attrs(description(pschema));
            tokens.push(quote!(#doc #serde pub #id: #field_ty,));
        }
        if let Some(ap) = &additional {
            let value = self.ty(ap, &format!("{rust}Value"))?.full();
            tokens.push(quote! {
                #[doc = " Properties not declared in the schema (`additionalProperties`)."]
                #[serde(flatten)]
                pub additional_properties: ::std::collections::BTreeMap<String, #value>,
            });
        }
        let doc = doc_attrs(description(s));
        let id = type_ident(rust);
        let default = if all_optional {
            quote!(Default,)
        } else {
            quote!()
        };
        self.items[idx] = quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, #default ::klue::serde::Serialize, ::klue::serde::Deserialize)]
            #[serde(crate = "::klue::serde")]
            pub struct #id {
                #(#tokens)*
            }
        };
        Ok(())
    }

    fn define_struct(&mut self, rust: &str, s: &Value) -> Result<(), CodegenError> {
        self.inside(|m| m.define_struct_inner(rust, s))
    }

    fn define_union(
        &mut self,
        rust: &str,
        obj: &Map<String, Value>,
        members: &[Value],
    ) -> Result<(), CodegenError> {
        self.inside(|m| m.define_union_inner(rust, obj, members))
    }

    fn define_enum(&mut self, rust: &str, obj: &Map<String, Value>, values: &[String]) {
        let mut scope = Scope::new();
        let mut variants = Vec::new();
        let mut arms = Vec::new();
        for value in values {
            let v = type_ident(&scope.claim(&variant_name(value)));
            variants.push(quote!(#[serde(rename = #value)] #v,));
            arms.push(quote!(Self::#v => #value,));
        }
        let doc = doc_attrs(obj.get("description").and_then(Value::as_str));
        let id = type_ident(rust);
        self.items.push(quote! {
            #doc
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::klue::serde::Serialize, ::klue::serde::Deserialize)]
            #[serde(crate = "::klue::serde")]
            pub enum #id {
                #(#variants)*
            }

            impl #id {
                /// The value as written in the spec.
                pub fn as_str(&self) -> &'static str {
                    match self {
                        #(#arms)*
                    }
                }
            }

            impl ::std::fmt::Display for #id {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    f.write_str(self.as_str())
                }
            }
        });
    }

    /// How a union can be represented: `Some(Some(property))` dispatched on a discriminator,
    /// `Some(None)` untagged, `None` not at all (kept as JSON).
    fn union_plan(
        &self,
        obj: &Map<String, Value>,
        members: &[Value],
    ) -> Result<Option<Option<String>>, CodegenError> {
        let members: Vec<&Value> = members.iter().filter(|m| !is_null_schema(m)).collect();
        if members.is_empty() {
            return Ok(None);
        }
        if let Some(prop) = obj
            .get("discriminator")
            .and_then(|d| d.get("propertyName"))
            .and_then(Value::as_str)
            && members
                .iter()
                .all(|m| m.get("$ref").is_some_and(Value::is_string))
        {
            return Ok(Some(Some(prop.to_string())));
        }
        let mut shapes = Vec::new();
        for m in &members {
            shapes.push(self.shape(m, &mut BTreeSet::new())?);
        }
        for (i, a) in shapes.iter().enumerate() {
            if *a == Shape::Unknown {
                return Ok(None);
            }
            if shapes[i + 1..].contains(a) {
                return Ok(None);
            }
        }
        Ok(Some(None))
    }

    fn shape(&self, s: &Value, visited: &mut BTreeSet<String>) -> Result<Shape, CodegenError> {
        let (s, _) = strip_null(s);
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let (name, target) = self.named_schema(r)?;
            if !visited.insert(name.to_string()) {
                return Ok(Shape::Unknown);
            }
            return self.shape(target, visited);
        }
        if let Some([only]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice)
            && !s.as_object().is_some_and(|o| has_structure(o, "allOf"))
        {
            return self.shape(only, visited);
        }
        let is_object = s.get("type").and_then(Value::as_str) == Some("object")
            || s.get("properties").is_some()
            || s.get("allOf").is_some();
        if is_object {
            let mut props = Vec::new();
            let mut required = BTreeSet::new();
            let mut additional = None;
            self.merge_object(
                &s,
                &mut BTreeSet::new(),
                &mut props,
                &mut required,
                &mut additional,
            )?;
            return Ok(Shape::Object(required));
        }
        Ok(match s.get("type").and_then(Value::as_str) {
            Some("array") => Shape::Array,
            Some("string") => Shape::String,
            Some("integer") => Shape::Integer,
            Some("number") => Shape::Number,
            Some("boolean") => Shape::Boolean,
            _ => Shape::Unknown,
        })
    }

    fn define_union_inner(
        &mut self,
        rust: &str,
        obj: &Map<String, Value>,
        members: &[Value],
    ) -> Result<(), CodegenError> {
        let idx = self.reserve();
        let plan = self.union_plan(obj, members)?;
        let members: Vec<&Value> = members.iter().filter(|m| !is_null_schema(m)).collect();
        let id = type_ident(rust);
        let doc = doc_attrs(obj.get("description").and_then(Value::as_str));
        let mut scope = Scope::new();
        match plan {
            Some(Some(prop)) => {
                // Tag values: the mapping's keys, else the schema names.
                let mut by_schema: BTreeMap<String, Vec<String>> = BTreeMap::new();
                if let Some(mapping) = obj
                    .get("discriminator")
                    .and_then(|d| d.get("mapping"))
                    .and_then(Value::as_object)
                {
                    for (value, target) in mapping {
                        if let Some(t) = target.as_str() {
                            let name = t.rsplit('/').next().unwrap_or(t).to_string();
                            by_schema.entry(name).or_default().push(value.clone());
                        }
                    }
                }
                let mut variants = Vec::new();
                let mut arms = Vec::new();
                let mut ser_arms = Vec::new();
                let mut expected = Vec::new();
                for m in &members {
                    let r = m.get("$ref").and_then(Value::as_str).unwrap_or_default();
                    let (name, _) = self.named_schema(r)?;
                    let mut ty = self.ref_ty(&Value::String(r.to_string()))?.tokens;
                    if self.needs_box(m) {
                        ty = quote!(Box<#ty>);
                    }
                    let v = type_ident(&scope.claim(&type_name(name)));
                    let values = by_schema
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| vec![name.to_string()]);
                    let vdoc = format!(
                        " `{prop}`: {}",
                        values
                            .iter()
                            .map(|v| format!("`{v}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    variants.push(quote!(#[doc = #vdoc] #v(#ty),));
                    ser_arms.push(
                        quote!(Self::#v(value) => ::klue::serde::Serialize::serialize(value, serializer),),
                    );
                    arms.push(quote!(#(Some(#values))|* => ::klue::serde_json::from_value(value).map(Self::#v).map_err(::klue::serde::de::Error::custom),));
                    expected.extend(values);
                }
                let expected = expected.join(", ");
                let tag_doc =
                    format!(" One of several types, told apart by the `{prop}` property.");
                let missing = format!("unknown or missing `{prop}` (expected one of: {expected})");
                let sep = if doc.is_empty() {
                    quote!()
                } else {
                    quote!(#[doc = ""])
                };
                self.items[idx] = quote! {
                    #doc
                    #sep
                    #[doc = #tag_doc]
                    #[derive(Debug, Clone, PartialEq)]
                    pub enum #id {
                        #(#variants)*
                    }

                    impl ::klue::serde::Serialize for #id {
                        fn serialize<S: ::klue::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                            match self {
                                #(#ser_arms)*
                            }
                        }
                    }

                    impl<'de> ::klue::serde::Deserialize<'de> for #id {
                        fn deserialize<D: ::klue::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                            let value = <::klue::serde_json::Value as ::klue::serde::Deserialize>::deserialize(deserializer)?;
                            match value.get(#prop).and_then(::klue::serde_json::Value::as_str) {
                                #(#arms)*
                                _ => Err(::klue::serde::de::Error::custom(#missing)),
                            }
                        }
                    }
                };
            }
            Some(None) => {
                // Untagged: serde tries variants in order, so more specific shapes go first:
                // integers before numbers, objects with more required properties first.
                let mut ordered = Vec::new();
                for (i, m) in members.iter().enumerate() {
                    let shape = self.shape(m, &mut BTreeSet::new())?;
                    let rank = match &shape {
                        Shape::Integer => (0, 0),
                        Shape::Number => (1, 0),
                        Shape::Object(req) => (2, usize::MAX - req.len()),
                        _ => (0, 0),
                    };
                    ordered.push((rank, i, *m, shape));
                }
                ordered.sort_by_key(|(rank, i, _, _)| (*rank, *i));
                let mut variants = Vec::new();
                for (_, i, m, shape) in ordered {
                    let name = match m.get("$ref").and_then(Value::as_str).and_then(ref_name) {
                        Some(n) => type_name(n),
                        None => match m.get("title").and_then(Value::as_str) {
                            Some(t) => type_name(t),
                            None => match shape {
                                Shape::String => "String".into(),
                                Shape::Integer => "Integer".into(),
                                Shape::Number => "Number".into(),
                                Shape::Boolean => "Boolean".into(),
                                Shape::Array => "Array".into(),
                                _ => format!("Variant{}", i + 1),
                            },
                        },
                    };
                    let vname = scope.claim(&name);
                    let mut ty = self.ty(m, &format!("{rust}{vname}"))?;
                    if self.needs_box(m) {
                        let t = &ty.tokens;
                        ty.tokens = quote!(Box<#t>);
                    }
                    let t = ty.full();
                    let v = type_ident(&vname);
                    let vdoc = doc_attrs(description(m));
                    variants.push(quote!(#vdoc #v(#t),));
                }
                let sep = if doc.is_empty() {
                    quote!()
                } else {
                    quote!(#[doc = ""])
                };
                self.items[idx] = quote! {
                    #doc
                    #sep
                    #[doc = " One of several types with distinct JSON shapes (untagged)."]
                    #[derive(Debug, Clone, PartialEq, ::klue::serde::Serialize, ::klue::serde::Deserialize)]
                    #[serde(crate = "::klue::serde")]
                    #[serde(untagged)]
                    pub enum #id {
                        #(#variants)*
                    }
                };
            }
            None => {
                self.items[idx] = quote!(#doc pub type #id = ::klue::serde_json::Value;);
            }
        }
        Ok(())
    }
}

fn description(s: &Value) -> Option<&str> {
    s.get("description").and_then(Value::as_str)
}

/// Whether `obj` says more than its combinator `key` and annotations.
fn has_structure(obj: &Map<String, Value>, key: &str) -> bool {
    obj.iter().any(|(k, v)| {
        let ignored = k == key
            || ANNOTATIONS.contains(&k.as_str())
            || (k == "type" && v == "object")
            || k.starts_with("x-");
        !ignored
    })
}

/// The values of a string enum (`enum` of strings only, or a `type: string` with `enum`).
fn string_enum(s: &Value) -> Option<Vec<String>> {
    let values = s.get("enum")?.as_array()?;
    if values.is_empty() {
        return None;
    }
    values
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn is_null_schema(s: &Value) -> bool {
    s.get("type").and_then(Value::as_str) == Some("null")
        || s.get("const").is_some_and(Value::is_null)
        || matches!(
            s.get("enum").and_then(Value::as_array).map(Vec::as_slice),
            Some([Value::Null])
        )
}

/// Removes `null` from a schema: returns the schema without it and whether it was accepted.
pub fn strip_null(schema: &Value) -> (Value, bool) {
    let Some(obj) = schema.as_object() else {
        return (schema.clone(), false);
    };
    let mut obj = obj.clone();
    let mut nullable = false;
    if obj.get("nullable") == Some(&Value::Bool(true)) {
        nullable = true;
    }
    if let Some(Value::Array(types)) = obj.get("type") {
        if types.iter().any(|t| t == "null") {
            nullable = true;
            let rest: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
            match rest.as_slice() {
                [] => {
                    obj.remove("type");
                }
                [one] => {
                    obj.insert("type".into(), one.clone());
                }
                _ => {
                    obj.insert("type".into(), Value::Array(rest));
                }
            }
        }
    } else if obj.get("type").and_then(Value::as_str) == Some("null") {
        nullable = true;
        obj.remove("type");
    }
    if let Some(Value::Array(values)) = obj.get("enum")
        && values.iter().any(Value::is_null)
    {
        nullable = true;
        let rest: Vec<Value> = values.iter().filter(|v| !v.is_null()).cloned().collect();
        obj.insert("enum".into(), Value::Array(rest));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(members)) = obj.get(key)
            && members.iter().any(is_null_schema)
        {
            nullable = true;
            let rest: Vec<Value> = members
                .iter()
                .filter(|m| !is_null_schema(m))
                .cloned()
                .collect();
            if let [one] = rest.as_slice() {
                let one = one.clone();
                obj.remove(key);
                let all = obj
                    .entry("allOf")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(all) = all {
                    all.push(one);
                }
            } else {
                obj.insert(key.into(), Value::Array(rest));
            }
        }
    }
    (Value::Object(obj), nullable)
}

/// Named schemas referenced in direct-containment positions (not through arrays or maps).
fn direct_refs(s: &Value, out: &mut BTreeSet<String>) {
    let Some(obj) = s.as_object() else { return };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str).and_then(ref_name) {
        out.insert(r.to_string());
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for p in props.values() {
            direct_refs(p, out);
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(members) = obj.get(key).and_then(Value::as_array) {
            for m in members {
                direct_refs(m, out);
            }
        }
    }
}

/// `#[doc = "..."]` attributes for a description, one per line. Indented lines and untyped
/// code fences are neutralized so descriptions never become doctests.
pub fn doc_attrs(text: Option<&str>) -> TokenStream {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return TokenStream::new();
    };
    let mut in_fence = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        let mut line = line.trim().to_string();
        if line.starts_with("```") || line.starts_with("~~~") {
            if !in_fence && line.len() == 3 {
                line.push_str("text");
            }
            in_fence = !in_fence;
        }
        let line = if line.is_empty() {
            String::new()
        } else {
            format!(" {line}")
        };
        lines.push(quote!(#[doc = #line]));
    }
    quote!(#(#lines)*)
}
