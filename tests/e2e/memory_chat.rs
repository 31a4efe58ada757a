//! Memory in chat: turns kept as memories by the indexing job and forgotten with their
//! conversation, memories recalled into prompts (and which ones each reply used), and
//! models writing facts and summaries.

use codexcontinue::pb::v1::{
    MemoryKind, PhiPolicy, Profile, RememberRequest, SetProfileRequest, SetWorkingStateRequest,
    forget_request::Target,
};
use codexcontinue_tests::{eventually, grpc::authorized, metrics, models::embedding_model_env};
use redis::AsyncCommands;

use crate::chat_fixture::create_conversation;
use crate::memory_fixture::{
    content, forget, listed, memory_server, recalled, remember, wait_for_memories,
};

const INDEXED: &str = r#"jobs_total{kind="index_messages",outcome="done"}"#;
const FACTS_KEPT: &str = r#"jobs_total{kind="extract_facts",outcome="done"}"#;
const FACTS_SKIPPED: &str = r#"jobs_total{kind="extract_facts",outcome="skipped"}"#;

#[tokio::test]
async fn chat_turns_become_memories_and_forgetting_a_conversation_leaves_nothing() {
    let workers = vec![("CODEXCONTINUE_JOBS__WORKERS".to_owned(), "1".to_owned())];
    let (mut t, mut memory) = memory_server(workers).await;
    let owner = t.server.owner_key.clone();
    let conversation = t.conversation("cloud/echo-1").await;
    let sent = t
        .send(
            &conversation,
            "Remember that our staging database is called heron-staging",
            "cloud/echo-1",
        )
        .await
        .unwrap();
    let user_message = sent.user_message.unwrap().id;
    let reply = sent.reply.unwrap().id;

    // The job keeps both messages of the turn, with their provenance.
    let items = wait_for_memories(&memory, &owner, &[], 2).await;
    assert_eq!(items.len(), 2);
    let mut sources: Vec<&str> = items.iter().map(|i| i.source_message_id.as_str()).collect();
    sources.sort_unstable();
    let mut expected = vec![user_message.as_str(), reply.as_str()];
    expected.sort_unstable();
    assert_eq!(sources, expected);
    assert!(items.iter().all(|i| i.kind() == MemoryKind::Message));
    assert!(items.iter().all(|i| i.conversation_id == conversation));
    let found = recalled(&mut memory, &owner, "name of the staging database").await;
    assert!(content(&found[0]).contains("heron-staging"));

    // An episodic fact from that message belongs to the conversation too.
    let fact = memory
        .remember(authorized(
            &owner,
            RememberRequest {
                content: "Staging database: heron-staging".into(),
                source_message_id: user_message.clone(),
                confidence: Some(0.8),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .item
        .unwrap();
    assert_eq!(fact.conversation_id, conversation);
    assert!((fact.confidence - 0.8).abs() < 1e-6);
    memory
        .set_working_state(authorized(
            &owner,
            SetWorkingStateRequest {
                conversation_id: conversation.clone(),
                state: Some(prost_types::Struct::default()),
                ttl_seconds: 0,
            },
        ))
        .await
        .unwrap();

    // Forgetting the conversation removes its memories and its working state.
    let forgotten = memory
        .forget(forget(&owner, Target::ConversationId(conversation.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(forgotten.deleted, 3);
    assert!(listed(&mut memory, &owner).await.is_empty());
    assert!(
        recalled(&mut memory, &owner, "staging database")
            .await
            .is_empty()
    );
    let mut db = t.server.db.owner().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM memories")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    let mut redis = t.server.redis().await;
    let keys: Vec<String> = redis
        .keys(format!("{}*working*", t.server.key_prefix))
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test]
async fn jobs_queued_before_the_user_forgot_keep_nothing_of_that_turn() {
    let facts = (
        "CODEXCONTINUE_MEMORY__EXTRACT_MODEL".to_owned(),
        "cloud/echo-1".to_owned(),
    );
    // This replica queues jobs (indexing, facts) but runs none.
    let (mut t, mut memory) = memory_server(vec![facts.clone()]).await;
    let owner = t.server.owner_key.clone();
    let conversation = t.conversation("cloud/echo-1").await;
    t.send(&conversation, "Our staging database is heron-staging", "")
        .await
        .unwrap();
    memory
        .forget(forget(&owner, Target::Everything(true)))
        .await
        .unwrap();

    // Another replica runs the turn's jobs after the forget: they keep nothing.
    let mut env = embedding_model_env();
    env.push(("CODEXCONTINUE_JOBS__WORKERS".to_owned(), "1".to_owned()));
    env.push(facts);
    let worker = t.server.replica_with(env).await;
    let jobs = |expected: [(&'static str, u64); 3]| {
        let worker = &worker;
        async move {
            let scraped = metrics::scrape(worker).await;
            expected
                .iter()
                .all(|(series, n)| metrics::value(&scraped, series) == *n)
                .then_some(())
        }
    };
    eventually("the jobs of the forgotten turn", || {
        jobs([(INDEXED, 1), (FACTS_SKIPPED, 1), (FACTS_KEPT, 0)])
    })
    .await;
    assert!(listed(&mut memory, &owner).await.is_empty());

    // What is said after the forget is kept as usual.
    t.send(&conversation, "I prefer release trains on Thursdays", "")
        .await
        .unwrap();
    eventually("the jobs of the new turn", || {
        jobs([(INDEXED, 2), (FACTS_SKIPPED, 1), (FACTS_KEPT, 1)])
    })
    .await;
    let kept = wait_for_memories(&memory, &owner, &[], 3).await;
    assert_eq!(kept.len(), 3, "the new turn's two messages and its fact");
    assert!(
        kept.iter().all(|m| !m.content.contains("heron")),
        "{kept:?}"
    );
}

#[tokio::test]
async fn chat_turns_recall_what_is_remembered_and_say_which_memories_they_used() {
    let (mut t, mut memory) = memory_server(Vec::new()).await;
    let owner = t.server.owner_key.clone();
    let mut ids = Vec::new();
    for fact in [
        "The team's staging database is called heron-staging",
        "Daughter Maya starts kindergarten in September",
    ] {
        let item = memory
            .remember(remember(&owner, fact))
            .await
            .unwrap()
            .into_inner()
            .item
            .unwrap();
        ids.push(item.id);
    }
    let conversation = t.conversation("cloud/echo-1").await;
    let sent = t
        .send(
            &conversation,
            "What is our staging database called?",
            "cloud/echo-1",
        )
        .await
        .unwrap();
    assert_eq!(sent.memory_ids, vec![ids[0].clone()]);
    let asked = t.upstream.requests().pop().unwrap().body;
    let messages = asked["messages"].as_array().unwrap();
    // Quoted notes in a user message, after the instructions, never with them.
    let recalled: Vec<&serde_json::Value> = messages
        .iter()
        .filter(|m| m["content"].as_str().unwrap().contains("heron-staging"))
        .collect();
    assert_eq!(recalled.len(), 1, "{messages:?}");
    assert_eq!(recalled[0]["role"], "user");
    let notes = recalled[0]["content"].as_str().unwrap();
    assert!(
        notes.starts_with("Notes kept from earlier conversations"),
        "{notes}"
    );
    assert_eq!(messages[0]["role"], "system");
    assert!(!asked.to_string().contains("kindergarten"));
    let last = messages.last().unwrap();
    assert_eq!(last["content"], "What is our staging database called?");

    // A message about something else recalls nothing.
    let unrelated = t
        .send(
            &conversation,
            "Translate 'good morning' into French",
            "cloud/echo-1",
        )
        .await
        .unwrap();
    assert!(
        unrelated.memory_ids.is_empty(),
        "{:?}",
        unrelated.memory_ids
    );

    // Under a profile that refuses to send PHI off the premises, a memory holding PHI
    // stays out of the prompt instead of failing a clean message.
    let phi = memory
        .remember(remember(
            &owner,
            "The staging database admin account belongs to SSN 123-45-6789",
        ))
        .await
        .unwrap()
        .into_inner()
        .item
        .unwrap()
        .id;
    t.admin
        .set_profile(authorized(
            &owner,
            SetProfileRequest {
                profile: Some(Profile {
                    id: "strict".into(),
                    display_name: "Strict".into(),
                    default_model: "cloud/echo-1".into(),
                    phi_policy: PhiPolicy::Refuse.into(),
                    ..Profile::default()
                }),
                system_prompt: "Be careful.".into(),
            },
        ))
        .await
        .unwrap();
    let strict = create_conversation(&mut t.chat, &owner, "strict", "").await;
    let guarded = t
        .send(&strict, "What is our staging database called?", "")
        .await
        .unwrap();
    assert_eq!(guarded.memory_ids, vec![ids[0].clone()]);
    let sent = t.upstream.requests().pop().unwrap().body.to_string();
    assert!(!sent.contains("123-45"), "{sent}");
    // Where the prompt may carry it, the same memory is recalled.
    let open = t
        .send(
            &conversation,
            "Who owns the staging database admin account?",
            "cloud/echo-1",
        )
        .await
        .unwrap();
    assert!(open.memory_ids.contains(&phi), "{:?}", open.memory_ids);
}

#[tokio::test]
async fn models_write_facts_and_summaries_as_memories() {
    let settings = vec![
        ("CODEXCONTINUE_JOBS__WORKERS".to_owned(), "1".to_owned()),
        (
            "CODEXCONTINUE_MEMORY__INDEX_MESSAGES".to_owned(),
            "false".to_owned(),
        ),
        (
            "CODEXCONTINUE_MEMORY__EXTRACT_MODEL".to_owned(),
            "cloud/echo-1".to_owned(),
        ),
        (
            "CODEXCONTINUE_MEMORY__SUMMARY_MODEL".to_owned(),
            "cloud/echo-1".to_owned(),
        ),
        (
            "CODEXCONTINUE_MEMORY__SUMMARY_EVERY".to_owned(),
            "4".to_owned(),
        ),
    ];
    let (mut t, mut memory) = memory_server(settings).await;
    let owner = t.server.owner_key.clone();
    let conversation = t.conversation("cloud/echo-1").await;
    let said = "I work on the billing service and I prefer Rust";
    let sent = t.send(&conversation, said, "cloud/echo-1").await.unwrap();
    let message = sent.user_message.unwrap().id;

    let facts = wait_for_memories(&memory, &owner, &[MemoryKind::Episodic], 1).await;
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].content, said);
    assert!((facts[0].confidence - 0.9).abs() < 1e-6);
    assert_eq!(facts[0].source_message_id, message);
    assert_eq!(facts[0].conversation_id, conversation);
    let found = recalled(
        &mut memory,
        &owner,
        "which programming language does the user like",
    )
    .await;
    assert_eq!(content(&found[0]), said);

    // The model was asked for the schema's JSON, strictly.
    let asked: Vec<_> = t
        .upstream
        .requests()
        .into_iter()
        .filter(|r| r.body["response_format"]["type"] == "json_schema")
        .collect();
    assert_eq!(asked.len(), 1);
    let format = &asked[0].body["response_format"]["json_schema"];
    assert_eq!(format["name"], "user_facts");
    assert_eq!(format["strict"], true);
    let mut db = t.server.db.owner().await;
    let extracted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'memory.extract'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(extracted, 1);

    // The second turn takes the conversation to 4 messages: it is summarised.
    let second = t
        .send(
            &conversation,
            "Plan the invoice retry rollout",
            "cloud/echo-1",
        )
        .await
        .unwrap();
    let reply = second.reply.unwrap().id;
    let summaries = wait_for_memories(&memory, &owner, &[MemoryKind::Summary], 1).await;
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].source_message_id, reply);
    assert_eq!(summaries[0].conversation_id, conversation);
    // The stand-in model echoes the transcript it was given: all four messages.
    let summary = &summaries[0].content;
    assert!(summary.contains(&format!("User: {said}")), "{summary}");
    assert!(
        summary.contains("User: Plan the invoice retry rollout"),
        "{summary}"
    );
    assert_eq!(summary.matches("Assistant: Echo:").count(), 2, "{summary}");
}

#[tokio::test]
async fn a_plugin_granted_read_memory_gets_the_memories_the_turn_recalled() {
    use codexcontinue::pb::v1::{
        Capability, RegisterPluginRequest, plugin_service_client::PluginServiceClient,
    };
    use codexcontinue_tests::plugin_server::TestPlugin;

    let (mut t, mut memory) = memory_server(Vec::new()).await;
    let owner = t.server.owner_key.clone();
    memory
        .remember(remember(
            &owner,
            "The team's staging database is called heron-staging",
        ))
        .await
        .unwrap();
    let plugin = TestPlugin::start().await;
    let mut plugins = PluginServiceClient::new(t.server.channel().await);
    for (name, granted) in [
        ("granted", vec![Capability::ReadMemory.into()]),
        ("plain", vec![]),
    ] {
        plugins
            .register_plugin(authorized(
                &owner,
                RegisterPluginRequest {
                    endpoint: plugin.endpoint(),
                    name: name.into(),
                    granted_capabilities: granted,
                    ..RegisterPluginRequest::default()
                },
            ))
            .await
            .unwrap();
    }
    t.admin
        .set_profile(authorized(
            &owner,
            SetProfileRequest {
                profile: Some(Profile {
                    id: "tools".into(),
                    display_name: "Tools".into(),
                    default_model: "cloud/echo-1".into(),
                    allowed_plugins: vec!["granted".into(), "plain".into()],
                    ..Profile::default()
                }),
                system_prompt: "Use the tools.".into(),
            },
        ))
        .await
        .unwrap();
    let conversation = create_conversation(&mut t.chat, &owner, "tools", "").await;
    for tool in ["granted__noop", "plain__noop"] {
        t.send(
            &conversation,
            &format!("tool:{tool} what is our staging database called?"),
            "",
        )
        .await
        .unwrap();
    }
    let received = plugin.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(
        received[0]
            .recalled_memories
            .iter()
            .any(|line| line.contains("heron-staging")),
        "{received:?}"
    );
    assert!(
        received[1].recalled_memories.is_empty(),
        "not granted, not given: {received:?}"
    );
}
