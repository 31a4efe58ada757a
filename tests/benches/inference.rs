//! Local inference throughput, side by side with the Python peer, in one run on this
//! machine (`make bench`):
//!
//! - `minilm-l6` embeddings per second through gRPC `Embed` with 1, 8 and 32 texts per
//!   call, and for 32 concurrent single-text calls (the server batches them), over 256
//!   texts of 8–128 tokens; sentence-transformers `encode` with batch 1, 8 and 32 on the
//!   same texts with the same number of torch threads, checked to give the same vectors;
//!   then the same for the bfloat16 variant `minilm-l6-bf16` against sentence-transformers
//!   in bfloat16 (32 texts per call, and 32 concurrent callers);
//! - SmolLM2-135M-Instruct tokens per second: through gRPC `Generate` (greedy, with the
//!   key/value cache), and the same TorchScript step driven here with and without its
//!   cache (the same tokens either way).
//!
//! Prints Markdown tables.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use codexcontinue::pb::v1::{
    EmbedRequest, GenerateMessage, GenerateMessages, GenerateRequest, generate_request::Input,
    model_service_client::ModelServiceClient,
};
use codexcontinue_tests::{
    ServerOptions, TestDatabase, TestEnv, TestServer, grpc::authorized, models::temp_folder,
};
use tch::{CModule, IValue, Kind, Tensor};
use tonic::transport::Channel;

/// Torch threads on both sides: the machine's cores.
const THREADS: usize = 2;
/// Texts embedded per measurement.
const TEXTS: usize = 256;
/// Runs per measurement; the best counts.
const RUNS: usize = 3;
/// Concurrent single-text callers.
const CONCURRENCY: usize = 32;
/// Tokens generated per generation measurement.
const GENERATED: usize = 64;

/// `TEXTS` texts of 8 to 128 tokens (lengths spread evenly), built from the embedding test
/// sentences (several scripts), the same on every run; and their tokens.
fn texts(tokenizer: &Path) -> (Vec<String>, Vec<usize>) {
    let mut tokenizer = tokenizers::Tokenizer::from_file(tokenizer).expect("MiniLM tokenizer");
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).expect("no truncation");
    let tokens = |text: &str| tokenizer.encode(text, true).expect("tokenize").len();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/embedding_sentences.txt");
    let words: Vec<String> = std::fs::read_to_string(fixture)
        .expect("embedding sentences")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let texts: Vec<String> = (0..TEXTS)
        .map(|i| {
            let target = 8 + (i * 7919) % 121;
            let mut text = String::new();
            for word in words.iter().cycle().skip(i * 31) {
                let longer = if text.is_empty() {
                    word.clone()
                } else {
                    format!("{text} {word}")
                };
                if !text.is_empty() && tokens(&longer) > target {
                    break;
                }
                text = longer;
            }
            text
        })
        .collect();
    let lengths = texts.iter().map(|t| tokens(t)).collect();
    (texts, lengths)
}

/// The shipped embedding model and its bfloat16 variant.
const FP32_MODEL: &str = "minilm-l6";
const BF16_MODEL: &str = "minilm-l6-bf16";

async fn embed(
    client: &mut ModelServiceClient<Channel>,
    key: &str,
    model: &str,
    texts: &[String],
) -> Vec<Vec<f32>> {
    client
        .embed(authorized(
            key,
            EmbedRequest {
                model: model.into(),
                texts: texts.to_vec(),
            },
        ))
        .await
        .expect("embed")
        .into_inner()
        .embeddings
        .into_iter()
        .map(|e| e.values)
        .collect()
}

/// Best embeddings/s of `RUNS` passes of `model` over `texts`, `batch` texts per call.
async fn batched(
    client: &ModelServiceClient<Channel>,
    key: &str,
    model: &str,
    texts: &[String],
    batch: usize,
) -> f64 {
    let mut best = 0f64;
    for _ in 0..RUNS {
        let started = Instant::now();
        for chunk in texts.chunks(batch) {
            embed(&mut client.clone(), key, model, chunk).await;
        }
        best = best.max(texts.len() as f64 / started.elapsed().as_secs_f64());
    }
    best
}

