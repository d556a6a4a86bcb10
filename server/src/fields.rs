//! Validation results shared by every boundary that reports them (API
//! problem details, portal forms, CLI messages), and the OpenAPI schema
//! helpers the API's types share.

use serde::Serialize;

/// One invalid field of a request body or query.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON pointer-ish path, e.g. `domains[1]`.
    #[schema(example = "domains[1]")]
    pub field: String,
    pub message: String,
}

/// Schemas that `#[derive(ToSchema)]` cannot infer from a field's Rust type:
/// the constant `object` of every API resource and the closed sets of words
/// that are stored as strings. Used with `#[schema(schema_with = …)]`.
pub mod schema {
    use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

    /// A string that is always `value` (an API resource's `object`).
    pub fn constant(value: &str) -> Object {
        one_of_words(&[value])
    }

    /// A string that is one of `words`.
    pub fn one_of_words(words: &[&str]) -> Object {
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(words.iter().copied())).build()
    }

    /// A stored state's words, from its enum (so the document and the code
    /// that parses them cannot disagree).
    pub fn domain_state() -> Object {
        one_of_words(&app::dto::DomainState::ALL.map(app::dto::DomainState::as_str))
    }

    pub fn directory_state() -> Object {
        one_of_words(&app::dto::DirectoryState::ALL.map(app::dto::DirectoryState::as_str))
    }

    pub fn connection_state() -> Object {
        one_of_words(&app::dto::ConnectionState::ALL.map(app::dto::ConnectionState::as_str))
    }

    /// `constant` for each `object` value of the API.
    macro_rules! objects {
        ($($name:ident),* $(,)?) => {
            /// The `object` field of each API resource.
            pub mod object {
                $(
                    #[doc = concat!("`\"", stringify!($name), "\"`")]
                    pub fn $name() -> utoipa::openapi::schema::Object {
                        super::constant(stringify!($name))
                    }
                )*
            }
        };
    }

    objects!(
        list,
        organization,
        domain,
        domain_lookup,
        directory,
        connection,
        portal_link,
        portal_access_revocation,
        webhook_endpoint,
        event,
        replay,
    );
}

/// Does this JSON text hold a NUL character (`\u0000`) in any string?
/// PostgreSQL text and jsonb cannot store one and SQLite would, so inputs
/// carrying it are refused up front on both engines. A raw NUL byte is
/// already invalid JSON; an escaped backslash followed by `u0000` is text.
pub fn json_has_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1..i + 6) == Some(b"u0000".as_slice()) {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod nul_tests {
    use super::json_has_nul;

    #[test]
    fn finds_escaped_nul_only() {
        assert!(json_has_nul(br#"{"a":"x\u0000y"}"#));
        assert!(json_has_nul(br#"{"a\u0000":1}"#));
        assert!(json_has_nul(br#"["\\\u0000"]"#), "escaped backslash, then an escaped NUL");
        assert!(!json_has_nul(br#"{"a":"C:\\u0000"}"#), "escaped backslash, then text");
        assert!(!json_has_nul(br#"{"a":"\u0001 u0000"}"#));
        assert!(!json_has_nul(b"\\u000"));
    }
}
