//! `/scim/v2/{directory}/Users`: create, read, list with filters and
//! pagination, replace, delete. Provisioning semantics: a second POST of a
//! userName is a `409 uniqueness`, unless the existing user was deprovisioned
//! (`active: false`), which restores it; `active: false` deprovisions.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::filter::{self, Indexed};
use super::{ScimBody, ScimError, scim_json};
use crate::db::events::{NewEvent, insert_event, kinds};
use crate::db::{BeginWrite, Store, StoreError, with_pool};
use crate::directories::ScimPrincipal;
use crate::http::AppState;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Largest page a client may ask for.
const MAX_COUNT: i64 = 1000;

#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct UserRow {
    pub(super) id: Uuid,
    directory_id: Uuid,
    organization_id: Uuid,
    active: bool,
    resource: Json<Value>,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, directory_id, organization_id, active, resource, version, created_at, updated_at";

/// The user the vendor's app sees in events and the API.
#[derive(Debug, Serialize)]
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
    pub state: &'static str,
    /// Groups the user belongs to (filled by the vendor API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupRef>>,
    pub raw_attributes: Value,
}

/// A group as listed on a user.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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

impl UserRow {
    pub(super) fn normalized(&self) -> NormalizedUser {
        let r = &self.resource.0;
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

    fn etag(&self) -> String {
        super::etag(self.version)
    }

    /// The SCIM representation.
    fn scim(&self, base: &str) -> Value {
        let mut out = self.resource.0.clone();
        let obj = out.as_object_mut().expect("stored resources are objects");
        obj.insert("id".into(), json!(self.id.to_string()));
        let location = format!("{base}/Users/{}", self.id);
        obj.insert("meta".into(), super::meta("User", location, self.created_at, self.updated_at, self.version));
        out
    }
}

/// A validated incoming user: what is stored and its key columns.
struct IncomingUser {
    resource: Value,
    user_name: String,
    external_id: Option<String>,
    active: bool,
    emails: Vec<String>,
}

pub(super) fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError { status: StatusCode::BAD_REQUEST, scim_type: Some("invalidValue"), detail: detail.into() }
}

pub(super) fn parse_body(body: &[u8]) -> Result<Value, ScimError> {
    let value = serde_json::from_slice(body).map_err(|e| ScimError {
        status: StatusCode::BAD_REQUEST,
        scim_type: Some("invalidSyntax"),
        detail: format!("malformed JSON: {e}"),
    })?;
    if crate::http::error::json_has_nul(body) {
        return Err(invalid("strings must not contain NUL characters (\\u0000)"));
    }
    Ok(value)
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
pub(super) fn required_name(obj: &serde_json::Map<String, Value>, name: &str) -> Result<String, ScimError> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| invalid(format!("`{name}` is required and must be a non-empty string")))
}

/// The optional `externalId` (a string or absent/null).
pub(super) fn external_id(obj: &serde_json::Map<String, Value>) -> Result<Option<String>, ScimError> {
    match obj.iter().find(|(k, _)| k.eq_ignore_ascii_case("externalId")).map(|(_, v)| v) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid("`externalId` must be a string")),
    }
}

fn incoming(mut body: Value) -> Result<IncomingUser, ScimError> {
    let obj = body.as_object_mut().ok_or_else(|| invalid("the body must be a JSON object"))?;
    if !super::lists_schema(obj, USER_SCHEMA) {
        return Err(invalid(format!("`schemas` must include {USER_SCHEMA}")));
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
        Some(v) => boolean(v).ok_or_else(|| invalid("`active` must be a boolean"))?,
    };
    // Stored as a boolean under its canonical name when the IdP set it.
    if let Some(k) = active_key {
        let given = obj.remove(&k).unwrap_or(Value::Null);
        if !given.is_null() {
            obj.insert("active".into(), Value::Bool(active));
        }
    }
    if obj.get("emails").is_some_and(|e| !e.is_array()) {
        return Err(invalid("`emails` must be an array"));
    }
    super::project::sync_extension_schemas(&mut body);
    let emails = emails(&body);
    Ok(IncomingUser { resource: body, user_name, external_id, active, emails })
}

