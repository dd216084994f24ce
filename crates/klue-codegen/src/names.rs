//! Rust naming: PascalCase types, snake_case fields and methods, keywords escaped, collisions
//! resolved deterministically.

use heck::{ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Ident, Span};
use std::collections::BTreeSet;

/// Strict and reserved keywords (2015-2024 editions) that `r#` can escape.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where",
    "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];

/// Keywords that cannot be raw identifiers: suffixed with `_` instead.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Type names that would shadow what generated code uses unqualified (the prelude).
const SHADOWING: &[&str] = &[
    "String",
    "Vec",
    "Option",
    "Box",
    "Result",
    "Some",
    "None",
    "Ok",
    "Err",
    "Self",
    "Default",
    "Clone",
    "Debug",
    "PartialEq",
    "Send",
    "Sync",
    "Sized",
    "Into",
    "From",
    "Fn",
    "Iterator",
];

/// Makes `raw` a valid identifier body: only ASCII alphanumerics and `_`, not starting with a
/// digit, never empty.
fn sanitize(raw: &str, fallback: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.trim_matches('_').is_empty() {
        s = fallback.to_string();
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// `PascalCase` type name for a schema, operation or value.
pub fn type_name(raw: &str) -> String {
    // heck treats non-alphanumerics as word boundaries; keep digits-first names valid.
    let pascal = raw.to_upper_camel_case();
    let mut s = sanitize(&pascal, "Unnamed");
    if s.starts_with('_') {
        s = format!("V{}", s.trim_start_matches('_'));
    }
    if SHADOWING.contains(&s.as_str()) {
        s.push_str("Model");
    }
    s
}

/// `PascalCase` enum variant name for a string value (`"in-progress"` -> `InProgress`).
pub fn variant_name(raw: &str) -> String {
    let pascal = raw.to_upper_camel_case();
    let s = sanitize(&pascal, "Empty");
    if s.starts_with('_') {
        return format!("V{}", s.trim_start_matches('_'));
    }
    if s == "Self" {
        "SelfValue".to_string()
    } else {
        s
    }
}

/// `snake_case` field, parameter or method name, as a string (not yet escaped).
pub fn snake_name(raw: &str) -> String {
    // `@type` and `$ref` style names keep a readable form.
    let snake = raw.to_snake_case();
    let s = sanitize(&snake, "value");
    if s.starts_with(|c: char| c.is_ascii_digit()) || s.starts_with('_') && s.len() > 1 {
        let trimmed = s.trim_start_matches('_');
        if trimmed.starts_with(|c: char| c.is_ascii_digit()) {
            return format!("n{trimmed}");
        }
        return trimmed.to_string();
    }
    s
}

/// An identifier for a snake_case name, escaping keywords (`type` -> `r#type`, `self` -> `self_`).
pub fn ident(name: &str) -> Ident {
    if NOT_RAW.contains(&name) {
        return Ident::new(&format!("{name}_"), Span::call_site());
    }
    if KEYWORDS.contains(&name) {
        return Ident::new_raw(name, Span::call_site());
    }
    Ident::new(name, Span::call_site())
}

/// The name a field is known by once escaped (`r#type` serializes as `type`, `self_` does not).
pub fn ident_string(name: &str) -> String {
    if NOT_RAW.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// An identifier for a type or variant name produced by [`type_name`] / [`variant_name`].
pub fn type_ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

/// Names already used in one scope; [`Scope::claim`] returns a free variant of a name.
#[derive(Debug, Default, Clone)]
pub struct Scope {
    taken: BTreeSet<String>,
}

impl Scope {
    pub fn new() -> Self {
        Self::default()
    }

    /// A scope where `names` are already taken.
    pub fn with_reserved(names: &[&str]) -> Self {
        Scope {
            taken: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `name`, or `name2`, `name3`, ... (`name_2` for snake_case names) if taken; marks it taken.
    pub fn claim(&mut self, name: &str) -> String {
        if self.taken.insert(name.to_string()) {
            return name.to_string();
        }
        let snake = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let mut n = 2;
        loop {
            let candidate = if snake {
                format!("{name}_{n}")
            } else {
                format!("{name}{n}")
            };
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

/// The variant name for an HTTP status code in a response enum (`200` -> `Ok`).
pub fn status_variant(code: u16) -> String {
    let name = match code {
        100 => "Continue",
        101 => "SwitchingProtocols",
        200 => "Ok",
        201 => "Created",
        202 => "Accepted",
        203 => "NonAuthoritativeInformation",
        204 => "NoContent",
        205 => "ResetContent",
        206 => "PartialContent",
        207 => "MultiStatus",
        300 => "MultipleChoices",
        301 => "MovedPermanently",
        302 => "Found",
        303 => "SeeOther",
        304 => "NotModified",
        307 => "TemporaryRedirect",
        308 => "PermanentRedirect",
        400 => "BadRequest",
        401 => "Unauthorized",
        402 => "PaymentRequired",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        408 => "RequestTimeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "LengthRequired",
        412 => "PreconditionFailed",
        413 => "PayloadTooLarge",
        414 => "UriTooLong",
        415 => "UnsupportedMediaType",
        416 => "RangeNotSatisfiable",
        417 => "ExpectationFailed",
        418 => "ImATeapot",
        422 => "UnprocessableEntity",
        423 => "Locked",
        424 => "FailedDependency",
        425 => "TooEarly",
        426 => "UpgradeRequired",
        428 => "PreconditionRequired",
        429 => "TooManyRequests",
        431 => "RequestHeaderFieldsTooLarge",
        451 => "UnavailableForLegalReasons",
        500 => "InternalServerError",
        501 => "NotImplemented",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        505 => "HttpVersionNotSupported",
        507 => "InsufficientStorage",
        511 => "NetworkAuthenticationRequired",
        other => return format!("Status{other}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(type_name("new_item"), "NewItem");
        assert_eq!(type_name("Pet.Owner"), "PetOwner");
        assert_eq!(type_name("404body"), "V404body");
        assert_eq!(type_name("Result"), "ResultModel");
        assert_eq!(snake_name("petType"), "pet_type");
        assert_eq!(snake_name("X-Request-Id"), "x_request_id");
        assert_eq!(snake_name("@type"), "type");
        assert_eq!(snake_name("2fa"), "n2fa");
        assert_eq!(ident("type").to_string(), "r#type");
        assert_eq!(ident("self").to_string(), "self_");
        assert_eq!(variant_name("in-progress"), "InProgress");
        assert_eq!(variant_name(""), "Empty");
        assert_eq!(variant_name("1st"), "V1st");
        let mut scope = Scope::new();
        assert_eq!(scope.claim("Item"), "Item");
        assert_eq!(scope.claim("Item"), "Item2");
        assert_eq!(scope.claim("id"), "id");
        assert_eq!(scope.claim("id"), "id_2");
    }
}
