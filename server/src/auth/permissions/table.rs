//! The access rule of every method of the CodexContinue API, one line each.

use super::{Access, Permission};

const fn needs(object: &'static str, action: &'static str) -> Access {
    Access::Requires(Permission { object, action })
}

/// (service, method, access) for every method of the CodexContinue API.
pub(super) const TABLE: &[(&str, &str, Access)] = &[
    // ChatService
    (
        "codexcontinue.v1.ChatService",
        "CreateConversation",
        needs("conversation", "write"),
    ),
    (
        "codexcontinue.v1.ChatService",
        "GetConversation",
        needs("conversation", "read"),
    ),
    (
        "codexcontinue.v1.ChatService",
        "ListConversations",
        needs("conversation", "read"),
    ),
    (
        "codexcontinue.v1.ChatService",
        "RenameConversation",
        needs("conversation", "write"),
    ),
    (
        "codexcontinue.v1.ChatService",
        "DeleteConversation",
        needs("conversation", "delete"),
    ),
    (
        "codexcontinue.v1.ChatService",
        "SendMessage",
        needs("conversation", "write"),
    ),
    (
        "codexcontinue.v1.ChatService",
        "StreamMessage",
        needs("conversation", "write"),
    ),
    (
        "codexcontinue.v1.ChatService",
        "ListMessages",
        needs("conversation", "read"),
    ),
    (
        "codexcontinue.v1.ChatService",
        "RegenerateReply",
        needs("conversation", "write"),
    ),
    (
        "codexcontinue.v1.ChatService",
        "CancelGeneration",
        needs("conversation", "write"),
    ),
    (
        "codexcontinue.v1.ChatService",
        "ListProfiles",
        needs("profile", "read"),
    ),
    // MemoryService
    (
        "codexcontinue.v1.MemoryService",
        "Remember",
        needs("memory", "write"),
    ),
    (
        "codexcontinue.v1.MemoryService",
        "Recall",
        needs("memory", "read"),
    ),
    (
        "codexcontinue.v1.MemoryService",
        "ListMemories",
        needs("memory", "read"),
    ),
    (
        "codexcontinue.v1.MemoryService",
        "GetWorkingState",
        needs("memory", "read"),
    ),
    (
        "codexcontinue.v1.MemoryService",
        "SetWorkingState",
        needs("memory", "write"),
    ),
    (
        "codexcontinue.v1.MemoryService",
        "Forget",
        needs("memory", "delete"),
    ),
    (
        "codexcontinue.v1.MemoryService",
        "ExportMemories",
        needs("memory", "export"),
    ),
    // AuthService
    ("codexcontinue.v1.AuthService", "StartLogin", Access::Public),
    (
        "codexcontinue.v1.AuthService",
        "CompleteLogin",
        Access::Public,
    ),
    (
        "codexcontinue.v1.AuthService",
        "ExchangeLoginCode",
        Access::Public,
    ),
    (
        "codexcontinue.v1.AuthService",
        "RefreshSession",
        needs("session", "own"),
    ),
    (
        "codexcontinue.v1.AuthService",
        "Logout",
        needs("session", "own"),
    ),
    (
        "codexcontinue.v1.AuthService",
        "LogoutEverywhere",
        needs("session", "own"),
    ),
    (
        "codexcontinue.v1.AuthService",
        "WhoAmI",
        needs("session", "own"),
    ),
    (
        "codexcontinue.v1.AuthService",
        "ListSessions",
        needs("session", "own"),
    ),
    (
        "codexcontinue.v1.AuthService",
        "CreateApiKey",
        needs("api_key", "write"),
    ),
    (
        "codexcontinue.v1.AuthService",
        "ListApiKeys",
        needs("api_key", "read"),
    ),
    (
        "codexcontinue.v1.AuthService",
        "RevokeApiKey",
        needs("api_key", "write"),
    ),
    // AdminService
    (
        "codexcontinue.v1.AdminService",
        "CreateTenant",
        needs("tenant", "create"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "GetTenant",
        needs("tenant", "read"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "ListTenants",
        needs("tenant", "list"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "UpdateTenant",
        needs("tenant", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "SuspendTenant",
        needs("tenant", "suspend"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "ResumeTenant",
        needs("tenant", "suspend"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "DeleteTenant",
        needs("tenant", "delete"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "ListUsers",
        needs("user", "read"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "GetUser",
        needs("user", "read"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "SetUserDisabled",
        needs("user", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "DeleteUser",
        needs("user", "delete"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "RevokeUserSessions",
        needs("user", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "ListRoles",
        needs("role", "read"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "GrantRole",
        needs("role", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "RevokeRole",
        needs("role", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "ListPolicies",
        needs("role", "read"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "AddPolicy",
        needs("role", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "RemovePolicy",
        needs("role", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "GetIdentityProvider",
        needs("identity_provider", "read"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "SetIdentityProvider",
        needs("identity_provider", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "ListProviders",
        needs("provider", "read"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "SetProvider",
        needs("provider", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "DeleteProvider",
        needs("provider", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "ListModelRoutes",
        needs("provider", "read"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "SetModelRoute",
        needs("provider", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "DeleteModelRoute",
        needs("provider", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "SetProfile",
        needs("profile", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "DeleteProfile",
        needs("profile", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "ListBudgets",
        needs("budget", "read"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "SetBudget",
        needs("budget", "write"),
    ),
    (
        "codexcontinue.v1.AdminService",
        "GetUsageReport",
        needs("usage", "read"),
    ),
    // PluginService
    (
        "codexcontinue.v1.PluginService",
        "ListPlugins",
        needs("plugin", "read"),
    ),
    (
        "codexcontinue.v1.PluginService",
        "GetPlugin",
        needs("plugin", "read"),
    ),
    (
        "codexcontinue.v1.PluginService",
        "RegisterPlugin",
        needs("plugin", "manage"),
    ),
    (
        "codexcontinue.v1.PluginService",
        "UpdatePlugin",
        needs("plugin", "manage"),
    ),
    (
        "codexcontinue.v1.PluginService",
        "UnregisterPlugin",
        needs("plugin", "manage"),
    ),
    (
        "codexcontinue.v1.PluginService",
        "InvokePlugin",
        Access::PerPlugin(super::PLUGIN_INVOKE),
    ),
    (
        "codexcontinue.v1.PluginService",
        "ApprovePlugin",
        needs("plugin", "manage"),
    ),
    (
        "codexcontinue.v1.PluginService",
        "RefreshPlugin",
        needs("plugin", "manage"),
    ),
    // ModelService
    (
        "codexcontinue.v1.ModelService",
        "ListModels",
        needs("model", "read"),
    ),
    (
        "codexcontinue.v1.ModelService",
        "GetModel",
        needs("model", "read"),
    ),
    (
        "codexcontinue.v1.ModelService",
        "RegisterModel",
        needs("model", "write"),
    ),
    (
        "codexcontinue.v1.ModelService",
        "DeleteModel",
        needs("model", "write"),
    ),
    (
        "codexcontinue.v1.ModelService",
        "LoadModel",
        needs("model", "write"),
    ),
    (
        "codexcontinue.v1.ModelService",
        "UnloadModel",
        needs("model", "write"),
    ),
    (
        "codexcontinue.v1.ModelService",
        "Embed",
        needs("inference", "use"),
    ),
    (
        "codexcontinue.v1.ModelService",
        "Classify",
        needs("inference", "use"),
    ),
    (
        "codexcontinue.v1.ModelService",
        "Predict",
        needs("inference", "use"),
    ),
    (
        "codexcontinue.v1.ModelService",
        "Generate",
        needs("inference", "use"),
    ),
    // AuditService
    (
        "codexcontinue.v1.AuditService",
        "ListAuditEvents",
        needs("audit", "read"),
    ),
    (
        "codexcontinue.v1.AuditService",
        "ExportAuditEvents",
        needs("audit", "export"),
    ),
    (
        "codexcontinue.v1.AuditService",
        "VerifyChain",
        needs("audit", "read"),
    ),
    (
        "codexcontinue.v1.AuditService",
        "GetRetentionPolicy",
        needs("audit", "read"),
    ),
    (
        "codexcontinue.v1.AuditService",
        "SetRetentionPolicy",
        needs("retention", "write"),
    ),
    (
        "codexcontinue.v1.AuditService",
        "GetCheckpointPublicKey",
        needs("audit", "read"),
    ),
];
