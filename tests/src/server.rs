//! The real `codexcontinue` binary, started on port 0 for one test.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{ExitStatus, Stdio},
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tonic::transport::Channel;

use crate::{TestDatabase, TestEnv, WAIT_LIMIT};

/// Path of the binary under test: `CODEXCONTINUE_BIN`, else `codexcontinue` next to the
/// test executable's `deps/` folder (where `cargo build` puts it).
///
/// # Panics
/// When the binary is not there.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("CODEXCONTINUE_BIN").map_or_else(
        || {
            let exe = std::env::current_exe().expect("test executable path");
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("test executable lives in target/<profile>/deps");
            profile_dir.join("codexcontinue")
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "{} not found: build it first (`cargo build --bin codexcontinue`; `make test` does)",
        path.display()
    );
    path
}

/// A command running the binary with an empty environment (only `PATH`), so nothing from
/// the caller's shell leaks into the configuration under test.
pub fn command() -> Command {
    let mut command = Command::new(binary());
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.kill_on_drop(true);
    command
}

/// Runs `codexcontinue bootstrap` on `db` and returns the printed API key.
///
/// # Panics
/// When bootstrap fails or prints no key.
pub async fn bootstrap(db: &TestDatabase, tenant: &str, email: &str) -> String {
    bootstrap_with(db, tenant, email, &[]).await
}

/// Like [`bootstrap`], with extra command-line flags (e.g. `--platform-admin`).
///
/// # Panics
/// When bootstrap fails or prints no key.
pub async fn bootstrap_with(
    db: &TestDatabase,
    tenant: &str,
    email: &str,
    flags: &[&str],
) -> String {
    let env = TestEnv::get();
    let output = command()
        .args(["bootstrap", "--tenant", tenant, "--admin-email", email])
        .args(flags)
        .env("DATABASE_URL", &db.app_url)
        .env("REDIS_URL", &env.redis_url)
        .output()
        .await
        .expect("run bootstrap");
    let key = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        output.status.success() && key.starts_with("cc_live_"),
        "bootstrap {tenant}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    key
}

/// Settings for [`TestServer::spawn`] beyond the defaults.
#[derive(Debug, Default, Clone)]
pub struct ServerOptions {
    /// Redis to use instead of the suite's.
    pub redis_url: Option<String>,
    /// Extra environment variables (configuration overrides).
    pub env: Vec<(String, String)>,
}

/// A running server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its database.
    pub db: TestDatabase,
    /// Redis key prefix it was given.
    pub key_prefix: String,
    /// API key of the owner of tenant `acme`, bootstrapped before start.
    pub owner_key: String,
    options: ServerOptions,
    child: Child,
    log_path: PathBuf,
}

impl TestServer {
    /// A server on a fresh migrated database with the suite's Redis.
    pub async fn start() -> Self {
        Self::spawn(TestDatabase::migrated().await, ServerOptions::default()).await
    }

    /// Bootstraps tenant `acme` on `db`, starts the binary on it and waits for it to report
    /// its address.
    ///
    /// # Panics
    /// When it exits or stays silent instead; the panic shows its log.
    pub async fn spawn(db: TestDatabase, options: ServerOptions) -> Self {
        let owner_key = bootstrap(&db, "acme", "owner@acme.example").await;
        let key_prefix = format!("t:{}:", uuid::Uuid::new_v4().simple());
        Self::launch(db, options, owner_key, key_prefix).await
    }

    /// A server on a fresh migrated database with the suite's Redis and settings `env`.
    pub async fn with_env(env: Vec<(String, String)>) -> Self {
        Self::spawn(
            TestDatabase::migrated().await,
            ServerOptions {
                env,
                redis_url: None,
            },
        )
        .await
    }

    /// A second replica: same database, same Redis and key prefix, same owner key, same
    /// settings.
    pub async fn replica(&self) -> Self {
        Self::launch(
            self.db.clone(),
            self.options.clone(),
            self.owner_key.clone(),
            self.key_prefix.clone(),
        )
        .await
    }

    /// A second replica with settings `env` instead of this one's.
    pub async fn replica_with(&self, env: Vec<(String, String)>) -> Self {
        Self::launch(
            self.db.clone(),
            ServerOptions {
                env,
                ..self.options.clone()
            },
            self.owner_key.clone(),
            self.key_prefix.clone(),
        )
        .await
    }

