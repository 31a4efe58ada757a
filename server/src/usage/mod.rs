//! What model calls cost and who may still make them: usage recorded per call (with the
//! turn it belongs to, or in the background for calls stored nowhere else), token budgets
//! per UTC day or month checked before each call, and the tenant's usage report. Chat,
//! embeddings, titles and memory jobs all account here.

mod accounting;
mod writer;

pub use accounting::{Accounting, Budget, BudgetPeriod, applies_to};
pub use writer::{UsageWriter, UsageWriterTask};

use crate::store::StoreError;

/// Why usage could not be accounted, or a call is refused.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A request field is unacceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and what is accepted.
        reason: &'static str,
    },
    /// A token budget that applies to the caller is used up.
    #[error(
        "{scope} token budget per {period} ({limit} tokens) is used up; it renews at the \
         start of the next {period} (UTC)"
    )]
    BudgetExhausted {
        /// `your` or `this tenant's`.
        scope: &'static str,
        /// `day` or `month`.
        period: &'static str,
        /// The limit.
        limit: i64,
    },
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
