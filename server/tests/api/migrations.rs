//! The two migration trees (`migrations/sqlite`, `migrations/postgres`)
//! must build the same schema: the same tables, the same columns with the
//! same nullability, and the same explicit indexes on the same columns.
//! Types differ by engine (TEXT timestamps on SQLite, TIMESTAMPTZ on
//! PostgreSQL) and are not compared.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::helpers::{Backend, TestDb, fresh_database};

/// table -> sorted (column, not null); index name -> (table, unique, columns).
#[derive(Debug, PartialEq, Eq)]
struct Schema {
    tables: BTreeMap<String, Vec<(String, bool)>>,
    indexes: BTreeMap<String, (String, bool, Vec<String>)>,
}

async fn migrated(backend: Backend) -> (String, TestDb) {
    let (url, dir) = fresh_database(backend).await;
    let store = portico_server::store::Store::connect(&url, 1).await.expect("migrations apply");
    store.close().await;
    (url, dir)
}

async fn sqlite_schema(url: &str) -> Schema {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let mut tables = BTreeMap::new();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for table in names {
        let rows = sqlx::query("SELECT name, \"notnull\", pk FROM pragma_table_info(?)")
            .bind(&table)
            .fetch_all(&pool)
            .await
            .unwrap();
        let mut columns: Vec<(String, bool)> = rows
            .iter()
            // SQLite lets a primary key column be NULL unless declared NOT
            // NULL; PostgreSQL never does. Count primary keys as not null.
            .map(|r| (r.get::<String, _>("name"), r.get::<i64, _>("notnull") == 1 || r.get::<i64, _>("pk") > 0))
            .collect();
        columns.sort();
        tables.insert(table, columns);
    }
    let mut indexes = BTreeMap::new();
    // Explicit indexes only (`sql` is NULL for the automatic ones behind
    // UNIQUE and PRIMARY KEY constraints).
    let rows = sqlx::query(
        "SELECT m.name, m.tbl_name, il.\"unique\" FROM sqlite_master m JOIN pragma_index_list(m.tbl_name) il ON il.name = m.name WHERE m.type = 'index' AND m.sql IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for r in rows {
        let name: String = r.get("name");
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
            .bind(&name)
            .fetch_all(&pool)
            .await
            .unwrap();
        indexes.insert(name, (r.get("tbl_name"), r.get::<i64, _>("unique") == 1, columns));
    }
    pool.close().await;
    Schema { tables, indexes }
}

async fn postgres_schema(url: &str) -> Schema {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let mut tables: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    let rows = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, is_nullable = 'NO' AS not_null FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for r in rows {
        tables.entry(r.get("t")).or_default().push((r.get("c"), r.get("not_null")));
    }
    for columns in tables.values_mut() {
        columns.sort();
    }
    // Explicit indexes: not the ones backing a constraint (primary key,
    // UNIQUE), which SQLite does not name.
    let rows = sqlx::query(
        r#"
        SELECT i.relname::text AS name, t.relname::text AS tbl, ix.indisunique AS uniq,
               array_agg(a.attname::text ORDER BY k.n) AS columns
        FROM pg_index ix
        JOIN pg_class i ON i.oid = ix.indexrelid
        JOIN pg_class t ON t.oid = ix.indrelid
        JOIN pg_namespace ns ON ns.oid = t.relnamespace
        CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n)
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        WHERE ns.nspname = 'public' AND t.relname <> '_sqlx_migrations'
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid)
        GROUP BY 1, 2, 3
        "#,
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let indexes = rows
        .into_iter()
        .map(|r| (r.get::<String, _>("name"), (r.get("tbl"), r.get("uniq"), r.get::<Vec<String>, _>("columns"))))
        .collect();
    pool.close().await;
    Schema { tables, indexes }
}

#[tokio::test]
async fn both_migration_trees_build_the_same_schema() {
    let (sqlite_url, _sqlite_db) = migrated(Backend::Sqlite).await;
    let (postgres_url, _postgres_db) = migrated(Backend::Postgres).await;
    let sqlite = sqlite_schema(&sqlite_url).await;
    let postgres = postgres_schema(&postgres_url).await;
    assert!(sqlite.tables.len() > 10, "the introspection found the tables: {:?}", sqlite.tables.keys());
    assert!(!sqlite.indexes.is_empty());
    let tables: Vec<&String> = sqlite.tables.keys().collect();
    assert_eq!(tables, postgres.tables.keys().collect::<Vec<_>>(), "the same tables");
    for (table, columns) in &sqlite.tables {
        assert_eq!(Some(columns), postgres.tables.get(table), "columns (name, not null) of {table}");
    }
    assert_eq!(sqlite.indexes, postgres.indexes, "explicit indexes (table, unique, columns)");
}
