//! Which permission every RPC needs: deny by default.
//!
//! Each method of every served service has exactly one entry: public (health, reflection,
//! and the three login calls a user makes before having a credential) or an (object, action)
//! permission the caller's roles must grant. A method missing from the table is refused,
//! and a test walks the compiled descriptors to prove none is missing.

use std::fmt;

/// What an RPC requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone may call it, without a credential.
    Public,
    /// The caller must hold a role granting this permission.
    Requires(Permission),
    /// The caller must hold a role granting this permission on every plugin, or on the
    /// plugin the call names (`plugin/<name>`, see [`PER_PLUGIN`]): the edge checks that
    /// it is granted on some plugin, the domain decides once it knows which.
    PerPlugin(Permission),
}

/// An action on a kind of object, e.g. (`conversation`, `write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permission {
    /// Kind of object acted on.
    pub object: &'static str,
    /// What is done to it.
    pub action: &'static str,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object, self.action)
    }
}

mod table;

use table::TABLE;

/// Services whose every method is public.
const PUBLIC_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The access rule of a method, `None` when the method is unknown (refuse it).
pub fn access(service: &str, method: &str) -> Option<Access> {
    if PUBLIC_SERVICES.contains(&service) {
        return Some(Access::Public);
    }
    TABLE
        .iter()
        .find(|(s, m, _)| *s == service && *m == method)
        .map(|(_, _, access)| *access)
}

/// Every permission some RPC requires (for role listings and tests).
pub fn all_permissions() -> impl Iterator<Item = Permission> {
    TABLE
        .iter()
        .filter_map(|(_, _, access)| match access {
            Access::Requires(permission) | Access::PerPlugin(permission) => Some(*permission),
            Access::Public => None,
        })
        .chain(IN_DOMAIN.iter().copied())
}

/// Permissions no RPC requires, which the domain checks itself during a call.
pub const IN_DOMAIN: &[Permission] = &[
    // Having the assistant call the tenant's plugins during a chat turn.
    PLUGIN_USE,
];

/// Having the assistant call the tenant's plugins during a chat turn.
pub const PLUGIN_USE: Permission = Permission {
    object: "plugin",
    action: "use",
};

/// Calling a plugin's tool directly (`InvokePlugin`).
pub const PLUGIN_INVOKE: Permission = Permission {
    object: "plugin",
    action: "invoke",
};

/// Permissions a policy may grant on one plugin only, as the object `plugin/<name>`.
pub const PER_PLUGIN: &[Permission] = &[PLUGIN_INVOKE, PLUGIN_USE];

/// The object of `permission` on one plugin: `plugin/<name>`.
pub fn on_plugin(permission: Permission, name: &str) -> String {
    format!("{}/{name}", permission.object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::ApiCatalog;

    #[test]
    fn every_served_method_has_an_access_rule() {
        let catalog = ApiCatalog::served();
        let mut checked = 0;
        for service in catalog.services() {
            for method in catalog.methods(service) {
                assert!(
                    access(service, method).is_some(),
                    "{service}/{method} has no entry in auth::permissions::TABLE"
                );
                checked += 1;
            }
        }
        assert!(checked > 70, "walked {checked} methods");
    }

    #[test]
    fn table_names_only_served_methods_once() {
        let catalog = ApiCatalog::served();
        for (i, (service, method, _)) in TABLE.iter().enumerate() {
            assert!(
                catalog.methods(service).any(|m| m == *method),
                "{service}/{method} in the table is not a served method"
            );
            assert!(
                !TABLE[..i]
                    .iter()
                    .any(|(s, m, _)| s == service && m == method),
                "{service}/{method} listed twice"
            );
        }
    }

    #[test]
    fn only_health_reflection_and_login_are_public() {
        let public: Vec<_> = TABLE
            .iter()
            .filter(|(_, _, access)| *access == Access::Public)
            .map(|(_, m, _)| *m)
            .collect();
        assert_eq!(public, ["StartLogin", "CompleteLogin", "ExchangeLoginCode"]);
        assert_eq!(access("codexcontinue.v1.ChatService", "Nope"), None);
        assert_eq!(
            access("grpc.health.v1.Health", "Check"),
            Some(Access::Public)
        );
    }
}
