//! Long-term memory recall at 10k, 100k and 1M stored memories of one user (`make bench`;
//! `CODEXCONTINUE_BENCH_MEMORY_SIZES=10000,100000` picks other sizes):
//!
//! - the search alone, as `Recall` runs it (its tenant-scoped transaction, the user's
//!   centroid, the candidate query over the HNSW index or exact), in-process with
//!   precomputed query embeddings: p50, p99 and searches per second of one caller;
//! - gRPC `Recall` end to end (the query embedded by the local model first, then the
//!   search, the keyword lookups and the opening of the results): p50, p99 (one caller)
//!   and recalls per second (4 callers), with the default settings (the HNSW index; exact
//!   for users with at most 10,000 memories) and with exact search for everyone
//!   (`memory.exact_search`), default hybrid ranking;
//! - recall@10 of the default search against exact search, both ranking by vector alone.
//!
//! The stored vectors are generated: around 478 real MiniLM embeddings (the sentences of
//! the memory evaluation set) as cluster centres, each memory its centre plus Gaussian-like
//! noise (cosine to the centre ≈ 0.85), normalised, so queries written as text land among
//! them as real ones would. Texts are sealed like the server seals them; keyword terms are
//! empty, so the keyword index is looked up but adds no candidates. Queries are the 138
//! evaluation queries. Prints a Markdown table.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use codexcontinue::{
    crypto::{LocalMasterKey, MEMORY_CONTENTS, Sealer},
    memory::ranking::Centre,
    pb::v1::{
        EmbedRequest, RecallRequest, RememberRequest, memory_service_client::MemoryServiceClient,
        model_service_client::ModelServiceClient,
    },
    store::{
        Database,
        memories::{self, MemoryFilter, SearchSettings, WeightedTerms},
    },
    tenancy::TenantId,
};
use codexcontinue_tests::{
    ServerOptions, TestDatabase, TestEnv, TestServer,
    bench::{percentile, stores},
    grpc::authorized,
    models::embedding_model_env,
};
use pgvector::Vector;
use secrecy::SecretString;
use sqlx::Connection;
use tonic::transport::Channel;
use uuid::Uuid;

/// Concurrent callers for throughput.
const CALLERS: usize = 4;
/// Items each recall returns.
const TOP_K: i32 = 10;

fn eval_rows(file: &str, column: usize) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("eval/memory")
        .join(file);
    std::fs::read_to_string(path)
        .expect("evaluation set")
        .lines()
        .skip(1)
        .map(|line| line.split('\t').nth(column).expect("column").to_owned())
        .collect()
}

