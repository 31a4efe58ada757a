//! Conversions between proto well-known types and domain types, and request context.

use std::borrow::Cow;

use time::OffsetDateTime;
use tonic::Request;

use crate::{
    caller::{AuditSlot, Caller, Principal},
    edge::ApiError,
    pb::v1 as pb,
    privacy::PhiPolicy,
};

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
    field: impl Into<Cow<'static, str>>,
    value: &prost_types::Timestamp,
) -> Result<OffsetDateTime, ApiError> {
    let nanos = i128::from(value.seconds) * 1_000_000_000 + i128::from(value.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| ApiError::invalid(field, "timestamp out of range"))
}

/// The bounds of the time range in `field` (e.g. `filter.time_range`): either may be
/// open, and no range at all means all time.
///
/// # Errors
/// `InvalidArgument` naming `<field>.start` or `<field>.end` when a bound is out of range,
/// or `field` when the end is not after the start.
pub fn time_range(
    field: &str,
    range: Option<&pb::TimeRange>,
) -> Result<(Option<OffsetDateTime>, Option<OffsetDateTime>), ApiError> {
    let Some(range) = range else {
        return Ok((None, None));
    };
    let bound = |part: &str, value: Option<&prost_types::Timestamp>| {
        value
            .map(|t| from_timestamp(format!("{field}.{part}"), t))
            .transpose()
    };
    let (start, end) = (
        bound("start", range.start.as_ref())?,
        bound("end", range.end.as_ref())?,
    );
    if let (Some(start), Some(end)) = (start, end)
        && end <= start
    {
        return Err(ApiError::invalid(
            field.to_owned(),
            "end must be after start",
        ));
    }
    Ok((start, end))
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
        .ok_or_else(|| ApiError::internal("request reached a handler unauthenticated"))
}

/// Names the resource a call acts on in the call's audit event.
pub fn audit_resource<T>(request: &Request<T>, id: impl ToString) {
    if let Some(slot) = request.extensions().get::<AuditSlot>() {
        slot.set_resource(id.to_string());
    }
}

/// The caller of a call with its audit slot, for a domain operation that sets the call's
/// audit marks itself.
pub fn caller<T>(request: &Request<T>) -> Result<Caller, ApiError> {
    Ok(Caller::new(
        principal(request)?,
        request.extensions().get::<AuditSlot>().cloned(),
    ))
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

/// The conversation a request's `conversation_id` names.
///
/// # Errors
/// [`ApiError::InvalidArgument`] on `conversation_id` when it is not a UUID.
pub fn conversation_id(value: &str) -> Result<uuid::Uuid, crate::edge::ApiError> {
    uuid::Uuid::try_parse(value)
        .map_err(|_| crate::edge::ApiError::invalid("conversation_id", "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn refused_field(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        match result {
            Err(ApiError::InvalidArgument { field, .. }) => field.into_owned(),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn time_ranges_may_be_open_but_not_inverted_or_out_of_range() {
        assert_eq!(time_range("time_range", None).unwrap(), (None, None));
        let open_end = pb::TimeRange {
            start: at(10),
            end: None,
        };
        let (start, end) = time_range("time_range", Some(&open_end)).unwrap();
        assert_eq!((start.map(|t| t.unix_timestamp()), end), (Some(10), None));

        let inverted = pb::TimeRange {
            start: at(20),
            end: at(10),
        };
        assert_eq!(
            refused_field(time_range("filter.time_range", Some(&inverted))),
            "filter.time_range"
        );
        let beyond = pb::TimeRange {
            start: None,
            end: at(i64::MAX),
        };
        assert_eq!(
            refused_field(time_range("time_range", Some(&beyond))),
            "time_range.end"
        );
    }
}
