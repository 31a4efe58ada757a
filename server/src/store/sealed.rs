//! Columns holding sealed values, read and rewritten generically by the re-encryption job.
//! Table and column names come only from `crypto::SEALED_COLUMNS`, never from input.

use sqlx::PgConnection;

use super::StoreError;

/// Up to `limit` values of the scoped tenant in `table.column` sealed with a key version
/// other than `latest`: (row id as text, sealed value).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn stale(
    conn: &mut PgConnection,
    (table, row, column): (&str, &str, &str),
    latest: i32,
    limit: i64,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {row}::text, {column} FROM {table}
         WHERE octet_length({column}) > 0 AND substring({column} from 1 for 4) <> $1
         ORDER BY {row} LIMIT $2"
    ))
    .bind(latest.to_be_bytes().as_slice())
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Replaces the sealed value of one row.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn replace(
    conn: &mut PgConnection,
    (table, row, column): (&str, &str, &str),
    row_id: &str,
    sealed: &[u8],
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "UPDATE {table} SET {column} = $1 WHERE {row}::text = $2"
    ))
    .bind(sealed)
    .bind(row_id)
    .execute(conn)
    .await?;
    Ok(())
}
