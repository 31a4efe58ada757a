//! Long-term and episodic memory over MemoryService: facts remembered and recalled by
//! meaning and by keyword, sealed at rest, private to their user and tenant, listed and
//! exported page by page, chat turns indexed as memories by the background job, and
//! forgetting that leaves nothing behind.

use codexcontinue::pb::v1::{
    ExportMemoriesRequest, ForgetRequest, ListMemoriesRequest, MemoryKind, RecallRequest,
    RememberRequest, ScoredMemory, SetWorkingStateRequest, forget_request::Target,
    memory_service_client::MemoryServiceClient,
};
use codexcontinue_tests::{
    eventually,
    grpc::{authorized, bad_field},
    models::embedding_model_env,
};
use redis::AsyncCommands;
use sqlx::Row;
use tonic::{Code, transport::Channel};
use uuid::Uuid;

use crate::chat_fixture::{Chat, setup_with};

const FACTS: [&str; 6] = [
    "Allergic to penicillin; amoxicillin gave the user hives in 2019",
    "Prefers Rust over Go for backend services",
    "Ticket BILL-4821 is about duplicate invoice emails",
    "Ticket BILL-4812 is about missing invoice PDFs",
    "Daughter Maya starts kindergarten in September",
    "Does not drink coffee, only green tea",
];

async fn memory_server(env: Vec<(String, String)>) -> (Chat, MemoryServiceClient<Channel>) {
    let mut settings = embedding_model_env();
    settings.extend(env);
    let chat = setup_with(settings).await;
    let client = MemoryServiceClient::new(chat.server.channel().await);
    (chat, client)
}

fn remember(key: &str, content: &str) -> tonic::Request<RememberRequest> {
    authorized(
        key,
        RememberRequest {
            content: content.into(),
            ..RememberRequest::default()
        },
    )
}

fn recall(key: &str, query: &str, top_k: i32) -> tonic::Request<RecallRequest> {
    authorized(
        key,
        RecallRequest {
            query: query.into(),
            top_k,
            ..RecallRequest::default()
        },
    )
}

fn forget(key: &str, target: Target) -> tonic::Request<ForgetRequest> {
    authorized(
        key,
        ForgetRequest {
            target: Some(target),
        },
    )
}

async fn recalled(
    memory: &mut MemoryServiceClient<Channel>,
    key: &str,
    query: &str,
) -> Vec<ScoredMemory> {
    memory
        .recall(recall(key, query, 3))
        .await
        .unwrap()
        .into_inner()
        .items
}

fn content(item: &ScoredMemory) -> &str {
    &item.item.as_ref().unwrap().content
}

