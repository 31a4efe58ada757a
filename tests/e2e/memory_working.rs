//! Working memory: a conversation's JSON state with a time to live, readable and writable
//! by the conversation's owner only, sealed in Redis, bounded in size and time, and gone
//! with the conversation.

use codexcontinue::pb::v1::{
    DeleteConversationRequest, GetWorkingStateRequest, SetWorkingStateRequest,
    memory_service_client::MemoryServiceClient,
};
use codexcontinue_tests::grpc::{authorized, bad_field};
use prost_types::{Struct, Value, value::Kind};
use redis::AsyncCommands;
use tonic::{Code, transport::Channel};

use crate::chat_fixture::setup;

fn value(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

/// `{"step": 2, "items": ["a", "b"], "nested": {"ok": true}}`.
fn state() -> Struct {
    let items = prost_types::ListValue {
        values: vec![
            value(Kind::StringValue("a".into())),
            value(Kind::StringValue("b".into())),
        ],
    };
    let nested = Struct {
        fields: [("ok".to_owned(), value(Kind::BoolValue(true)))].into(),
    };
    Struct {
        fields: [
            ("step".to_owned(), value(Kind::NumberValue(2.0))),
            ("items".to_owned(), value(Kind::ListValue(items))),
            ("nested".to_owned(), value(Kind::StructValue(nested))),
        ]
        .into(),
    }
}

fn set(
    key: &str,
    conversation: &str,
    state: Struct,
    ttl_seconds: i32,
) -> tonic::Request<SetWorkingStateRequest> {
    authorized(
        key,
        SetWorkingStateRequest {
            conversation_id: conversation.into(),
            state: Some(state),
            ttl_seconds,
        },
    )
}

fn get(key: &str, conversation: &str) -> tonic::Request<GetWorkingStateRequest> {
    authorized(
        key,
        GetWorkingStateRequest {
            conversation_id: conversation.into(),
        },
    )
}

#[tokio::test]
async fn a_conversations_working_state_is_kept_sealed_for_its_owner_until_it_expires() {
    let mut t = setup().await;
    let owner = t.server.owner_key.clone();
    let conversation = t.conversation("cloud/echo-1").await;
    let mut memory: MemoryServiceClient<Channel> =
        MemoryServiceClient::new(t.server.channel().await);

    // Nothing written yet: an empty state.
    let empty = memory
        .get_working_state(get(&owner, &conversation))
        .await
        .unwrap()
        .into_inner();
    assert!(empty.state.is_none() && empty.expire_time.is_none());

    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let written = memory
        .set_working_state(set(&owner, &conversation, state(), 0))
        .await
        .unwrap()
        .into_inner();
    let expires = written.expire_time.unwrap().seconds;
    assert!(
        (now + 23 * 3600..=now + 24 * 3600 + 60).contains(&expires),
        "default 24 h: {expires}"
    );
    let read = memory
        .get_working_state(get(&owner, &conversation))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.state.unwrap(), state());

    // Sealed in Redis, with the time to live asked for.
    memory
        .set_working_state(set(&owner, &conversation, state(), 60))
        .await
        .unwrap();
    let mut redis = t.server.redis().await;
    let mut db = t.server.db.owner().await;
    let tenant: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let key = t.server.tenant_key(tenant, &["working", &conversation]);
    let stored: Vec<u8> = redis.get(&key).await.unwrap();
    assert!(!stored.is_empty() && !stored.windows(5).any(|w| w == b"items"));
    let left: i64 = redis.pttl(&key).await.unwrap();
    assert!((1..=60_000).contains(&left), "{left}");

    // Another tenant's caller finds no such conversation; bad input names its field.
    let other = t.server.add_tenant("globex").await;
    let hidden = memory
        .get_working_state(get(&other, &conversation))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let overwrite = memory
        .set_working_state(set(&other, &conversation, Struct::default(), 0))
        .await
        .unwrap_err();
    assert_eq!(overwrite.code(), Code::NotFound);
    let unknown = memory
        .get_working_state(get(&owner, &uuid::Uuid::new_v4().to_string()))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let not_an_id = memory
        .get_working_state(get(&owner, "nope"))
        .await
        .unwrap_err();
    assert_eq!(bad_field(&not_an_id), "conversation_id");
    let big = Struct {
        fields: [(
            "text".to_owned(),
            value(Kind::StringValue("x".repeat(70_000))),
        )]
        .into(),
    };
    let too_big = memory
        .set_working_state(set(&owner, &conversation, big, 0))
        .await
        .unwrap_err();
    assert_eq!(bad_field(&too_big), "state");
    let nan = Struct {
        fields: [("n".to_owned(), value(Kind::NumberValue(f64::NAN)))].into(),
    };
    let not_json = memory
        .set_working_state(set(&owner, &conversation, nan, 0))
        .await
        .unwrap_err();
    assert_eq!(bad_field(&not_json), "state");
    for ttl in [-1, 31 * 24 * 3600] {
        let refused = memory
            .set_working_state(set(&owner, &conversation, state(), ttl))
            .await
            .unwrap_err();
        assert_eq!(bad_field(&refused), "ttl_seconds");
    }
    let kept = memory
        .get_working_state(get(&owner, &conversation))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        kept.state.unwrap(),
        state(),
        "refused writes change nothing"
    );

    // Gone with the conversation.
    t.chat
        .delete_conversation(authorized(
            &owner,
            DeleteConversationRequest {
                conversation_id: conversation.clone(),
            },
        ))
        .await
        .unwrap();
    let exists: bool = redis.exists(&key).await.unwrap();
    assert!(!exists);
}
