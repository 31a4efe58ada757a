//! The PHI policy on what a plugin is sent. A plugin inside the tenant's premises, or one
//! granted `receive_phi`, gets a call's arguments as written; any other gets them as the
//! policy sends a prompt off the premises: passed, redacted (the placeholders put back in
//! its answer) or not at all. Arguments are read as decoded JSON strings, so an escape
//! cannot hide a value from the guard.

use super::{Capability, payload::granted};
use crate::{
    privacy::{GuardedValue, PhiGuard, PhiPolicy, PhiRefused},
    store::plugins::PluginRow,
};

/// The arguments `row`'s plugin may be sent under `policy`, with what was found in them.
///
/// # Errors
/// [`PhiRefused`] when the policy keeps them from the plugin.
pub(super) fn outgoing(
    guard: &PhiGuard,
    policy: PhiPolicy,
    row: &PluginRow,
    arguments: &serde_json::Value,
) -> Result<GuardedValue, PhiRefused> {
    let trusted = row.on_premises || granted(row).contains(&Capability::ReceivePhi);
    guard.apply_json(if trusted { PhiPolicy::Allow } else { policy }, arguments)
}

/// Whether `value` holds anything the guard finds (for the audit event of a call that
/// was refused before anything was sent).
pub(super) fn holds_phi(guard: &PhiGuard, value: &serde_json::Value) -> bool {
    guard
        .apply_json(PhiPolicy::Allow, value)
        .is_ok_and(|guarded| !guarded.kinds.is_empty())
}
