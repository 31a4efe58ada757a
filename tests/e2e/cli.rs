//! Configuration and start-up errors: one clear line, non-zero exit, no panic.

use std::time::{Duration, Instant};

use codexcontinue_tests::{TestDatabase, TestEnv, server::command};

/// Runs the binary with `args` and `env`; returns (exit code, stdout, stderr).
async fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        command().args(args).envs(env.iter().copied()).output(),
    )
    .await
    .expect("binary finishes")
    .expect("binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_one_clear_line(stderr: &str) {
    assert_eq!(stderr.lines().count(), 1, "one line expected:\n{stderr}");
    assert!(stderr.starts_with("codexcontinue: error: "), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[tokio::test]
async fn unreachable_postgres_exits_quickly_with_one_line() {
    let env = TestEnv::get();
    let started = Instant::now();
    let (code, _, stderr) = run(
        &["serve"],
        &[
            ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/x"),
            ("REDIS_URL", &env.redis_url),
            ("CODEXCONTINUE_CRYPTO__MASTER_KEY", &env.master_key),
        ],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_one_clear_line(&stderr);
    assert!(
        stderr.contains("postgres://nobody@127.0.0.1:1/x"),
        "names the URL: {stderr}"
    );
    assert!(
        stderr.contains("DATABASE_URL"),
        "names the setting: {stderr}"
    );
}

#[tokio::test]
async fn missing_database_url_names_the_setting() {
    let (code, _, stderr) = run(&["serve"], &[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    assert_eq!(code, Some(2));
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("database.url is not set"), "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[tokio::test]
async fn serve_without_redis_url_names_the_setting() {
    let db = TestDatabase::migrated().await;
    let env = TestEnv::get();
    let (code, _, stderr) = run(
        &["serve"],
        &[
            ("DATABASE_URL", &db.app_url),
            ("CODEXCONTINUE_CRYPTO__MASTER_KEY", &env.master_key),
        ],
    )
    .await;
    assert_eq!(code, Some(1));
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("redis.url is not set"), "{stderr}");
    assert!(stderr.contains("REDIS_URL"), "{stderr}");
}

#[tokio::test]
async fn serve_needs_a_well_formed_master_key() {
    let env = TestEnv::get();
    let base = [
        ("DATABASE_URL", "postgres://a@127.0.0.1/x"),
        ("REDIS_URL", env.redis_url.as_str()),
    ];
    let (code, _, stderr) = run(&["serve"], &base).await;
    assert_eq!(code, Some(1));
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("crypto.master_key is not set"), "{stderr}");
    let mut short = base.to_vec();
    short.push(("CODEXCONTINUE_CRYPTO__MASTER_KEY", "c2hvcnQ="));
    let (code, _, stderr) = run(&["config", "show"], &short).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("crypto.master_key is invalid: must be 32 bytes"),
        "{stderr}"
    );
}

#[tokio::test]
async fn bad_listen_address_names_the_setting() {
    let (code, _, stderr) = run(
        &["config", "show"],
        &[
            ("DATABASE_URL", "postgres://a@127.0.0.1/x"),
            ("REDIS_URL", "redis://127.0.0.1"),
            ("CODEXCONTINUE_SERVER__LISTEN", "not-an-address"),
        ],
    )
    .await;
    assert_eq!(code, Some(2));
    assert_one_clear_line(&stderr);
    assert!(stderr.to_lowercase().contains("server.listen"), "{stderr}");
}

#[tokio::test]
async fn unknown_key_in_config_file_is_refused() {
    let dir = std::env::temp_dir().join(format!("cc-config-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("codexcontinue.toml");
    std::fs::write(
        &file,
        "[redis]\nurl = \"redis://127.0.0.1\"\npoolsize = 3\n",
    )
    .unwrap();
    let (code, _, stderr) = run(
        &["--config", file.to_str().unwrap(), "config", "show"],
        &[("DATABASE_URL", "postgres://a@127.0.0.1/x")],
    )
    .await;
    assert_eq!(code, Some(2));
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("poolsize"), "{stderr}");

    let (code, _, stderr) = run(
        &[
            "--config",
            dir.join("missing.toml").to_str().unwrap(),
            "config",
            "show",
        ],
        &[],
    )
    .await;
    assert_eq!(code, Some(2));
    assert!(stderr.contains("missing.toml does not exist"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn config_show_masks_secrets_and_env_overrides_file() {
    let dir = std::env::temp_dir().join(format!("cc-config-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("codexcontinue.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:7000\"\nshutdown_grace = \"9s\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run(
        &["--config", file.to_str().unwrap(), "config", "show"],
        &[
            (
                "DATABASE_URL",
                "postgres://app:hunter2@db.internal:5432/cc?password=hunter3",
            ),
            ("REDIS_URL", "redis://:s3cret@cache.internal:6379"),
            ("CODEXCONTINUE_SERVER__LISTEN", "0.0.0.0:7001"),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !stdout.contains("hunter2") && !stdout.contains("hunter3") && !stdout.contains("s3cret"),
        "{stdout}"
    );
    assert!(
        stdout.contains("postgres://app:****@db.internal:5432/cc?password=****"),
        "{stdout}"
    );
    assert!(
        stdout.contains("listen = \"0.0.0.0:7001\""),
        "env wins: {stdout}"
    );
    assert!(
        stdout.contains("shutdown_grace = \"9s\""),
        "file applies: {stdout}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn superuser_connection_is_refused() {
    let db = TestDatabase::migrated().await;
    let env = TestEnv::get();
    let (code, _, stderr) = run(
        &["serve"],
        &[
            ("DATABASE_URL", &db.owner_url),
            ("REDIS_URL", &env.redis_url),
            ("CODEXCONTINUE_CRYPTO__MASTER_KEY", &env.master_key),
        ],
    )
    .await;
    assert_eq!(code, Some(1));
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("is a superuser"), "{stderr}");
}

#[tokio::test]
async fn unmigrated_database_is_refused() {
    let db = TestDatabase::empty().await;
    let env = TestEnv::get();
    let (code, _, stderr) = run(
        &["serve"],
        &[
            ("DATABASE_URL", &db.app_url),
            ("REDIS_URL", &env.redis_url),
            ("CODEXCONTINUE_CRYPTO__MASTER_KEY", &env.master_key),
        ],
    )
    .await;
    assert_eq!(code, Some(1));
    assert_one_clear_line(&stderr);
    assert!(
        stderr.contains("schema is at version 0") && stderr.contains("codexcontinue migrate"),
        "{stderr}"
    );
}

#[tokio::test]
async fn unreachable_redis_is_refused() {
    let db = TestDatabase::migrated().await;
    let env = TestEnv::get();
    let (code, _, stderr) = run(
        &["serve"],
        &[
            ("DATABASE_URL", &db.app_url),
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("CODEXCONTINUE_CRYPTO__MASTER_KEY", &env.master_key),
        ],
    )
    .await;
    assert_eq!(code, Some(1));
    assert_one_clear_line(&stderr);
    assert!(
        stderr.contains("cannot connect to Redis at redis://127.0.0.1:1"),
        "{stderr}"
    );
}
