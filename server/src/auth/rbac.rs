//! Role-based access control with Casbin, one domain per tenant.
//!
//! The model: a request (role, tenant, object, action) is allowed when a policy for that
//! role (or a role it inherits in the tenant, `g = _, _, _`) matches, with `*` in a policy
//! matching anything. Built-in role grants apply in every tenant (domain `*`). A caller is
//! allowed when any of their roles is. Policies are stored in Postgres and loaded through
//! [`super::policy_adapter`].

use std::{borrow::Cow, collections::HashMap};

use casbin::{Adapter, CoreApi, DefaultModel, Enforcer, MgmtApi};
use tokio::sync::RwLock;

use super::permissions::{Permission, on_plugin};
use crate::caller::Principal;
use crate::tenancy::TenantId;

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

/// (role, tenant, object, action) of a remembered decision.
type DecisionKey = (String, TenantId, Cow<'static, str>, &'static str);

/// Decisions remembered at most; past that the memory starts over.
const MAX_DECISIONS: usize = 100_000;

/// The policy decision point shared by every request. Decisions are remembered until the
/// policies change: evaluating the Casbin matcher costs far more than a map lookup.
pub struct Rbac {
    enforcer: RwLock<Enforcer>,
    decisions: std::sync::RwLock<HashMap<DecisionKey, bool>>,
}

impl Rbac {
    /// An engine whose policies come from `adapter` (in the server, Postgres through
    /// [`super::policy_adapter::PostgresPolicyAdapter`]).
    ///
    /// # Errors
    /// [`RbacError`] when the model is rejected or the policies cannot be loaded.
    pub async fn new(adapter: impl Adapter + 'static) -> Result<Self, RbacError> {
        let model = DefaultModel::from_str(MODEL).await?;
        let mut enforcer = Enforcer::new(model, adapter).await?;
        // Grants are written through the API, never by the engine.
        enforcer.enable_auto_save(false);
        Ok(Self {
            enforcer: RwLock::new(enforcer),
            decisions: std::sync::RwLock::new(HashMap::new()),
        })
    }

    /// Reloads every policy from the adapter (after a change announced by any replica).
    ///
    /// # Errors
    /// [`RbacError`] when the policies cannot be loaded; the previous ones stay in force.
    pub async fn reload(&self) -> Result<(), RbacError> {
        let mut enforcer = self.enforcer.write().await;
        enforcer.load_policy().await?;
        self.forget_decisions();
        Ok(())
    }

