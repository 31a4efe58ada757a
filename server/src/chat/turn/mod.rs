//! A chat turn: the prompt assembled and guarded, the model asked (whole or relayed),
//! the reply stored, idempotency and cancellation; `turns` conducts it.

pub(in crate::chat) mod context;
pub(in crate::chat) mod follow_ups;
pub(in crate::chat) mod generate;
pub(in crate::chat) mod generations;
pub(in crate::chat) mod idempotency;
pub(in crate::chat) mod prompt;
pub(in crate::chat) mod relay;
pub(in crate::chat) mod restore;
pub(in crate::chat) mod rounds;
pub(in crate::chat) mod stateless;
pub(in crate::chat) mod turns;
