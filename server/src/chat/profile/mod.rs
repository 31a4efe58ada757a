//! Domain profiles (instructions, default model, PHI policy, allowed plugins), the
//! classifier that picks one for a conversation that named none, and the per-replica
//! cache of tenants' chat settings.

pub(in crate::chat) mod profile_choice;
pub(in crate::chat) mod profiles;
pub(in crate::chat) mod settings_cache;
