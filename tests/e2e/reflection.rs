//! Server reflection lists every service, over both protocol versions.

use codexcontinue::edge::API_SERVICES;
use codexcontinue_tests::TestServer;
use tonic_reflection::pb::{v1, v1alpha};

const EXPECTED_EXTRA: [&str; 1] = ["grpc.health.v1.Health"];

#[tokio::test]
async fn v1_lists_all_services_and_resolves_their_files() {
    let server = TestServer::start().await;
    let mut client =
        v1::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let requests = tokio_stream::iter([
        v1::ServerReflectionRequest {
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
            ..Default::default()
        },
        v1::ServerReflectionRequest {
            message_request: Some(
                v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "codexcontinue.v1.ChatService".to_owned(),
                ),
            ),
            ..Default::default()
        },
    ]);
    let mut responses = client
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();

    let listed = match responses.message().await.unwrap().unwrap().message_response {
        Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
        }
        other => panic!("unexpected reply {other:?}"),
    };
    for name in API_SERVICES.iter().chain(&EXPECTED_EXTRA) {
        assert!(
            listed.iter().any(|l| l == name),
            "{name} missing from {listed:?}"
        );
    }
    let api: Vec<_> = listed
        .iter()
        .filter(|l| l.starts_with("codexcontinue."))
        .collect();
    assert_eq!(api.len(), 7, "exactly the seven API services: {api:?}");

    match responses.message().await.unwrap().unwrap().message_response {
        Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) => {
            assert!(!files.file_descriptor_proto.is_empty());
        }
        other => panic!("unexpected reply {other:?}"),
    }
}

#[tokio::test]
async fn v1alpha_lists_the_api_for_older_tools() {
    let server = TestServer::start().await;
    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let request = v1alpha::ServerReflectionRequest {
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
        ..Default::default()
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let listed = match responses.message().await.unwrap().unwrap().message_response {
        Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
        }
        other => panic!("unexpected reply {other:?}"),
    };
    for name in API_SERVICES {
        assert!(
            listed.iter().any(|l| l == name),
            "{name} missing from {listed:?}"
        );
    }
}
