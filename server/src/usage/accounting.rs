//! The accounting: each call's tokens, cost (from the configured price table) and
//! latency; token budgets per UTC day or month, for the tenant or one user.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::json;
use sqlx::PgConnection;
use time::{Date, OffsetDateTime, Time};
use uuid::Uuid;

use super::{UsageError, UsageWriter};
use crate::{
    audit::{self, NewEvent},
    cache::SettingsChanges,
    caller::Principal,
    config::Price,
    llm::Usage,
    store::{
        self, Database,
        usage::{BudgetRow, ReportRow, UsageEvent},
    },
};

/// How long a budget's allowance lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPeriod {
    /// A UTC day.
    Day,
    /// A UTC calendar month.
    Month,
}

impl BudgetPeriod {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    fn parse(stored: &str) -> Self {
        if stored == "month" {
            Self::Month
        } else {
            Self::Day
        }
    }

    /// When the current period began.
    fn start(self, now: OffsetDateTime) -> OffsetDateTime {
        let day = match self {
            Self::Day => now.date(),
            Self::Month => {
                Date::from_calendar_date(now.year(), now.month(), 1).unwrap_or(now.date())
            }
        };
        day.with_time(Time::MIDNIGHT).assume_utc()
    }
}

/// A budget and how much of it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// The user; `None` for the whole tenant.
    pub user: Option<Uuid>,
    /// Its period.
    pub period: BudgetPeriod,
    /// Tokens allowed per period.
    pub token_limit: i64,
    /// Tokens used in the current period.
    pub tokens_used: i64,
}

/// Usage recording, budgets and reports.
#[derive(Clone)]
pub struct Accounting {
    db: Database,
    prices: BTreeMap<String, Price>,
    usage: UsageWriter,
    changes: Arc<SettingsChanges>,
}

/// The budgets of the scoped tenant that apply to `user` (all with `None`), with their use
/// in the current period.
async fn budgets_in(tx: &mut PgConnection, user: Option<Uuid>) -> Result<Vec<Budget>, UsageError> {
    let rows = store::usage::budgets(&mut *tx, user).await?;
    with_use(tx, rows).await
}

/// `rows` of the scoped tenant with their use in the current period.
async fn with_use(tx: &mut PgConnection, rows: Vec<BudgetRow>) -> Result<Vec<Budget>, UsageError> {
    let now = OffsetDateTime::now_utc();
    let mut budgets = Vec::with_capacity(rows.len());
    for BudgetRow {
        user_id,
        period,
        token_limit,
    } in rows
    {
        let period = BudgetPeriod::parse(&period);
        let user = (!user_id.is_nil()).then_some(user_id);
        let tokens_used = store::usage::tokens_since(&mut *tx, user, period.start(now)).await?;
        budgets.push(Budget {
            user,
            period,
            token_limit,
            tokens_used,
        });
    }
    Ok(budgets)
}

/// Whether budget `row` limits `user`: the tenant's budgets and the user's own.
pub fn applies_to(row: &BudgetRow, user: Uuid) -> bool {
    row.user_id.is_nil() || row.user_id == user
}

impl Accounting {
    /// Accounts in `db` at `prices`; usage stored nowhere else goes through `usage`;
    /// budget changes are announced through `changes`.
    pub fn new(
        db: Database,
        prices: BTreeMap<String, Price>,
        usage: UsageWriter,
        changes: Arc<SettingsChanges>,
    ) -> Self {
        Self {
            db,
            prices,
            usage,
            changes,
        }
    }

    /// What a call of `model` (`provider/model`) with these token counts costs.
    pub fn cost_micros(&self, model: &str, prompt_tokens: i64, completion_tokens: i64) -> i64 {
        cost_micros(&self.prices, model, prompt_tokens, completion_tokens)
    }

