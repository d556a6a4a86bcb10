//! Domain verification by DNS TXT: each domain of an organization gets a
//! token; publishing `<txt_label>.<domain> TXT "portico-verification=<token>"`
//! proves control. Pending domains are re-checked in the background with
//! backoff and fail after `domains.pending_timeout_secs`. A verified domain
//! belongs to exactly one organization.
//!
//! This module is the model: records, the verdict on a lookup and the state
//! transition of one check ([`decide`]), all pure. The lookups are
//! `services/dns.rs`, the checks and the background worker
//! `services/domains.rs`, the SQL `store/domains.rs`.

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::config::DomainSettings;
use crate::events::EventKind;
use crate::orgs::DomainState;

/// Prefix of the TXT value; the token follows it.
pub const TXT_VALUE_PREFIX: &str = "portico-verification=";

/// The DNS record an IT admin publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TxtRecord {
    /// Always `TXT`.
    #[serde(rename = "type")]
    #[schema(schema_with = txt)]
    pub kind: &'static str,
    /// Fully qualified name, without the trailing dot.
    pub name: String,
    /// The label relative to the domain (what most DNS consoles ask for).
    pub host: String,
    /// `portico-verification=<token>`.
    pub value: String,
}

fn txt() -> utoipa::openapi::schema::Object {
    crate::fields::schema::constant("TXT")
}

/// A domain with its verification details, as the API, portal and events
/// show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = VerifiableDomain)]
pub struct Domain {
    #[schema(schema_with = crate::fields::schema::object::domain)]
    pub object: &'static str,
    pub id: Uuid,
    pub organization_id: Uuid,
    #[schema(example = "acme.com")]
    pub domain: String,
    #[schema(schema_with = crate::fields::schema::domain_state)]
    pub state: DomainState,
    pub verification: TxtRecord,
    /// Checks made so far (manual and background).
    pub checks: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_checked_at: Option<OffsetDateTime>,
    /// What the last check found, in words.
    pub last_result: Option<String>,
    /// When the next background check is due (pending domains only).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_check_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub failed_at: Option<OffsetDateTime>,
    /// When a pending domain fails if still unverified.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What one lookup of the challenge record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The TXT strings at the name (multi-string records joined), possibly
    /// empty when the name exists without TXT records.
    Found(Vec<String>),
    /// The name does not exist.
    NxDomain,
    /// The resolver could not answer: timeout, refused, network error.
    Failed(String),
}

/// Record naming and timing rules, from the settings.
#[derive(Debug, Clone)]
pub struct Policy {
    pub txt_label: String,
    pub recheck_base: Duration,
    pub recheck_max: Duration,
    pub pending_timeout: Duration,
}

impl Policy {
    pub fn from_settings(s: &DomainSettings) -> Self {
        Self {
            txt_label: s.txt_label.clone(),
            recheck_base: Duration::seconds(s.recheck_base_secs as i64),
            recheck_max: Duration::seconds(s.recheck_max_secs as i64),
            pending_timeout: Duration::seconds(s.pending_timeout_secs as i64),
        }
    }

    pub fn record(&self, domain: &str, token: &str) -> TxtRecord {
        TxtRecord {
            kind: "TXT",
            name: format!("{}.{domain}", self.txt_label),
            host: self.txt_label.clone(),
            value: format!("{TXT_VALUE_PREFIX}{token}"),
        }
    }

    /// Delay before the next background check after `checks` checks.
    pub fn backoff(&self, checks: i64) -> Duration {
        let exp = (checks.max(1) - 1).min(20) as u32;
        (self.recheck_base * 2i32.pow(exp.min(30))).min(self.recheck_max)
    }

    /// When a pending domain created at `created_at` fails if still
    /// unverified.
    pub fn deadline(&self, created_at: OffsetDateTime) -> OffsetDateTime {
        created_at + self.pending_timeout
    }
}

/// The outcome of one check, judged against the expected value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Verified,
    /// Looked up fine, but the record is not there (yet).
    NotFound(String),
    /// The lookup itself failed; retried later.
    LookupFailed(String),
}

