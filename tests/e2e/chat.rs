//! ChatService conversations: create, read, page, rename, delete; messages listing;
//! profiles; sealed at rest; invisible across tenants; bad input named.

use codexcontinue::pb::v1::{
    CreateConversationRequest, DeleteConversationRequest, GetConversationRequest,
    ListConversationsRequest, ListMessagesRequest, ListProfilesRequest, RenameConversationRequest,
    SendMessageRequest, chat_service_client::ChatServiceClient,
};
use codexcontinue_tests::{TestServer, grpc::authorized};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

async fn create(
    chat: &mut ChatServiceClient<Channel>,
    key: &str,
    title: &str,
    profile: &str,
) -> codexcontinue::pb::v1::Conversation {
    chat.create_conversation(authorized(
        key,
        CreateConversationRequest {
            title: title.into(),
            profile: profile.into(),
            model: String::new(),
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .conversation
    .unwrap()
}

fn field(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations[0].field.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn conversations_are_created_paged_renamed_and_deleted() {
    let server = TestServer::start().await;
    let key = &server.owner_key;
    let mut chat = ChatServiceClient::new(server.channel().await);
    let first = create(&mut chat, key, "Discharge letter for bed 12", "health").await;
    assert_eq!((first.profile.as_str(), first.message_count), ("health", 0));
    let second = create(&mut chat, key, "", "").await;
    assert_eq!(second.profile, "general", "default profile");
    let third = create(&mut chat, key, "Quarterly close", "finance").await;

    // Most recently active first, two per page.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = chat
            .list_conversations(authorized(
                key,
                ListConversationsRequest {
                    page_size: 2,
                    page_token: token,
                    profile: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.conversations.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen,
        [third.id.clone(), second.id.clone(), first.id.clone()]
    );
    let health = chat
        .list_conversations(authorized(
            key,
            ListConversationsRequest {
                profile: "health".into(),
                ..ListConversationsRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .conversations;
    assert_eq!(health.len(), 1);

    let renamed = chat
        .rename_conversation(authorized(
            key,
            RenameConversationRequest {
                conversation_id: first.id.clone(),
                title: "Discharge letter".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    assert_eq!(renamed.title, "Discharge letter");
    let got = chat
        .get_conversation(authorized(
            key,
            GetConversationRequest {
                conversation_id: first.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    assert_eq!(got.title, "Discharge letter");
    let messages = chat
        .list_messages(authorized(
            key,
            ListMessagesRequest {
                conversation_id: first.id.clone(),
                ..ListMessagesRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(messages.messages.is_empty());

    // Titles are stored sealed, never as text.
    let mut owner = server.db.owner().await;
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("SELECT title_sealed FROM conversations")
        .fetch_all(&mut owner)
        .await
        .unwrap();
    assert_eq!(sealed.len(), 3);
    assert!(
        sealed
            .iter()
            .all(|s| !s.windows(9).any(|w| w == b"Discharge")
                && !s.windows(9).any(|w| w == b"Quarterly"))
    );

    chat.delete_conversation(authorized(
        key,
        DeleteConversationRequest {
            conversation_id: first.id.clone(),
        },
    ))
    .await
    .unwrap();
    let gone = chat
        .get_conversation(authorized(
            key,
            GetConversationRequest {
                conversation_id: first.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let (resource, details): (String, serde_json::Value) = sqlx::query_as(
        "SELECT resource_id, details FROM audit_events WHERE action = 'conversation.delete'",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(resource, first.id);
    assert_eq!(details, serde_json::json!({"messages": 0}));
}

#[tokio::test]
async fn another_tenant_sees_none_of_them_and_bad_input_is_named() {
    let server = TestServer::start().await;
    let globex = server.add_tenant("globex").await;
    let mut chat = ChatServiceClient::new(server.channel().await);
    let mine = create(&mut chat, &server.owner_key, "Acme secrets", "legal").await;

    let theirs = chat
        .get_conversation(authorized(
            &globex,
            GetConversationRequest {
                conversation_id: mine.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), Code::NotFound);
    for (call, code) in [
        (
            chat.rename_conversation(authorized(
                &globex,
                RenameConversationRequest {
                    conversation_id: mine.id.clone(),
                    title: "pwned".into(),
                },
            ))
            .await
            .map(drop),
            Code::NotFound,
        ),
        (
            chat.delete_conversation(authorized(
                &globex,
                DeleteConversationRequest {
                    conversation_id: mine.id.clone(),
                },
            ))
            .await
            .map(drop),
            Code::NotFound,
        ),
    ] {
        assert_eq!(call.unwrap_err().code(), code);
    }
    let listed = chat
        .list_conversations(authorized(&globex, ListConversationsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.conversations.is_empty());

    let bad = |title: &str, profile: &str| CreateConversationRequest {
        title: title.into(),
        profile: profile.into(),
        model: String::new(),
    };
    let long = "x".repeat(201);
    for (request, expected) in [(bad(&long, ""), "title"), (bad("", "astrology"), "profile")] {
        let refused = chat
            .create_conversation(authorized(&server.owner_key, request))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(field(&refused), expected);
    }
    let refused = chat
        .get_conversation(authorized(
            &server.owner_key,
            GetConversationRequest {
                conversation_id: "not-a-uuid".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(field(&refused), "conversation_id");
    let refused = chat
        .rename_conversation(authorized(
            &server.owner_key,
            RenameConversationRequest {
                conversation_id: mine.id.clone(),
                title: "  ".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(field(&refused), "title");
    let refused = chat
        .list_conversations(authorized(
            &server.owner_key,
            ListConversationsRequest {
                page_token: "garbage".into(),
                ..ListConversationsRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(field(&refused), "page_token");

    let profiles = chat
        .list_profiles(authorized(
            &server.owner_key,
            ListProfilesRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .profiles;
    let ids: Vec<&str> = profiles.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["developer", "finance", "general", "health", "legal"]);
    assert!(
        profiles
            .iter()
            .all(|p| p.phi_policy() == codexcontinue::pb::v1::PhiPolicy::Redact)
    );

    let no_model = chat
        .send_message(authorized(
            &server.owner_key,
            SendMessageRequest {
                conversation_id: mine.id,
                content: "hello".into(),
                ..SendMessageRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(field(&no_model), "profile.default_model");
    assert!(
        no_model
            .message()
            .contains("unknown model alias \"default\"")
            && no_model.message().contains("SetModelRoute"),
        "{}",
        no_model.message()
    );
}
