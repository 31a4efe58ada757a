//! The web console's files at `/console/`: hashed assets cached for good, every other
//! path the never-cached `index.html` (the console routes itself), a strict
//! Content-Security-Policy on everything, and the login hand-off pointed there.

use codexcontinue_tests::{ServerOptions, TestDatabase, TestServer};
use reqwest::{StatusCode, header};

const INDEX: &str = "<!doctype html><title>console</title><script type=module src=/console/assets/app-1a2b.js></script>";

#[tokio::test]
async fn the_console_is_served_with_its_caching_and_security_headers() {
    let dir = std::env::temp_dir().join(format!("cc-console-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), INDEX).unwrap();
    std::fs::write(dir.join("assets/app-1a2b.js"), "console.log(1)").unwrap();
    let server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![(
                "CODEXCONTINUE_SERVER__CONSOLE_DIR".into(),
                dir.display().to_string(),
            )],
            ..ServerOptions::default()
        },
    )
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| client.get(format!("{}{path}", server.url())).send();

    let bare = get("/console").await.unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()[header::LOCATION], "/console/");

    for page in ["/console/", "/console/chat/0195", "/console/audit?x=1"] {
        let answer = get(page).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{page}");
        let headers = answer.headers().clone();
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{page}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{page}"
        );
        let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.starts_with("default-src 'self'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(answer.text().await.unwrap(), INDEX, "{page}");
    }

    let asset = get("/console/assets/app-1a2b.js").await.unwrap();
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(
        asset.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(
        asset.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let missing = get("/console/assets/gone-9z.js").await.unwrap();
    assert_eq!(
        missing.status(),
        StatusCode::NOT_FOUND,
        "a missing asset is not the page"
    );
    assert_eq!(missing.headers()[header::CACHE_CONTROL], "no-cache");

    // The API beside it is untouched.
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn without_a_console_folder_nothing_is_served_there() {
    let server = TestServer::start().await;
    let answer = reqwest::get(format!("{}/console/", server.url()))
        .await
        .unwrap();
    assert!(answer.status().is_client_error(), "{}", answer.status());
    assert!(
        answer
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .is_none()
    );
}
