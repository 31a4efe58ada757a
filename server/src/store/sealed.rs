//! Columns holding sealed values, read and rewritten generically by the re-encryption job.
//! Table and column names come only from `crypto::SEALED_COLUMNS`, never from input.

use sqlx::PgConnection;

use super::StoreError;

/// Where sealed values live: (table, row id column, the id column's SQL type, column).
/// Rows are found and paged on the id's own type, so the primary key serves every
/// lookup (comparing `id::text` would scan the table for each row).
pub type Place<'a> = (&'a str, &'a str, &'a str, &'a str);

/// Up to `limit` values of the scoped tenant in `table.column` sealed with a key version
/// other than `latest`, in id order after `after` (id as text; `None`: from the start):
/// (row id as text, sealed value).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn stale(
    conn: &mut PgConnection,
    (table, row, row_type, column): Place<'_>,
    latest: i32,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    // Two statements rather than `($3 IS NULL OR id > $3)`: a prepared statement's generic
    // plan cannot use the key's index for that, and would scan the table every page.
    let after_clause = if after.is_some() {
        format!("{row} > $3::{row_type} AND")
    } else {
        String::new()
    };
    // Ordered by the table's column, not by the output column of the same name (its text):
    // that order has no index and sorted the whole table for every page.
    let query = format!(
        "SELECT {row}::text AS row_id, {column} FROM {table}
         WHERE {after_clause} octet_length({column}) > 0
           AND substring({column} from 1 for 4) <> $1
         ORDER BY {table}.{row} LIMIT $2"
    );
    let version = latest.to_be_bytes();
    let mut query = sqlx::query_as(&query).bind(version.as_slice()).bind(limit);
    if let Some(after) = after {
        query = query.bind(after);
    }
    Ok(query.fetch_all(conn).await?)
}

/// Whether the scoped tenant has any value in `table.column` sealed with a key version
/// other than `latest`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn any_stale(
    conn: &mut PgConnection,
    (table, _, _, column): Place<'_>,
    latest: i32,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {table}
                        WHERE octet_length({column}) > 0
                          AND substring({column} from 1 for 4) <> $1)"
    ))
    .bind(latest.to_be_bytes().as_slice())
    .fetch_one(conn)
    .await?)
}

/// Replaces the sealed values of rows `rows` (ids as text) with `sealed`, in one
/// statement.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn replace_all(
    conn: &mut PgConnection,
    (table, row, row_type, column): Place<'_>,
    rows: &[&str],
    sealed: &[Vec<u8>],
) -> Result<(), StoreError> {
    // The ids are cast as one array before the join: joining on `fresh.id::type` instead
    // makes the planner hash the whole table for every batch.
    sqlx::query(&format!(
        "UPDATE {table} SET {column} = fresh.value
         FROM unnest($1::text[]::{row_type}[], $2::bytea[]) AS fresh(id, value)
         WHERE {table}.{row} = fresh.id"
    ))
    .bind(rows)
    .bind(sealed)
    .execute(conn)
    .await?;
    Ok(())
}
