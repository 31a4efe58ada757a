//! Calling any method by path, for tests that walk the API without typed stubs.

use tonic::{Status, transport::Channel};

/// Calls `path` (`/pkg.Service/Method`) with an empty request message and returns the
/// error status it answers with.
///
/// # Panics
/// When the call succeeds: every caller expects an error.
pub async fn call_expecting_error(
    channel: Channel,
    path: &str,
    request_id: Option<&str>,
) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("channel ready");
    let mut request = tonic::Request::new(());
    if let Some(id) = request_id {
        request
            .metadata_mut()
            .insert("x-request-id", id.parse().expect("valid metadata value"));
    }
    let parsed = path.parse().expect("valid path");
    match grpc
        .unary::<(), (), _>(request, parsed, tonic_prost::ProstCodec::default())
        .await
    {
        Ok(_) => panic!("{path} succeeded"),
        Err(status) => status,
    }
}
