//! A real OpenID Connect provider (npm `oidc-provider`, see `tests/oidc/`) for one test,
//! and a headless browser that logs in at it.

use std::process::Stdio;

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::WAIT_LIMIT;

/// The provider's one client.
pub const CLIENT_ID: &str = "codexcontinue";
/// That client's secret.
pub const CLIENT_SECRET: &str = "codexcontinue-test-secret";

/// A running provider.
pub struct OidcProvider {
    /// Its issuer URL.
    pub issuer: String,
    child: Child,
}

impl OidcProvider {
    /// Starts a provider accepting `redirect_uris`, with accounts `users` (JSON object:
    /// login → {email, name, groups}).
    ///
    /// # Panics
    /// When node or the provider's packages are missing (`make test` installs them).
    pub async fn start(redirect_uris: &[&str], users: &serde_json::Value) -> Self {
        Self::start_at(redirect_uris, users, 0, "test-key-1", &[]).await
    }

    /// Like [`OidcProvider::start`], on `port` (0: any free one) with a fresh signing key
    /// named `key_id` (restarting at the same port with another key id rotates the keys),
    /// and extra settings in `env` (see `tests/oidc/provider.mjs`).
    ///
    /// # Panics
    /// As [`OidcProvider::start`].
    pub async fn start_at(
        redirect_uris: &[&str],
        users: &serde_json::Value,
        port: u16,
        key_id: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/oidc/provider.mjs");
        let log_dir = std::env::temp_dir().join("codexcontinue-e2e");
        std::fs::create_dir_all(&log_dir).expect("create log dir");
        let log = std::fs::File::create(
            log_dir.join(format!("oidc-{}.log", uuid::Uuid::new_v4().simple())),
        )
        .expect("create provider log");
        let mut child = Command::new("node")
            .arg(script)
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URIS", redirect_uris.join(","))
            .env("OIDC_USERS", users.to_string())
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_KEY_ID", key_id)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start node tests/oidc/provider.mjs (installed by `make test`)");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = tokio::time::timeout(WAIT_LIMIT, lines.next_line())
            .await
            .expect("provider starts in time")
            .expect("read provider output")
            .expect("provider printed its issuer");
        let issuer =
            serde_json::from_str::<serde_json::Value>(&first).expect("issuer JSON")["issuer"]
                .as_str()
                .expect("issuer string")
                .to_owned();
        // Keep reading: the provider logs to stdout and dies on a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { issuer, child }
    }
}

impl OidcProvider {
    /// The port it listens on.
    ///
    /// # Panics
    /// When the issuer URL has none.
    pub fn port(&self) -> u16 {
        url::Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.port())
            .expect("issuer URL with a port")
    }

    /// Stops it and waits until it has exited (its port is free again).
    pub async fn stop(mut self) {
        self.child.kill().await.expect("stop the provider");
    }
}

/// Follows `authorization_url` like a browser, logging in as `login` and consenting, until
/// the provider redirects to a URL starting with `redirect_prefix`; returns that URL.
///
/// # Panics
/// When the provider answers something a browser could not continue from.
pub async fn browser_login(authorization_url: &str, login: &str, redirect_prefix: &str) -> String {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser client");
    let mut url = url::Url::parse(authorization_url).expect("authorization URL");
    let mut response = browser
        .get(url.clone())
        .send()
        .await
        .expect("GET authorization URL");
    for _ in 0..20 {
        if response.status().is_redirection() {
            let location = response.headers()["location"]
                .to_str()
                .expect("location")
                .to_owned();
            let next = url.join(&location).expect("resolvable location");
            if next.as_str().starts_with(redirect_prefix) {
                return next.to_string();
            }
            url = next;
            response = browser
                .get(url.clone())
                .send()
                .await
                .expect("follow redirect");
            continue;
        }
        let status = response.status();
        let page = response.text().await.expect("page");
        assert!(status.is_success(), "provider answered {status}: {page}");
        let action = between(&page, "action=\"", "\"").expect("a form on the page");
        let target = url.join(action).expect("form action");
        let form: Vec<(&str, &str)> = if page.contains("name=\"prompt\" value=\"login\"") {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else {
            vec![("prompt", "consent")]
        };
        url = target.clone();
        response = browser
            .post(target)
            .form(&form)
            .send()
            .await
            .expect("POST form");
    }
    panic!("login did not reach {redirect_prefix}");
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}
