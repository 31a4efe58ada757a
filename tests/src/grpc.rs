//! Calling the API from tests: any method by path (for tests that walk the API without
//! typed stubs), credentials on requests, keys with given roles.

use codexcontinue::pb::v1::{CreateApiKeyRequest, auth_service_client::AuthServiceClient};
use tonic::{Status, transport::Channel};

/// Calls `path` (`/pkg.Service/Method`) with an empty request message and the given
/// metadata; reply messages are ignored.
///
/// # Errors
/// The status the server answers with.
pub async fn call_empty(
    channel: Channel,
    path: &str,
    metadata: &[(&'static str, &str)],
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("channel ready");
    let mut request = tonic::Request::new(());
    for (key, value) in metadata {
        request
            .metadata_mut()
            .insert(*key, value.parse().expect("valid metadata value"));
    }
    let parsed = path.parse().expect("valid path");
    // Read as a stream, which fits unary and server-streaming methods alike (an empty
    // stream is a fine answer); every reply message is read, then the status.
    let mut replies = grpc
        .server_streaming::<(), (), _>(request, parsed, tonic_prost::ProstCodec::default())
        .await?
        .into_inner();
    while replies.message().await?.is_some() {}
    Ok(())
}

/// The field an `INVALID_ARGUMENT` status names in its `google.rpc.BadRequest` detail.
///
/// # Panics
/// When the status is another code or names no field.
pub fn bad_field(status: &Status) -> String {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .and_then(|details| details.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_else(|| panic!("no field violation in {status:?}"))
}

/// Adds `authorization: Bearer <key>` to a request.
pub fn authorized<T>(key: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}")
            .parse()
            .expect("valid metadata value"),
    );
    request
}

/// Creates an API key with `roles` in the tenant of `creator`'s key; returns its secret.
pub async fn key_with_roles(channel: Channel, creator: &str, roles: &[&str]) -> String {
    AuthServiceClient::new(channel)
        .create_api_key(authorized(
            creator,
            CreateApiKeyRequest {
                name: format!("{roles:?} key"),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                expire_time: None,
            },
        ))
        .await
        .expect("the creator may hand out these roles")
        .into_inner()
        .secret
}
