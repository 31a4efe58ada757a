//! The test environment `make test` provides.

use std::env;

/// Where the test cluster's services are.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// Superuser URL of the test Postgres cluster (any database).
    pub postgres_admin_url: String,
    /// URL of the test Redis.
    pub redis_url: String,
    /// Whether that Redis is a Redis Cluster (`CODEXCONTINUE_REDIS__CLUSTER=true`: the
    /// suite's second pass runs the tests that involve Redis against one).
    pub redis_cluster: bool,
    /// Master key servers under test encrypt with.
    pub master_key: String,
}

impl TestEnv {
    /// Reads the environment.
    ///
    /// # Panics
    /// When a variable is missing: tests must run through `make test`.
    pub fn get() -> Self {
        Self {
            postgres_admin_url: required("CODEXCONTINUE_TEST_POSTGRES_ADMIN_URL"),
            redis_url: required("REDIS_URL"),
            redis_cluster: env::var("CODEXCONTINUE_REDIS__CLUSTER").is_ok_and(|v| v == "true"),
            master_key: required("CODEXCONTINUE_CRYPTO__MASTER_KEY"),
        }
    }

    /// Settings for the suite's Redis, as a server under test gets them.
    pub fn redis_config(&self) -> codexcontinue::config::RedisConfig {
        codexcontinue::config::RedisConfig {
            url: Some(self.redis_url.clone().into()),
            cluster: self.redis_cluster,
            ..Default::default()
        }
    }

    /// The key servers under test sign audit checkpoints with (derived from the master
    /// key, as they do).
    ///
    /// # Panics
    /// When the master key is malformed.
    pub fn checkpoint_signer(&self) -> codexcontinue::audit::CheckpointSigner {
        codexcontinue::audit::CheckpointSigner::derived_from_master_key(
            &self.master_key.clone().into(),
        )
        .expect("the test master key is 32 bytes of base64")
    }

    /// The folder of the shipped models (`make models`).
    ///
    /// # Panics
    /// When `CODEXCONTINUE_TEST_MODELS_DIR` is not set.
    pub fn models_dir() -> std::path::PathBuf {
        required("CODEXCONTINUE_TEST_MODELS_DIR").into()
    }

    /// The Python interpreter with the test tools installed (grpcio, the OpenAI and MCP
    /// SDKs).
    ///
    /// # Panics
    /// When `CODEXCONTINUE_TEST_PYTHON` is not set.
    pub fn python() -> String {
        required("CODEXCONTINUE_TEST_PYTHON")
    }
}

fn required(name: &str) -> String {
    env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with `make test`, which starts the services")
    })
}
