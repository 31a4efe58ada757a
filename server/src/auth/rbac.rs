//! Role-based access control with Casbin, one domain per tenant.
//!
//! The model: a request (role, tenant, object, action) is allowed when a policy for that
//! role (or a role it inherits in the tenant, `g = _, _, _`) matches, with `*` in a policy
//! matching anything. Built-in role grants apply in every tenant (domain `*`). A caller is
//! allowed when any of their roles is.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use tokio::sync::RwLock;

use super::{Principal, permissions::Permission, roles::BUILTIN_GRANTS};
use crate::{store::role_policies::RolePolicy, tenancy::TenantId};

/// Casbin model: RBAC with domains and `*` wildcards in policies.
const MODEL: &str = r#"
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && (p.dom == "*" || p.dom == r.dom) && (p.obj == "*" || p.obj == r.obj) && (p.act == "*" || p.act == r.act)
"#;

/// Why the policy engine could not be set up or updated.
#[derive(Debug, thiserror::Error)]
#[error("access control policy engine: {0}")]
pub struct RbacError(#[from] casbin::Error);

fn rule(role: &str, domain: &str, object: &str, action: &str) -> Vec<String> {
    vec![
        role.to_owned(),
        domain.to_owned(),
        object.to_owned(),
        action.to_owned(),
    ]
}

/// (role, tenant, object, action) of a remembered decision.
type DecisionKey = (String, TenantId, &'static str, &'static str);

/// Decisions remembered at most; past that the memory starts over.
const MAX_DECISIONS: usize = 100_000;

/// The policy decision point shared by every request. Decisions are remembered until the
/// policies change: evaluating the Casbin matcher costs far more than a map lookup.
pub struct Rbac {
    enforcer: RwLock<Enforcer>,
    decisions: std::sync::RwLock<HashMap<DecisionKey, bool>>,
}

impl Rbac {
    /// An enforcer holding the built-in role grants.
    ///
    /// # Errors
    /// [`RbacError`] when the model or policies are rejected (a build defect).
    pub async fn new() -> Result<Self, RbacError> {
        let model = DefaultModel::from_str(MODEL).await?;
        let mut enforcer = Enforcer::new(model, MemoryAdapter::default()).await?;
        let grants = BUILTIN_GRANTS
            .iter()
            .map(|(role, object, action)| {
                vec![
                    (*role).to_owned(),
                    "*".to_owned(),
                    (*object).to_owned(),
                    (*action).to_owned(),
                ]
            })
            .collect();
        enforcer.add_policies(grants).await?;
        Ok(Self {
            enforcer: RwLock::new(enforcer),
            decisions: std::sync::RwLock::new(HashMap::new()),
        })
    }

    /// Replaces every tenant's custom grants with `policies` (tenants absent from it end up
    /// with none).
    ///
    /// # Errors
    /// [`RbacError`] when the engine refuses them.
    pub async fn replace_all(
        &self,
        policies: &BTreeMap<TenantId, Vec<RolePolicy>>,
    ) -> Result<(), RbacError> {
        let mut enforcer = self.enforcer.write().await;
        self.forget_decisions();
        let stale: BTreeSet<String> = enforcer
            .get_policy()
            .into_iter()
            .filter_map(|rule| rule.get(1).cloned())
            .filter(|domain| domain != "*")
            .collect();
        for domain in stale {
            enforcer.remove_filtered_policy(1, vec![domain]).await?;
        }
        let rules: Vec<Vec<String>> = policies
            .iter()
            .flat_map(|(tenant, list)| {
                let domain = tenant.to_string();
                list.iter()
                    .map(move |p| rule(&p.role, &domain, &p.object, &p.action))
            })
            .collect();
        if !rules.is_empty() {
            enforcer.add_policies(rules).await?;
        }
        Ok(())
    }

    /// Replaces the custom grants of `tenant` with `policies`.
    ///
    /// # Errors
    /// [`RbacError`] when the engine refuses them.
    pub async fn replace_tenant(
        &self,
        tenant: TenantId,
        policies: &[RolePolicy],
    ) -> Result<(), RbacError> {
        let domain = tenant.to_string();
        let mut enforcer = self.enforcer.write().await;
        self.forget_decisions();
        enforcer
            .remove_filtered_policy(1, vec![domain.clone()])
            .await?;
        let rules: Vec<Vec<String>> = policies
            .iter()
            .map(|p| rule(&p.role, &domain, &p.object, &p.action))
            .collect();
        if !rules.is_empty() {
            enforcer.add_policies(rules).await?;
        }
        Ok(())
    }

    /// Whether any of `principal`'s roles grants `permission` in its tenant. Errors in
    /// evaluation deny.
    pub async fn allows(&self, principal: &Principal, permission: Permission) -> bool {
        // Held while deciding and remembering, so a policy change (which takes it for
        // writing and forgets every decision) never races a stale decision in.
        let enforcer = self.enforcer.read().await;
        principal.roles.iter().any(|role| {
            let key = (
                role.clone(),
                principal.tenant,
                permission.object,
                permission.action,
            );
            if let Some(allowed) = self.read_decisions().get(&key) {
                return *allowed;
            }
            let tenant = principal.tenant.to_string();
            let allowed = enforcer
                .enforce((
                    role.as_str(),
                    tenant.as_str(),
                    permission.object,
                    permission.action,
                ))
                .unwrap_or(false);
            let mut decisions = self.decisions.write().unwrap_or_else(|e| e.into_inner());
            if decisions.len() >= MAX_DECISIONS {
                decisions.clear();
            }
            decisions.insert(key, allowed);
            allowed
        })
    }

    fn read_decisions(&self) -> std::sync::RwLockReadGuard<'_, HashMap<DecisionKey, bool>> {
        self.decisions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn forget_decisions(&self) {
        self.decisions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn principal(roles: &[&str]) -> Principal {
        Principal {
            tenant: TenantId(Uuid::nil()),
            tenant_slug: "t".into(),
            user: Uuid::nil(),
            email: "u@t.example".into(),
            api_key: None,
            session: None,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    fn perm(object: &'static str, action: &'static str) -> Permission {
        Permission { object, action }
    }

    #[tokio::test]
    async fn custom_grants_apply_to_their_tenant_only() {
        let rbac = Rbac::new().await.unwrap();
        let analyst = principal(&["analyst"]);
        let embed = perm("inference", "use");
        assert!(!rbac.allows(&analyst, embed).await);
        let grant = RolePolicy {
            role: "analyst".into(),
            object: "inference".into(),
            action: "use".into(),
        };
        rbac.replace_tenant(analyst.tenant, &[grant]).await.unwrap();
        assert!(rbac.allows(&analyst, embed).await);
        let elsewhere = Principal {
            tenant: TenantId(Uuid::now_v7()),
            ..analyst.clone()
        };
        assert!(!rbac.allows(&elsewhere, embed).await);
        rbac.replace_tenant(analyst.tenant, &[]).await.unwrap();
        assert!(!rbac.allows(&analyst, embed).await);
    }

    #[tokio::test]
    async fn builtin_roles_grant_what_they_should() {
        let rbac = Rbac::new().await.unwrap();
        let cases = [
            (&["owner"][..], perm("retention", "write"), true),
            (&["owner"], perm("tenant", "create"), false),
            (&["admin"], perm("user", "write"), true),
            (&["admin"], perm("retention", "write"), false),
            (&["member"], perm("conversation", "write"), true),
            (&["member"], perm("user", "read"), false),
            (&["viewer"], perm("conversation", "read"), true),
            (&["viewer"], perm("conversation", "write"), false),
            (&["auditor"], perm("audit", "export"), true),
            (&["auditor"], perm("conversation", "read"), false),
            (&["platform-admin"], perm("tenant", "create"), true),
            (&[], perm("session", "own"), false),
            (&["viewer", "auditor"], perm("audit", "read"), true),
            (&["no-such-role"], perm("conversation", "read"), false),
        ];
        for (roles, permission, expected) in cases {
            assert_eq!(
                rbac.allows(&principal(roles), permission).await,
                expected,
                "{roles:?} {permission}"
            );
        }
    }
}
