//! Conversations and their messages, sealed at rest, and the cached window of recent
//! turns every prompt starts from.

pub(in crate::chat) mod conversations;
pub(in crate::chat) mod window;
