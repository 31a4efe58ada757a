//! Long-term and episodic memory over MemoryService: facts remembered and recalled by
//! meaning and by keyword, sealed at rest, private to their user and tenant, listed and
//! exported page by page, forgotten for good; bad requests name their field.

use codexcontinue::pb::v1::{
    ForgetRequest, ListMemoriesRequest, MemoryKind, RecallRequest, RememberRequest,
    forget_request::Target, memory_service_client::MemoryServiceClient,
};
use codexcontinue_tests::grpc::{authorized, bad_field};
use sqlx::Row;
use tonic::Code;
use uuid::Uuid;

use crate::{
    chat_fixture::setup_with,
    memory_fixture::{
        content, exported, forget, listed, memory_server, recall, recalled, remember,
    },
};

const FACTS: [&str; 6] = [
    "Allergic to penicillin; amoxicillin gave the user hives in 2019",
    "Prefers Rust over Go for backend services",
    "Ticket BILL-4821 is about duplicate invoice emails",
    "Ticket BILL-4812 is about missing invoice PDFs",
    "Daughter Maya starts kindergarten in September",
    "Does not drink coffee, only green tea",
];

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