    async fn launch(
        db: TestDatabase,
        options: ServerOptions,
        owner_key: String,
        key_prefix: String,
    ) -> Self {
        let env = TestEnv::get();
        let log_dir = std::env::temp_dir().join("codexcontinue-e2e");
        std::fs::create_dir_all(&log_dir).expect("create log dir");
        let log_path = log_dir.join(format!("{}-{}.log", db.name, uuid::Uuid::new_v4().simple()));
        let log = std::fs::File::create(&log_path).expect("create server log");
        let mut command = command();
        command
            .arg("serve")
            .env("CODEXCONTINUE_SERVER__LISTEN", "127.0.0.1:0")
            .env("DATABASE_URL", &db.app_url)
            .env(
                "REDIS_URL",
                options.redis_url.as_deref().unwrap_or(&env.redis_url),
            )
            .env(
                "CODEXCONTINUE_REDIS__CLUSTER",
                (options.redis_url.is_none() && env.redis_cluster).to_string(),
            )
            .env("CODEXCONTINUE_REDIS__KEY_PREFIX", &key_prefix)
            .env("CODEXCONTINUE_CRYPTO__MASTER_KEY", &env.master_key)
            .env("CODEXCONTINUE_HEALTH__PROBE_INTERVAL", "100ms")
            .env("CODEXCONTINUE_TELEMETRY__LOG_FORMAT", "json")
            // The suite's stand-in providers and identity provider listen on this machine:
            // allowed explicitly, as an operator would allow an in-house gateway.
            .env("CODEXCONTINUE_EGRESS__ALLOW", r#"["127.0.0.0/8"]"#)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = command.spawn().expect("spawn codexcontinue");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(WAIT_LIMIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix("codexcontinue listening on ") {
                    return Some(addr.parse::<SocketAddr>().expect("address parses"));
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            panic!(
                "server did not start; its log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            )
        });
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            addr,
            db,
            key_prefix,
            owner_key,
            options,
            child,
            log_path,
        }
    }

    /// Bootstraps the platform operators' tenant; returns its owner's API key, which holds
    /// `platform-admin`.
    pub async fn add_platform_admin(&self) -> String {
        bootstrap_with(
            &self.db,
            "platform",
            "ops@platform.example",
            &["--platform-admin"],
        )
        .await
    }

    /// Bootstraps another tenant on the server's database; returns its owner's API key.
    pub async fn add_tenant(&self, slug: &str) -> String {
        bootstrap(&self.db, slug, &format!("owner@{slug}.example")).await
    }

    /// A connection to the suite's Redis (a cluster in the suite's cluster pass), where
    /// this server's keys start with [`Self::key_prefix`].
    ///
    /// # Panics
    /// When Redis cannot be reached.
    pub async fn redis(&self) -> codexcontinue::cache::Connection {
        codexcontinue::cache::Cache::connect(&TestEnv::get().redis_config())
            .await
            .expect("connect to Redis")
            .connection()
            .await
            .expect("a Redis connection")
    }

    /// The server's Redis key `cc:{_platform}:{parts}`.
    pub fn platform_key(&self, parts: &[&str]) -> String {
        codexcontinue::cache::KeySpace::new(&self.key_prefix).platform(parts)
    }

    /// The server's Redis key `cc:{<tenant>}:{parts}`.
    pub fn tenant_key(&self, tenant: uuid::Uuid, parts: &[&str]) -> String {
        codexcontinue::cache::KeySpace::new(&self.key_prefix)
            .tenant(codexcontinue::tenancy::TenantId(tenant), parts)
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A gRPC channel to it.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("valid URI")
            .connect()
            .await
            .expect("connect to the server")
    }

    /// Sends a signal (`"TERM"`, `"INT"`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("server still running");
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// Waits for the process to exit.
    ///
    /// # Panics
    /// When it does not exit within [`WAIT_LIMIT`].
    pub async fn wait_exit(&mut self) -> ExitStatus {
        tokio::time::timeout(WAIT_LIMIT, self.child.wait())
            .await
            .expect("server exits in time")
            .expect("wait for server")
    }

    /// Its process id, while it runs (for benchmarks reading its memory use).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}
