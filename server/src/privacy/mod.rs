//! The PHI guard: finds protected health information and other personal identifiers in a
//! prompt before it leaves the premises, and applies the tenant's policy to it.
//!
//! Detection is pluggable: anything implementing [`Detector`] can report [`Finding`]s
//! (byte spans tagged with a [`PhiKind`]). [`PatternDetector`] is the rule-based one
//! (regular expressions plus checks such as Luhn and SSN numbering rules); a model-based
//! detector can be added next to it later. [`PhiGuard`] runs every detector, merges
//! overlapping findings and applies a [`PhiPolicy`]: pass the text through, replace each
//! value by a placeholder (restored in the model's answer by [`Redactions`]), or refuse.
//!
//! The values found are never logged and never appear in errors: only their kinds do.

mod finding;
mod guard;
mod patterns;
mod policy;
mod redact;

#[cfg(test)]
mod eval;
#[cfg(test)]
mod tests;

pub use finding::{Detector, Finding, PhiKind};
pub use guard::{Guarded, GuardedValue, PhiGuard, PhiRefused};
pub use patterns::PatternDetector;
pub use policy::{PhiPolicy, UnknownPhiPolicy, tenant_policy};
pub use redact::Redactions;
