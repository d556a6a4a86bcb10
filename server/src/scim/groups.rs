//! `/scim/v2/{directory}/Groups`: create, read, list, replace, PATCH (the
//! usual way IdPs change membership), delete. Members are users of the same
//! directory; every membership change records
//! `directory.group.user_added` / `user_removed`.

use std::collections::{BTreeSet, HashMap};

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::filter::Indexed;
use super::users::{
    ListParams, check_if_match, external_id, invalid, list_response, page_response, paging, parse_body, parse_filter,
    required_name, versioned,
};
use super::{ScimBody, ScimError};
use crate::db::events::{NewEvent, insert_event, kinds};
use crate::db::{BeginWrite, Store, StoreError, with_pool};
use crate::directories::ScimPrincipal;
use crate::http::AppState;

pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

#[derive(Debug, Clone, sqlx::FromRow)]
struct GroupRow {
    id: Uuid,
    directory_id: Uuid,
    organization_id: Uuid,
    display_name: String,
    resource: Json<Value>,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, directory_id, organization_id, display_name, resource, version, created_at, updated_at";

/// A member as stored: user id and its userName for `display`.
#[derive(Debug, Clone)]
struct MemberRow {
    user_id: Uuid,
    user_name: String,
}

/// The group the vendor's app sees in events and the API.
#[derive(Debug, Serialize)]
pub struct NormalizedGroup {
    pub id: Uuid,
    pub directory_id: Uuid,
    pub organization_id: Uuid,
    pub idp_id: Option<String>,
    pub name: String,
    pub raw_attributes: Value,
}

impl GroupRow {
    fn etag(&self) -> String {
        super::etag(self.version)
    }

    fn normalized(&self) -> NormalizedGroup {
        NormalizedGroup {
            id: self.id,
            directory_id: self.directory_id,
            organization_id: self.organization_id,
            idp_id: self.resource.0.get("externalId").and_then(Value::as_str).map(str::to_owned),
            name: self.display_name.clone(),
            raw_attributes: self.resource.0.clone(),
        }
    }

    fn scim(&self, base: &str, members: &[MemberRow]) -> Value {
        let mut out = self.resource.0.clone();
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
struct IncomingGroup {
    resource: Value,
    display_name: String,
    external_id: Option<String>,
    members: BTreeSet<Uuid>,
}

fn incoming(mut body: Value) -> Result<IncomingGroup, ScimError> {
    let obj = body.as_object_mut().ok_or_else(|| invalid("the body must be a JSON object"))?;
    if !super::lists_schema(obj, GROUP_SCHEMA) {
        return Err(invalid(format!("`schemas` must include {GROUP_SCHEMA}")));
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
                    .ok_or_else(|| invalid(format!("member {m} needs a string `value`")))?;
                match Uuid::try_parse(value) {
                    Ok(id) => {
                        members.insert(id);
                    }
                    Err(_) => others.push(m.clone()),
                }
            }
        }
        Some(_) => return Err(invalid("`members` must be an array")),
    }
    obj.retain(|k, _| !["id", "meta", "members"].iter().any(|ro| k.eq_ignore_ascii_case(ro)));
    if !others.is_empty() {
        obj.insert("members".into(), Value::Array(others));
    }
    Ok(IncomingGroup { resource: body, display_name, external_id, members })
}

fn not_found(id: &str) -> ScimError {
    ScimError::new(StatusCode::NOT_FOUND, format!("Group {id} not found"))
}

async fn respond(
    state: &AppState,
    p: &ScimPrincipal,
    status: StatusCode,
    row: &GroupRow,
) -> Result<Response, ScimError> {
    let members = state.store.group_members(row.id).await?;
    Ok(versioned(status, row.scim(&super::users::base_url(state, p), &members), &row.etag()))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let group = incoming(parse_body(&body)?)?;
    let row = state.store.scim_write_group(&principal, None, group).await?.ok_or_else(|| not_found("new"))?;
    respond(&state, &principal, StatusCode::CREATED, &row).await
}

pub async fn get_one(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<ListParams>,
) -> Result<Response, ScimError> {
    let uuid = Uuid::try_parse(&id).map_err(|_| not_found(&id))?;
    let row = state.store.scim_get_group(&principal, uuid).await?.ok_or_else(|| not_found(&id))?;
    let members = state.store.group_members(row.id).await?;
    let mut body = row.scim(&super::users::base_url(&state, &principal), &members);
    super::project::project(&mut body, params.attributes.as_deref(), params.excluded_attributes.as_deref());
    Ok(versioned(StatusCode::OK, body, &row.etag()))
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
            .resources_page::<GroupRow>("directory_groups", COLUMNS, "id", principal.directory_id, start, count)
            .await?;
        let page = with_members(&state, &principal, &rows).await?;
        return Ok(page_response(page, total, start, &params));
    }
    let all = matching(&state, &principal, filter.as_ref()).await?;
    Ok(list_response(all, start, count, &params))
}