fn settings(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = embedding_model_env();
    env.push(("CODEXCONTINUE_TELEMETRY__LOG_FILTER".into(), "warn".into()));
    for limit in [
        "PER_CALLER_PER_SECOND",
        "PER_CALLER_BURST",
        "PER_TENANT_PER_SECOND",
        "PER_TENANT_BURST",
    ] {
        env.push((
            format!("CODEXCONTINUE_RATE_LIMIT__{limit}"),
            "1000000".into(),
        ));
    }
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

/// Embeds `texts` with the server's embedding model.
async fn embed(channel: Channel, key: &str, texts: &[String]) -> Vec<Vec<f32>> {
    let mut model = ModelServiceClient::new(channel);
    let mut vectors = Vec::new();
    for texts in texts.chunks(200) {
        let embedded = model
            .embed(authorized(
                key,
                EmbedRequest {
                    texts: texts.to_vec(),
                    ..EmbedRequest::default()
                },
            ))
            .await
            .expect("embed")
            .into_inner()
            .embeddings;
        vectors.extend(embedded.into_iter().map(|e| e.values));
    }
    vectors
}

/// Stores `size` generated memories of the owner of `server`'s tenant, then builds the
/// HNSW index over them; returns the tenant and the user.
async fn load(server: &TestServer, size: usize) -> (Uuid, Uuid) {
    let key = &server.owner_key;
    let channel = server.channel().await;
    // The first memory makes the tenant's keys and tells whose memories these are.
    MemoryServiceClient::new(channel.clone())
        .remember(authorized(
            key,
            RememberRequest {
                content: "Prefers Rust".into(),
                ..RememberRequest::default()
            },
        ))
        .await
        .expect("remember");
    let mut owner = server.db.owner().await;
    let (tenant, user): (Uuid, Uuid) =
        sqlx::query_as("SELECT tenant_id, user_id FROM memories LIMIT 1")
            .fetch_one(&mut owner)
            .await
            .expect("the first memory");

    let centres = eval_rows("memories.tsv", 2)
        .into_iter()
        .chain(eval_rows("queries.tsv", 3))
        .collect::<Vec<_>>();
    let vectors = embed(channel, key, &centres).await;
    sqlx::query("CREATE TABLE bench_centres (n integer PRIMARY KEY, v vector(384))")
        .execute(&mut owner)
        .await
        .expect("centres table");
    for (n, vector) in vectors.iter().enumerate() {
        let literal: Vec<String> = vector.iter().map(f32::to_string).collect();
        sqlx::query("INSERT INTO bench_centres VALUES ($1, $2::vector)")
            .bind(i32::try_from(n).expect("centre"))
            .bind(format!("[{}]", literal.join(",")))
            .execute(&mut owner)
            .await
            .expect("centre");
    }

    // Sealed texts, made the way the server makes them, copied in.
    let master = LocalMasterKey::from_base64(&SecretString::from(TestEnv::get().master_key))
        .expect("master key");
    let sealer = Sealer::new(Arc::new(master));
    let mut app = server.db.app().await;
    let mut tx = app.begin().await.expect("begin");
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await
        .expect("scope");
    let mut keyring = sealer.keyring(TenantId(tenant));
    let mut rows = String::with_capacity(size * 160);
    for n in 0..size {
        let id = Uuid::now_v7();
        let sealed = keyring
            .seal(
                &mut tx,
                MEMORY_CONTENTS.table,
                &id.to_string(),
                format!("Generated memory number {n}").as_bytes(),
            )
            .await
            .expect("seal");
        rows.push_str(&format!(
            "{id}\t\\\\x{}\t{}\t{}\n",
            hex::encode(sealed),
            n % vectors.len(),
            n % 730
        ));
    }
    tx.commit().await.expect("commit");
    sqlx::query("CREATE TABLE bench_rows (id uuid, sealed bytea, centre integer, age integer)")
        .execute(&mut owner)
        .await
        .expect("rows table");
    let mut copy = owner
        .copy_in_raw("COPY bench_rows FROM STDIN")
        .await
        .expect("copy");
    copy.send(rows.into_bytes()).await.expect("copy rows");
    copy.finish().await.expect("copy done");

    let started = Instant::now();
    for statement in [
        "DROP INDEX memories_embedding",
        // Uniform noise in ±0.052 per dimension: about 0.6 in length over 384 dimensions.
        "INSERT INTO memories (tenant_id, id, user_id, kind, content_sealed, embedding, keywords,
                               created_at, updated_at)
         SELECT $1, r.id, $2, 'episodic', r.sealed,
                l2_normalize(c.v + ARRAY(SELECT (random() - 0.5) * 0.104 + 0 * r.centre
                                         FROM generate_series(1, 384))::vector),
                '{}'::text[], now() - make_interval(days => r.age), now()
         FROM bench_rows r JOIN bench_centres c ON c.n = r.centre",
        "SET maintenance_work_mem = '4GB'",
        "SET max_parallel_maintenance_workers = 1",
        "CREATE INDEX memories_embedding ON memories USING hnsw (embedding vector_cosine_ops)
             WITH (m = 16, ef_construction = 64)",
        "VACUUM ANALYZE memories",
        "DROP TABLE bench_rows, bench_centres",
    ] {
        sqlx::query(statement)
            .bind(tenant)
            .bind(user)
            .execute(&mut owner)
            .await
            .unwrap_or_else(|err| panic!("{statement}: {err}"));
    }
    eprintln!(
        "memory recall bench: {size} memories stored and indexed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    (tenant, user)
}

/// p50, p99 and searches per second of the search part of `Recall` for `queries`.
async fn search(
    db: &Database,
    tenant: TenantId,
    user: Uuid,
    queries: &[Vec<f32>],
    exact: bool,
) -> (Duration, Duration, f64) {
    let settings = SearchSettings {
        candidates: 50,
        ef_search: 100,
        exact,
    };
    let mut samples = Vec::new();
    for (n, query) in queries.iter().chain(queries.iter().take(5)).enumerate() {
        let started = Instant::now();
        let mut tx = db.begin_tenant(tenant).await.expect("begin");
        let centre = memories::centroid(&mut tx, user)
            .await
            .expect("centroid")
            .and_then(|(total, count)| Centre::of(total.as_slice(), count));
        let query = centre.map_or_else(|| query.clone(), |c| c.subtract(query));
        let found = memories::candidates(
            &mut tx,
            user,
            &MemoryFilter::default(),
            &Vector::from(query),
            &WeightedTerms::default(),
            settings,
        )
        .await
        .expect("candidates");
        tx.commit().await.expect("commit");
        assert!(!found.is_empty());
        // The first five warm the caches.
        if n >= 5 {
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    let rate = samples.len() as f64 / samples.iter().sum::<Duration>().as_secs_f64();
    (percentile(&samples, 0.5), percentile(&samples, 0.99), rate)
}

async fn recall(client: &mut MemoryServiceClient<Channel>, key: &str, query: &str) -> Vec<String> {
    client
        .recall(authorized(
            key,
            RecallRequest {
                query: query.to_owned(),
                top_k: TOP_K,
                ..RecallRequest::default()
            },
        ))
        .await
        .expect("recall")
        .into_inner()
        .items
        .into_iter()
        .map(|item| item.item.expect("item").id)
        .collect()
}

/// p50 and p99 of one caller's recalls, and recalls per second of [`CALLERS`] callers.
async fn latency(server: &TestServer, queries: &[String]) -> (Duration, Duration, f64) {
    let mut client = MemoryServiceClient::new(server.channel().await);
    let key = server.owner_key.clone();
    for query in queries.iter().take(5) {
        recall(&mut client, &key, query).await;
    }
    let mut samples = Vec::new();
    for query in queries {
        let started = Instant::now();
        recall(&mut client, &key, query).await;
        samples.push(started.elapsed());
    }
    samples.sort();
    let started = Instant::now();
    let mut callers = Vec::new();
    for caller in 0..CALLERS {
        let mut client = client.clone();
        let key = key.clone();
        let mine: Vec<String> = queries
            .iter()
            .skip(caller)
            .step_by(CALLERS)
            .cloned()
            .collect();
        callers.push(tokio::spawn(async move {
            for query in &mine {
                recall(&mut client, &key, query).await;
            }
        }));
    }
    for caller in callers {
        caller.await.expect("caller");
    }
    let rate = queries.len() as f64 / started.elapsed().as_secs_f64();
    (percentile(&samples, 0.5), percentile(&samples, 0.99), rate)
}

/// Mean share of the exact top 10 the HNSW search also returns.
async fn overlap(hnsw: &TestServer, exact: &TestServer, queries: &[String]) -> f64 {
    let mut approximate = MemoryServiceClient::new(hnsw.channel().await);
    let mut truth = MemoryServiceClient::new(exact.channel().await);
    let mut sum = 0.0;
    for query in queries {
        let found: HashSet<String> = recall(&mut approximate, &hnsw.owner_key, query)
            .await
            .into_iter()
            .collect();
        let expected = recall(&mut truth, &exact.owner_key, query).await;
        let hits = expected.iter().filter(|id| found.contains(*id)).count();
        sum += hits as f64 / expected.len().max(1) as f64;
    }
    sum / queries.len() as f64
}

fn ms(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("CODEXCONTINUE_BENCH_MEMORY_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(|size| size.trim().parse().expect("sizes are numbers"))
        .collect();
    let queries = eval_rows("queries.tsv", 3);
    let vector_only = [
        ("CODEXCONTINUE_MEMORY__RANKING__VECTOR", "1"),
        ("CODEXCONTINUE_MEMORY__RANKING__KEYWORD", "0"),
        ("CODEXCONTINUE_MEMORY__RANKING__RECENCY", "0"),
    ];
    let exact = ("CODEXCONTINUE_MEMORY__EXACT_SEARCH", "true");
    let mut lines = Vec::new();
    let mut search_lines = Vec::new();
    for size in sizes {
        let hnsw = TestServer::spawn(
            TestDatabase::migrated().await,
            ServerOptions {
                env: settings(&[]),
                redis_url: None,
            },
        )
        .await;
        let (tenant, user) = load(&hnsw, size).await;
        let (db, _) = stores(&hnsw.db).await;
        let vectors = embed(hnsw.channel().await, &hnsw.owner_key, &queries).await;
        let tenant = TenantId(tenant);
        let (search_p50, search_p99, search_rate) =
            search(&db, tenant, user, &vectors, false).await;
        let (exact_search_p50, exact_search_p99, exact_search_rate) =
            search(&db, tenant, user, &vectors, true).await;
        search_lines.push(format!(
            "| {size} | {} | {} | {search_rate:.0} | {} | {} | {exact_search_rate:.1} |",
            ms(search_p50),
            ms(search_p99),
            ms(exact_search_p50),
            ms(exact_search_p99),
        ));
        let exhaustive = hnsw.replica_with(settings(&[exact])).await;
        let (p50, p99, rate) = latency(&hnsw, &queries).await;
        let (exact_p50, exact_p99, exact_rate) = latency(&exhaustive, &queries).await;
        let hnsw_vector = hnsw.replica_with(settings(&vector_only)).await;
        let mut exact_vector_env = vector_only.to_vec();
        exact_vector_env.push(exact);
        let exact_vector = hnsw.replica_with(settings(&exact_vector_env)).await;
        let recall_at_10 = overlap(&hnsw_vector, &exact_vector, &queries).await;
        lines.push(format!(
            "| {size} | {} | {} | {rate:.0} | {} | {} | {exact_rate:.1} | {recall_at_10:.3} |",
            ms(p50),
            ms(p99),
            ms(exact_p50),
            ms(exact_p99),
        ));
        drop((exhaustive, hnsw_vector, exact_vector));
        let db = hnsw.db.clone();
        drop(hnsw);
        db.drop_database().await;
    }
    println!(
        "\nMemory search alone, in-process ({} query embeddings, 50 candidates, ef_search 100, one caller)\n",
        queries.len()
    );
    println!(
        "| memories | HNSW p50 (ms) | HNSW p99 (ms) | HNSW searches/s | exact p50 (ms) | exact p99 (ms) | exact searches/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for line in search_lines {
        println!("{line}");
    }
    println!(
        "\nMemory Recall over gRPC ({} queries, top {TOP_K}, ef_search 100; QPS with {CALLERS} callers)\n",
        queries.len()
    );
    println!(
        "| memories | default p50 (ms) | default p99 (ms) | default QPS | exact p50 (ms) | exact p99 (ms) | exact QPS | recall@10 default vs exact |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for line in lines {
        println!("{line}");
    }
}
