//! Model aliases: a tenant names ordered (provider, model) targets under an alias such as
//! `default`, `fast` or `private`, with a per-attempt timeout and retries; a private alias
//! may name only providers on the tenant's premises.

use serde_json::json;
use sqlx::types::Json;

use super::{ProviderError, Providers};
use crate::{
    audit::{self, NewEvent},
    caller::Principal,
    store::{self, model_routes::RouteRow},
};

/// Most targets one alias may list.
const MAX_TARGETS: usize = 8;

/// An alias and what it routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRoute {
    /// The alias.
    pub alias: String,
    /// (provider, model) targets, first choice first.
    pub targets: Vec<(String, String)>,
    /// Only on-premises providers may serve it.
    pub private_only: bool,
    /// Per-attempt timeout in ms; 0: the server default.
    pub timeout_ms: i32,
    /// Retries per target on retryable failures.
    pub max_retries: i32,
}

impl From<RouteRow> for ModelRoute {
    fn from(row: RouteRow) -> Self {
        Self {
            alias: row.alias,
            targets: row.targets.0,
            private_only: row.private_only,
            timeout_ms: row.timeout_ms,
            max_retries: row.max_retries,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ProviderError {
    ProviderError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Providers {
    /// Creates or replaces an alias of the caller's tenant, recorded as `route.set`.
    ///
    /// # Errors
    /// [`ProviderError::Invalid`] naming the bad setting (unknown provider, a provider off
    /// the premises in a private alias, ...), or a failure.
    pub async fn set_route(
        &self,
        principal: &Principal,
        route: &ModelRoute,
    ) -> Result<ModelRoute, ProviderError> {
        if !crate::tenancy::is_identifier(&route.alias) {
            return Err(invalid(
                "route.alias",
                "must be lowercase letters, digits, '_' or '-', starting with a letter",
            ));
        }
        if route.targets.is_empty() || route.targets.len() > MAX_TARGETS {
            return Err(invalid(
                "route.targets",
                format!("1 to {MAX_TARGETS} targets"),
            ));
        }
        if !(0..=600_000).contains(&route.timeout_ms) {
            return Err(invalid("route.timeout_ms", "0 to 600000"));
        }
        if !(0..=5).contains(&route.max_retries) {
            return Err(invalid("route.max_retries", "0 to 5"));
        }
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        for (provider, model) in &route.targets {
            let row = self
                .find(&mut tx, provider)
                .await?
                .ok_or_else(|| invalid("route.targets", format!("no provider {provider:?}")))?
                .settings();
            if model.is_empty() || (!row.models.is_empty() && !row.models.contains(model)) {
                return Err(invalid(
                    "route.targets",
                    format!("provider {provider:?} does not offer model {model:?}"),
                ));
            }
            if route.private_only && !row.on_premises {
                return Err(invalid(
                    "route.targets",
                    format!(
                        "provider {provider:?} is not on the premises; a private alias may not use it"
                    ),
                ));
            }
        }
        let row = RouteRow {
            alias: route.alias.clone(),
            targets: Json(route.targets.clone()),
            private_only: route.private_only,
            timeout_ms: route.timeout_ms,
            max_retries: route.max_retries,
        };
        store::model_routes::upsert(&mut tx, &row).await?;
        let details = json!({ "targets": route.targets, "private_only": route.private_only });
        let event = NewEvent::by(principal, "route.set", "model_route", &route.alias, details);
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        self.changes.changed(principal.tenant).await;
        Ok(row.into())
    }

    /// A page of the caller's tenant's aliases, by name.
    ///
    /// # Errors
    /// [`ProviderError::Store`] when Postgres fails.
    pub async fn routes(
        &self,
        principal: &Principal,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ModelRoute>, ProviderError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let rows = store::model_routes::list(&mut tx, after, i64::from(limit)).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Whether the caller's tenant has configured `alias`.
    ///
    /// # Errors
    /// [`ProviderError::Store`] when Postgres fails.
    pub async fn has_alias(
        &self,
        principal: &Principal,
        alias: &str,
    ) -> Result<bool, ProviderError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let found = store::model_routes::get(&mut tx, alias).await?.is_some();
        tx.commit().await?;
        Ok(found)
    }

    /// Removes an alias, recorded as `route.delete`.
    ///
    /// # Errors
    /// [`ProviderError::RouteNotFound`] when there is none by that name.
    pub async fn delete_route(
        &self,
        principal: &Principal,
        alias: &str,
    ) -> Result<(), ProviderError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        if !store::model_routes::delete(&mut tx, alias).await? {
            return Err(ProviderError::RouteNotFound(alias.to_owned()));
        }
        let event = NewEvent::by(principal, "route.delete", "model_route", alias, json!({}));
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        self.changes.changed(principal.tenant).await;
        Ok(())
    }
}
