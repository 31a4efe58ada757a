//! Who is calling: established by the authentication layer from verified credentials and
//! carried in request extensions to every handler. The tenant comes only from here.

use uuid::Uuid;

use crate::{audit::CallOrigin, tenancy::TenantId};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant the credential belongs to; every query of the call is scoped to it.
    pub tenant: TenantId,
    /// The tenant's slug, for display.
    pub tenant_slug: String,
    /// The user acting (for an API key: the key's owner).
    pub user: Uuid,
    /// The user's email, for display.
    pub email: String,
    /// Set when the call is authenticated by an API key.
    pub api_key: Option<Uuid>,
    /// Set when the call is authenticated by a login session.
    pub session: Option<Uuid>,
    /// Roles the call acts with (for an API key: the key's own roles).
    pub roles: Vec<String>,
    /// Where the call came from, for the audit events its handler writes (filled in by
    /// the authentication layer for each call).
    pub origin: CallOrigin,
}

impl Principal {
    /// Whether the caller acts with `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
