//! Services not built yet answer UNIMPLEMENTED with a message naming the method, on every
//! method the API defines.

use codexcontinue::api::{API_SERVICES, ApiCatalog};
use codexcontinue_tests::{TestServer, grpc::call_expecting_error};
use tonic::Code;

#[tokio::test]
async fn every_method_of_pending_services_says_what_is_missing() {
    let server = TestServer::start().await;
    let catalog = ApiCatalog::served();
    let channel = server.channel().await;
    let mut called = 0;
    for service in API_SERVICES {
        for method in catalog.methods(service) {
            let path = format!("/{service}/{method}");
            let status = call_expecting_error(channel.clone(), &path, None).await;
            assert_eq!(status.code(), Code::Unimplemented, "{service}/{method}");
            assert!(
                status
                    .message()
                    .starts_with(&format!("{service}/{method} is not available")),
                "{service}/{method}: {}",
                status.message()
            );
            called += 1;
        }
    }
    assert!(called > 60, "walked {called} methods");
}
