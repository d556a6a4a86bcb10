//! One logged SCIM request: method, path, status, latency and the error
//! detail of a request an IdP made, so the IT admin can see in the portal
//! why provisioning fails (written by `services::scim_log`).

use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

/// Rows kept per directory.
pub const KEEP_PER_DIRECTORY: i64 = 1000;
/// Longest path (with query) stored.
const MAX_PATH: usize = 400;
/// Longest error detail stored.
const MAX_DETAIL: usize = 300;

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScimRequest {
    #[serde(skip)]
    pub directory_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub latency_us: i64,
    pub detail: Option<String>,
}

impl ScimRequest {
    pub fn new(directory_id: Uuid, method: &str, path: &str, status: u16, latency: Duration) -> Self {
        Self {
            directory_id,
            occurred_at: OffsetDateTime::now_utc(),
            method: method.to_owned(),
            path: truncate(path, MAX_PATH),
            status: i32::from(status),
            latency_us: i64::try_from(latency.as_micros()).unwrap_or(i64::MAX),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: Option<&str>) -> Self {
        self.detail = detail.map(|d| truncate(d, MAX_DETAIL));
        self
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The error detail a SCIM error response carries, for the log.
#[derive(Debug, Clone)]
pub struct LoggedDetail(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_cut_on_a_char_boundary() {
        let path = format!("/Users?filter={}", "é".repeat(300));
        let cut = truncate(&path, MAX_PATH);
        assert!(cut.len() <= MAX_PATH + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("/Users", MAX_PATH), "/Users");
    }
}
