//! SCIM users as data: validation of what an IdP sends, the stored
//! resource, its SCIM representation and the normalized user the vendor's
//! app sees. Provisioning semantics (`store/scim_users.rs`): a second POST
//! of a userName is a `409 uniqueness`, unless the existing user was
//! deprovisioned (`active: false`), which restores it; `active: false`
//! deprovisions.

use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ScimFault;
use crate::events::{EventKind, NewEvent};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A user as stored in `directory_users`.
#[derive(Debug, Clone)]
pub struct StoredUser {
    pub id: Uuid,
    pub directory_id: Uuid,
    pub organization_id: Uuid,
    pub active: bool,
    /// The resource as the IdP sent it (validated by [`incoming`]).
    pub resource: Value,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The user the vendor's app sees in events and the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DirectoryUser)]
pub struct NormalizedUser {
    pub id: Uuid,
    pub directory_id: Uuid,
    pub organization_id: Uuid,
    pub idp_id: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: String,
    /// `active` or `inactive`.
    #[schema(schema_with = user_state)]
    pub state: &'static str,
    /// Groups the user belongs to (filled by the vendor API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupRef>>,
    /// The SCIM resource as the IdP sent it.
    #[schema(value_type = Object)]
    pub raw_attributes: Value,
}

fn user_state() -> utoipa::openapi::schema::Object {
    crate::fields::schema::one_of_words(&["active", "inactive"])
}

/// A group as listed on a user.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupRef {
    #[serde(skip)]
    pub user_id: Uuid,
    pub id: Uuid,
    pub name: String,
}

/// Filters of the vendor's user listing.
#[derive(Debug, Default)]
pub struct UserQuery {
    pub after: Option<Uuid>,
    pub limit: i64,
    /// Exact, case-insensitive.
    pub email: Option<String>,
    /// Exact, case-insensitive.
    pub username: Option<String>,
    pub active: Option<bool>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)?;
    }
    cur.as_str()
}

/// Emails of a resource, primary first.
fn emails(resource: &Value) -> Vec<String> {
    let mut list: Vec<(bool, String)> = resource
        .get("emails")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|e| {
                    let value = e.get("value")?.as_str()?.trim().to_owned();
                    let primary = e.get("primary").is_some_and(|p| p == true || p == "true" || p == "True");
                    (!value.is_empty()).then_some((primary, value))
                })
                .collect()
        })
        .unwrap_or_default();
    list.sort_by_key(|(primary, _)| !primary);
    list.into_iter().map(|(_, v)| v).collect()
}

impl StoredUser {
    pub fn normalized(&self) -> NormalizedUser {
        let r = &self.resource;
        NormalizedUser {
            id: self.id,
            directory_id: self.directory_id,
            organization_id: self.organization_id,
            idp_id: str_at(r, &["externalId"]).map(str::to_owned),
            email: emails(r).into_iter().next(),
            first_name: str_at(r, &["name", "givenName"]).map(str::to_owned),
            last_name: str_at(r, &["name", "familyName"]).map(str::to_owned),
            username: str_at(r, &["userName"]).unwrap_or_default().to_owned(),
            state: if self.active { "active" } else { "inactive" },
            groups: None,
            raw_attributes: r.clone(),
        }
    }

    pub fn etag(&self) -> String {
        super::etag(self.version)
    }

    /// The SCIM representation, with `meta.location` under `base` (the
    /// directory's SCIM base URL).
    pub fn scim(&self, base: &str) -> Value {
        let mut out = self.resource.clone();
        let obj = out.as_object_mut().expect("stored resources are objects");
        obj.insert("id".into(), json!(self.id.to_string()));
        let location = format!("{base}/Users/{}", self.id);
        obj.insert("meta".into(), super::meta("User", location, self.created_at, self.updated_at, self.version));
        out
    }

    /// The event recording that this user replaced `before` (None: was
    /// created).
    pub fn change_event(&self, before: Option<&StoredUser>) -> NewEvent {
        let kind = if before.is_none() { EventKind::DirectoryUserCreated } else { EventKind::DirectoryUserUpdated };
        NewEvent::new(kind, Some(self.organization_id), &self.normalized())
    }
}

/// A validated incoming user: what is stored and its key columns.
#[derive(Debug, Clone)]
pub struct IncomingUser {
    pub resource: Value,
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub emails: Vec<String>,
}

impl IncomingUser {
    /// The unique key of `userName` (case-insensitive).
    pub fn user_name_key(&self) -> String {
        self.user_name.to_lowercase()
    }

