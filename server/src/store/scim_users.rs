//! `directory_users` and `directory_user_emails`: SCIM user provisioning
//! (create, restore, replace, delete) with its events, and the vendor's and
//! the portal's listings.

use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::scim_batch::{PendingCreate, PendingReplace};
use super::{Store, StoreError, Tx, on_tx, with_pool};
use crate::events::{EventKind, NewEvent};
use crate::scim::filter::Indexed;
use crate::scim::users::{GroupRef, IncomingUser, NormalizedUser, StoredUser, UserQuery};
use crate::store::directories::ScimPrincipal;

#[derive(Debug, sqlx::FromRow)]
pub(super) struct UserRow {
    id: Uuid,
    directory_id: Uuid,
    organization_id: Uuid,
    active: bool,
    resource: Json<Value>,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<UserRow> for StoredUser {
    fn from(r: UserRow) -> Self {
        StoredUser {
            id: r.id,
            directory_id: r.directory_id,
            organization_id: r.organization_id,
            active: r.active,
            resource: r.resource.0,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "id, directory_id, organization_id, active, resource, version, created_at, updated_at";

fn stored(rows: Vec<UserRow>) -> Vec<StoredUser> {
    rows.into_iter().map(StoredUser::from).collect()
}

/// Rewrites the email index rows of `user` (`fresh`: it has none yet).
async fn index_emails(
    tx: &mut Tx<'_>,
    directory: Uuid,
    user: Uuid,
    keys: &[String],
    fresh: bool,
) -> Result<(), StoreError> {
    on_tx!(tx, |conn| {
        if !fresh {
            sqlx::query("DELETE FROM directory_user_emails WHERE user_id = $1").bind(user).execute(&mut *conn).await?;
        }
        for key in keys {
            sqlx::query("INSERT INTO directory_user_emails (user_id, directory_id, email_key) VALUES ($1, $2, $3)")
                .bind(user)
                .bind(directory)
                .bind(key)
                .execute(&mut *conn)
                .await?;
        }
    });
    Ok(())
}

/// The user `id` of `directory`, read in `tx`.
async fn user_in(tx: &mut Tx<'_>, id: Uuid, directory: Uuid) -> Result<Option<StoredUser>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM directory_users WHERE id = $1 AND directory_id = $2");
    let row: Option<UserRow> = on_tx!(tx, |conn| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(directory).fetch_optional(&mut *conn).await?
    });
    Ok(row.map(StoredUser::from))
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
        let rows: Vec<StoredUser> = stored(rows.into_iter().take(q.limit as usize).collect());
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else { return Ok((Vec::new(), false)) };
        let memberships: Vec<(Uuid, Uuid, String)> = with_pool!(self, |pool| {
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
                let groups = memberships.iter().filter(|(user_id, ..)| *user_id == row.id);
                user.groups = Some(
                    groups
                        .map(|(user_id, id, name)| GroupRef { user_id: *user_id, id: *id, name: name.clone() })
                        .collect(),
                );
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
        Ok(stored(rows).iter().map(StoredUser::normalized).collect())
    }

    pub async fn scim_user(&self, p: &ScimPrincipal, id: Uuid) -> Result<Option<StoredUser>, StoreError> {
        let row: Option<UserRow> = self.resource_by_id("directory_users", COLUMNS, id, p.directory_id).await?;
        Ok(row.map(StoredUser::from))
    }

    /// The users of this directory among `ids` (unknown ids are absent).
    pub async fn scim_users_by_ids(&self, p: &ScimPrincipal, ids: &[Uuid]) -> Result<Vec<StoredUser>, StoreError> {
        Ok(stored(self.resources_by_ids("directory_users", COLUMNS, ids, p.directory_id).await?))
    }

    /// One page of the directory's users in userName order, with the total
    /// (an IdP's initial import pages through every user).
    pub async fn scim_users_page(
        &self,
        p: &ScimPrincipal,
        start: i64,
        count: i64,
    ) -> Result<(i64, Vec<StoredUser>), StoreError> {
        let (total, rows) = self
            .resources_page::<UserRow>("directory_users", COLUMNS, "user_name_key", p.directory_id, start, count)
            .await?;
        Ok((total, stored(rows)))
    }

    /// The users a filter can match: from an index when the filter is an
    /// indexed equality (`lookup`), else all of the directory's.
    pub async fn scim_users_matching(
        &self,
        p: &ScimPrincipal,
        lookup: Option<&Indexed>,
    ) -> Result<Vec<StoredUser>, StoreError> {
        let (sql, key) = match lookup {
            Some(Indexed::UserName(k)) => {
                (format!("SELECT {COLUMNS} FROM directory_users WHERE directory_id = $1 AND user_name_key = $2"), k)
            }
            Some(Indexed::ExternalId(k)) => (
                format!(
                    "SELECT {COLUMNS} FROM directory_users WHERE directory_id = $1 AND external_id = $2 ORDER BY id"
                ),
                k,
            ),
            // Driven from the email index, so no engine scans the directory.
            Some(Indexed::Email(k)) => {
                let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("u.{c}")).collect();
                let sql = format!(
                    "SELECT {} FROM directory_user_emails e JOIN directory_users u ON u.id = e.user_id \
                     WHERE e.directory_id = $1 AND e.email_key = $2 ORDER BY u.id",
                    columns.join(", ")
                );
                (sql, k)
            }
            // Not a user attribute (`filter::indexed` never yields it).
            Some(Indexed::DisplayName(_)) | None => {
                return Ok(stored(self.resources_of("directory_users", COLUMNS, p.directory_id).await?));
            }
        };
        let rows: Vec<UserRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(p.directory_id).bind(key).fetch_all(pool).await?
        });
        Ok(stored(rows))
    }

    /// Provisions `user`. A userName that exists is a
    /// [`StoreError::Conflict`], unless that user was deprovisioned: then it
    /// is restored (replaced by `user`, active again).
    pub async fn scim_create_user(&self, p: &ScimPrincipal, user: IncomingUser) -> Result<StoredUser, StoreError> {
        let now = crate::scim::now_micros();
        let created = StoredUser {
            id: Uuid::now_v7(),
            directory_id: p.directory_id,
            organization_id: p.organization_id,
            active: user.active,
            resource: user.resource.clone(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        // Insert first: the unique key decides, no read before the write.
        let event = created.change_event(None);
        let written = match &self.scim_writer {
            // One statement, one round trip: user, email keys, event and its
            // webhook fan-out commit together (the provisioning hot path),
            // group-committed with concurrent writes (see `scim_batch`).
            Some(writer) => {
                let written = writer.create(PendingCreate::new(&created, &user, &event)).await;
                if matches!(written, Ok(true)) {
                    self.announce_events();
                }
                written
            }
            None => self.insert_user(&created, &user, &event).await,
        };
        match written {
            Ok(true) => Ok(created),
            Ok(false) | Err(StoreError::Conflict(_)) => {
                let lookup = Indexed::UserName(user.user_name_key());
                let existing = self.scim_users_matching(p, Some(&lookup)).await?.into_iter().next();
                match existing {
                    // Re-provisioning a deprovisioned user restores it.
                    Some(existing) if !existing.active => self
                        .scim_replace_user(p, &existing, user.restored())
                        .await?
                        .ok_or_else(|| StoreError::Conflict(super::Conflict::UserNameTaken)),
                    _ => Err(StoreError::Conflict(super::Conflict::UserNameTaken)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The create of [`Store::scim_create_user`] in a transaction of its own;
    /// `Ok(false)` when the userName exists.
    async fn insert_user(&self, row: &StoredUser, user: &IncomingUser, event: &NewEvent) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let inserted = on_tx!(tx, |conn| {
            sqlx::query(
                r#"
                INSERT INTO directory_users (id, directory_id, organization_id, user_name, user_name_key,
                                             external_id, active, resource, version, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)
                "#,
            )
            .bind(row.id)
            .bind(row.directory_id)
            .bind(row.organization_id)
            .bind(&user.user_name)
            .bind(user.user_name_key())
            .bind(&user.external_id)
            .bind(user.active)
            .bind(Json(&row.resource))
            .bind(row.created_at)
            .execute(&mut *conn)
            .await
            .map(|_| ())
        });
        match inserted.map_err(|e| super::on_unique(e, super::Conflict::UserNameTaken)) {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        index_emails(&mut tx, row.directory_id, row.id, &user.email_keys(), true).await?;
        tx.record(event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces `current` (as read by the caller) with `user`; `None` when
    /// it is gone. A userName taken by another user is a
    /// [`StoreError::Conflict`].
    ///
    /// On PostgreSQL the write is group-committed and applies only if the
    /// user is still at `current.version`; when it is not (a concurrent
    /// change), the replace runs again in a transaction of its own, which
    /// overwrites like an unconditional PUT.
    pub async fn scim_replace_user(
        &self,
        p: &ScimPrincipal,
        current: &StoredUser,
        user: IncomingUser,
    ) -> Result<Option<StoredUser>, StoreError> {
        if let Some(writer) = &self.scim_writer {
            let after = StoredUser {
                active: user.active,
                resource: user.resource.clone(),
                version: current.version + 1,
                updated_at: crate::scim::now_micros(),
                ..current.clone()
            };
            let event = after.change_event(Some(current));
            if writer.replace(PendingReplace::new(current, &after, &user, &event)).await? {
                self.announce_events();
                return Ok(Some(after));
            }
        }
        self.replace_user(p, current.id, user).await
    }

    /// The replace of [`Store::scim_replace_user`] in a transaction of its
    /// own, whatever the stored version.
    async fn replace_user(
        &self,
        p: &ScimPrincipal,
        id: Uuid,
        user: IncomingUser,
    ) -> Result<Option<StoredUser>, StoreError> {
        let now = crate::scim::now_micros();
        let mut tx = self.write().await?;
        let Some(before) = user_in(&mut tx, id, p.directory_id).await? else { return Ok(None) };
        on_tx!(tx, |conn| {
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
            .bind(user.user_name_key())
            .bind(&user.external_id)
            .bind(user.active)
            .bind(Json(&user.resource))
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(|e| super::on_unique(e, super::Conflict::UserNameTaken))?;
        });
        index_emails(&mut tx, p.directory_id, id, &user.email_keys(), false).await?;
        let after = user_in(&mut tx, id, p.directory_id).await?.ok_or_else(|| anyhow::anyhow!("user {id} vanished"))?;
        tx.record(&after.change_event(Some(&before))).await?;
        tx.commit().await?;
        Ok(Some(after))
    }

    /// Deletes user `id`; `false` when there is none.
    pub async fn scim_delete_user(&self, p: &ScimPrincipal, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let Some(user) = user_in(&mut tx, id, p.directory_id).await? else { return Ok(false) };
        on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM directory_users WHERE id = $1").bind(id).execute(&mut *conn).await?;
        });
        tx.record(&NewEvent::new(EventKind::DirectoryUserDeleted, Some(user.organization_id), &user.normalized()))
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
