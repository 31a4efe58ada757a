//! Harness for end-to-end tests that drive the real `codexcontinue` binary.
//!
//! Each test gets its own database (a copy of a migrated template) and its own Redis key
//! prefix, starts the binary on port 0, and talks to it over the network with real
//! clients. The environment comes from `make test` (see `scripts/dev-services.sh env test`):
//!
//! - `CODEXCONTINUE_TEST_POSTGRES_ADMIN_URL`: a superuser URL of the test cluster,
//! - `REDIS_URL`: the test Redis,
//! - `CODEXCONTINUE_CRYPTO__MASTER_KEY`: the master key servers under test use,
//! - `CODEXCONTINUE_TEST_PYTHON`: a Python with grpcio, for the third-party client check,
//! - `CODEXCONTINUE_TEST_MODELS_DIR`: the shipped models (`make models`),
//! - `CODEXCONTINUE_BIN` (optional): the binary; default `target/debug/codexcontinue`.

pub mod bench;
pub mod db;
pub mod env;
pub mod grpc;
pub mod hostile;
pub mod llm_upstream;
pub mod mcp_server;
pub mod metrics;
pub mod models;
pub mod oidc;
pub mod plugin_server;
pub mod redis;
pub mod rmcp_server;
pub mod sealed;
pub mod server;
pub mod wasm_component;

pub use db::TestDatabase;
pub use env::TestEnv;
pub use redis::OwnedRedis;
pub use server::{ServerOptions, TestServer, binary};

/// Upper bound for anything a test waits on, so a broken server fails the test instead of
/// hanging the suite.
pub const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Polls `check` every 50 ms until it gives a value; `what` names the wait in the panic.
///
/// # Panics
/// When nothing came within [`WAIT_LIMIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
