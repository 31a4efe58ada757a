//! gRPC-Web over HTTP/1.1 (what browsers speak), and CORS for configured origins only.

use codexcontinue_tests::{ServerOptions, TestDatabase, TestServer};
use prost::Message;
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
};

const ORIGIN: &str = "https://console.example";

/// A gRPC-Web frame: flag byte, big-endian length, payload.
fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a gRPC-Web body into (data frames, trailer text).
fn parse_frames(mut body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let mut data = Vec::new();
    let mut trailers = String::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        let payload = body[5..5 + len].to_vec();
        if body[0] & 0x80 != 0 {
            trailers = String::from_utf8(payload).unwrap();
        } else {
            data.push(payload);
        }
        body = &body[5 + len..];
    }
    (data, trailers)
}

async fn server_with_cors() -> TestServer {
    TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![(
                "CODEXCONTINUE_SERVER__CORS_ALLOWED_ORIGINS".into(),
                format!("[\"{ORIGIN}\"]"),
            )],
            ..ServerOptions::default()
        },
    )
    .await
}

#[tokio::test]
async fn health_check_over_grpc_web_http1() {
    let server = server_with_cors().await;
    let client = reqwest::Client::builder().http1_only().build().unwrap();
    let body = frame(0, &HealthCheckRequest::default().encode_to_vec());
    let response = client
        .post(format!("{}/grpc.health.v1.Health/Check", server.url()))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("origin", ORIGIN)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    let (data, trailers) = parse_frames(&response.bytes().await.unwrap());
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let reply = HealthCheckResponse::decode(data[0].as_slice()).unwrap();
    assert_eq!(reply.status(), ServingStatus::Serving);
}

#[tokio::test]
async fn cors_preflight_allows_configured_origin_only() {
    let server = server_with_cors().await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/grpc.health.v1.Health/Check", server.url()),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-grpc-web,authorization",
            )
            .send()
    };
    let allowed = preflight(ORIGIN).await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], ORIGIN);
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );

    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
