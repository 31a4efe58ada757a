//! A Redis server owned by one test, on a Unix socket in a temporary directory, that the
//! test can stop and start again (to see the server notice).

use std::{path::PathBuf, process::Stdio};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::WAIT_LIMIT;

/// A private `redis-server`.
pub struct OwnedRedis {
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnedRedis {
    /// Starts one and waits until it accepts connections.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("cc-redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create redis dir");
        let mut redis = Self { dir, child: None };
        redis.resume().await;
        redis
    }

    /// `redis+unix://` URL of its socket.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// Kills it (as a crash would).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill redis-server");
        }
    }

    /// Starts it again on the same socket and waits until it is ready.
    pub async fn resume(&mut self) {
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(self.socket())
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server (installed by `make test`)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        tokio::time::timeout(WAIT_LIMIT, async {
            while let Some(line) = lines.next_line().await.expect("read redis output") {
                if line
                    .to_ascii_lowercase()
                    .contains("ready to accept connections")
                {
                    return;
                }
            }
            panic!("redis-server exited before it was ready");
        })
        .await
        .expect("redis-server ready in time");
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }
}

impl Drop for OwnedRedis {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
