//! An MCP server nobody here wrote the protocol side of: `tests/mcp/python_server.py`,
//! built on the official Python SDK (`mcp`, installed by `make test` into the test
//! Python), serving streamable HTTP on loopback.

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::Stdio,
    time::Duration,
};

use tokio::process::{Child, Command};

use crate::{TestEnv, WAIT_LIMIT};

/// The Python MCP server, stopped when dropped.
pub struct PythonMcp {
    /// Where it listens.
    pub addr: SocketAddr,
    stateless: bool,
    child: Child,
}

impl PythonMcp {
    /// Starts it on a free loopback port; `stateless` serves without sessions.
    ///
    /// # Panics
    /// When it does not start listening within [`WAIT_LIMIT`].
    pub async fn start(stateless: bool) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Self::on(SocketAddr::from(([127, 0, 0, 1], port)), stateless).await
    }

    async fn on(addr: SocketAddr, stateless: bool) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mcp/python_server.py");
        let mut command = Command::new(TestEnv::python());
        command
            .arg(script)
            .arg(addr.port().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if stateless {
            command.arg("stateless");
        }
        let child = command.spawn().expect("start the Python MCP server");
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the Python MCP server did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            addr,
            stateless,
            child,
        }
    }

    /// Its MCP endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Stops it and starts it again on the same port: every session it had is gone.
    pub async fn restart(mut self) -> Self {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
        Self::on(self.addr, self.stateless).await
    }
}
