//! AdminService's budget and usage report calls: proto ↔ domain.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    api::{convert::time_range, pagination::PageRequest},
    edge::ApiError,
    pb::v1 as pb,
    store::usage::ReportRow,
    usage::{Budget, BudgetPeriod},
};

impl From<Budget> for pb::Budget {
    fn from(budget: Budget) -> Self {
        Self {
            user_id: budget.user.map(|u| u.to_string()).unwrap_or_default(),
            period: period_pb(budget.period).into(),
            token_limit: budget.token_limit,
            tokens_used: budget.tokens_used,
        }
    }
}

fn period_pb(period: BudgetPeriod) -> pb::BudgetPeriod {
    match period {
        BudgetPeriod::Day => pb::BudgetPeriod::Day,
        BudgetPeriod::Month => pb::BudgetPeriod::Month,
    }
}

/// The answer for a budget that was removed (limit 0).
pub(super) fn removed(user: Option<Uuid>, period: BudgetPeriod) -> pb::Budget {
    pb::Budget {
        user_id: user.map(|u| u.to_string()).unwrap_or_default(),
        period: period_pb(period).into(),
        token_limit: 0,
        tokens_used: 0,
    }
}

/// The (user, period, limit) a `SetBudget` request asks for.
pub(super) fn budget_of(
    budget: Option<pb::Budget>,
) -> Result<(Option<Uuid>, BudgetPeriod, i64), ApiError> {
    let budget = budget.ok_or_else(|| ApiError::invalid("budget", "is required"))?;
    let user = if budget.user_id.is_empty() {
        None
    } else {
        Some(
            Uuid::try_parse(&budget.user_id)
                .map_err(|_| ApiError::invalid("budget.user_id", "must be a UUID or empty"))?,
        )
    };
    let period = match budget.period() {
        pb::BudgetPeriod::Day => BudgetPeriod::Day,
        pb::BudgetPeriod::Month => BudgetPeriod::Month,
        pb::BudgetPeriod::Unspecified => {
            return Err(ApiError::invalid("budget.period", "DAY or MONTH"));
        }
    };
    Ok((user, period, budget.token_limit))
}

/// A validated usage report request.
pub(super) struct ReportQuery {
    pub(super) from: Option<OffsetDateTime>,
    pub(super) until: Option<OffsetDateTime>,
    pub(super) user: Option<Uuid>,
    pub(super) model: Option<String>,
    page: PageRequest,
    skip: usize,
}

/// Checks a `GetUsageReport` request.
pub(super) fn report_query(request: pb::GetUsageReportRequest) -> Result<ReportQuery, ApiError> {
    let (from, until) = time_range("time_range", request.time_range.as_ref())?;
    let page = PageRequest::parse(request.page_size, "")?;
    let skip = if request.page_token.is_empty() {
        0
    } else {
        request
            .page_token
            .parse()
            .map_err(|_| ApiError::invalid("page_token", "not a token from a previous response"))?
    };
    Ok(ReportQuery {
        from,
        until,
        user: if request.user_id.is_empty() {
            None
        } else {
            Some(
                Uuid::try_parse(&request.user_id)
                    .map_err(|_| ApiError::invalid("user_id", "must be a UUID"))?,
            )
        },
        model: (!request.model.is_empty()).then_some(request.model),
        page,
        skip,
    })
}

/// One page of report rows (the token is the offset of the next page) and the totals of
/// all of them.
pub(super) fn report_page(
    rows: Vec<ReportRow>,
    query: &ReportQuery,
) -> Result<pb::GetUsageReportResponse, ApiError> {
    let mut total = pb::Usage::default();
    for row in &rows {
        total.prompt_tokens += row.prompt_tokens;
        total.completion_tokens += row.completion_tokens;
        total.cost_micros += row.cost_micros;
    }
    total.total_tokens = total.prompt_tokens + total.completion_tokens;
    let end = query.skip + query.page.size as usize;
    let next_page_token = if rows.len() > end {
        end.to_string()
    } else {
        String::new()
    };
    let page = rows
        .into_iter()
        .skip(query.skip)
        .take(query.page.size as usize)
        .map(|row| pb::UsageRow {
            user_id: row.user_id.to_string(),
            model: row.model,
            day: row.day,
            usage: Some(pb::Usage {
                prompt_tokens: row.prompt_tokens,
                completion_tokens: row.completion_tokens,
                total_tokens: row.prompt_tokens + row.completion_tokens,
                cost_micros: row.cost_micros,
            }),
            requests: row.requests,
            mean_latency_ms: row.mean_latency_ms,
        })
        .collect();
    Ok(pb::GetUsageReportResponse {
        rows: page,
        total: Some(total),
        next_page_token,
    })
}
