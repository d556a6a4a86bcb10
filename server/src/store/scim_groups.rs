//! `directory_groups` and `directory_group_members`: SCIM groups, their
//! memberships and events, and the vendor's and the portal's listings.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, Tx, on_tx, with_pool};
use crate::events::{EventKind, NewEvent};
use crate::scim::filter::Indexed;
use crate::scim::groups::{IncomingGroup, Member, Membership, NormalizedGroup, StoredGroup};
use crate::scim::users::StoredUser;
use crate::store::directories::ScimPrincipal;

#[derive(Debug, sqlx::FromRow)]
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

impl From<GroupRow> for StoredGroup {
    fn from(r: GroupRow) -> Self {
        StoredGroup {
            id: r.id,
            directory_id: r.directory_id,
            organization_id: r.organization_id,
            display_name: r.display_name,
            resource: r.resource.0,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "id, directory_id, organization_id, display_name, resource, version, created_at, updated_at";

fn stored(rows: Vec<GroupRow>) -> Vec<StoredGroup> {
    rows.into_iter().map(StoredGroup::from).collect()
}

/// Writes the group row of `id` (None: a new group); the group's id and
/// its tracked members before, or None when the group is gone.
async fn upsert_group(
    tx: &mut Tx<'_>,
    p: &ScimPrincipal,
    id: Option<Uuid>,
    group: &IncomingGroup,
    now: OffsetDateTime,
) -> Result<Option<(Uuid, BTreeSet<Uuid>)>, StoreError> {
    let Some(id) = id else {
        let id = Uuid::now_v7();
        on_tx!(tx, |conn| {
            sqlx::query(
                r#"
                INSERT INTO directory_groups (id, directory_id, organization_id, display_name, display_name_key,
                                              external_id, resource, version, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)
                "#,
            )
            .bind(id)
            .bind(p.directory_id)
            .bind(p.organization_id)
            .bind(&group.display_name)
            .bind(group.display_name.to_lowercase())
            .bind(&group.external_id)
            .bind(Json(&group.resource))
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        return Ok(Some((id, BTreeSet::new())));
    };
    let before: Option<Vec<(Uuid,)>> = on_tx!(tx, |conn| {
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
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if updated == 0 {
            None
        } else {
            Some(
                sqlx::query_as("SELECT user_id FROM directory_group_members WHERE group_id = $1")
                    .bind(id)
                    .fetch_all(&mut *conn)
                    .await?,
            )
        }
    });
    Ok(before.map(|rows| (id, rows.into_iter().map(|(u,)| u).collect())))
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
        let groups = stored(rows.into_iter().take(limit as usize).collect());
        Ok((groups.iter().map(StoredGroup::normalized).collect(), has_more))
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

    pub async fn scim_group(&self, p: &ScimPrincipal, id: Uuid) -> Result<Option<StoredGroup>, StoreError> {
        let row: Option<GroupRow> = self.resource_by_id("directory_groups", COLUMNS, id, p.directory_id).await?;
        Ok(row.map(StoredGroup::from))
    }

    /// One page of the directory's groups in id order, with the total.
    pub async fn scim_groups_page(
        &self,
        p: &ScimPrincipal,
        start: i64,
        count: i64,
    ) -> Result<(i64, Vec<StoredGroup>), StoreError> {
        let (total, rows) =
            self.resources_page::<GroupRow>("directory_groups", COLUMNS, "id", p.directory_id, start, count).await?;
        Ok((total, stored(rows)))
    }

    /// The groups a filter can match: found by an indexed equality
    /// (displayName or externalId) when `lookup` is one, else all.
    pub async fn scim_groups_matching(
        &self,
        p: &ScimPrincipal,
        lookup: Option<&Indexed>,
    ) -> Result<Vec<StoredGroup>, StoreError> {
        let (column, key) = match lookup {
            Some(Indexed::DisplayName(k)) => ("display_name_key", k),
            Some(Indexed::ExternalId(k)) => ("external_id", k),
            // Not group attributes (`filter::indexed_group` never yields them).
            Some(Indexed::UserName(_) | Indexed::Email(_)) | None => {
                return Ok(stored(self.resources_of("directory_groups", COLUMNS, p.directory_id).await?));
            }
        };
        let sql =
            format!("SELECT {COLUMNS} FROM directory_groups WHERE directory_id = $1 AND {column} = $2 ORDER BY id");
        let rows: Vec<GroupRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(p.directory_id).bind(key).fetch_all(pool).await?
        });
        Ok(stored(rows))
    }

    /// The members of each of `groups`, in one query per 500 groups.
    pub async fn group_members_of(&self, groups: &[Uuid]) -> Result<HashMap<Uuid, Vec<Member>>, StoreError> {
        let mut out: HashMap<Uuid, Vec<Member>> = HashMap::new();
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
                out.entry(group).or_default().push(Member { user_id, user_name });
            }
        }
        Ok(out)
    }

    /// The tracked members of `group`.
    pub async fn group_members(&self, group: Uuid) -> Result<Vec<Member>, StoreError> {
        Ok(self.group_members_of(&[group]).await?.remove(&group).unwrap_or_default())
    }

    /// Creates (`id` None) or replaces a group and its tracked members
    /// (`members`: the users of this directory that `group` names); records
    /// the group event and one membership event per added or removed
    /// member. `None` when the group to replace is gone.
    pub async fn scim_write_group(
        &self,
        p: &ScimPrincipal,
        id: Option<Uuid>,
        group: &IncomingGroup,
        members: &[StoredUser],
    ) -> Result<Option<StoredGroup>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut tx = self.write().await?;
        let Some((group_id, before)) = upsert_group(&mut tx, p, id, group, now).await? else { return Ok(None) };
        let row: GroupRow = on_tx!(tx, |conn| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM directory_groups WHERE id = $1")))
                .bind(group_id)
                .fetch_one(&mut *conn)
                .await?
        });
        let row = StoredGroup::from(row);
        let kind = if id.is_none() { EventKind::DirectoryGroupCreated } else { EventKind::DirectoryGroupUpdated };
        tx.record(&NewEvent::new(kind, Some(p.organization_id), &row.normalized())).await?;
        for user in members.iter().filter(|u| !before.contains(&u.id)) {
            on_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO directory_group_members (group_id, user_id, directory_id) VALUES ($1, $2, $3)",
                )
                .bind(group_id)
                .bind(user.id)
                .bind(p.directory_id)
                .execute(&mut *conn)
                .await?;
            });
            let data = Membership { group: row.normalized(), user: &user.normalized() };
            tx.record(&NewEvent::new(EventKind::DirectoryGroupUserAdded, Some(p.organization_id), &data)).await?;
        }
        let gone: Vec<Uuid> = before.iter().filter(|u| !group.members.contains(u)).copied().collect();
        for user in self.scim_users_by_ids(p, &gone).await? {
            on_tx!(tx, |conn| {
                sqlx::query("DELETE FROM directory_group_members WHERE group_id = $1 AND user_id = $2")
                    .bind(group_id)
                    .bind(user.id)
                    .execute(&mut *conn)
                    .await?;
            });
            let data = Membership { group: row.normalized(), user: &user.normalized() };
            tx.record(&NewEvent::new(EventKind::DirectoryGroupUserRemoved, Some(p.organization_id), &data)).await?;
        }
        tx.commit().await?;
        Ok(Some(row))
    }

    /// Deletes `group`; `false` when it is already gone.
    pub async fn scim_delete_group(&self, p: &ScimPrincipal, group: &StoredGroup) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let gone = on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM directory_groups WHERE id = $1 AND directory_id = $2")
                .bind(group.id)
                .bind(p.directory_id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if gone == 0 {
            return Ok(false);
        }
        tx.record(&NewEvent::new(EventKind::DirectoryGroupDeleted, Some(p.organization_id), &group.normalized()))
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
