//! RFC 7643 §6–7 discovery: `/ResourceTypes` and `/Schemas`. The schemas
//! list what Portico stores and returns: every attribute below is kept as
//! the IdP sent it, except `password` (dropped, so not published) and the
//! read-only `groups` (computed from memberships).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{ScimError, scim_json};
use crate::http::AppState;
use crate::scim::groups::GROUP_SCHEMA;
use crate::scim::users::{ENTERPRISE_SCHEMA, USER_SCHEMA};

const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// One attribute definition.
#[derive(Clone, Copy)]
struct A {
    name: &'static str,
    kind: &'static str,
    multi: bool,
    required: bool,
    case_exact: bool,
    mutability: &'static str,
    returned: &'static str,
    uniqueness: &'static str,
}

const fn s(name: &'static str) -> A {
    A {
        name,
        kind: "string",
        multi: false,
        required: false,
        case_exact: false,
        mutability: "readWrite",
        returned: "default",
        uniqueness: "none",
    }
}

impl A {
    const fn kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }
    const fn multi(mut self) -> Self {
        self.multi = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn read_only(mut self) -> Self {
        self.mutability = "readOnly";
        self
    }
    const fn unique(mut self) -> Self {
        self.uniqueness = "server";
        self
    }
    const fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }

    fn json(self, subs: &[A]) -> Value {
        let mut v = json!({
            "name": self.name, "type": self.kind, "multiValued": self.multi, "required": self.required,
            "caseExact": self.case_exact, "mutability": self.mutability, "returned": self.returned,
            "uniqueness": self.uniqueness, "description": self.name,
        });
        if !subs.is_empty() {
            v["subAttributes"] = Value::Array(subs.iter().map(|a| a.json(&[])).collect());
        }
        if self.kind == "reference" {
            v["referenceTypes"] = json!(["external"]);
        }
        v
    }
}

/// `value`, `display`, `type`, `primary` of a multi-valued attribute.
fn multi_valued(name: &'static str, value_kind: &'static str) -> Value {
    s(name).multi().json(&[s("value").kind(value_kind), s("display"), s("type"), s("primary").kind("boolean")])
}

fn user_schema() -> Value {
    let name = s("name").kind("complex").json(&[
        s("formatted"),
        s("familyName"),
        s("givenName"),
        s("middleName"),
        s("honorificPrefix"),
        s("honorificSuffix"),
    ]);
    let address = s("addresses").kind("complex").multi().json(&[
        s("formatted"),
        s("streetAddress"),
        s("locality"),
        s("region"),
        s("postalCode"),
        s("country"),
        s("type"),
        s("primary").kind("boolean"),
    ]);
    let groups = s("groups").kind("complex").multi().read_only().json(&[
        s("value").read_only(),
        s("$ref").kind("reference").read_only(),
        s("display").read_only(),
        s("type").read_only(),
    ]);
    let mut attrs = vec![
        s("userName").required().unique().json(&[]),
        name,
        s("displayName").json(&[]),
        s("nickName").json(&[]),
        s("profileUrl").kind("reference").json(&[]),
        s("title").json(&[]),
        s("userType").json(&[]),
        s("preferredLanguage").json(&[]),
        s("locale").json(&[]),
        s("timezone").json(&[]),
        s("active").kind("boolean").json(&[]),
    ];
    for (n, k) in [("emails", "string"), ("phoneNumbers", "string"), ("ims", "string"), ("photos", "reference")] {
        let mut v = multi_valued(n, k);
        v["type"] = json!("complex");
        attrs.push(v);
    }
    attrs.push(address);
    attrs.push(groups);
    for n in ["entitlements", "roles", "x509Certificates"] {
        let mut v = multi_valued(n, if n == "x509Certificates" { "binary" } else { "string" });
        v["type"] = json!("complex");
        attrs.push(v);
    }
    schema(USER_SCHEMA, "User", "User Account", attrs)
}

fn enterprise_schema() -> Value {
    let manager =
        s("manager").kind("complex").json(&[s("value"), s("$ref").kind("reference"), s("displayName").read_only()]);
    let attrs = vec![
        s("employeeNumber").json(&[]),
        s("costCenter").json(&[]),
        s("organization").json(&[]),
        s("division").json(&[]),
        s("department").json(&[]),
        manager,
    ];
    schema(ENTERPRISE_SCHEMA, "EnterpriseUser", "Enterprise User", attrs)
}

fn group_schema() -> Value {
    let members = s("members").kind("complex").multi().json(&[
        s("value").exact(),
        s("$ref").kind("reference"),
        s("display").read_only(),
        s("type"),
    ]);
    schema(GROUP_SCHEMA, "Group", "Group", vec![s("displayName").required().json(&[]), members])
}

fn schema(id: &str, name: &str, description: &str, attributes: Vec<Value>) -> Value {
    json!({ "schemas": [SCHEMA_SCHEMA], "id": id, "name": name, "description": description, "attributes": attributes })
}

fn with_meta(mut v: Value, base: &str, kind: &str, id: &str) -> Value {
    v["meta"] = json!({ "resourceType": kind, "location": format!("{base}/{kind}s/{id}") });
    v
}

fn all_schemas(base: &str) -> Vec<Value> {
    [user_schema(), enterprise_schema(), group_schema()]
        .into_iter()
        .map(|s| {
            let id = s["id"].as_str().unwrap_or_default().to_owned();
            with_meta(s, base, "Schema", &id)
        })
        .collect()
}

fn all_resource_types(base: &str) -> Vec<Value> {
    let user = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA], "id": "User", "name": "User", "endpoint": "/Users",
        "description": "User Account", "schema": USER_SCHEMA,
        "schemaExtensions": [{ "schema": ENTERPRISE_SCHEMA, "required": false }]
    });
    let group = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA], "id": "Group", "name": "Group", "endpoint": "/Groups",
        "description": "Group", "schema": GROUP_SCHEMA, "schemaExtensions": []
    });
    vec![with_meta(user, base, "ResourceType", "User"), with_meta(group, base, "ResourceType", "Group")]
}

fn list(resources: Vec<Value>) -> Response {
    scim_json(json!({
        "schemas": [LIST_SCHEMA], "totalResults": resources.len(), "itemsPerPage": resources.len(),
        "startIndex": 1, "Resources": resources,
    }))
}

fn base(state: &AppState, directory: &str) -> String {
    format!("{}/scim/v2/{directory}", state.settings.public_url.trim_end_matches('/'))
}

pub async fn schemas(State(state): State<AppState>, Path(directory): Path<String>) -> Response {
    list(all_schemas(&base(&state, &directory)))
}

pub async fn schema_by_id(
    State(state): State<AppState>,
    Path((directory, id)): Path<(String, String)>,
) -> Result<Response, ScimError> {
    all_schemas(&base(&state, &directory))
        .into_iter()
        .find(|s| s["id"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(&id)))
        .map(scim_json)
        .ok_or_else(|| ScimError::new(StatusCode::NOT_FOUND, format!("schema {id} not found")))
}

pub async fn resource_types(State(state): State<AppState>, Path(directory): Path<String>) -> Response {
    list(all_resource_types(&base(&state, &directory)))
}

pub async fn resource_type_by_id(
    State(state): State<AppState>,
    Path((directory, id)): Path<(String, String)>,
) -> Result<Response, ScimError> {
    all_resource_types(&base(&state, &directory))
        .into_iter()
        .find(|s| s["id"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(&id)))
        .map(scim_json)
        .ok_or_else(|| ScimError::new(StatusCode::NOT_FOUND, format!("resource type {id} not found")))
}
