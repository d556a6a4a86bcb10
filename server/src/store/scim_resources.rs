//! SQL shared by the SCIM resources: reading one resource, listing with a
//! compiled filter, paging, written once for both engines.

use uuid::Uuid;

impl crate::store::Store {
    /// Resource `id` of `directory` from `table` (`directory_users`,
    /// `directory_groups`) as `T`.
    pub(super) async fn resource_by_id<T>(
        &self,
        table: &str,
        columns: &str,
        id: Uuid,
        directory: Uuid,
    ) -> Result<Option<T>, crate::store::StoreError>
    where
        T: Send + Unpin,
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let sql = format!("SELECT {columns} FROM {table} WHERE id = $1 AND directory_id = $2");
        crate::store::with_pool!(self, |pool| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).bind(directory).fetch_optional(pool).await?)
        })
    }

    /// The resources of `directory` in `table` among `ids` (ids of other
    /// directories and unknown ids are simply absent), oldest first.
    pub(super) async fn resources_by_ids<T>(
        &self,
        table: &str,
        columns: &str,
        ids: &[Uuid],
        directory: Uuid,
    ) -> Result<Vec<T>, crate::store::StoreError>
    where
        T: Send + Unpin,
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let mut out = Vec::with_capacity(ids.len());
        // Bind limits: a few hundred ids per statement.
        for chunk in ids.chunks(500) {
            let rows: Vec<T> = crate::store::with_pool!(self, |pool| {
                let mut q = sqlx::QueryBuilder::new(format!("SELECT {columns} FROM {table} WHERE directory_id = "));
                q.push_bind(directory).push(" AND id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(") ORDER BY id");
                q.build_query_as().fetch_all(pool).await?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// One page of `directory`'s resources in `table` in `key` order (a
    /// column unique within a directory, first of an index after
    /// `directory_id`), with the total. `start` is SCIM's 1-based index.
    /// Unfiltered listings (an IdP's initial import pages through every
    /// user) read only the page.
    pub(super) async fn resources_page<T>(
        &self,
        table: &str,
        columns: &str,
        key: &str,
        directory: Uuid,
        start: i64,
        count: i64,
    ) -> Result<(i64, Vec<T>), crate::store::StoreError>
    where
        T: Send + Unpin,
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let total_sql = format!("SELECT COUNT(*) FROM {table} WHERE directory_id = $1");
        // The offset is walked in the (directory_id, key) index, not the table.
        let page_sql = format!(
            "SELECT {columns} FROM {table} WHERE directory_id = $1 AND {key} IN \
             (SELECT {key} FROM {table} WHERE directory_id = $1 ORDER BY {key} LIMIT $2 OFFSET $3) ORDER BY {key}"
        );
        crate::store::with_pool!(self, |pool| {
            let (total,): (i64,) =
                sqlx::query_as(sqlx::AssertSqlSafe(total_sql.clone())).bind(directory).fetch_one(pool).await?;
            let rows = if count == 0 || start > total {
                Vec::new()
            } else {
                sqlx::query_as(sqlx::AssertSqlSafe(page_sql.clone()))
                    .bind(directory)
                    .bind(count)
                    .bind(start - 1)
                    .fetch_all(pool)
                    .await?
            };
            Ok((total, rows))
        })
    }

    /// Every resource of `directory` in `table`, oldest first.
    pub(super) async fn resources_of<T>(
        &self,
        table: &str,
        columns: &str,
        directory: Uuid,
    ) -> Result<Vec<T>, crate::store::StoreError>
    where
        T: Send + Unpin,
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let sql = format!("SELECT {columns} FROM {table} WHERE directory_id = $1 ORDER BY id");
        crate::store::with_pool!(self, |pool| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(directory).fetch_all(pool).await?)
        })
    }
}
