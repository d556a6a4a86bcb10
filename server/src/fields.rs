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
