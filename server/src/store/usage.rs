//! Usage accounting rows and token budgets (see `crate::usage`).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, TenantTx};

/// One model call's cost.
#[derive(Debug, Clone)]
pub struct UsageEvent {
    /// Event id (UUIDv7).
    pub id: Uuid,
    /// Who asked.
    pub user_id: Uuid,
    /// `provider/model`.
    pub model: String,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Generated tokens.
    pub completion_tokens: i64,
    /// Cost in millionths of the currency unit.
    pub cost_micros: i64,
    /// Time to the end of the reply.
    pub latency_ms: i32,
}

/// Records model calls of `tenant`, in one statement.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn record(tx: &mut TenantTx, events: &[UsageEvent]) -> Result<(), StoreError> {
    let (conn, tenant) = tx.parts();
    let column = |f: fn(&UsageEvent) -> i64| events.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO usage_events
             (tenant_id, id, user_id, model, prompt_tokens, completion_tokens, cost_micros,
              latency_ms)
         SELECT $1, * FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::bigint[],
                                  $6::bigint[], $7::bigint[], $8::integer[])",
    )
    .bind(tenant.0)
    .bind(events.iter().map(|e| e.id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.user_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.model.as_str()).collect::<Vec<_>>())
    .bind(column(|e| e.prompt_tokens))
    .bind(column(|e| e.completion_tokens))
    .bind(column(|e| e.cost_micros))
    .bind(events.iter().map(|e| e.latency_ms).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// Tokens the scoped tenant (or, with `user`, one user) used since `since`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn tokens_since(
    conn: &mut PgConnection,
    user: Option<Uuid>,
    since: OffsetDateTime,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0)::bigint FROM usage_events
         WHERE created_at >= $1 AND ($2::uuid IS NULL OR user_id = $2)",
    )
    .bind(since)
    .bind(user)
    .fetch_one(conn)
    .await?)
}

/// A stored budget.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BudgetRow {
    /// The user; nil for the whole tenant.
    pub user_id: Uuid,
    /// `day` or `month`.
    pub period: String,
    /// Tokens allowed per period.
    pub token_limit: i64,
}

/// Sets a budget, or removes it when `token_limit` is 0.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn set_budget(tx: &mut TenantTx, budget: &BudgetRow) -> Result<(), StoreError> {
    let (conn, tenant) = tx.parts();
    if budget.token_limit == 0 {
        sqlx::query("DELETE FROM budgets WHERE user_id = $1 AND period = $2")
            .bind(budget.user_id)
            .bind(&budget.period)
            .execute(conn)
            .await?;
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO budgets (tenant_id, user_id, period, token_limit) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, user_id, period)
         DO UPDATE SET token_limit = EXCLUDED.token_limit, updated_at = now()",
    )
    .bind(tenant.0)
    .bind(budget.user_id)
    .bind(&budget.period)
    .bind(budget.token_limit)
    .execute(conn)
    .await?;
    Ok(())
}

/// The scoped tenant's budgets that apply to `user` (theirs and the tenant's), or all of
/// them when `user` is `None`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn budgets(
    conn: &mut PgConnection,
    user: Option<Uuid>,
) -> Result<Vec<BudgetRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT user_id, period, token_limit FROM budgets
         WHERE $1::uuid IS NULL OR user_id IN ($1, '00000000-0000-0000-0000-000000000000')
         ORDER BY user_id, period",
    )
    .bind(user)
    .fetch_all(conn)
    .await?)
}

/// One row of a usage report.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReportRow {
    /// The user.
    pub user_id: Uuid,
    /// `provider/model`.
    pub model: String,
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Generated tokens.
    pub completion_tokens: i64,
    /// Cost in millionths.
    pub cost_micros: i64,
    /// Calls.
    pub requests: i64,
    /// Mean latency.
    pub mean_latency_ms: i64,
}

/// Usage of the scoped tenant by (user, model, UTC day) in [from, until), optionally of
/// one user or model; every row (reports are small: one per user, model and day).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn report(
    conn: &mut PgConnection,
    from: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    user: Option<Uuid>,
    model: Option<&str>,
) -> Result<Vec<ReportRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT user_id, model,
                to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
                sum(prompt_tokens)::bigint AS prompt_tokens,
                sum(completion_tokens)::bigint AS completion_tokens,
                sum(cost_micros)::bigint AS cost_micros,
                count(*) AS requests,
                avg(latency_ms)::bigint AS mean_latency_ms
         FROM usage_events
         WHERE ($1::timestamptz IS NULL OR created_at >= $1)
           AND ($2::timestamptz IS NULL OR created_at < $2)
           AND ($3::uuid IS NULL OR user_id = $3)
           AND ($4::text IS NULL OR model = $4)
         GROUP BY 1, 2, 3
         ORDER BY 3, 1, 2",
    )
    .bind(from)
    .bind(until)
    .bind(user)
    .bind(model)
    .fetch_all(conn)
    .await?)
}