async fn listed(memory: &mut MemoryServiceClient<Channel>, key: &str) -> Vec<String> {
    let mut contents = Vec::new();
    let mut token = String::new();
    loop {
        let page = memory
            .list_memories(authorized(
                key,
                ListMemoriesRequest {
                    page_size: 4,
                    page_token: token,
                    ..ListMemoriesRequest::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.items.len() <= 4);
        contents.extend(page.items.into_iter().map(|i| i.content));
        if page.next_page_token.is_empty() {
            return contents;
        }
        token = page.next_page_token;
    }
}

async fn exported(memory: &mut MemoryServiceClient<Channel>, key: &str) -> Vec<String> {
    let mut stream = memory
        .export_memories(authorized(key, ExportMemoriesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut contents = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        contents.push(item.item.unwrap().content);
    }
    contents
}

#[tokio::test]
async fn facts_are_recalled_by_meaning_and_keyword_sealed_and_private_to_their_user() {
    let (t, mut memory) = memory_server(Vec::new()).await;
    let owner = t.server.owner_key.clone();
    for fact in FACTS {
        let item = memory
            .remember(remember(&owner, fact))
            .await
            .unwrap()
            .into_inner()
            .item
            .unwrap();
        assert_eq!(item.kind(), MemoryKind::Episodic);
        assert_eq!(item.content, fact);
        assert_eq!(item.confidence, 1.0);
    }

    // By meaning: no word of the query is in the memory.
    let allergy = recalled(&mut memory, &owner, "which antibiotics must the user avoid").await;
    assert_eq!(content(&allergy[0]), FACTS[0]);
    let drink = recalled(
        &mut memory,
        &owner,
        "what would they like to drink in the morning",
    )
    .await;
    assert_eq!(content(&drink[0]), FACTS[5]);
    // By keyword: the exact ticket, not its near twin.
    let ticket = recalled(&mut memory, &owner, "BILL-4812").await;
    assert_eq!(content(&ticket[0]), FACTS[3]);
    assert_eq!(ticket[0].keyword_score, 1.0);
    assert!(ticket[0].score > ticket[1].score);
    for item in allergy.iter().chain(&ticket) {
        for signal in [
            item.score,
            item.vector_score,
            item.keyword_score,
            item.recency,
        ] {
            assert!((0.0..=1.0).contains(&signal), "{item:?}");
        }
    }
    // min_score drops what scores lower.
    let strict = memory
        .recall(authorized(
            &owner,
            RecallRequest {
                query: "BILL-4812".into(),
                top_k: 6,
                min_score: ticket[0].score - 0.001,
                ..RecallRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(strict.items.len(), 1);

    // Listed and exported newest first, page by page.
    let newest_first: Vec<String> = FACTS.iter().rev().map(|f| (*f).to_owned()).collect();
    assert_eq!(listed(&mut memory, &owner).await, newest_first);
    assert_eq!(exported(&mut memory, &owner).await, newest_first);

    // Sealed at rest: neither the texts nor their words are readable in Postgres.
    let mut db = t.server.db.owner().await;
    let rows = sqlx::query(
        "SELECT tenant_id, user_id, content_sealed, keywords::text AS keywords FROM memories",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(rows.len(), FACTS.len());
    for row in &rows {
        let sealed: Vec<u8> = row.get("content_sealed");
        let keywords: String = row.get("keywords");
        for word in ["penicillin", "Rust", "invoice", "Maya", "coffee"] {
            assert!(!String::from_utf8_lossy(&sealed).contains(word));
            assert!(!keywords.to_lowercase().contains(&word.to_lowercase()));
        }
    }

    // Another user of the tenant with copies of these rows: the owner still sees only
    // their own, and forgetting everything leaves the other user's.
    let tenant: Uuid = rows[0].get("tenant_id");
    let colleague = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO users (tenant_id, id, email) VALUES ($1, $2, 'colleague@acme.example')",
    )
    .bind(tenant)
    .bind(colleague)
    .execute(&mut db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO memories (tenant_id, id, user_id, kind, content_sealed, embedding, keywords)
         SELECT tenant_id, gen_random_uuid(), $1, kind, content_sealed, embedding, keywords
         FROM memories",
    )
    .bind(colleague)
    .execute(&mut db)
    .await
    .unwrap();
    let mine = memory
        .recall(recall(&owner, "invoice tickets", 100))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(mine.len(), FACTS.len());
    assert_eq!(listed(&mut memory, &owner).await.len(), FACTS.len());

    // Another tenant sees nothing and cannot forget what it cannot see.
    let globex = t.server.add_tenant("globex").await;
    assert!(recalled(&mut memory, &globex, "BILL-4812").await.is_empty());
    assert!(listed(&mut memory, &globex).await.is_empty());
    assert!(exported(&mut memory, &globex).await.is_empty());
    let id = ticket[0].item.as_ref().unwrap().id.clone();
    let refused = memory
        .forget(forget(&globex, Target::MemoryId(id.clone())))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);

    // Forgetting one item, then everything.
    let one = memory
        .forget(forget(&owner, Target::MemoryId(id)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.deleted, 1);
    let after = recalled(&mut memory, &owner, "BILL-4812").await;
    assert!(after.iter().all(|item| content(item) != FACTS[3]));
    let all = memory
        .forget(forget(&owner, Target::Everything(true)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.deleted, (FACTS.len() - 1) as i64);
    assert!(listed(&mut memory, &owner).await.is_empty());
    assert!(exported(&mut memory, &owner).await.is_empty());
    let left: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM memories")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(left, vec![colleague; FACTS.len()]);

    // Every change is in the audit trail.
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_events
         WHERE tenant_id = $1 AND action LIKE 'memory.%' ORDER BY seq",
    )
    .bind(tenant)
    .fetch_all(&mut db)
    .await
    .unwrap();
    let mut expected = vec!["memory.remember"; FACTS.len()];
    expected.extend([
        "memory.export",
        "memory.forget",
        "memory.forget",
        "memory.export",
    ]);
    assert_eq!(actions, expected);
}

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
    let items = eventually("the turn is indexed", || {
        let mut memory = memory.clone();
        let owner = owner.clone();
        async move {
            let items = memory
                .list_memories(authorized(&owner, ListMemoriesRequest::default()))
                .await
                .unwrap()
                .into_inner()
                .items;
            (items.len() == 2).then_some(items)
        }
    })
    .await;
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
async fn bad_memory_requests_name_their_field() {
    let (t, mut memory) = memory_server(Vec::new()).await;
    let owner = t.server.owner_key.clone();
    let too_long = "x".repeat(2001);
    let bad_remember = [
        (RememberRequest::default(), "content"),
        (
            RememberRequest {
                content: too_long.clone(),
                ..RememberRequest::default()
            },
            "content",
        ),
        (
            RememberRequest {
                content: "fine".into(),
                confidence: Some(1.5),
                ..RememberRequest::default()
            },
            "confidence",
        ),
        (
            RememberRequest {
                content: "fine".into(),
                source_message_id: "not-a-uuid".into(),
                ..RememberRequest::default()
            },
            "source_message_id",
        ),
    ];
    for (request, field) in bad_remember {
        let status = memory
            .remember(authorized(&owner, request))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(bad_field(&status), field);
    }
    let foreign = memory
        .remember(authorized(
            &owner,
            RememberRequest {
                content: "fine".into(),
                source_message_id: Uuid::now_v7().to_string(),
                ..RememberRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);

    let query = |f: fn(&mut RecallRequest)| {
        let mut request = RecallRequest {
            query: "anything".into(),
            ..RecallRequest::default()
        };
        f(&mut request);
        request
    };
    let bad_recall = [
        (query(|r| r.query = "  ".into()), "query"),
        (query(|r| r.top_k = 101), "top_k"),
        (query(|r| r.top_k = -1), "top_k"),
        (query(|r| r.min_score = 1.5), "min_score"),
        (query(|r| r.kinds = vec![0]), "kinds"),
        (query(|r| r.conversation_id = "x".into()), "conversation_id"),
    ];
    for (request, field) in bad_recall {
        let status = memory
            .recall(authorized(&owner, request))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(bad_field(&status), field);
    }

    let bad_forget = [
        (ForgetRequest { target: None }, "target"),
        (
            ForgetRequest {
                target: Some(Target::Everything(false)),
            },
            "target",
        ),
        (
            ForgetRequest {
                target: Some(Target::MemoryId("x".into())),
            },
            "memory_id",
        ),
    ];
    for (request, field) in bad_forget {
        let status = memory
            .forget(authorized(&owner, request))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(bad_field(&status), field);
    }
    let unknown = memory
        .forget(forget(
            &owner,
            Target::ConversationId(Uuid::now_v7().to_string()),
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let page = memory
        .list_memories(authorized(
            &owner,
            ListMemoriesRequest {
                page_token: "garbage".into(),
                ..ListMemoriesRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_field(&page), "page_token");

    // A viewer may read memories but not change them.
    let viewer =
        codexcontinue_tests::grpc::key_with_roles(t.server.channel().await, &owner, &["viewer"])
            .await;
    let denied = memory
        .remember(remember(&viewer, "a fact"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn without_the_embedding_model_long_term_memory_says_what_it_needs() {
    let chat = setup_with(Vec::new()).await;
    let mut memory = MemoryServiceClient::new(chat.server.channel().await);
    let status = memory
        .remember(remember(&chat.server.owner_key, "Prefers Rust"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("memory.embedding_model"),
        "{}",
        status.message()
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
    let recalled: Vec<&str> = messages
        .iter()
        .filter(|m| m["role"] == "system")
        .filter_map(|m| m["content"].as_str())
        .filter(|c| c.contains("heron-staging"))
        .collect();
    assert_eq!(recalled.len(), 1, "{messages:?}");
    assert!(recalled[0].contains("What you remember about this user"));
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

    let facts = eventually("the facts are extracted", || {
        let mut memory = memory.clone();
        let owner = owner.clone();
        async move {
            let items = memory
                .list_memories(authorized(
                    &owner,
                    ListMemoriesRequest {
                        kinds: vec![MemoryKind::Episodic.into()],
                        ..ListMemoriesRequest::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .items;
            (!items.is_empty()).then_some(items)
        }
    })
    .await;
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
    let summaries = eventually("the conversation is summarised", || {
        let mut memory = memory.clone();
        let owner = owner.clone();
        async move {
            let items = memory
                .list_memories(authorized(
                    &owner,
                    ListMemoriesRequest {
                        kinds: vec![MemoryKind::Summary.into()],
                        ..ListMemoriesRequest::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .items;
            (!items.is_empty()).then_some(items)
        }
    })
    .await;
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