    /// The email index keys: lower-cased, sorted, without duplicates.
    pub fn email_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.emails.iter().map(|e| e.to_lowercase()).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The same user, re-provisioned: `active` again.
    pub fn restored(mut self) -> Self {
        self.active = true;
        self.resource["active"] = Value::Bool(true);
        self
    }
}

/// `"True"`/`"false"` strings count as booleans: Entra sends them.
fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A required, non-empty string attribute (`userName`, a group's
/// `displayName`), trimmed; attribute names match case-insensitively.
pub fn required_name(obj: &serde_json::Map<String, Value>, name: &str) -> Result<String, ScimFault> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ScimFault::invalid(format!("`{name}` is required and must be a non-empty string")))
}

/// The optional `externalId` (a string or absent/null).
pub fn external_id(obj: &serde_json::Map<String, Value>) -> Result<Option<String>, ScimFault> {
    match obj.iter().find(|(k, _)| k.eq_ignore_ascii_case("externalId")).map(|(_, v)| v) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimFault::invalid("`externalId` must be a string")),
    }
}

/// Validates a User resource (a POST/PUT body, or a stored resource after a
/// PATCH) into what is stored.
pub fn incoming(mut body: Value) -> Result<IncomingUser, ScimFault> {
    let obj = body.as_object_mut().ok_or_else(|| ScimFault::invalid("the body must be a JSON object"))?;
    if !super::lists_schema(obj, USER_SCHEMA) {
        return Err(ScimFault::invalid(format!("`schemas` must include {USER_SCHEMA}")));
    }
    // Server-assigned attributes are ignored on input (RFC 7643 §3.1).
    obj.retain(|k, _| {
        !k.eq_ignore_ascii_case("id") && !k.eq_ignore_ascii_case("meta") && !k.eq_ignore_ascii_case("password")
    });
    let user_name = required_name(obj, "userName")?;
    let external_id = external_id(obj)?;
    let active_key = obj.keys().find(|k| k.eq_ignore_ascii_case("active")).cloned();
    let active = match active_key.as_ref().map(|k| &obj[k]) {
        None | Some(Value::Null) => true,
        Some(v) => boolean(v).ok_or_else(|| ScimFault::invalid("`active` must be a boolean"))?,
    };
    // Stored as a boolean under its canonical name when the IdP set it.
    if let Some(k) = active_key {
        let given = obj.remove(&k).unwrap_or(Value::Null);
        if !given.is_null() {
            obj.insert("active".into(), Value::Bool(active));
        }
    }
    if obj.get("emails").is_some_and(|e| !e.is_array()) {
        return Err(ScimFault::invalid("`emails` must be an array"));
    }
    super::project::sync_extension_schemas(&mut body);
    let emails = emails(&body);
    Ok(IncomingUser { resource: body, user_name, external_id, active, emails })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_string_booleans_are_stored_as_booleans() {
        let user = incoming(json!({ "schemas": [USER_SCHEMA], "userName": " ada ", "Active": "False" })).unwrap();
        assert_eq!(user.user_name, "ada");
        assert!(!user.active);
        assert_eq!(user.resource["active"], json!(false));
        assert!(user.resource.get("Active").is_none());
    }

    #[test]
    fn server_assigned_attributes_are_dropped_and_emails_put_primary_first() {
        let user = incoming(json!({
            "schemas": [USER_SCHEMA], "userName": "ada", "id": "x", "password": "p",
            "emails": [{ "value": "B@x.io" }, { "value": "a@x.io", "primary": "True" }, { "value": "b@x.io" }]
        }))
        .unwrap();
        assert!(user.resource.get("id").is_none() && user.resource.get("password").is_none());
        assert_eq!(user.emails, ["a@x.io", "B@x.io", "b@x.io"]);
        assert_eq!(user.email_keys(), ["a@x.io", "b@x.io"]);
    }

    #[test]
    fn refuses_what_cannot_be_stored() {
        for bad in [
            json!([]),
            json!({ "userName": "ada" }),
            json!({ "schemas": [USER_SCHEMA], "userName": "  " }),
            json!({ "schemas": [USER_SCHEMA], "userName": "ada", "active": 1 }),
            json!({ "schemas": [USER_SCHEMA], "userName": "ada", "emails": "a@x.io" }),
            json!({ "schemas": [USER_SCHEMA], "userName": "ada", "externalId": 7 }),
        ] {
            assert_eq!(incoming(bad.clone()).unwrap_err().kind, super::super::ScimErrorKind::InvalidValue, "{bad}");
        }
    }
}
