//! SCIM groups as data: validation, the stored group with its members, its
//! SCIM representation and the normalized group of events and the API.
//! Members are users of the same directory; every membership change records
//! `directory.group.user_added` / `user_removed` (`store/scim_groups.rs`).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ScimFault;
use super::users::{external_id, required_name};

pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// A group as stored in `directory_groups`.
#[derive(Debug, Clone)]
pub struct StoredGroup {
    pub id: Uuid,
    pub directory_id: Uuid,
    pub organization_id: Uuid,
    pub display_name: String,
    pub resource: Value,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A member as stored: user id and its userName for `display`.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: Uuid,
    pub user_name: String,
}

/// The group the vendor's app sees in events and the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DirectoryGroup)]
pub struct NormalizedGroup {
    pub id: Uuid,
    pub directory_id: Uuid,
    pub organization_id: Uuid,
    pub idp_id: Option<String>,
    pub name: String,
    /// The SCIM resource as the IdP sent it.
    #[schema(value_type = Object)]
    pub raw_attributes: Value,
}

/// Payload of the membership events.
#[derive(Serialize)]
pub struct Membership<'a> {
    pub group: NormalizedGroup,
    pub user: &'a super::users::NormalizedUser,
}

impl StoredGroup {
    pub fn etag(&self) -> String {
        super::etag(self.version)
    }

    pub fn normalized(&self) -> NormalizedGroup {
        NormalizedGroup {
            id: self.id,
            directory_id: self.directory_id,
            organization_id: self.organization_id,
            idp_id: self.resource.get("externalId").and_then(Value::as_str).map(str::to_owned),
            name: self.display_name.clone(),
            raw_attributes: self.resource.clone(),
        }
    }

    /// The SCIM representation: tracked `members` first (with `display`
    /// and `$ref`), then the members kept as the IdP gave them.
    pub fn scim(&self, base: &str, members: &[Member]) -> Value {
        let mut out = self.resource.clone();
        let obj = out.as_object_mut().expect("stored resources are objects");
        obj.insert("id".into(), json!(self.id.to_string()));
        let others = match obj.remove("members") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let mut all: Vec<Value> = members
            .iter()
            .map(|m| {
                json!({ "value": m.user_id.to_string(), "display": m.user_name, "type": "User",
                        "$ref": format!("{base}/Users/{}", m.user_id) })
            })
            .collect();
        all.extend(others);
        if !all.is_empty() {
            obj.insert("members".into(), Value::Array(all));
        }
        let location = format!("{base}/Groups/{}", self.id);
        obj.insert("meta".into(), super::meta("Group", location, self.created_at, self.updated_at, self.version));
        out
    }
}

/// A validated incoming group.
#[derive(Debug, Clone)]
pub struct IncomingGroup {
    pub resource: Value,
    pub display_name: String,
    pub external_id: Option<String>,
    /// Members that name users by id (checked against the directory).
    pub members: BTreeSet<Uuid>,
}

/// Validates a Group resource into what is stored.
pub fn incoming(mut body: Value) -> Result<IncomingGroup, ScimFault> {
    let obj = body.as_object_mut().ok_or_else(|| ScimFault::invalid("the body must be a JSON object"))?;
    if !super::lists_schema(obj, GROUP_SCHEMA) {
        return Err(ScimFault::invalid(format!("`schemas` must include {GROUP_SCHEMA}")));
    }
    let display_name = required_name(obj, "displayName")?;
    let external_id = external_id(obj)?;
    // Members that name users of this directory are tracked (with events);
    // others (e.g. nested groups, or users not provisioned yet) are kept as
    // given.
    let mut members = BTreeSet::new();
    let mut others = Vec::new();
    let key = obj.keys().find(|k| k.eq_ignore_ascii_case("members")).cloned();
    match key.as_ref().map(|k| obj[k].clone()) {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for m in items {
                let value = m
                    .get("value")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ScimFault::invalid(format!("member {m} needs a string `value`")))?;
                match Uuid::try_parse(value) {
                    Ok(id) => {
                        members.insert(id);
                    }
                    Err(_) => others.push(m.clone()),
                }
            }
        }
        Some(_) => return Err(ScimFault::invalid("`members` must be an array")),
    }
    obj.retain(|k, _| !["id", "meta", "members"].iter().any(|ro| k.eq_ignore_ascii_case(ro)));
    if !others.is_empty() {
        obj.insert("members".into(), Value::Array(others));
    }
    Ok(IncomingGroup { resource: body, display_name, external_id, members })
}

/// The members of `wanted` that are not among `known` users, first one
/// named: a group may only track users of its own directory.
pub fn first_unknown_member(wanted: &BTreeSet<Uuid>, known: &BTreeSet<Uuid>) -> Option<Uuid> {
    wanted.iter().find(|id| !known.contains(id)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_by_id_are_tracked_and_others_kept_as_given() {
        let user = Uuid::now_v7();
        let group = incoming(json!({
            "schemas": [GROUP_SCHEMA], "displayName": "Eng", "id": "ignored",
            "members": [{ "value": user.to_string() }, { "value": "nested-group" }]
        }))
        .unwrap();
        assert_eq!(group.members, BTreeSet::from([user]));
        assert_eq!(group.resource["members"], json!([{ "value": "nested-group" }]));
        assert!(group.resource.get("id").is_none());
        assert!(incoming(json!({ "schemas": [GROUP_SCHEMA], "displayName": "Eng", "members": [{}] })).is_err());
    }
}
