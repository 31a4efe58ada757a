//! Recall quality of long-term memory on the committed evaluation set
//! (`tests/eval/memory`: 340 memories of one user stored over two years, 138 queries in
//! five categories with the memories each must find). The memories are remembered over
//! gRPC with the shipped embedding model and dated by their age; every query is recalled
//! by three servers on the same data: vector only, keyword only, and the hybrid default.
//! Prints recall@5 and MRR per mode and category (`make eval`), and holds the hybrid to its
//! goal of recall@5 ≥ 0.9.

use std::collections::{BTreeMap, HashMap};

use codexcontinue::pb::v1::{
    RecallRequest, RememberRequest, memory_service_client::MemoryServiceClient,
};
use codexcontinue_tests::{TestServer, grpc::authorized, models::embedding_model_env};
use tonic::transport::Channel;

/// Items each recall returns (MRR looks this deep).
const DEPTH: i32 = 10;
/// The goal for hybrid recall@5.
const GOAL: f64 = 0.9;

struct Query {
    category: String,
    expected: Vec<String>,
    text: String,
}

fn rows(file: &str) -> Vec<Vec<String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("eval/memory")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .lines()
        .skip(1)
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

fn queries() -> Vec<Query> {
    rows("queries.tsv")
        .into_iter()
        .map(|row| Query {
            category: row[1].clone(),
            expected: row[2].split(',').map(str::to_owned).collect(),
            text: row[3].clone(),
        })
        .collect()
}

/// Stores every memory of the set; returns the dataset id of each stored memory id.
async fn store(server: &TestServer) -> HashMap<String, String> {
    let mut memory = MemoryServiceClient::new(server.channel().await);
    let mut db = server.db.owner().await;
    let mut ids = HashMap::new();
    for row in rows("memories.tsv") {
        let (name, age_days, content) = (&row[0], &row[1], &row[2]);
        let item = memory
            .remember(authorized(
                &server.owner_key,
                RememberRequest {
                    content: content.clone(),
                    ..RememberRequest::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .item
            .unwrap();
        let days: i32 = age_days.parse().unwrap();
        sqlx::query(
            "UPDATE memories SET created_at = now() - make_interval(days => $2),
                                 updated_at = now() - make_interval(days => $2)
             WHERE id = $1::uuid",
        )
        .bind(&item.id)
        .bind(days)
        .execute(&mut db)
        .await
        .unwrap();
        ids.insert(item.id, name.clone());
    }
    ids
}

/// Recall@5 and reciprocal rank of one answer.
fn measure(ranked: &[String], expected: &[String]) -> (f64, f64) {
    let found = expected
        .iter()
        .filter(|e| ranked.iter().take(5).any(|r| r == *e))
        .count();
    let rank = ranked.iter().position(|r| expected.contains(r));
    (
        found as f64 / expected.len() as f64,
        rank.map_or(0.0, |r| 1.0 / (r as f64 + 1.0)),
    )
}

/// Mean recall@5 and MRR of `server` over `queries`, overall and per category; prints
/// the queries whose expected memories are not all in the top 5.
async fn evaluate(
    memory: &mut MemoryServiceClient<Channel>,
    key: &str,
    ids: &HashMap<String, String>,
    queries: &[Query],
) -> BTreeMap<String, (f64, f64)> {
    let mut sums: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    for query in queries {
        let items = memory
            .recall(authorized(
                key,
                RecallRequest {
                    query: query.text.clone(),
                    top_k: DEPTH,
                    ..RecallRequest::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .items;
        let ranked: Vec<String> = items
            .iter()
            .map(|i| ids[&i.item.as_ref().unwrap().id].clone())
            .collect();
        let (recall, reciprocal) = measure(&ranked, &query.expected);
        if recall < 1.0 {
            println!(
                "missed ({}) {:?}: expected {:?}, top 5 {:?}",
                query.category,
                query.text,
                query.expected,
                &ranked[..5.min(ranked.len())]
            );
        }
        for bucket in ["all".to_owned(), query.category.clone()] {
            let sum = sums.entry(bucket).or_default();
            *sum = (sum.0 + recall, sum.1 + reciprocal, sum.2 + 1.0);
        }
    }
    sums.into_iter()
        .map(|(bucket, (recall, reciprocal, n))| (bucket, (recall / n, reciprocal / n)))
        .collect()
}

fn weights(vector: &str, keyword: &str, recency: &str) -> Vec<(String, String)> {
    let mut env = embedding_model_env();
    env.extend([
        (
            "CODEXCONTINUE_MEMORY__RANKING__VECTOR".to_owned(),
            vector.to_owned(),
        ),
        (
            "CODEXCONTINUE_MEMORY__RANKING__KEYWORD".to_owned(),
            keyword.to_owned(),
        ),
        (
            "CODEXCONTINUE_MEMORY__RANKING__RECENCY".to_owned(),
            recency.to_owned(),
        ),
    ]);
    env
}

#[tokio::test]
async fn hybrid_recall_finds_the_expected_memories() {
    let hybrid = TestServer::with_env(embedding_model_env()).await;
    let ids = store(&hybrid).await;
    let queries = queries();
    assert!(ids.len() >= 300 && queries.len() >= 100);
    let mut results = Vec::new();
    for (mode, env) in [
        ("vector only", Some(weights("1", "0", "0"))),
        ("keyword only", Some(weights("0", "1", "0"))),
        ("hybrid (defaults)", None),
    ] {
        let replica = match env {
            Some(env) => Some(hybrid.replica_with(env).await),
            None => None,
        };
        let server = replica.as_ref().unwrap_or(&hybrid);
        let mut memory = MemoryServiceClient::new(server.channel().await);
        results.push((
            mode,
            evaluate(&mut memory, &hybrid.owner_key, &ids, &queries).await,
        ));
    }

    let categories: Vec<&String> = results[0].1.keys().filter(|c| *c != "all").collect();
    println!(
        "\nMemory recall on tests/eval/memory: {} memories, {} queries\n",
        ids.len(),
        queries.len()
    );
    println!(
        "| mode | recall@5 | MRR | {} |",
        categories
            .iter()
            .map(|c| format!("{c} r@5"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|---|---|{}", "---|".repeat(categories.len()));
    for (mode, scores) in &results {
        let per_category: Vec<String> = categories
            .iter()
            .map(|c| format!("{:.3}", scores[*c].0))
            .collect();
        println!(
            "| {mode} | {:.3} | {:.3} | {} |",
            scores["all"].0,
            scores["all"].1,
            per_category.join(" | ")
        );
    }
    let hybrid_recall = results[2].1["all"].0;
    assert!(
        hybrid_recall >= GOAL,
        "hybrid recall@5 is {hybrid_recall:.3}; the goal is {GOAL}"
    );
}