/// Judges a lookup: the expected value must be one of the TXT strings
/// (surrounding whitespace ignored, case-sensitive token).
pub fn judge(lookup: &Lookup, record: &TxtRecord) -> Verdict {
    match lookup {
        Lookup::Found(values) if values.iter().any(|v| v.trim() == record.value) => Verdict::Verified,
        Lookup::Found(values) if values.is_empty() => {
            Verdict::NotFound(format!("no TXT record at {} yet", record.name))
        }
        Lookup::Found(values) => {
            let shown: Vec<String> = values.iter().take(5).map(|v| format!("{:?}", truncate(v, 120))).collect();
            Verdict::NotFound(format!(
                "TXT records at {} do not contain the expected value; found {}",
                record.name,
                shown.join(", ")
            ))
        }
        Lookup::NxDomain => Verdict::NotFound(format!("{} does not exist (NXDOMAIN)", record.name)),
        Lookup::Failed(e) => Verdict::LookupFailed(format!("DNS lookup failed ({e}); will retry")),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A domain's state before a check, as stored.
#[derive(Debug, Clone, Copy)]
pub struct BeforeCheck<'a> {
    pub domain: &'a str,
    pub state: DomainState,
    pub created_at: OffsetDateTime,
    /// Checks made before this one.
    pub checks: i64,
}

/// What one check changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub state: DomainState,
    /// What the check found, in words (shown to the IT admin).
    pub result: String,
    /// Checks made, this one included.
    pub checks: i64,
    /// The next background check; `None` once the domain is settled.
    pub next_check_at: Option<OffsetDateTime>,
    /// The event to record with the change, if the state settled.
    pub event: Option<EventKind>,
}

