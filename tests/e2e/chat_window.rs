//! The recent window of a conversation cached in Redis: written through by each turn,
//! sealed, read by the next turn, rebuilt when the conversation changed, dropped with it.

use codexcontinue::pb::v1::{DeleteConversationRequest, RenameConversationRequest};
use codexcontinue_tests::grpc::authorized;
use redis::AsyncCommands;
use serde_json::Value;
use uuid::Uuid;

use super::chat_fixture::{Chat, setup};

async fn window_key(t: &Chat, conversation: &str) -> String {
    let tenant: Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'")
        .fetch_one(&mut t.server.db.owner().await)
        .await
        .unwrap();
    t.server.tenant_key(tenant, &["window", conversation])
}

/// The texts the upstream was last sent, system prompt first.
fn last_prompt(t: &Chat) -> Vec<String> {
    t.upstream.requests().pop().unwrap().body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn turns_read_the_cached_window_and_rebuild_it_when_the_conversation_changed() {
    let mut t = setup().await;
    let conversation = t.conversation("cloud/echo-1").await;
    t.send(&conversation, "My secret plan is tulips", "")
        .await
        .unwrap();
    let key = window_key(&t, &conversation).await;
    let mut redis = t.server.redis().await;
    let cached: String = redis.get(&key).await.unwrap();
    assert!(!cached.contains("tulips"), "the window is cached sealed");
    let mut window: Value = serde_json::from_str(&cached).unwrap();
    assert_eq!(window["rows"].as_array().unwrap().len(), 2);

    // A turn reads the cache: with the first message removed from it (version kept),
    // the model is not sent that message.
    window["rows"].as_array_mut().unwrap().remove(0);
    let _: () = redis.set(&key, window.to_string()).await.unwrap();
    t.send(&conversation, "Second", "").await.unwrap();
    let prompt = last_prompt(&t);
    assert_eq!(prompt[1..], ["Echo: My secret plan is tulips", "Second"]);
    let rows: Value = serde_json::from_str(&redis.get::<_, String>(&key).await.unwrap()).unwrap();
    assert_eq!(rows["rows"].as_array().unwrap().len(), 3, "written through");

    // A change of the conversation (here a rename) makes the cached window stale: the
    // next turn reads Postgres, which has every message.
    t.chat
        .rename_conversation(authorized(
            &t.server.owner_key,
            RenameConversationRequest {
                conversation_id: conversation.clone(),
                title: "Garden".into(),
            },
        ))
        .await
        .unwrap();
    t.send(&conversation, "Third", "").await.unwrap();
    let prompt = last_prompt(&t);
    assert_eq!(prompt.len(), 1 + 5, "{prompt:?}");
    assert_eq!(prompt[1], "My secret plan is tulips");

    t.chat
        .delete_conversation(authorized(
            &t.server.owner_key,
            DeleteConversationRequest {
                conversation_id: conversation,
            },
        ))
        .await
        .unwrap();
    let exists: bool = redis.exists(&key).await.unwrap();
    assert!(!exists, "dropped with the conversation");
}
