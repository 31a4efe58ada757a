//! Replies from model providers (a local stand-in speaking OpenAI's, Azure's and Ollama's
//! wire formats): whole, streamed and regenerated, stored sealed with history sent along;
//! PHI redacted for providers off the premises and restored in the answer, or refused by
//! policy; provider failures mapped to clear statuses; hanging up or cancelling (from any
//! replica) stops the upstream call.

use std::time::Duration;

use codexcontinue::pb::v1::{
    CancelGenerationRequest, CreateApiKeyRequest, GenerationOptions, ListMessagesRequest,
    ListProvidersRequest, PhiPolicy, Provider, ProviderKind, RegenerateReplyRequest,
    SetProviderRequest, StreamMessageRequest, auth_service_client::AuthServiceClient,
    chat_service_client::ChatServiceClient, reply_chunk,
};
use codexcontinue_tests::{WAIT_LIMIT, grpc::authorized};
use tonic::Code;
use tonic_types::StatusExt;

use super::chat_fixture::{KEY, set_provider, setup};

#[tokio::test]
async fn replies_are_generated_with_history_and_stored_sealed() {
    let mut t = setup().await;
    let providers = t
        .admin
        .list_providers(authorized(
            &t.server.owner_key,
            ListProvidersRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .providers;
    assert_eq!(providers.len(), 1);
    assert!(
        providers[0].credential_set,
        "the credential is stored, never returned"
    );

    let conversation = t.conversation("cloud/echo-1").await;
    let first = t.send(&conversation, "Hello there", "").await.unwrap();
    let reply = first.reply.unwrap();
    assert_eq!(reply.content, "Echo: Hello there");
    assert_eq!(reply.model_used, "cloud/echo-1");
    assert_eq!(
        reply.finish_reason(),
        codexcontinue::pb::v1::FinishReason::Stop
    );
    let usage = reply.usage.unwrap();
    assert!(
        usage.prompt_tokens > 0 && usage.completion_tokens == 3,
        "{usage:?}"
    );
    t.send(&conversation, "And again", "").await.unwrap();

    let requests = t.upstream.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].credential, format!("Bearer {KEY}"));
    let second = &requests[1].body;
    assert_eq!(second["model"], "echo-1");
    assert_eq!(second["stream"], true);
    let roles: Vec<&str> = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "user"],
        "history goes along"
    );

    let messages = t
        .chat
        .list_messages(authorized(
            &t.server.owner_key,
            ListMessagesRequest {
                conversation_id: conversation.clone(),
                ..ListMessagesRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .messages;
    let contents: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        contents,
        [
            "Hello there",
            "Echo: Hello there",
            "And again",
            "Echo: And again"
        ]
    );
    let mut owner = t.server.db.owner().await;
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("SELECT content_sealed FROM messages")
        .fetch_all(&mut owner)
        .await
        .unwrap();
    assert!(
        sealed.iter().all(|s| !s.windows(5).any(|w| w == b"Hello")),
        "sealed at rest"
    );
    let (title,): (Vec<u8>,) = sqlx::query_as("SELECT title_sealed FROM conversations")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert!(!title.windows(5).any(|w| w == b"Hello"));
}

#[tokio::test]
async fn streamed_replies_arrive_in_pieces_and_hanging_up_stops_the_upstream() {
    let mut t = setup().await;
    let conversation = t.conversation("cloud/echo-1").await;
    let mut stream = t
        .chat
        .stream_message(authorized(
            &t.server.owner_key,
            StreamMessageRequest {
                conversation_id: conversation.clone(),
                content: "stream me please".into(),
                ..StreamMessageRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut deltas = Vec::new();
    let mut started = None;
    let mut completed = None;
    while let Some(message) = stream.message().await.unwrap() {
        match message.chunk.unwrap().event.unwrap() {
            reply_chunk::Event::Started(s) => started = Some(s),
            reply_chunk::Event::Delta(d) => deltas.push(d),
            reply_chunk::Event::Completed(c) => completed = Some(c),
            other => panic!("this profile offers no tools: {other:?}"),
        }
    }
    assert!(started.is_some());
    assert!(deltas.len() >= 3, "{deltas:?}");
    assert_eq!(deltas.concat(), "Echo: stream me please");
    let completed = completed.unwrap();
    assert_eq!(completed.model_used, "cloud/echo-1");
    assert_eq!(completed.usage.unwrap().completion_tokens, 4);

    // A long reply, abandoned after its first words.
    let mut stream = t
        .chat
        .stream_message(authorized(
            &t.server.owner_key,
            StreamMessageRequest {
                conversation_id: conversation.clone(),
                content: "tell me everything".into(),
                options: Some(GenerationOptions {
                    model: "cloud/slow".into(),
                    ..GenerationOptions::default()
                }),
                ..StreamMessageRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut seen = 0;
    while seen < 3 {
        if let Some(reply_chunk::Event::Delta(_)) = stream
            .message()
            .await
            .unwrap()
            .unwrap()
            .chunk
            .unwrap()
            .event
        {
            seen += 1;
        }
    }
    drop(stream);
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    let stored = loop {
        let mut owner = t.server.db.owner().await;
        let reason: Option<String> = sqlx::query_scalar(
            "SELECT finish_reason FROM messages WHERE role = 'assistant' AND model_used = 'cloud/slow'",
        )
        .fetch_optional(&mut owner)
        .await
        .unwrap();
        if let Some(reason) = reason {
            break reason;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cancelled reply was never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stored, "cancelled");
    while !t.upstream.saw_hang_up() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upstream request was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn phi_is_redacted_for_providers_off_the_premises_and_refused_by_policy() {
    let mut t = setup().await;
    let conversation = t.conversation("cloud/echo-1").await;
    let prompt = "Summarize: patient DOB 04/12/1978, reach her at jane.roe@example.com";
    let reply = t
        .send(&conversation, prompt, "")
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(
        reply.content,
        format!("Echo: {prompt}"),
        "restored in the answer"
    );
    let sent = t.upstream.requests().last().unwrap().body.to_string();
    assert!(
        !sent.contains("04/12/1978") && !sent.contains("jane.roe@example.com"),
        "{sent}"
    );
    assert!(sent.contains("[EMAIL_1]"), "{sent}");

    let mut owner = t.server.db.owner().await;
    let phi: Vec<bool> = sqlx::query_scalar(
        "SELECT phi FROM audit_events WHERE action = '/codexcontinue.v1.ChatService/SendMessage' ORDER BY seq",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert_eq!(phi, [true]);

    t.set_tenant_phi_policy(PhiPolicy::Refuse).await;
    let before = t.upstream.requests().len();
    let refused = t
        .send(&conversation, "SSN 219-09-9999 please", "")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("ssn") && !refused.message().contains("219-09"),
        "{}",
        refused.message()
    );
    assert_eq!(
        t.upstream.requests().len(),
        before,
        "nothing left the premises"
    );

    // A provider on the premises sees the prompt as written.
    let base = t.upstream.openai_base();
    set_provider(&mut t.admin, &t.server.owner_key, "onprem", &base, true).await;
    t.send(&conversation, "SSN 219-09-9999 please", "onprem/echo-1")
        .await
        .unwrap();
    let sent = t.upstream.requests().last().unwrap().body.to_string();
    assert!(sent.contains("219-09-9999"));
    let flagged: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE phi")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(
        flagged, 3,
        "redacted, refused and on-premises calls all touched PHI"
    );
}

#[tokio::test]
async fn provider_failures_and_bad_settings_get_clear_statuses() {
    let mut t = setup().await;
    let conversation = t.conversation("").await;
    let limited = t
        .send(&conversation, "hi", "cloud/rate-limited")
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert_eq!(limited.metadata().get("retry-after").unwrap(), "7");
    let broken = t
        .send(&conversation, "hi", "cloud/broken")
        .await
        .unwrap_err();
    assert_eq!(broken.code(), Code::Unavailable);
    let unknown = t
        .send(&conversation, "hi", "cloud/gpt-17")
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::FailedPrecondition);
    let missing = t
        .send(&conversation, "hi", "nowhere/echo-1")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    t.admin
        .set_provider(authorized(
            &t.server.owner_key,
            SetProviderRequest {
                provider: Some(Provider {
                    name: "stale".into(),
                    kind: ProviderKind::OpenaiCompatible.into(),
                    endpoint: t.upstream.openai_base(),
                    ..Provider::default()
                }),
                credential: "sk-revoked".into(),
            },
        ))
        .await
        .unwrap();
    let refused = t
        .send(&conversation, "hi", "stale/echo-1")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("Incorrect API key provided")
            && refused
                .message()
                .contains("\"stale\" with AdminService.SetProvider"),
        "{}",
        refused.message()
    );
    let unnamed = t.send(&conversation, "hi", "").await.unwrap_err();
    assert_eq!(unnamed.code(), Code::InvalidArgument);
    assert_eq!(
        unnamed
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "profile.default_model"
    );
    let empty = t
        .send(&conversation, "  ", "cloud/echo-1")
        .await
        .unwrap_err();
    assert_eq!(
        empty
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "content"
    );

    // Moving the provider to another address drops the stored credential: the provider
    // then refuses the call.
    let base = t.upstream.openai_base();
    t.admin
        .set_provider(authorized(
            &t.server.owner_key,
            SetProviderRequest {
                provider: Some(Provider {
                    name: "cloud".into(),
                    kind: ProviderKind::OpenaiCompatible.into(),
                    endpoint: base.replace("127.0.0.1", "localhost"),
                    ..Provider::default()
                }),
                credential: String::new(),
            },
        ))
        .await
        .unwrap();
    let refused = t
        .send(&conversation, "hi", "cloud/echo-1")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("credential"),
        "{}",
        refused.message()
    );

    let bad = t
        .admin
        .set_provider(authorized(
            &t.server.owner_key,
            SetProviderRequest {
                provider: Some(Provider {
                    name: "cloud".into(),
                    kind: ProviderKind::OpenaiCompatible.into(),
                    endpoint: "ftp://example.test".into(),
                    ..Provider::default()
                }),
                credential: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        bad.get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "provider.endpoint"
    );
    let member = AuthServiceClient::new(t.server.channel().await)
        .create_api_key(authorized(
            &t.server.owner_key,
            CreateApiKeyRequest {
                name: "m".into(),
                roles: vec!["member".into()],
                expire_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .secret;
    let denied = t
        .admin
        .set_provider(authorized(&member, SetProviderRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn azure_openai_and_ollama_answer_through_their_own_wire_formats() {
    let mut t = setup().await;
    let key = t.server.owner_key.clone();
    t.add_ollama("lab").await;
    let conversation = t.conversation("lab/llama3.1").await;
    let reply = t
        .send(&conversation, "hello lab", "")
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(reply.content, "Echo: hello lab");
    assert_eq!(reply.model_used, "lab/llama3.1");
    let usage = reply.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (11, 3));
    let sent = t.upstream.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(sent.body["model"], "llama3.1");
    assert_eq!(sent.body["stream"], true);

    let missing = t
        .send(&conversation, "hi", "lab/missing")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::FailedPrecondition);
    assert!(
        missing.message().contains("not found"),
        "{}",
        missing.message()
    );

    // Azure OpenAI: the deployment in the path, the key in `api-key`.
    t.admin
        .set_provider(authorized(
            &key,
            SetProviderRequest {
                provider: Some(Provider {
                    name: "azure".into(),
                    kind: ProviderKind::AzureOpenai.into(),
                    endpoint: t.upstream.base(),
                    api_version: "2024-10-21".into(),
                    ..Provider::default()
                }),
                credential: KEY.into(),
            },
        ))
        .await
        .unwrap();
    let reply = t
        .send(&conversation, "hello azure", "azure/gpt-4o-eu")
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(reply.content, "Echo: hello azure");
    let sent = t.upstream.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/openai/deployments/gpt-4o-eu/chat/completions");
    assert_eq!(sent.credential, KEY);
}

#[tokio::test]
async fn a_generation_is_cancelled_from_another_replica() {
    let mut t = setup().await;
    let key = t.server.owner_key.clone();
    let conversation = t.conversation("cloud/slow").await;
    let mut stream = t
        .chat
        .stream_message(authorized(
            &key,
            StreamMessageRequest {
                conversation_id: conversation,
                content: "go on".into(),
                ..StreamMessageRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(reply_chunk::Event::Started(started)) = stream
        .message()
        .await
        .unwrap()
        .unwrap()
        .chunk
        .unwrap()
        .event
    else {
        panic!("the stream starts with `started`");
    };
    let replica = t.server.replica().await;
    let mut elsewhere = ChatServiceClient::new(replica.channel().await);
    let cancel = |key: &str| {
        authorized(
            key,
            CancelGenerationRequest {
                generation_id: started.generation_id.clone(),
            },
        )
    };
    let globex = t.server.add_tenant("globex").await;
    let foreign = elsewhere
        .cancel_generation(cancel(&globex))
        .await
        .unwrap()
        .into_inner();
    assert!(!foreign.cancelled, "another tenant cannot cancel it");
    let cancelled = elsewhere
        .cancel_generation(cancel(&key))
        .await
        .unwrap()
        .into_inner();
    assert!(cancelled.cancelled);

    let mut completed = None;
    while let Some(message) = stream.message().await.unwrap() {
        if let Some(reply_chunk::Event::Completed(done)) = message.chunk.unwrap().event {
            completed = Some(done);
        }
    }
    let completed = completed.expect("the stream ends with `completed`");
    assert_eq!(
        completed.finish_reason(),
        codexcontinue::pb::v1::FinishReason::Cancelled
    );
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    while !t.upstream.saw_hang_up() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upstream call went on"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = elsewhere
        .cancel_generation(cancel(&key))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.cancelled, "it is over");
}

#[tokio::test]
async fn the_last_reply_is_regenerated_in_place() {
    let mut t = setup().await;
    let key = t.server.owner_key.clone();
    let base = t.upstream.openai_base();
    set_provider(&mut t.admin, &key, "onprem", &base, true).await;
    let conversation = t.conversation("cloud/echo-1").await;
    let regenerate = |model: &str| {
        authorized(
            &key,
            RegenerateReplyRequest {
                conversation_id: conversation.clone(),
                options: Some(GenerationOptions {
                    model: model.into(),
                    ..GenerationOptions::default()
                }),
            },
        )
    };
    let nothing = t.chat.regenerate_reply(regenerate("")).await.unwrap_err();
    assert_eq!(
        nothing
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "conversation_id"
    );
    let first = t.send(&conversation, "tell me", "").await.unwrap();
    let old_reply = first.reply.unwrap().id;

    let mut stream = t
        .chat
        .regenerate_reply(regenerate("onprem/echo-1"))
        .await
        .unwrap()
        .into_inner();
    let mut text = String::new();
    let mut started = None;
    let mut completed = None;
    while let Some(message) = stream.message().await.unwrap() {
        match message.chunk.unwrap().event.unwrap() {
            reply_chunk::Event::Started(s) => started = Some(s),
            reply_chunk::Event::Delta(d) => text.push_str(&d),
            reply_chunk::Event::Completed(c) => completed = Some(c),
            other => panic!("this profile offers no tools: {other:?}"),
        }
    }
    let started = started.unwrap();
    assert!(started.user_message_id.is_empty(), "no new user message");
    assert_eq!(text, "Echo: tell me");
    assert_eq!(completed.unwrap().model_used, "onprem/echo-1");
    let messages = t
        .chat
        .list_messages(authorized(
            &key,
            ListMessagesRequest {
                conversation_id: conversation.clone(),
                ..ListMessagesRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .messages;
    let ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&old_reply.as_str()), "the old reply is gone");
    assert_eq!(ids[1], started.reply_message_id);
    assert_eq!(messages[1].model_used, "onprem/echo-1");
    let sent = t.upstream.requests().last().unwrap().body.clone();
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["system", "user"],
        "the replaced reply is not sent along"
    );
}
