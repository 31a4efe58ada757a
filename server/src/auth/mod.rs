//! Identity and access: how callers prove who they are, and what they may do.
//!
//! Every RPC passes [`AuthLayer`]: public methods go through; every other call must present
//! a credential that authenticates to a [`Principal`], whose roles must grant the method's
//! [`permissions::Permission`] (Casbin, deny by default).

pub mod api_key;
mod authenticator;
pub mod credential_cache;
pub mod directory;
mod error;
pub mod identity_providers;
pub mod key_management;
pub mod oidc;
pub mod permissions;
pub mod policy_adapter;
pub mod rbac;
pub mod replica_sync;
pub mod roles;
pub mod sessions;
pub mod tokens;

pub use authenticator::Authenticator;
pub use error::AuthError;
