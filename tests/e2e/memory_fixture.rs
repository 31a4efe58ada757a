//! What the memory tests share: a chat server serving the shipped embedding model, and
//! MemoryService requests and readers.

use codexcontinue::pb::v1::{
    ExportMemoriesRequest, ForgetRequest, ListMemoriesRequest, MemoryItem, MemoryKind,
    RecallRequest, RememberRequest, ScoredMemory, forget_request::Target,
    memory_service_client::MemoryServiceClient,
};
use codexcontinue_tests::{grpc::authorized, models::embedding_model_env};
use tonic::transport::Channel;

use crate::chat_fixture::{Chat, setup_with};

pub async fn memory_server(env: Vec<(String, String)>) -> (Chat, MemoryServiceClient<Channel>) {
    let mut settings = embedding_model_env();
    settings.extend(env);
    let chat = setup_with(settings).await;
    let client = MemoryServiceClient::new(chat.server.channel().await);
    (chat, client)
}

pub fn remember(key: &str, content: &str) -> tonic::Request<RememberRequest> {
    authorized(
        key,
        RememberRequest {
            content: content.into(),
            ..RememberRequest::default()
        },
    )
}

pub fn recall(key: &str, query: &str, top_k: i32) -> tonic::Request<RecallRequest> {
    authorized(
        key,
        RecallRequest {
            query: query.into(),
            top_k,
            ..RecallRequest::default()
        },
    )
}

pub fn forget(key: &str, target: Target) -> tonic::Request<ForgetRequest> {
    authorized(
        key,
        ForgetRequest {
            target: Some(target),
        },
    )
}

pub async fn recalled(
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

pub fn content(item: &ScoredMemory) -> &str {
    &item.item.as_ref().unwrap().content
}

pub async fn listed(memory: &mut MemoryServiceClient<Channel>, key: &str) -> Vec<String> {
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

pub async fn exported(memory: &mut MemoryServiceClient<Channel>, key: &str) -> Vec<String> {
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

/// Waits until the caller has at least `count` memories of `kinds` (all when empty), as the
/// background jobs write them; returns the first page of them.
pub async fn wait_for_memories(
    memory: &MemoryServiceClient<Channel>,
    key: &str,
    kinds: &[MemoryKind],
    count: usize,
) -> Vec<MemoryItem> {
    codexcontinue_tests::eventually("the memories are written", || {
        let mut memory = memory.clone();
        let request = ListMemoriesRequest {
            kinds: kinds.iter().map(|k| (*k).into()).collect(),
            ..ListMemoriesRequest::default()
        };
        let request = authorized(key, request);
        async move {
            let items = memory
                .list_memories(request)
                .await
                .unwrap()
                .into_inner()
                .items;
            (items.len() >= count).then_some(items)
        }
    })
    .await
}
