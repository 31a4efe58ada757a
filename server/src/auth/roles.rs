//! The built-in roles every tenant has, and what each may do.
//!
//! Patterns may use `*` for "any object" or "any action". Tenant lifecycle permissions
//! (`tenant:create`, `tenant:list`, `tenant:suspend`, `tenant:delete`) belong to no tenant
//! role: they are the platform's, granted only to `platform-admin`, which tenant admins
//! cannot grant.

/// Roles seeded in every tenant.
pub const BUILTIN_ROLES: [&str; 5] = ["owner", "admin", "member", "viewer", "auditor"];

/// The platform operator's role.
pub const PLATFORM_ADMIN: &str = "platform-admin";

/// Permissions only owners hold, which no other role (built-in or custom) may receive:
/// changing who may sign in (the identity provider), and how long the audit trail is kept.
pub const OWNER_ONLY: &[(&str, &str)] = &[("identity_provider", "write"), ("retention", "write")];

/// (role, object, action) grants of the built-in roles.
pub const BUILTIN_GRANTS: &[(&str, &str, &str)] = &[
    ("owner", "conversation", "*"),
    ("owner", "memory", "*"),
    ("owner", "profile", "*"),
    ("owner", "session", "*"),
    ("owner", "api_key", "*"),
    ("owner", "user", "*"),
    ("owner", "role", "*"),
    ("owner", "identity_provider", "*"),
    ("owner", "provider", "*"),
    ("owner", "budget", "*"),
    ("owner", "usage", "*"),
    ("owner", "plugin", "*"),
    ("owner", "model", "*"),
    ("owner", "inference", "*"),
    ("owner", "audit", "*"),
    ("owner", "retention", "*"),
    ("owner", "tenant", "read"),
    ("owner", "tenant", "write"),
    ("admin", "conversation", "*"),
    ("admin", "memory", "*"),
    ("admin", "profile", "*"),
    ("admin", "session", "*"),
    ("admin", "api_key", "*"),
    ("admin", "user", "*"),
    ("admin", "role", "*"),
    ("admin", "identity_provider", "read"),
    ("admin", "provider", "*"),
    ("admin", "budget", "*"),
    ("admin", "usage", "read"),
    ("admin", "plugin", "*"),
    ("admin", "model", "*"),
    ("admin", "inference", "*"),
    ("admin", "audit", "read"),
    ("admin", "audit", "export"),
    ("admin", "tenant", "read"),
    ("admin", "tenant", "write"),
    ("member", "conversation", "*"),
    ("member", "memory", "*"),
    ("member", "profile", "read"),
    ("member", "session", "own"),
    ("member", "api_key", "read"),
    ("member", "api_key", "write"),
    ("member", "plugin", "read"),
    ("member", "plugin", "invoke"),
    ("member", "plugin", "use"),
    ("member", "model", "read"),
    ("member", "inference", "use"),
    ("viewer", "conversation", "read"),
    ("viewer", "memory", "read"),
    ("viewer", "profile", "read"),
    ("viewer", "session", "own"),
    ("viewer", "plugin", "read"),
    ("viewer", "model", "read"),
    ("auditor", "audit", "read"),
    ("auditor", "audit", "export"),
    ("auditor", "session", "own"),
    ("auditor", "usage", "read"),
    ("auditor", "user", "read"),
    ("auditor", "tenant", "read"),
    ("platform-admin", "tenant", "*"),
    ("platform-admin", "session", "own"),
];
