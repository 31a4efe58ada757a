//! What the background jobs that ask a model about a user's conversation share (titles,
//! fact extraction, summaries): acting as the message's user, skipping tenants that are not active, and
//! turning a chat failure into "skip", "retry" or "give up".

pub(in crate::chat) mod facts;
pub(in crate::chat) mod memory_writer;
pub(in crate::chat) mod summaries;
pub(in crate::chat) mod titles;

use std::future::Future;

use uuid::Uuid;

use crate::chat::ChatError;
use crate::{
    caller::{CallOrigin, Principal},
    jobs::{Handled, JobError},
    llm::LlmError,
    memory::MemoryError,
    store::{self, Database},
    tenancy::TenantId,
    usage::UsageError,
};

/// Runs `work` as `user` of `tenant` when the tenant is active; `phi_refused` says why a
/// prompt the PHI policy stopped is skipped.
///
/// # Errors
/// [`JobError::Retry`] for failures that may pass (a provider or a store unavailable),
/// [`JobError::Permanent`] for those that will not (a provider refusing the credentials or
/// the request).
pub async fn run_as_user<F, Fut>(
    db: &Database,
    tenant: Uuid,
    user: Uuid,
    phi_refused: &'static str,
    work: F,
) -> Result<Handled, JobError>
where
    F: FnOnce(Principal) -> Fut,
    Fut: Future<Output = Result<Handled, ChatError>>,
{
    let principal = Principal {
        tenant: TenantId(tenant),
        tenant_slug: String::new(),
        user,
        email: String::new(),
        api_key: None,
        session: None,
        roles: Vec::new(),
        origin: CallOrigin::default(),
    };
    if !store::tenants::is_active(db, principal.tenant)
        .await
        .map_err(|err| JobError::Retry(err.to_string()))?
    {
        return Ok(Handled::Skipped("the tenant is not active"));
    }
    match work(principal).await {
        Ok(handled) => Ok(handled),
        Err(ChatError::NotFound) => Ok(Handled::Skipped("the conversation is gone")),
        Err(ChatError::Usage(UsageError::BudgetExhausted { .. })) => {
            Ok(Handled::Skipped("the user's token budget is used up"))
        }
        Err(ChatError::PhiRefused { .. }) => Ok(Handled::Skipped(phi_refused)),
        // A model setting this tenant has no alias for: its setup, not a failure.
        Err(ChatError::Invalid { .. } | ChatError::Memory(MemoryError::NoEmbeddings(_))) => Ok(
            Handled::Skipped("the model it needs does not serve this tenant"),
        ),
        Err(
            err @ ChatError::Llm(
                LlmError::Unauthorized(_) | LlmError::Rejected(_) | LlmError::Protocol(_),
            ),
        ) => Err(JobError::Permanent(err.to_string())),
        Err(
            err @ (ChatError::Llm(_)
            | ChatError::Store(_)
            | ChatError::Usage(UsageError::Store(_))
            | ChatError::Cache(_)
            | ChatError::Memory(
                MemoryError::Busy(_) | MemoryError::Store(_) | MemoryError::Embedding(_),
            )),
        ) => Err(JobError::Retry(err.to_string())),
        Err(err) => Err(JobError::Permanent(err.to_string())),
    }
}