/// The verification state machine: what a check with `verdict` does to a
/// domain in state `before` at `now`. `taken_elsewhere` says whether
/// another organization has already verified the same name (asked only
/// when the record was found). `expected` is the TXT value looked for.
pub fn decide(
    policy: &Policy,
    before: BeforeCheck<'_>,
    verdict: &Verdict,
    taken_elsewhere: bool,
    expected: &str,
    now: OffsetDateTime,
) -> Transition {
    let checks = before.checks + 1;
    // A pending domain is checked again with backoff, never after its deadline.
    let next_check = || {
        (before.state == DomainState::Pending).then(|| {
            let deadline = policy.deadline(before.created_at);
            (now + policy.backoff(checks)).min(deadline.max(now))
        })
    };
    let unchanged =
        |result: String| Transition { state: before.state, result, checks, next_check_at: next_check(), event: None };
    match verdict {
        Verdict::Verified if taken_elsewhere => {
            unchanged(format!("record found, but {} is already verified by another organization", before.domain))
        }
        Verdict::Verified => Transition {
            state: DomainState::Verified,
            result: format!("found {expected}"),
            checks,
            next_check_at: None,
            event: Some(EventKind::DomainVerified),
        },
        Verdict::NotFound(msg) | Verdict::LookupFailed(msg) => {
            if before.state == DomainState::Pending && now >= policy.deadline(before.created_at) {
                Transition {
                    state: DomainState::Failed,
                    result: msg.clone(),
                    checks,
                    next_check_at: None,
                    event: Some(EventKind::DomainVerificationFailed),
                }
            } else {
                unchanged(msg.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::from_settings(&DomainSettings::default())
    }

    #[test]
    fn judge_accepts_only_the_exact_value() {
        let record = policy().record("acme.com", "abc123");
        assert_eq!(record.name, "_portico-verification.acme.com");
        assert_eq!(record.value, "portico-verification=abc123");
        let found = |v: &[&str]| Lookup::Found(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(judge(&found(&["v=spf1 -all", " portico-verification=abc123 "]), &record), Verdict::Verified);
        assert!(
            matches!(judge(&found(&["portico-verification=abc124"]), &record), Verdict::NotFound(m) if m.contains("abc124"))
        );
        assert!(matches!(judge(&found(&["portico-verification=ABC123"]), &record), Verdict::NotFound(_)));
        assert!(matches!(judge(&found(&[]), &record), Verdict::NotFound(m) if m.contains("no TXT")));
        assert!(matches!(judge(&Lookup::NxDomain, &record), Verdict::NotFound(m) if m.contains("NXDOMAIN")));
        assert!(matches!(judge(&Lookup::Failed("timeout".into()), &record), Verdict::LookupFailed(_)));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = policy();
        assert_eq!(p.backoff(1), Duration::minutes(1));
        assert_eq!(p.backoff(2), Duration::minutes(2));
        assert_eq!(p.backoff(4), Duration::minutes(8));
        assert_eq!(p.backoff(40), Duration::hours(6));
    }

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (crate::secrets::domain_verification_token(), crate::secrets::domain_verification_token());
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    fn pending(created_at: OffsetDateTime, checks: i64) -> BeforeCheck<'static> {
        BeforeCheck { domain: "acme.com", state: DomainState::Pending, created_at, checks }
    }

    #[test]
    fn a_found_record_verifies_a_pending_domain_once() {
        let (p, now) = (policy(), OffsetDateTime::now_utc());
        let t = decide(&p, pending(now, 2), &Verdict::Verified, false, "portico-verification=x", now);
        assert_eq!(t.state, DomainState::Verified);
        assert_eq!(t.checks, 3);
        assert_eq!(t.next_check_at, None);
        assert_eq!(t.event, Some(EventKind::DomainVerified));
        assert_eq!(t.result, "found portico-verification=x");
    }

    #[test]
    fn a_name_verified_elsewhere_stays_pending_and_is_retried() {
        let (p, now) = (policy(), OffsetDateTime::now_utc());
        let t = decide(&p, pending(now, 0), &Verdict::Verified, true, "v", now);
        assert_eq!(t.state, DomainState::Pending);
        assert_eq!(t.event, None);
        assert!(t.result.contains("acme.com is already verified by another organization"), "{}", t.result);
        assert_eq!(t.next_check_at, Some(now + p.backoff(1)));
    }

    #[test]
    fn a_missing_record_backs_off_until_the_deadline_then_fails() {
        let (p, now) = (policy(), OffsetDateTime::now_utc());
        let missing = Verdict::NotFound("no TXT record yet".into());
        // Early: retried with backoff, no event.
        let t = decide(&p, pending(now, 3), &missing, false, "v", now);
        assert_eq!((t.state, t.event), (DomainState::Pending, None));
        assert_eq!(t.next_check_at, Some(now + p.backoff(4)));
        // Close to the deadline: the next check is at the deadline, not later.
        let created = now - p.pending_timeout + Duration::seconds(30);
        let t = decide(&p, pending(created, 10), &missing, false, "v", now);
        assert_eq!(t.next_check_at, Some(p.deadline(created)));
        // At the deadline: failed, with its event, and no further checks.
        let created = now - p.pending_timeout;
        let t = decide(&p, pending(created, 10), &Verdict::LookupFailed("timeout".into()), false, "v", now);
        assert_eq!(t.state, DomainState::Failed);
        assert_eq!(t.event, Some(EventKind::DomainVerificationFailed));
        assert_eq!(t.next_check_at, None);
        assert_eq!(t.result, "timeout");
    }

    #[test]
    fn a_failed_domain_can_still_be_verified_by_hand_but_is_not_rescheduled() {
        let (p, now) = (policy(), OffsetDateTime::now_utc());
        let failed = BeforeCheck { state: DomainState::Failed, ..pending(now - Duration::days(30), 40) };
        let t = decide(&p, failed, &Verdict::NotFound("nothing".into()), false, "v", now);
        assert_eq!((t.state, t.next_check_at, t.event), (DomainState::Failed, None, None));
        let t = decide(&p, failed, &Verdict::Verified, false, "v", now);
        assert_eq!((t.state, t.event), (DomainState::Verified, Some(EventKind::DomainVerified)));
    }
}