/// Best embeddings/s of `RUNS` passes of `model` over `texts` by `CONCURRENCY` single-text
/// callers.
async fn concurrent(
    client: &ModelServiceClient<Channel>,
    key: &str,
    model: &'static str,
    texts: &[String],
) -> f64 {
    let mut best = 0f64;
    for _ in 0..RUNS {
        let started = Instant::now();
        let callers: Vec<_> = (0..CONCURRENCY)
            .map(|caller| {
                let mut client = client.clone();
                let key = key.to_owned();
                let mine: Vec<String> = texts
                    .iter()
                    .skip(caller)
                    .step_by(CONCURRENCY)
                    .cloned()
                    .collect();
                tokio::spawn(async move {
                    for text in mine {
                        embed(&mut client, &key, model, &[text]).await;
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.await.expect("caller");
        }
        best = best.max(texts.len() as f64 / started.elapsed().as_secs_f64());
    }
    best
}

/// Runs the Python peer (in bfloat16 with `bf16`) with batches of `batches` texts; returns
/// its embeddings/s per batch size and its first vector.
fn python_peer(texts: &[String], bf16: bool, batches: &[&str]) -> serde_json::Value {
    let python = std::env::var("CODEXCONTINUE_BENCH_PYTHON")
        .expect("CODEXCONTINUE_BENCH_PYTHON: the export venv's python (make bench sets it)");
    let file = temp_folder("bench").join("texts.txt");
    std::fs::write(&file, texts.join("\n")).expect("write texts");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench/embed_peer.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(&file)
        .arg(THREADS.to_string())
        .args(bf16.then_some("--bf16"))
        .args(batches)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .output()
        .expect("run the Python peer");
    assert!(
        output.status.success(),
        "Python peer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("peer prints JSON")
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * y).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|y| y.powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Generated tokens per second through gRPC Generate (greedy), and the time to the first
/// text.
async fn generate(client: &mut ModelServiceClient<Channel>, key: &str) -> (f64, Duration, i64) {
    let request = GenerateRequest {
        model: "smollm2-135m-instruct".into(),
        input: Some(Input::Messages(GenerateMessages {
            messages: vec![GenerateMessage {
                role: "user".into(),
                content: "Write a long story about a lighthouse keeper and a storm.".into(),
            }],
        })),
        temperature: Some(0.0),
        max_tokens: i32::try_from(GENERATED * 2).expect("small"),
        ..GenerateRequest::default()
    };
    let started = Instant::now();
    let mut stream = client
        .generate(authorized(key, request))
        .await
        .expect("generate")
        .into_inner();
    let mut first = None;
    let mut tokens = 0;
    while let Some(message) = stream.message().await.expect("stream") {
        if first.is_none() && !message.delta.is_empty() {
            first = Some(started.elapsed());
        }
        if !message.finish_reason.is_empty() {
            tokens = message.completion_tokens;
        }
    }
    let elapsed = started.elapsed();
    (
        tokens as f64 / elapsed.as_secs_f64(),
        first.unwrap_or(elapsed),
        tokens,
    )
}

/// The token ids of the committed reference prompt (the ChatML form of "What is the capital
/// of France?").
fn reference_prompt(tokenizer: &Path) -> Vec<i64> {
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/smollm2_reference.json"))
            .expect("reference");
    let tokenizer = tokenizers::Tokenizer::from_file(tokenizer).expect("SmolLM2 tokenizer");
    let prompt = reference["prompt"].as_str().expect("a prompt");
    tokenizer
        .encode(prompt, false)
        .expect("tokenize")
        .get_ids()
        .iter()
        .map(|&id| i64::from(id))
        .collect()
}

/// The greedy next token after one step of the SmolLM2 module, and its cache.
fn step(module: &CModule, input: &[i64], past: (&Tensor, &Tensor)) -> (i64, Tensor, Tensor) {
    let output = tch::no_grad(|| {
        module.forward_is(&[
            IValue::Tensor(Tensor::from_slice(input)),
            IValue::Tensor(past.0.shallow_clone()),
            IValue::Tensor(past.1.shallow_clone()),
        ])
    })
    .expect("step");
    let IValue::Tuple(mut parts) = output else {
        panic!("the step returns a tuple");
    };
    let take = |part: IValue| match part {
        IValue::Tensor(tensor) => tensor,
        other => panic!("a tensor, not {other:?}"),
    };
    let values = take(parts.pop().expect("values"));
    let keys = take(parts.pop().expect("keys"));
    let logits = take(parts.pop().expect("logits"));
    (logits.argmax(0, false).int64_value(&[]), keys, values)
}

/// Tokens/s generating `GENERATED` tokens after `prompt`, with the key/value cache or
/// recomputing the whole sequence at each step; and the tokens.
fn decode(module: &CModule, prompt: &[i64], cached: bool) -> (f64, Vec<i64>) {
    let empty = Tensor::zeros([30, 3, 0, 64], (Kind::Float, tch::Device::Cpu));
    let (mut keys, mut values) = (empty.shallow_clone(), empty.shallow_clone());
    let mut sequence = prompt.to_vec();
    let mut input = prompt.to_vec();
    let started = Instant::now();
    for _ in 0..GENERATED {
        let (token, k, v) = if cached {
            step(module, &input, (&keys, &values))
        } else {
            step(module, &sequence, (&empty, &empty))
        };
        (keys, values) = (k, v);
        sequence.push(token);
        input = vec![token];
    }
    (
        GENERATED as f64 / started.elapsed().as_secs_f64(),
        sequence[prompt.len()..].to_vec(),
    )
}

#[tokio::main]
async fn main() {
    let models = TestEnv::models_dir();
    let server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![
                (
                    "CODEXCONTINUE_INFERENCE__MODELS_DIR".into(),
                    models.display().to_string(),
                ),
                (
                    "CODEXCONTINUE_INFERENCE__THREADS".into(),
                    THREADS.to_string(),
                ),
                ("CODEXCONTINUE_TELEMETRY__LOG_FILTER".into(), "warn".into()),
                // The bench measures the models, not the rate limits.
                (
                    "CODEXCONTINUE_RATE_LIMIT__PER_CALLER_PER_SECOND".into(),
                    "100000".into(),
                ),
                (
                    "CODEXCONTINUE_RATE_LIMIT__PER_CALLER_BURST".into(),
                    "100000".into(),
                ),
                (
                    "CODEXCONTINUE_RATE_LIMIT__PER_TENANT_PER_SECOND".into(),
                    "100000".into(),
                ),
                (
                    "CODEXCONTINUE_RATE_LIMIT__PER_TENANT_BURST".into(),
                    "100000".into(),
                ),
            ],
            redis_url: None,
        },
    )
    .await;
    let key = server.owner_key.clone();
    let client = ModelServiceClient::new(server.channel().await);
    let (texts, tokens) = texts(&models.join("minilm-l6/tokenizer.json"));

    embed(&mut client.clone(), &key, FP32_MODEL, &texts[..32]).await;
    embed(&mut client.clone(), &key, BF16_MODEL, &texts[..32]).await;
    let ours: Vec<f64> = {
        let mut rates = Vec::new();
        for batch in [1, 8, 32] {
            rates.push(batched(&client, &key, FP32_MODEL, &texts, batch).await);
        }
        rates
    };
    let dynamic = concurrent(&client, &key, FP32_MODEL, &texts).await;
    let ours_bf16 = batched(&client, &key, BF16_MODEL, &texts, 32).await;
    let dynamic_bf16 = concurrent(&client, &key, BF16_MODEL, &texts).await;
    let our_first = embed(&mut client.clone(), &key, FP32_MODEL, &texts[..1])
        .await
        .remove(0);
    let our_first_bf16 = embed(&mut client.clone(), &key, BF16_MODEL, &texts[..1])
        .await
        .remove(0);
    let peer = python_peer(&texts, false, &["1", "8", "32"]);
    let peer_bf16 = python_peer(&texts, true, &["8", "32"]);
    let peer_bf16_rate = |batch: &str| peer_bf16[batch].as_f64().expect("a rate");
    let best_peer_bf16 = peer_bf16_rate("8").max(peer_bf16_rate("32"));
    let peer_rate = |batch: &str| peer[batch].as_f64().expect("a rate");
    let peer_first: Vec<f64> = peer["vector"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .collect();
    let agreement = cosine(&our_first, &peer_first);
    assert!(agreement >= 0.9999, "vectors differ: cosine {agreement}");
    let agreement_bf16 = cosine(&our_first_bf16, &peer_first);
    assert!(
        agreement_bf16 >= 0.999,
        "bf16 vectors differ: cosine {agreement_bf16}"
    );
    let best_peer = ["1", "8", "32"]
        .map(peer_rate)
        .into_iter()
        .fold(0f64, f64::max);

    let mean_tokens = tokens.iter().sum::<usize>() as f64 / tokens.len() as f64;
    println!(
        "## Embeddings: minilm-l6, {TEXTS} texts of {}–{} tokens (mean {mean_tokens:.0}), {THREADS} torch threads, best of {RUNS}\n",
        tokens.iter().min().expect("texts"),
        tokens.iter().max().expect("texts"),
    );
    println!(
        "| texts per call | CodexContinue gRPC Embed (emb/s) | sentence-transformers encode (emb/s) | ratio |"
    );
    println!("|---|---|---|---|");
    for (rate, batch) in ours.iter().zip(["1", "8", "32"]) {
        println!(
            "| {batch} | {rate:.1} | {:.1} | {:.2}× |",
            peer_rate(batch),
            rate / peer_rate(batch)
        );
    }
    println!(
        "| 1, {CONCURRENCY} concurrent callers (dynamic batching) | {dynamic:.1} | best batch: {best_peer:.1} | {:.2}× |",
        dynamic / best_peer
    );
    println!(
        "| bf16 variant, 32 | {ours_bf16:.1} | in bf16: {:.1} | {:.2}× |",
        peer_bf16_rate("32"),
        ours_bf16 / peer_bf16_rate("32")
    );
    println!(
        "| bf16 variant, 1, {CONCURRENCY} concurrent callers | {dynamic_bf16:.1} | best batch: {best_peer:.1}; in bf16: {best_peer_bf16:.1} | {:.2}×; {:.2}× |",
        dynamic_bf16 / best_peer,
        dynamic_bf16 / best_peer_bf16
    );
    println!(
        "\nvectors agree with sentence-transformers (fp32): cosine {agreement:.6} (bf16 variant {agreement_bf16:.6}) on the first text\n"
    );

    let cold = generate(&mut client.clone(), &key).await;
    let (rate, first, generated) = generate(&mut client.clone(), &key).await;
    tch::set_num_threads(i32::try_from(THREADS).expect("few threads"));
    let module = CModule::load(models.join("smollm2-135m-instruct/model.pt")).expect("SmolLM2");
    let prompt = reference_prompt(&models.join("smollm2-135m-instruct/tokenizer.json"));
    decode(&module, &prompt, true);
    let (cached, cached_tokens) = decode(&module, &prompt, true);
    let (uncached, uncached_tokens) = decode(&module, &prompt, false);
    // With int8 layers, whose activations are quantized per call, recomputing the whole
    // sequence is not exactly the cached computation: the answers may differ.
    let answer = |tokens: &[i64]| {
        let end = tokens
            .iter()
            .position(|&t| t == 2)
            .unwrap_or(tokens.len() - 1);
        tokens[..=end].to_vec()
    };
    let same = answer(&cached_tokens) == answer(&uncached_tokens);
    println!("## Generation: smollm2-135m-instruct, greedy, {THREADS} torch threads\n");
    println!("| how | tokens/s |");
    println!("|---|---|");
    println!(
        "| gRPC Generate, first call after start, {} tokens (first text after {} ms) | {:.1} |",
        cold.2,
        cold.1.as_millis(),
        cold.0
    );
    println!(
        "| gRPC Generate, {generated} tokens (first text after {} ms) | {rate:.1} |",
        first.as_millis()
    );
    println!(
        "| step module with key/value cache, {GENERATED} tokens after {} | {cached:.1} |",
        prompt.len()
    );
    println!("| step module without cache (whole sequence each step) | {uncached:.1} |");
    println!(
        "\nthe cache is {:.1}× faster; same answer to the reference prompt: {same}",
        cached / uncached
    );
}
