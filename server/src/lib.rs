//! CodexContinue: a self-hosted, multi-tenant AI assistant server.
//!
//! The binary (`main.rs`) only parses the command line; everything else is here, so tests
//! build and drive the same application `main` runs. The module map follows the
//! architecture: `api` (gRPC surface) calls domain modules, which call `store` (Postgres)
//! and `cache` (Redis); `tenancy` scopes every tenant-owned query.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod cache;
pub mod chat;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod edge;
pub mod egress;
pub mod health;
pub mod inference;
pub mod jobs;
pub mod llm;
pub mod memory;
pub mod model_catalog;
pub mod pb;
pub mod periodic;
pub mod platform;
pub mod privacy;
pub mod store;
pub mod telemetry;
pub mod tenancy;
pub mod tenant_deletion;

pub use app::{App, AppError};
pub use config::Config;