    /// The usage event of a call of `model` (`provider/model`) for `user`, to store with
    /// what the call stored.
    pub fn event(&self, user: Uuid, model: &str, usage: Usage, latency_ms: u32) -> UsageEvent {
        UsageEvent {
            id: Uuid::now_v7(),
            user_id: user,
            model: model.to_owned(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cost_micros: self.cost_micros(model, usage.prompt_tokens, usage.completion_tokens),
            latency_ms: i32::try_from(latency_ms).unwrap_or(i32::MAX),
        }
    }

    /// Records the usage of a call whose result is stored nowhere else (a stateless chat
    /// call, a provider's embeddings), in the background (see [`UsageWriter`]).
    pub async fn record(&self, principal: &Principal, model: &str, usage: Usage, latency_ms: u32) {
        let event = self.event(principal.user, model, usage, latency_ms);
        self.usage.record(principal.tenant, event).await;
    }

    /// Refuses a call when one of `budgets` (of the scoped tenant, those that apply to
    /// the caller) is used up in its current period.
    ///
    /// # Errors
    /// [`UsageError::BudgetExhausted`] naming the budget, or a failure.
    pub async fn check(
        &self,
        tx: &mut PgConnection,
        budgets: Vec<BudgetRow>,
    ) -> Result<(), UsageError> {
        for budget in with_use(tx, budgets).await? {
            if budget.tokens_used >= budget.token_limit {
                return Err(UsageError::BudgetExhausted {
                    scope: if budget.user.is_some() {
                        "your"
                    } else {
                        "this tenant's"
                    },
                    period: budget.period.as_str(),
                    limit: budget.token_limit,
                });
            }
        }
        Ok(())
    }

    /// Like [`Self::check`] with the caller's budgets, in a transaction of its own (for
    /// calls that read nothing else first, such as a provider's embeddings).
    ///
    /// # Errors
    /// [`UsageError::BudgetExhausted`] naming the budget, or a failure.
    pub async fn check_alone(&self, principal: &Principal) -> Result<(), UsageError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let budgets = store::usage::budgets(&mut tx, Some(principal.user)).await?;
        self.check(&mut tx, budgets).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Budgets of the caller's tenant that apply to `user` (all of them with `None`), with
    /// their use in the current period.
    ///
    /// # Errors
    /// [`UsageError`] when Postgres fails.
    pub async fn budgets_of(
        &self,
        principal: &Principal,
        user: Option<Uuid>,
    ) -> Result<Vec<Budget>, UsageError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let budgets = budgets_in(&mut tx, user).await?;
        tx.commit().await?;
        Ok(budgets)
    }

    /// Sets (or with 0 removes) a budget of the caller's tenant, recorded as `budget.set`.
    ///
    /// # Errors
    /// [`UsageError::Invalid`] for a negative limit or an unknown user, or a failure.
    pub async fn set_budget(
        &self,
        principal: &Principal,
        user: Option<Uuid>,
        period: BudgetPeriod,
        token_limit: i64,
    ) -> Result<(), UsageError> {
        if token_limit < 0 {
            return Err(UsageError::Invalid {
                field: "budget.token_limit",
                reason: "must not be negative",
            });
        }
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        if let Some(user) = user
            && store::users::get(&mut tx, user).await?.is_none()
        {
            return Err(UsageError::Invalid {
                field: "budget.user_id",
                reason: "no such user in this tenant",
            });
        }
        let row = BudgetRow {
            user_id: user.unwrap_or(Uuid::nil()),
            period: period.as_str().to_owned(),
            token_limit,
        };
        store::usage::set_budget(&mut tx, &row).await?;
        let details = json!({ "period": row.period, "token_limit": token_limit });
        let event = NewEvent::by(principal, "budget.set", "budget", row.user_id, details);
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        self.changes.changed(principal.tenant).await;
        Ok(())
    }

    /// The caller's tenant's usage by (user, model, UTC day).
    ///
    /// # Errors
    /// [`UsageError`] when Postgres fails.
    pub async fn report(
        &self,
        principal: &Principal,
        from: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
        user: Option<Uuid>,
        model: Option<&str>,
    ) -> Result<Vec<ReportRow>, UsageError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let rows = store::usage::report(&mut tx, from, until, user, model).await?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// The price of `provider/model`, else of `model`, applied to the token counts.
fn cost_micros(
    prices: &BTreeMap<String, Price>,
    model: &str,
    prompt_tokens: i64,
    completion_tokens: i64,
) -> i64 {
    let bare = model.split_once('/').map_or(model, |(_, m)| m);
    let price = prices
        .get(model)
        .or_else(|| prices.get(bare))
        .copied()
        .unwrap_or_default();
    let cost = i128::from(prompt_tokens) * i128::from(price.prompt_per_million)
        + i128::from(completion_tokens) * i128::from(price.completion_per_million);
    i64::try_from(cost / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_come_from_the_most_specific_price() {
        let prices = BTreeMap::from([
            (
                "gpt-4o".to_owned(),
                Price {
                    prompt_per_million: 2_500_000,
                    completion_per_million: 10_000_000,
                },
            ),
            (
                "azure/gpt-4o".to_owned(),
                Price {
                    prompt_per_million: 3_000_000,
                    completion_per_million: 12_000_000,
                },
            ),
        ]);
        assert_eq!(cost_micros(&prices, "openai/gpt-4o", 1000, 500), 7_500);
        assert_eq!(cost_micros(&prices, "azure/gpt-4o", 1000, 500), 9_000);
        assert_eq!(cost_micros(&prices, "lab/llama3.1", 1000, 500), 0);
    }

    #[test]
    fn periods_start_at_utc_midnight_and_the_first_of_the_month() {
        let at = |day: u8, hour: u8, minute: u8| {
            Date::from_calendar_date(2026, time::Month::November, day)
                .unwrap()
                .with_hms(hour, minute, 0)
                .unwrap()
                .assume_utc()
        };
        let now = at(24, 17, 45);
        assert_eq!(BudgetPeriod::Day.start(now), at(24, 0, 0));
        assert_eq!(BudgetPeriod::Month.start(now), at(1, 0, 0));
    }
}
