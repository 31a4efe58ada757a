//! CodexContinue: a self-hosted, multi-tenant AI assistant server.
//!
//! The binary (`main.rs`) only parses the command line; everything else is here, so tests
//! build and drive the same application `main` runs.
//!
//! # The house, top floor first
//! Each module imports only from the floors below it (`python3 ../shared/tools/module_cycles.py`
//! finds no circle); a lower floor that must reach up takes a trait the upper one
//! implements (`jobs::JobHandler`, `chat::ReplySink`).
//!
//! | floor | module | what it owns |
//! |---|---|---|
//! | entry | `app`, `cli`, `bootstrap` | the composition root, the command line, the first tenant |
//! | wire | `api` | one module per gRPC service and the OpenAI-compatible routes: convert, call the domain, convert back; the one table from domain errors to statuses (`api::error`) |
//! | wire | `edge` | what every call passes before a handler: request ids, CORS, telemetry, audit, load shedding, access, the request-field check, and their order |
//! | wire | `pb` | the generated protobuf types; no module below `api`/`edge` names them |
//! | domain | `chat` | conversations, turns, profiles, usage and budgets, the model jobs of a turn |
//! | domain | `memory`, `model_catalog`, `inference`, `llm`, `privacy` | long-term and working memory; tenants' own models; local TorchScript models; model providers and routing; the PHI guard |
//! | domain | `auth`, `platform`, `tenant_deletion` | identity, sessions, roles and keys; the tenant lifecycle; destroying a deleted tenant's data |
//! | domain | `audit`, `crypto` | the hash-chained audit trail and its checks; envelope encryption at rest |
//! | services | `jobs`, `periodic`, `health`, `telemetry`, `egress` | the durable job queue, repeating passes, dependency probes, logs and metrics, the outbound-address policy |
//! | storage | `store`, `cache` | PostgreSQL (all SQL; tenant and platform transactions) and Redis |
//! | ground | `config`, `caller`, `tenancy`, `random` | the typed configuration; who is calling (and what the call's audit event records); tenant identity; the operating system's randomness |

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
pub mod privacy;
pub mod random;
pub mod store;
pub mod telemetry;
pub mod tenancy;
pub mod tenant_deletion;

pub use app::{App, AppError};
pub use config::Config;
