//! A client that is not ours (Python grpcio with the official health and reflection
//! packages) sees SERVING and the seven API services.

use codexcontinue::edge::API_SERVICES;
use codexcontinue_tests::{TestEnv, TestServer};

#[tokio::test]
async fn python_grpcio_sees_health_and_reflection() {
    let server = TestServer::start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/external/check_grpc.py");
    let output = tokio::process::Command::new(TestEnv::python())
        .arg(script)
        .arg(server.addr.to_string())
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("health: SERVING"), "{stdout}");
    for service in API_SERVICES {
        assert!(
            stdout.contains(&format!("service: {service}\n")),
            "{service}: {stdout}"
        );
    }
}