/// Every group of the directory matching `filter`, as SCIM resources: from
/// the displayName/externalId index for the lookups IdPs make before every
/// group change, members of all candidates read with one query.
pub(super) async fn matching(
    state: &AppState,
    principal: &ScimPrincipal,
    filter: Option<&scim_v2::filter::Filter>,
) -> Result<Vec<Value>, ScimError> {
    let rows = match filter.and_then(super::filter::indexed_group) {
        Some(lookup) => state.store.scim_groups_by(principal, &lookup).await?,
        None => state.store.scim_all_groups(principal).await?,
    };
    let mut all = with_members(state, principal, &rows).await?;
    all.retain(|resource| filter.is_none_or(|f| super::filter::matches(f, resource)));
    Ok(all)
}

/// `rows` as SCIM resources, the members of all of them read in one query.
async fn with_members(state: &AppState, principal: &ScimPrincipal, rows: &[GroupRow]) -> Result<Vec<Value>, ScimError> {
    let base = super::users::base_url(state, principal);
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut members = state.store.members_of(&ids).await?;
    Ok(rows.iter().map(|row| row.scim(&base, &members.remove(&row.id).unwrap_or_default())).collect())
}

pub async fn replace(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let uuid = Uuid::try_parse(&id).map_err(|_| not_found(&id))?;
    let current = state.store.scim_get_group(&principal, uuid).await?.ok_or_else(|| not_found(&id))?;
    check_if_match(&headers, &current.etag())?;
    let group = incoming(parse_body(&body)?)?;
    let row = state.store.scim_write_group(&principal, Some(uuid), group).await?.ok_or_else(|| not_found(&id))?;
    respond(&state, &principal, StatusCode::OK, &row).await
}