    /// Replaces `tenant`'s custom grants with `grants` (role, object, action), leaving every
    /// other tenant's as they are: a change of one tenant costs that tenant's grants, not
    /// everyone's.
    ///
    /// # Errors
    /// [`RbacError`] when the engine refuses; the previous grants may be partly gone then,
    /// and the caller should reload everything.
    pub async fn replace_tenant(
        &self,
        tenant: TenantId,
        grants: impl IntoIterator<Item = (String, String, String)>,
    ) -> Result<(), RbacError> {
        let domain = tenant.to_string();
        let rules: Vec<Vec<String>> = grants
            .into_iter()
            .map(|(role, object, action)| vec![role, domain.clone(), object, action])
            .collect();
        let mut enforcer = self.enforcer.write().await;
        enforcer
            .remove_filtered_policy(1, vec![domain.clone()])
            .await?;
        if !rules.is_empty() {
            enforcer.add_policies(rules).await?;
        }
        self.decisions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, decided_for, _, _), _| *decided_for != tenant);
        Ok(())
    }

    /// Whether any of `principal`'s roles grants `permission` in its tenant. Errors in
    /// evaluation deny.
    pub async fn allows(&self, principal: &Principal, permission: Permission) -> bool {
        self.decide(
            principal,
            Cow::Borrowed(permission.object),
            permission.action,
        )
        .await
    }

    /// Every permission `principal`'s roles (built-in and custom policies) grant in their
    /// tenant, sorted, so clients can show what the caller may do.
    pub async fn effective_permissions(&self, principal: &Principal) -> Vec<Permission> {
        let mut known: Vec<Permission> = super::permissions::all_permissions().collect();
        known.sort_by_key(|p| (p.object, p.action));
        known.dedup();
        let mut granted = Vec::with_capacity(known.len());
        for permission in known {
            if self.allows(principal, permission).await {
                granted.push(permission);
            }
        }
        granted
    }

    /// Whether any of `principal`'s roles grants `permission` on every plugin, or on
    /// plugin `name` (a policy on the object `plugin/<name>`).
    pub async fn allows_on_plugin(
        &self,
        principal: &Principal,
        permission: Permission,
        name: &str,
    ) -> bool {
        self.allows(principal, permission).await
            || self
                .decide(
                    principal,
                    Cow::Owned(on_plugin(permission, name)),
                    permission.action,
                )
                .await
    }

    /// Whether any of `principal`'s roles grants `permission` on every plugin or on some
    /// plugin (the edge's check for [`super::permissions::Access::PerPlugin`] calls: the
    /// domain decides which).
    pub async fn allows_on_some_plugin(
        &self,
        principal: &Principal,
        permission: Permission,
    ) -> bool {
        if self.allows(principal, permission).await {
            return true;
        }
        let prefix = on_plugin(permission, "");
        let tenant = principal.tenant.to_string();
        let enforcer = self.enforcer.read().await;
        enforcer
            .get_filtered_policy(1, vec![tenant])
            .iter()
            .any(|rule| match rule.as_slice() {
                [role, _, object, action] => {
                    principal.roles.contains(role)
                        && object.starts_with(&prefix)
                        && (action == permission.action || action == "*")
                }
                _ => false,
            })
    }

    /// Whether any of `principal`'s roles may do `action` on `object` in its tenant.
    async fn decide(
        &self,
        principal: &Principal,
        object: Cow<'static, str>,
        action: &'static str,
    ) -> bool {
        // Held while deciding and remembering, so a policy change (which takes it for
        // writing and forgets every decision) never races a stale decision in.
        let enforcer = self.enforcer.read().await;
        principal.roles.iter().any(|role| {
            let key = (role.clone(), principal.tenant, object.clone(), action);
            if let Some(allowed) = self.read_decisions().get(&key) {
                return *allowed;
            }
            let tenant = principal.tenant.to_string();
            let allowed = enforcer
                .enforce((role.as_str(), tenant.as_str(), object.as_ref(), action))
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
    use casbin::MemoryAdapter;
    use uuid::Uuid;

    use super::*;
    use crate::auth::{policy_adapter::rule, roles::BUILTIN_GRANTS};

    fn principal(roles: &[&str]) -> Principal {
        Principal {
            tenant: TenantId(Uuid::nil()),
            tenant_slug: "t".into(),
            user: Uuid::nil(),
            email: "u@t.example".into(),
            api_key: None,
            session: None,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            origin: crate::caller::CallOrigin::default(),
        }
    }

    fn perm(object: &'static str, action: &'static str) -> Permission {
        Permission { object, action }
    }

    /// An engine with the built-in grants and `custom` (tenant, role, object, action).
    async fn rbac_with(custom: &[(TenantId, &str, &str, &str)]) -> Rbac {
        let mut adapter = MemoryAdapter::default();
        let mut rules: Vec<Vec<String>> = BUILTIN_GRANTS
            .iter()
            .map(|(role, object, action)| rule(role, "*", object, action))
            .collect();
        rules.extend(
            custom.iter().map(|(tenant, role, object, action)| {
                rule(role, &tenant.to_string(), object, action)
            }),
        );
        adapter.add_policies("p", "p", rules).await.unwrap();
        Rbac::new(adapter).await.unwrap()
    }

    #[tokio::test]
    async fn custom_grants_apply_to_their_tenant_only() {
        let analyst = principal(&["analyst"]);
        let embed = perm("inference", "use");
        assert!(!rbac_with(&[]).await.allows(&analyst, embed).await);
        let rbac = rbac_with(&[(analyst.tenant, "analyst", "inference", "use")]).await;
        assert!(rbac.allows(&analyst, embed).await);
        let elsewhere = Principal {
            tenant: TenantId(Uuid::now_v7()),
            ..analyst.clone()
        };
        assert!(!rbac.allows(&elsewhere, embed).await);
    }

    #[tokio::test]
    async fn replacing_one_tenants_grants_leaves_the_others() {
        let analyst = principal(&["analyst"]);
        let other = Principal {
            tenant: TenantId(Uuid::now_v7()),
            ..analyst.clone()
        };
        let embed = perm("inference", "use");
        let rbac = rbac_with(&[
            (analyst.tenant, "analyst", "inference", "use"),
            (other.tenant, "analyst", "inference", "use"),
        ])
        .await;
        assert!(rbac.allows(&analyst, embed).await && rbac.allows(&other, embed).await);
        rbac.replace_tenant(analyst.tenant, Vec::new())
            .await
            .unwrap();
        assert!(!rbac.allows(&analyst, embed).await, "its grant is gone");
        assert!(
            rbac.allows(&other, embed).await,
            "the other tenant keeps its own"
        );
        let read = perm("model", "read");
        rbac.replace_tenant(
            analyst.tenant,
            [("analyst".to_owned(), "model".to_owned(), "read".to_owned())],
        )
        .await
        .unwrap();
        assert!(rbac.allows(&analyst, read).await);
        assert!(!rbac.allows(&analyst, embed).await);
    }

    #[tokio::test]
    async fn builtin_roles_grant_what_they_should() {
        let rbac = rbac_with(&[]).await;
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
            // Twice: the second answer comes from the remembered decision.
            for _ in 0..2 {
                assert_eq!(
                    rbac.allows(&principal(roles), permission).await,
                    expected,
                    "{roles:?} {permission}"
                );
            }
        }
    }
}