pub(super) fn base_url(state: &AppState, principal: &ScimPrincipal) -> String {
    format!("{}/scim/v2/{}", state.settings.public_url.trim_end_matches('/'), principal.directory_id)
}

fn with_etag(status: StatusCode, row: &UserRow, base: &str) -> Response {
    let body = row.scim(base);
    versioned(status, body, &row.etag())
}

/// A resource response with `ETag`, and `Location` when created.
pub(super) fn versioned(status: StatusCode, body: Value, etag: &str) -> Response {
    let location = body["meta"]["location"].as_str().map(str::to_owned);
    let mut response = scim_json(body);
    *response.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED {
        if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LOCATION, v);
        }
    }
    response
}

fn not_found(id: &str) -> ScimError {
    ScimError::new(StatusCode::NOT_FOUND, format!("User {id} not found"))
}

/// `If-Match` must name the current version when present.
pub(super) fn check_if_match(headers: &HeaderMap, etag: &str) -> Result<(), ScimError> {
    match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        Some(v) if v.trim() != "*" && v.split(',').all(|t| t.trim() != etag) => Err(ScimError {
            status: StatusCode::PRECONDITION_FAILED,
            scim_type: None,
            detail: format!("the resource changed; current version is {etag}"),
        }),
        _ => Ok(()),
    }
}

pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let user = incoming(parse_body(&body)?)?;
    let row = state.store.scim_create_user(&principal, user).await?;
    Ok(with_etag(StatusCode::CREATED, &row, &base_url(&state, &principal)))
}

pub async fn get_one(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<ListParams>,
) -> Result<Response, ScimError> {
    let uuid = Uuid::try_parse(&id).map_err(|_| not_found(&id))?;
    let row = state.store.scim_get_user(&principal, uuid).await?.ok_or_else(|| not_found(&id))?;
    let mut body = row.scim(&base_url(&state, &principal));
    super::project::project(&mut body, params.attributes.as_deref(), params.excluded_attributes.as_deref());
    Ok(versioned(StatusCode::OK, body, &row.etag()))
}

pub async fn replace(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let uuid = Uuid::try_parse(&id).map_err(|_| not_found(&id))?;
    let current = state.store.scim_get_user(&principal, uuid).await?.ok_or_else(|| not_found(&id))?;
    check_if_match(&headers, &current.etag())?;
    let user = incoming(parse_body(&body)?)?;
    let row = state.store.scim_replace_user(&principal, uuid, user).await?.ok_or_else(|| not_found(&id))?;
    Ok(with_etag(StatusCode::OK, &row, &base_url(&state, &principal)))
}

