//! Services not built yet answer UNIMPLEMENTED with a message naming the method, on every
//! method the API defines, once the caller is allowed to call it.

use codexcontinue::edge::{API_SERVICES, ApiCatalog};
use codexcontinue_tests::{TestServer, grpc::call_empty};
use tonic::Code;

/// Methods the tenant owner may not call: tenant lifecycle belongs to the platform.
const PLATFORM_ONLY: [&str; 5] = [
    "CreateTenant",
    "ListTenants",
    "SuspendTenant",
    "ResumeTenant",
    "DeleteTenant",
];

#[tokio::test]
async fn every_method_of_pending_services_says_what_is_missing() {
    let server = TestServer::start().await;
    let catalog = ApiCatalog::served();
    let channel = server.channel().await;
    let authorization = format!("Bearer {}", server.owner_key);
    let mut called = 0;
    for service in API_SERVICES {
        for method in catalog.methods(service) {
            let path = format!("/{service}/{method}");
            let Err(status) =
                call_empty(channel.clone(), &path, &[("authorization", &authorization)]).await
            else {
                // Implemented and fine with an empty request (e.g. WhoAmI).
                continue;
            };
            if PLATFORM_ONLY.contains(&method) {
                assert_eq!(status.code(), Code::PermissionDenied, "{path}");
                continue;
            }
            if status.code() != Code::Unimplemented {
                // Implemented: an empty request is the client's mistake, never an internal
                // error of the server.
                assert!(
                    !matches!(status.code(), Code::Internal | Code::Unknown),
                    "{path}: {status:?}"
                );
                continue;
            }
            assert!(
                status
                    .message()
                    .starts_with(&format!("{service}/{method} is not available")),
                "{path}: {}",
                status.message()
            );
            called += 1;
        }
    }
    assert!(called >= 6, "walked {called} pending methods");
}
