//! Credentials: how callers prove who they are.

pub mod api_key;
