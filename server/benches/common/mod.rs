//! Helpers shared by the benchmarks.

/// A fresh, empty database: a new PostgreSQL database or a temp SQLite file.
pub async fn fresh_url(postgres: bool) -> (String, Option<tempfile::TempDir>) {
    if postgres {
        use sqlx::Connection;
        let admin = std::env::var("PORTICO_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://portico:portico@127.0.0.1:5432/postgres".into());
        let mut c = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL for the benchmark");
        let name = format!("portico_test_bench_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await.unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        (format!("{base}/{name}"), None)
    } else {
        let dir = tempfile::tempdir().unwrap();
        (format!("sqlite://{}", dir.path().join("bench.db").display()), Some(dir))
    }
}

/// The `p`th percentile of sorted samples.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}
