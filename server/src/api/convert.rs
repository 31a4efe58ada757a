//! Conversions between proto well-known types and domain types, and request context.

use time::OffsetDateTime;
use tonic::Request;

use super::error::ApiError;
use crate::{audit::layer::AuditSlot, auth::Principal, pb::v1 as pb, privacy::PhiPolicy};

/// A protobuf timestamp of `time`.
pub fn timestamp(time: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.unix_timestamp(),
        nanos: i32::try_from(time.nanosecond()).unwrap_or(0),
    }
}

/// The time a protobuf timestamp in `field` names.
///
/// # Errors
/// `InvalidArgument` naming `field` when it is out of range.
pub fn from_timestamp(
    field: &'static str,
    value: &prost_types::Timestamp,
) -> Result<OffsetDateTime, ApiError> {
    let nanos = i128::from(value.seconds) * 1_000_000_000 + i128::from(value.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| ApiError::invalid(field, "timestamp out of range"))
}

/// The authenticated caller of a request (put there by the auth layer).
///
/// # Errors
/// `Internal` when the request bypassed the auth layer, which would be a wiring defect.
pub fn principal<T>(request: &Request<T>) -> Result<Principal, ApiError> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("request reached a handler unauthenticated".into()))
}

/// Names the resource a call acts on in the call's audit event.
pub fn audit_resource<T>(request: &Request<T>, id: impl ToString) {
    if let Some(slot) = request.extensions().get::<AuditSlot>() {
        slot.set_resource(id.to_string());
    }
}

/// Marks the call's audit event as touching protected health information.
pub fn audit_phi<T>(request: &Request<T>) {
    if let Some(slot) = request.extensions().get::<AuditSlot>() {
        slot.mark_phi();
    }
}

impl From<PhiPolicy> for pb::PhiPolicy {
    fn from(policy: PhiPolicy) -> Self {
        match policy {
            PhiPolicy::Allow => pb::PhiPolicy::Allow,
            PhiPolicy::Redact => pb::PhiPolicy::Redact,
            PhiPolicy::Refuse => pb::PhiPolicy::Refuse,
        }
    }
}

/// The PHI policy a request names; `None` when it leaves it unspecified.
pub fn phi_policy_of(policy: pb::PhiPolicy) -> Option<PhiPolicy> {
    match policy {
        pb::PhiPolicy::Unspecified => None,
        pb::PhiPolicy::Allow => Some(PhiPolicy::Allow),
        pb::PhiPolicy::Redact => Some(PhiPolicy::Redact),
        pb::PhiPolicy::Refuse => Some(PhiPolicy::Refuse),
    }
}
