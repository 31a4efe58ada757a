//! CodexContinue: a self-hosted, multi-tenant AI assistant server.
//!
//! The binary (`main.rs`) only parses the command line; everything else is here, so tests
//! build and drive the same application `main` runs.
//!
//! # The house, top floor first
//! A module imports from its own floor or the floors below, never from above: the
//! top-level modules form no circle, and neither do the files. A lower floor that must reach up takes a
//! trait the upper one implements (`jobs::JobHandler`, `chat::ReplySink`).
//!
//! | floor | module | what it owns |
//! |---|---|---|
//! | entry | `app`, `cli`, `bootstrap` | the composition root (every service built once, by wing), the command line, the first tenant |
//! | wire | `api` | one module per gRPC service and the OpenAI-compatible routes: convert, call the domain, convert back |
//! | wire | `edge`, `health` | what every call passes before a handler (request ids, CORS, telemetry and audit, load shedding, access, the request-field check; the order is `edge/mod.rs`'s) and the one table from domain errors to statuses; gRPC health and `/readyz` |
//! | domain | `chat` | conversations, a turn from claim to stored reply (`chat::Turns`), profiles, the model jobs of a turn |
//! | domain | `memory`, `model_catalog`, `platform`, `tenant_deletion` | long-term and working memory; tenants' own models; the tenant lifecycle; destroying a deleted tenant's data |
//! | domain | `usage`, `llm`, `plugins`, `auth` | usage and budgets; model providers and routing; tenants' plugins, their manifests and transports; identity, sessions, roles and keys |
//! | record | `crypto`, `audit` | envelope encryption at rest (key rotation is audited); the hash-chained audit trail |
//! | services | `inference`, `privacy`, `jobs`, `periodic`, `egress` | local TorchScript models; the PHI guard; the durable job queue; repeating passes; the outbound-address policy |
//! | storage | `store`, `cache` | PostgreSQL (all SQL; tenant and platform transactions) and Redis |
//! | ground | `caller`, `telemetry`, `config`, `tenancy`, `random`, `pb` | who is calling and what the call's audit event records; logs and metrics; the typed configuration; tenant identity; the OS's randomness; the generated protobuf types (the public API's named only by `api` and `edge`, the plugin protocol's only by `plugins::transport`) |

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod cache;
pub mod caller;
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
pub mod plugins;
pub mod privacy;
pub mod random;
pub mod store;
pub mod telemetry;
pub mod tenancy;
pub mod tenant_deletion;
pub mod usage;

pub use app::{App, AppError};
pub use config::Config;
