//! Why a SCIM request was refused, independent of HTTP. The HTTP edge
//! (`http/scim`) maps each kind to its status and RFC 7644 §3.12 `scimType`.

/// The kinds of refusal Portico's SCIM service gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimErrorKind {
    /// The body is not JSON (`400 invalidSyntax`).
    InvalidSyntax,
    /// A value is missing or has the wrong type (`400 invalidValue`).
    InvalidValue,
    /// The `filter` does not parse (`400 invalidFilter`).
    InvalidFilter,
    /// A PATCH path is malformed or names nothing (`400 invalidPath`).
    InvalidPath,
    /// A PATCH `remove` without a target (`400 noTarget`).
    NoTarget,
    /// A unique attribute collides (`409 uniqueness`).
    Uniqueness,
    /// No such resource in this directory (`404`).
    NotFound,
    /// `If-Match` names an older version (`412`).
    VersionMismatch,
}

impl ScimErrorKind {
    /// The RFC 7644 §3.12 `scimType`, for the kinds that have one.
    pub fn scim_type(self) -> Option<&'static str> {
        match self {
            Self::InvalidSyntax => Some("invalidSyntax"),
            Self::InvalidValue => Some("invalidValue"),
            Self::InvalidFilter => Some("invalidFilter"),
            Self::InvalidPath => Some("invalidPath"),
            Self::NoTarget => Some("noTarget"),
            Self::Uniqueness => Some("uniqueness"),
            Self::NotFound | Self::VersionMismatch => None,
        }
    }
}

/// A refusal: its kind and what is wrong, for the IdP admin to read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ScimFault {
    pub kind: ScimErrorKind,
    pub detail: String,
}

impl ScimFault {
    pub fn new(kind: ScimErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into() }
    }

    /// `400 invalidValue`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ScimErrorKind::InvalidValue, detail)
    }
}