pub async fn patch(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let uuid = Uuid::try_parse(&id).map_err(|_| not_found(&id))?;
    let request = parse_body(&body)?;
    let current = state.store.scim_get_group(&principal, uuid).await?.ok_or_else(|| not_found(&id))?;
    check_if_match(&headers, &current.etag())?;
    let members = state.store.group_members(uuid).await?;
    let mut resource = current.scim(&super::users::base_url(&state, &principal), &members);
    super::patch::apply(&mut resource, &request)?;
    let group = incoming(resource)?;
    let row = state.store.scim_write_group(&principal, Some(uuid), group).await?.ok_or_else(|| not_found(&id))?;
    respond(&state, &principal, StatusCode::OK, &row).await
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ScimError> {
    let uuid = Uuid::try_parse(&id).map_err(|_| not_found(&id))?;
    let current = state.store.scim_get_group(&principal, uuid).await?.ok_or_else(|| not_found(&id))?;
    check_if_match(&headers, &current.etag())?;
    if state.store.scim_delete_group(&principal, &current).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

/// Membership event payload.
#[derive(Serialize)]
struct Membership<'a> {
    group: NormalizedGroup,
    user: &'a super::users::NormalizedUser,
}

impl Store {
    /// The vendor's view of a directory's groups, oldest first; `(page, has_more)`.
    pub async fn directory_groups(
        &self,
        directory: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<(Vec<NormalizedGroup>, bool), StoreError> {
        let rows: Vec<GroupRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM directory_groups WHERE directory_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            )))
            .bind(directory)
            .bind(after.unwrap_or(Uuid::nil()))
            .bind(limit + 1)
            .fetch_all(pool)
            .await?
        });
        let has_more = rows.len() as i64 > limit;
        Ok((rows.iter().take(limit as usize).map(GroupRow::normalized).collect(), has_more))
    }

    /// The first `limit` groups of a directory by name with their member
    /// counts (portal overview).
    pub async fn directory_groups_by_name(
        &self,
        directory: Uuid,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                r#"
                SELECT g.display_name, (SELECT COUNT(*) FROM directory_group_members m WHERE m.group_id = g.id)
                FROM directory_groups g WHERE g.directory_id = $1 ORDER BY g.display_name_key LIMIT $2
                "#,
            )
            .bind(directory)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    async fn scim_get_group(&self, p: &ScimPrincipal, id: Uuid) -> Result<Option<GroupRow>, StoreError> {
        self.resource_by_id("directory_groups", COLUMNS, id, p.directory_id).await
    }

    async fn scim_all_groups(&self, p: &ScimPrincipal) -> Result<Vec<GroupRow>, StoreError> {
        self.resources_of("directory_groups", COLUMNS, p.directory_id).await
    }

    /// Groups found by an indexed equality (displayName or externalId).
    async fn scim_groups_by(&self, p: &ScimPrincipal, lookup: &Indexed) -> Result<Vec<GroupRow>, StoreError> {
        let (column, key) = match lookup {
            Indexed::DisplayName(k) => ("display_name_key", k),
            Indexed::ExternalId(k) => ("external_id", k),
            // Not group attributes ([`super::filter::indexed_group`] never yields them).
            Indexed::UserName(_) | Indexed::Email(_) => return self.scim_all_groups(p).await,
        };
        let sql =
            format!("SELECT {COLUMNS} FROM directory_groups WHERE directory_id = $1 AND {column} = $2 ORDER BY id");
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(p.directory_id).bind(key).fetch_all(pool).await?)
        })
    }

    /// The members of each of `groups`, in one query per 500 groups.
    async fn members_of(&self, groups: &[Uuid]) -> Result<HashMap<Uuid, Vec<MemberRow>>, StoreError> {
        let mut out: HashMap<Uuid, Vec<MemberRow>> = HashMap::new();
        for chunk in groups.chunks(500) {
            let rows: Vec<(Uuid, Uuid, String)> = with_pool!(self, |pool| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT m.group_id, u.id, u.user_name FROM directory_group_members m \
                     JOIN directory_users u ON u.id = m.user_id WHERE m.group_id IN (",
                );
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(") ORDER BY m.group_id, u.id");
                q.build_query_as().fetch_all(pool).await?
            });
            for (group, user_id, user_name) in rows {
                out.entry(group).or_default().push(MemberRow { user_id, user_name });
            }
        }
        Ok(out)
    }

    async fn group_members(&self, group: Uuid) -> Result<Vec<MemberRow>, StoreError> {
        Ok(self.members_of(&[group]).await?.remove(&group).unwrap_or_default())
    }

    /// Creates (`id` None) or replaces a group and its members; records the
    /// group event and one membership event per added or removed member.
    async fn scim_write_group(
        &self,
        p: &ScimPrincipal,
        id: Option<Uuid>,
        group: IncomingGroup,
    ) -> Result<Option<GroupRow>, ScimError> {
        // Members must be users of this directory (read in one query: IdPs
        // send groups with thousands of members).
        let wanted: Vec<Uuid> = group.members.iter().copied().collect();
        let users = self.scim_users_by_ids(p, &wanted).await?;
        if users.len() != wanted.len() {
            let known: BTreeSet<Uuid> = users.iter().map(|u| u.id).collect();
            let missing = wanted.iter().find(|id| !known.contains(id)).expect("a member is missing");
            return Err(invalid(format!("member {missing} is not a user of this directory")));
        }
        let now = OffsetDateTime::now_utc();
        let result: Result<Option<GroupRow>, StoreError> = async {
            with_pool!(self, |pool| {
                let mut tx = pool.begin_write().await?;
                let (group_id, before) = match id {
                    None => {
                        let new_id = Uuid::now_v7();
                        sqlx::query(
                            r#"
                            INSERT INTO directory_groups (id, directory_id, organization_id, display_name, display_name_key,
                                                          external_id, resource, version, created_at, updated_at)
                            VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)
                            "#,
                        )
                        .bind(new_id)
                        .bind(p.directory_id)
                        .bind(p.organization_id)
                        .bind(&group.display_name)
                        .bind(group.display_name.to_lowercase())
                        .bind(&group.external_id)
                        .bind(Json(&group.resource))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        (new_id, BTreeSet::new())
                    }
                    Some(id) => {
                        let updated = sqlx::query(
                            r#"
                            UPDATE directory_groups
                            SET display_name = $3, display_name_key = $4, external_id = $5, resource = $6,
                                version = version + 1, updated_at = $7
                            WHERE id = $1 AND directory_id = $2
                            "#,
                        )
                        .bind(id)
                        .bind(p.directory_id)
                        .bind(&group.display_name)
                        .bind(group.display_name.to_lowercase())
                        .bind(&group.external_id)
                        .bind(Json(&group.resource))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        if updated.rows_affected() == 0 {
                            return Ok(None);
                        }
                        let before: Vec<(Uuid,)> =
                            sqlx::query_as("SELECT user_id FROM directory_group_members WHERE group_id = $1")
                                .bind(id)
                                .fetch_all(&mut *tx)
                                .await?;
                        (id, before.into_iter().map(|(u,)| u).collect())
                    }
                };
                let row: GroupRow =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM directory_groups WHERE id = $1")))
                        .bind(group_id)
                        .fetch_one(&mut *tx)
                        .await?;
                let kind = if id.is_none() { kinds::DIRECTORY_GROUP_CREATED } else { kinds::DIRECTORY_GROUP_UPDATED };
                insert_event!(tx, &NewEvent::new(kind, Some(p.organization_id), &row.normalized()))?;
                for user in &users {
                    if !before.contains(&user.id) {
                        sqlx::query("INSERT INTO directory_group_members (group_id, user_id, directory_id) VALUES ($1, $2, $3)")
                            .bind(group_id)
                            .bind(user.id)
                            .bind(p.directory_id)
                            .execute(&mut *tx)
                            .await?;
                        let data = Membership { group: row.normalized(), user: &user.normalized() };
                        insert_event!(tx, &NewEvent::new(kinds::DIRECTORY_GROUP_USER_ADDED, Some(p.organization_id), &data))?;
                    }
                }
                let gone: Vec<Uuid> = before.iter().filter(|u| !group.members.contains(u)).copied().collect();
                for user in self.scim_users_by_ids(p, &gone).await? {
                    sqlx::query("DELETE FROM directory_group_members WHERE group_id = $1 AND user_id = $2")
                        .bind(group_id)
                        .bind(user.id)
                        .execute(&mut *tx)
                        .await?;
                    let data = Membership { group: row.normalized(), user: &user.normalized() };
                    insert_event!(tx, &NewEvent::new(kinds::DIRECTORY_GROUP_USER_REMOVED, Some(p.organization_id), &data))?;
                }
                tx.commit().await?;
                Ok(Some(row))
            })
        }
        .await;
        let row = result?;
        self.announce_events();
        Ok(row)
    }

    async fn scim_delete_group(&self, p: &ScimPrincipal, group: &GroupRow) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let gone = sqlx::query("DELETE FROM directory_groups WHERE id = $1 AND directory_id = $2")
                .bind(group.id)
                .bind(p.directory_id)
                .execute(&mut *tx)
                .await?;
            if gone.rows_affected() == 0 {
                return Ok(false);
            }
            insert_event!(
                tx,
                &NewEvent::new(kinds::DIRECTORY_GROUP_DELETED, Some(p.organization_id), &group.normalized())
            )?;
            tx.commit().await?;
            self.announce_events();
            Ok(true)
        })
    }
}
