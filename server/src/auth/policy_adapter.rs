//! Casbin's view of the policies stored in Postgres.
//!
//! Loading gives the engine the built-in role grants (from code, in every tenant: domain
//! `*`) and every tenant's custom grants (table `role_policies`, read through a
//! platform function since loading crosses tenants). Grants are written through
//! `AdminService` in tenant-scoped transactions, never by the engine, so the engine runs
//! with auto-save off and the write half of the adapter refuses to be used.

use casbin::{Adapter, Filter, Model, error::AdapterError};

use super::roles::BUILTIN_GRANTS;
use crate::store::{self, Database};

/// Reads policies from Postgres.
pub struct PostgresPolicyAdapter {
    db: Database,
}

impl PostgresPolicyAdapter {
    /// Reads from `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// A policy rule as the model stores it: (role, domain, object, action).
pub fn rule(role: &str, domain: &str, object: &str, action: &str) -> Vec<String> {
    vec![
        role.to_owned(),
        domain.to_owned(),
        object.to_owned(),
        action.to_owned(),
    ]
}

fn adapter_error(message: impl Into<String>) -> casbin::Error {
    let message: String = message.into();
    casbin::Error::from(AdapterError(message.into()))
}

fn read_only() -> casbin::Error {
    adapter_error("policies are written through AdminService, not by the policy engine")
}

#[async_trait::async_trait]
impl Adapter for PostgresPolicyAdapter {
    async fn load_policy(&mut self, model: &mut dyn Model) -> casbin::Result<()> {
        for (role, object, action) in BUILTIN_GRANTS {
            model.add_policy("p", "p", rule(role, "*", object, action));
        }
        let custom = store::role_policies::all(&self.db)
            .await
            .map_err(|err| adapter_error(err.to_string()))?;
        for (tenant, policy) in custom {
            let domain = tenant.to_string();
            model.add_policy(
                "p",
                "p",
                rule(&policy.role, &domain, &policy.object, &policy.action),
            );
        }
        Ok(())
    }

    async fn load_filtered_policy<'a>(
        &mut self,
        model: &mut dyn Model,
        _filter: Filter<'a>,
    ) -> casbin::Result<()> {
        self.load_policy(model).await
    }

    async fn save_policy(&mut self, _model: &mut dyn Model) -> casbin::Result<()> {
        Err(read_only())
    }

    async fn clear_policy(&mut self) -> casbin::Result<()> {
        Err(read_only())
    }

    fn is_filtered(&self) -> bool {
        false
    }

    async fn add_policy(&mut self, _: &str, _: &str, _: Vec<String>) -> casbin::Result<bool> {
        Err(read_only())
    }

    async fn add_policies(
        &mut self,
        _: &str,
        _: &str,
        _: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        Err(read_only())
    }

    async fn remove_policy(&mut self, _: &str, _: &str, _: Vec<String>) -> casbin::Result<bool> {
        Err(read_only())
    }

    async fn remove_policies(
        &mut self,
        _: &str,
        _: &str,
        _: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        Err(read_only())
    }

    async fn remove_filtered_policy(
        &mut self,
        _: &str,
        _: &str,
        _: usize,
        _: Vec<String>,
    ) -> casbin::Result<bool> {
        Err(read_only())
    }
}
