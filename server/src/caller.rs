//! Who is calling: established by the authentication layer from verified credentials and
//! carried in request extensions to every handler; the domain attributes its audit events
//! to it, and tells the call's own audit event what it acted on through [`AuditSlot`]. Below both `auth` (which makes it) and `audit` (which records it), so neither
//! has to import the other for it. The tenant of a call comes only from here.

use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::tenancy::TenantId;

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

/// Where a call came from: put in the request by the audit layer and copied into the
/// [`Principal`] by the authentication layer, so handlers can attribute the events they
/// write themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOrigin {
    /// Request id of the call.
    pub request_id: String,
    /// Client address.
    pub client_address: String,
    /// Client software.
    pub user_agent: String,
}

/// What the inner layers learn about a call for its audit event: the authentication
/// layer leaves the caller and the kind of object acted on, the handler the id of the
/// resource.
#[derive(Clone, Default)]
pub struct AuditSlot(Arc<Mutex<SlotState>>);

/// What the slot holds when the call ends.
#[derive(Default)]
pub struct SlotState {
    /// Who called, and the kind of object the call acts on (unset: nobody authenticated).
    pub caller: Option<(Principal, &'static str)>,
    /// The id of the resource acted on.
    pub resource_id: String,
    /// Whether the call handled protected health information.
    pub phi: bool,
}

impl AuditSlot {
    /// Records who called, and the kind of object the call acts on.
    pub fn set(&self, principal: &Principal, object: &'static str) {
        self.state().caller = Some((principal.clone(), object));
    }

    /// Records the id of the resource the call acts on.
    pub fn set_resource(&self, id: String) {
        self.state().resource_id = id;
    }

    /// Records that the call handled protected health information.
    pub fn mark_phi(&self) {
        self.state().phi = true;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What was recorded, leaving the slot empty (the audit layer, once the call ended).
    pub fn take(&self) -> SlotState {
        std::mem::take(&mut *self.state())
    }
}

/// The caller of a call, and the call's audit slot: what the domain needs to act for the
/// caller and to tell the call's audit event what it acted on.
#[derive(Clone)]
pub struct Caller {
    /// Who is calling.
    pub principal: Principal,
    audit: Option<AuditSlot>,
}

impl Caller {
    /// `principal`, recording into `audit` (none outside an audited call).
    pub fn new(principal: Principal, audit: Option<AuditSlot>) -> Self {
        Self { principal, audit }
    }

    /// Names the resource the call acts on in its audit event.
    pub fn acts_on(&self, resource: impl ToString) {
        if let Some(audit) = &self.audit {
            audit.set_resource(resource.to_string());
        }
    }

    /// Records that the call handled protected health information.
    pub fn handled_phi(&self) {
        if let Some(audit) = &self.audit {
            audit.mark_phi();
        }
    }
}
