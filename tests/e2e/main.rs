//! End-to-end tests: the real `codexcontinue` binary, real Postgres and Redis, real clients.
//! One test binary (this file) keeps link time down; each module is one area.

mod access;
mod admin;
mod audit;
mod audit_api;
mod bootstrap;
mod chat;
mod chat_entra;
mod chat_fixture;
mod chat_generation;
mod chat_platform;
mod chat_profiles;
mod chat_routing;
mod chat_window;
mod cli;
mod crypto;
mod generation;
mod grpc_web;
mod health;
mod jobs;
mod memory_eval;
mod memory_long_term;
mod memory_working;
mod metrics;
mod migrations;
mod models;
mod pending_services;
mod rate_limit;
mod reflection;
mod request_id;
mod shutdown;
mod sso;
mod tenant_models;
mod tenants;
mod third_party_client;