/// RFC 7644 §3.5.2: every operation applies, or none does.
pub async fn patch(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let uuid = Uuid::try_parse(&id).map_err(|_| not_found(&id))?;
    let request = parse_body(&body)?;
    let current = state.store.scim_get_user(&principal, uuid).await?.ok_or_else(|| not_found(&id))?;
    check_if_match(&headers, &current.etag())?;
    let base = base_url(&state, &principal);
    let mut resource = current.scim(&base);
    super::patch::apply(&mut resource, &request)?;
    let user = incoming(resource)?;
    let row = state.store.scim_replace_user(&principal, uuid, user).await?.ok_or_else(|| not_found(&id))?;
    Ok(with_etag(StatusCode::OK, &row, &base))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ScimError> {
    let uuid = Uuid::try_parse(&id).map_err(|_| not_found(&id))?;
    let current = state.store.scim_get_user(&principal, uuid).await?.ok_or_else(|| not_found(&id))?;
    check_if_match(&headers, &current.etag())?;
    if state.store.scim_delete_user(&principal, uuid).await? { Ok(StatusCode::NO_CONTENT) } else { Err(not_found(&id)) }
}

#[derive(Deserialize, Default)]
pub struct ListParams {
    pub(super) filter: Option<String>,
    #[serde(rename = "startIndex")]
    pub(super) start_index: Option<String>,
    pub(super) count: Option<String>,
    pub(super) attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    pub(super) excluded_attributes: Option<String>,
}

pub(super) fn int_param(raw: Option<&str>, name: &str) -> Result<Option<i64>, ScimError> {
    raw.map(|s| s.trim().parse::<i64>().map_err(|_| invalid(format!("`{name}` must be an integer")))).transpose()
}

pub async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Query(params): Query<ListParams>,
) -> Result<Response, ScimError> {
    let (start, count) = paging(&params)?;
    let filter = parse_filter(&params)?;
    if filter.is_none() {
        let (total, rows) = state
            .store
            .resources_page::<UserRow>(
                "directory_users",
                COLUMNS,
                "user_name_key",
                principal.directory_id,
                start,
                count,
            )
            .await?;
        let base = base_url(&state, &principal);
        return Ok(page_response(rows.iter().map(|r| r.scim(&base)).collect(), total, start, &params));
    }
    let all = matching(&state, &principal, filter.as_ref()).await?;
    Ok(list_response(all, start, count, &params))
}

/// Every user of the directory matching `filter`, as SCIM resources.
pub(super) async fn matching(
    state: &AppState,
    principal: &ScimPrincipal,
    filter: Option<&scim_v2::filter::Filter>,
) -> Result<Vec<Value>, ScimError> {
    let candidates = match filter.and_then(filter::indexed) {
        Some(lookup) => state.store.scim_users_by(principal, &lookup).await?,
        None => state.store.scim_all_users(principal).await?,
    };
    let base = base_url(state, principal);
    Ok(candidates
        .iter()
        .map(|row| row.scim(&base))
        .filter(|resource| filter.is_none_or(|f| filter::matches(f, resource)))
        .collect())
}

/// `startIndex` (1-based, < 1 means 1) and `count` (clamped to 0..=1000).
pub(super) fn paging(params: &ListParams) -> Result<(i64, i64), ScimError> {
    let start = int_param(params.start_index.as_deref(), "startIndex")?.unwrap_or(1).max(1);
    let count = int_param(params.count.as_deref(), "count")?.unwrap_or(100).clamp(0, MAX_COUNT);
    Ok((start, count))
}

/// The parsed `filter` parameter, or `400 invalidFilter`.
pub(super) fn parse_filter(params: &ListParams) -> Result<Option<scim_v2::filter::Filter>, ScimError> {
    match params.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        None => Ok(None),
        Some(raw) if raw.contains('\0') => Err(ScimError {
            status: StatusCode::BAD_REQUEST,
            scim_type: Some("invalidFilter"),
            detail: "the filter must not contain NUL characters".into(),
        }),
        Some(raw) => raw.parse::<scim_v2::filter::Filter>().map(Some).map_err(|e| ScimError {
            status: StatusCode::BAD_REQUEST,
            scim_type: Some("invalidFilter"),
            detail: format!("invalid filter {raw:?}: {e}"),
        }),
    }
}

/// A ListResponse page of already-filtered resources, projected.
pub(super) fn list_response(all: Vec<Value>, start: i64, count: i64, params: &ListParams) -> Response {
    let total = all.len() as i64;
    let page = all.into_iter().skip((start - 1) as usize).take(count as usize).collect();
    page_response(page, total, start, params)
}

/// A ListResponse of one page (`total` matches in all), projected.
pub(super) fn page_response(mut page: Vec<Value>, total: i64, start: i64, params: &ListParams) -> Response {
    for r in &mut page {
        super::project::project(r, params.attributes.as_deref(), params.excluded_attributes.as_deref());
    }
    scim_json(json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "itemsPerPage": page.len(),
        "startIndex": start,
        "Resources": page,
    }))
}

