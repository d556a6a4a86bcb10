//! Validation results shared by every boundary that reports them (API
//! problem details, portal forms, CLI messages).

use serde::Serialize;

/// One invalid field of a request body or query.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer-ish path, e.g. `domains[1]`.
    pub field: String,
    pub message: String,
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
