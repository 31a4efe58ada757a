//! Plugins: tools a tenant lets the assistant (and its users) call.
//!
//! - [`manifest`]: what a plugin offers, checked and pinned by SHA-256.
//! - [`transport`]: how the server reaches one (the project's gRPC protocol, MCP, or a
//!   WebAssembly component in the sandbox).
//! - [`registry`]: the tenant's plugins (register, settings, approval, removal).
//! - [`refresh`]: reading manifests again, on demand and on a schedule.
//! - [`connect`] and [`connections`]: one open connection per plugin per replica.
//! - [`calls`]: calls of a tool, past the PHI policy ([`phi`]), a circuit breaker and a
//!   timeout, audited by hash; [`payload`]: what a call sends (memory as granted).
//! - [`toolbox`]: the tools a chat turn offers the model, and its calls of them.
//! - [`secrets`]: each plugin's sealed credential and the key of the opaque ids it sees.

mod calls;
mod connect;
mod connections;
pub mod manifest;
mod payload;
mod phi;
mod refresh;
mod registry;
mod secrets;
mod toolbox;
pub mod transport;

use time::OffsetDateTime;
use uuid::Uuid;

pub use calls::Invocation;
pub use manifest::{Capability, Manifest, TOOL_SEPARATOR};
pub use registry::Plugins;
pub use toolbox::{Offered, ToolReport, Toolbox};
pub use transport::{Means, ToolOutput, TransportKind};

use crate::{
    auth::permissions::Permission, crypto::CryptoError, egress::EgressError, store::StoreError,
};

/// Why a plugin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// A request field is unacceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// No such plugin in the tenant.
    #[error("no plugin {0}")]
    NotFound(String),
    /// The tenant already has a plugin of that name.
    #[error("a plugin named {0:?} already exists")]
    NameTaken(String),
    /// The plugin is disabled (or its changed manifest awaits approval).
    #[error("plugin {name:?} is disabled{}", if *.pending { " until its changed manifest is approved (PluginService.ApprovePlugin)" } else { "" })]
    Disabled {
        /// The plugin.
        name: String,
        /// Whether a changed manifest awaits approval.
        pending: bool,
    },
    /// Approval asked of a plugin whose manifest did not change.
    #[error("plugin {0:?} has no changed manifest awaiting approval")]
    NotPending(String),
    /// The plugin could not be reached or broke its protocol.
    #[error("plugin {name:?}: {reason}")]
    Unreachable {
        /// The plugin.
        name: String,
        /// What happened.
        reason: String,
    },
    /// The plugin did not answer in its time.
    #[error("plugin {name:?} did not answer within {timeout_ms} ms")]
    TimedOut {
        /// The plugin.
        name: String,
        /// Its timeout.
        timeout_ms: i32,
    },
    /// The caller may not do this with this plugin (nor with every plugin).
    #[error("missing permission {permission} (on every plugin, or on plugin/{name})")]
    Denied {
        /// What was missing.
        permission: Permission,
        /// The plugin asked for.
        name: String,
    },
    /// The tenant's PHI policy keeps a call's arguments from the plugin.
    #[error(
        "the tenant's PHI policy keeps these arguments ({}) from plugin {name:?}, which runs off the premises and is not granted receive_phi",
        .kinds.join(", ")
    )]
    PhiRefused {
        /// The plugin.
        name: String,
        /// The kinds found (never the values).
        kinds: Vec<&'static str>,
    },
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The plugin's secrets could not be sealed or opened.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> PluginError {
    PluginError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl From<EgressError> for PluginError {
    fn from(err: EgressError) -> Self {
        invalid("endpoint", err.to_string())
    }
}

/// A registered plugin as callers see it (never its secrets).
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// Server-assigned id.
    pub id: Uuid,
    /// Tenant-unique name.
    pub name: String,
    /// How it is reached.
    pub transport: TransportKind,
    /// Where.
    pub endpoint: String,
    /// Inside the tenant's premises.
    pub on_premises: bool,
    /// Whether a static credential is stored.
    pub credential_set: bool,
    /// The pinned manifest.
    pub manifest: Manifest,
    /// Its SHA-256.
    pub manifest_sha256: [u8; 32],
    /// A changed manifest's SHA-256, awaiting approval.
    pub pending_sha256: Option<[u8; 32]>,
    /// Granted capabilities.
    pub granted: Vec<Capability>,
    /// Whether it may be called.
    pub enabled: bool,
    /// Per-call timeout in milliseconds.
    pub timeout_ms: i32,
    /// Registration.
    pub created_at: OffsetDateTime,
    /// Last change of its settings.
    pub updated_at: OffsetDateTime,
    /// Last read of its manifest.
    pub refreshed_at: OffsetDateTime,
}

/// What a registration asks for.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Tenant-unique name; empty: the manifest's name.
    pub name: String,
    /// How to reach it.
    pub transport: TransportKind,
    /// Where.
    pub endpoint: String,
    /// Static credential; empty: none.
    pub credential: String,
    /// Inside the tenant's premises.
    pub on_premises: bool,
    /// Capabilities to grant now.
    pub granted: Vec<Capability>,
    /// Per-call timeout in milliseconds; 0: the default.
    pub timeout_ms: i32,
    /// A WebAssembly plugin's uploaded component; empty: none.
    pub component: Vec<u8>,
}

/// A change of a plugin's settings; `None` keeps what is set.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Replace the granted capabilities.
    pub granted: Option<Vec<Capability>>,
    /// Per-call timeout in milliseconds.
    pub timeout_ms: Option<i32>,
}