fn uniqueness(user_name: &str) -> ScimError {
    ScimError {
        status: StatusCode::CONFLICT,
        scim_type: Some("uniqueness"),
        detail: format!("a user with userName {user_name:?} already exists in this directory"),
    }
}

/// Writes the email index rows of `$user_id`.
macro_rules! index_emails {
    ($tx:expr, $principal:expr, $user_id:expr, $emails:expr, fresh = $fresh:expr) => {{
        if !$fresh {
            sqlx::query("DELETE FROM directory_user_emails WHERE user_id = $1")
                .bind($user_id)
                .execute(&mut *$tx)
                .await?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for email in $emails {
            let key = email.to_lowercase();
            if seen.insert(key.clone()) {
                sqlx::query("INSERT INTO directory_user_emails (user_id, directory_id, email_key) VALUES ($1, $2, $3)")
                    .bind($user_id)
                    .bind($principal.directory_id)
                    .bind(key)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    }};
}

/// The event recorded when `$after` replaced `$before` (None: created).
fn change_event(before: Option<&UserRow>, after: &UserRow) -> NewEvent {
    let kind = if before.is_none() { kinds::DIRECTORY_USER_CREATED } else { kinds::DIRECTORY_USER_UPDATED };
    NewEvent::new(kind, Some(after.organization_id), &after.normalized())
}

impl Store {
    /// The vendor's view of a directory's users, oldest first, with their
    /// groups; `(page, has_more)`.
    pub async fn directory_users(
        &self,
        directory: Uuid,
        q: &UserQuery,
    ) -> Result<(Vec<NormalizedUser>, bool), StoreError> {
        let after = q.after.unwrap_or(Uuid::nil());
        let email = q.email.as_deref().map(str::to_lowercase);
        let username = q.username.as_deref().map(str::to_lowercase);
        let rows: Vec<UserRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                r#"
                SELECT {COLUMNS} FROM directory_users
                WHERE directory_id = $1 AND id > $2
                  AND ($3 IS NULL OR id IN (SELECT user_id FROM directory_user_emails WHERE directory_id = $1 AND email_key = $3))
                  AND ($4 IS NULL OR user_name_key = $4)
                  AND ($5 IS NULL OR active = $5)
                ORDER BY id LIMIT $6
                "#
            )))
            .bind(directory)
            .bind(after)
            .bind(email.as_deref())
            .bind(username.as_deref())
            .bind(q.active)
            .bind(q.limit + 1)
            .fetch_all(pool)
            .await?
        });
        let has_more = rows.len() as i64 > q.limit;
        let rows: Vec<UserRow> = rows.into_iter().take(q.limit as usize).collect();
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else { return Ok((Vec::new(), false)) };
        let memberships: Vec<GroupRef> = with_pool!(self, |pool| {
            sqlx::query_as(
                r#"
                SELECT m.user_id, g.id, g.display_name AS name FROM directory_group_members m
                JOIN directory_groups g ON g.id = m.group_id
                WHERE m.directory_id = $1 AND m.user_id >= $2 AND m.user_id <= $3
                ORDER BY g.display_name
                "#,
            )
            .bind(directory)
            .bind(first.id)
            .bind(last.id)
            .fetch_all(pool)
            .await?
        });
        let users = rows
            .iter()
            .map(|row| {
                let mut user = row.normalized();
                user.groups = Some(memberships.iter().filter(|m| m.user_id == row.id).cloned().collect());
                user
            })
            .collect();
        Ok((users, has_more))
    }

    /// The first `limit` users of a directory by user name (portal overview).
    pub async fn directory_users_by_name(
        &self,
        directory: Uuid,
        limit: i64,
    ) -> Result<Vec<NormalizedUser>, StoreError> {
        let rows: Vec<UserRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM directory_users WHERE directory_id = $1 ORDER BY user_name_key LIMIT $2"
            )))
            .bind(directory)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.iter().map(UserRow::normalized).collect())
    }

    pub(super) async fn scim_get_user(&self, p: &ScimPrincipal, id: Uuid) -> Result<Option<UserRow>, StoreError> {
        self.resource_by_id("directory_users", COLUMNS, id, p.directory_id).await
    }

    /// The users of this directory among `ids` (unknown ids are absent).
    pub(super) async fn scim_users_by_ids(&self, p: &ScimPrincipal, ids: &[Uuid]) -> Result<Vec<UserRow>, StoreError> {
        self.resources_by_ids("directory_users", COLUMNS, ids, p.directory_id).await
    }

    async fn scim_all_users(&self, p: &ScimPrincipal) -> Result<Vec<UserRow>, StoreError> {
        self.resources_of("directory_users", COLUMNS, p.directory_id).await
    }

    async fn scim_users_by(&self, p: &ScimPrincipal, lookup: &Indexed) -> Result<Vec<UserRow>, StoreError> {
        let (sql, key) = match lookup {
            Indexed::UserName(k) => {
                (format!("SELECT {COLUMNS} FROM directory_users WHERE directory_id = $1 AND user_name_key = $2"), k)
            }
            Indexed::ExternalId(k) => (
                format!(
                    "SELECT {COLUMNS} FROM directory_users WHERE directory_id = $1 AND external_id = $2 ORDER BY id"
                ),
                k,
            ),
            // Driven from the email index, so no engine scans the directory.
            Indexed::Email(k) => {
                let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("u.{c}")).collect();
                let sql = format!(
                    "SELECT {} FROM directory_user_emails e JOIN directory_users u ON u.id = e.user_id \
                     WHERE e.directory_id = $1 AND e.email_key = $2 ORDER BY u.id",
                    columns.join(", ")
                );
                (sql, k)
            }
            // Not a user attribute ([`filter::indexed`] never yields it).
            Indexed::DisplayName(_) => return self.scim_all_users(p).await,
        };
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(p.directory_id).bind(key).fetch_all(pool).await?)
        })
    }

    async fn scim_create_user(&self, p: &ScimPrincipal, user: IncomingUser) -> Result<UserRow, ScimError> {
        // Microseconds: what both engines store, so the response equals a re-read.
        let now = OffsetDateTime::now_utc();
        let now = now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now);
        let key = user.user_name.to_lowercase();
        let row = UserRow {
            id: Uuid::now_v7(),
            directory_id: p.directory_id,
            organization_id: p.organization_id,
            active: user.active,
            resource: Json(user.resource),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        // Insert first: the unique key decides, no read before the write.
        let event = change_event(None, &row);
        let result: Result<(), StoreError> = match &self.pool {
            // One statement, one round trip: user, email keys, event and its
            // webhook fan-out commit together (the provisioning hot path).
            // Group-committed with concurrent creates (see `scim::batch`).
            crate::db::Pool::Postgres(_) => {
                let mut keys: Vec<String> = user.emails.iter().map(|e| e.to_lowercase()).collect();
                keys.sort();
                keys.dedup();
                let pending = super::batch::PendingCreate {
                    id: row.id,
                    directory_id: p.directory_id,
                    organization_id: p.organization_id,
                    user_name: user.user_name.clone(),
                    user_name_key: key.clone(),
                    external_id: user.external_id.clone(),
                    active: user.active,
                    resource: row.resource.0.to_string(),
                    at: now,
                    email_keys: keys,
                    event_id: event.id,
                    event_kind: event.kind,
                    event_data: event.data.to_string(),
                };
                match &self.scim_creates {
                    Some(batcher) => match batcher.create(pending).await {
                        Ok(true) => Ok(()),
                        Ok(false) => Err(StoreError::Conflict("userName".into())),
                        Err(e) => Err(e),
                    },
                    None => Err(anyhow::anyhow!("the PostgreSQL store has no create batcher").into()),
                }
            }
            crate::db::Pool::Sqlite(pool) => {
                async {
                    let mut tx = pool.begin_write().await?;
                    sqlx::query(
                        r#"
                    INSERT INTO directory_users (id, directory_id, organization_id, user_name, user_name_key,
                                                 external_id, active, resource, version, created_at, updated_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)
                    "#,
                    )
                    .bind(row.id)
                    .bind(p.directory_id)
                    .bind(p.organization_id)
                    .bind(&user.user_name)
                    .bind(&key)
                    .bind(&user.external_id)
                    .bind(user.active)
                    .bind(&row.resource)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| crate::db::on_unique(e, "userName"))?;
                    index_emails!(tx, p, row.id, &user.emails, fresh = true);
                    insert_event!(tx, &event)?;
                    tx.commit().await?;
                    Ok(())
                }
                .await
            }
        };
        match result {
            Ok(()) => {
                self.announce_events();
                Ok(row)
            }
            Err(StoreError::Conflict(_)) => {
                let existing = self.scim_users_by(p, &Indexed::UserName(key.clone())).await?.into_iter().next();
                match existing {
                    // Re-provisioning a deprovisioned user restores it.
                    Some(existing) if !existing.active => {
                        let user = IncomingUser {
                            resource: row.resource.0,
                            user_name: user.user_name,
                            external_id: user.external_id,
                            active: true,
                            emails: user.emails,
                        };
                        let mut user = user;
                        user.resource["active"] = Value::Bool(true);
                        self.scim_replace_user(p, existing.id, user).await?.ok_or_else(|| uniqueness(&key))
                    }
                    _ => Err(uniqueness(&user.user_name)),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn scim_replace_user(
        &self,
        p: &ScimPrincipal,
        id: Uuid,
        user: IncomingUser,
    ) -> Result<Option<UserRow>, ScimError> {
        let now = OffsetDateTime::now_utc();
        let key = user.user_name.to_lowercase();
        let result: Result<Option<UserRow>, StoreError> = async {
            with_pool!(self, |pool| {
                let mut tx = pool.begin_write().await?;
                let before: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM directory_users WHERE id = $1 AND directory_id = $2"
                )))
                .bind(id)
                .bind(p.directory_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(before) = before else { return Ok(None) };
                sqlx::query(
                    r#"
                UPDATE directory_users
                SET user_name = $2, user_name_key = $3, external_id = $4, active = $5, resource = $6,
                    version = version + 1, updated_at = $7
                WHERE id = $1
                "#,
                )
                .bind(id)
                .bind(&user.user_name)
                .bind(&key)
                .bind(&user.external_id)
                .bind(user.active)
                .bind(Json(&user.resource))
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| crate::db::on_unique(e, "userName"))?;
                index_emails!(tx, p, id, &user.emails, fresh = false);
                let after: UserRow =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM directory_users WHERE id = $1")))
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                insert_event!(tx, &change_event(Some(&before), &after))?;
                tx.commit().await?;
                Ok(Some(after))
            })
        }
        .await;
        match result {
            Ok(row) => {
                self.announce_events();
                Ok(row)
            }
            Err(StoreError::Conflict(_)) => Err(uniqueness(&user.user_name)),
            Err(e) => Err(e.into()),
        }
    }

    async fn scim_delete_user(&self, p: &ScimPrincipal, id: Uuid) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM directory_users WHERE id = $1 AND directory_id = $2"
            )))
            .bind(id)
            .bind(p.directory_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { return Ok(false) };
            sqlx::query("DELETE FROM directory_users WHERE id = $1").bind(id).execute(&mut *tx).await?;
            insert_event!(
                tx,
                &NewEvent::new(kinds::DIRECTORY_USER_DELETED, Some(row.organization_id), &row.normalized())
            )?;
            tx.commit().await?;
            self.announce_events();
            Ok(true)
        })
    }
}
