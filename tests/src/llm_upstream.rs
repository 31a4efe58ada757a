//! A stand-in for model providers: a local HTTP server speaking OpenAI's chat completions
//! wire format (and Azure OpenAI's URL and `api-key` header), streaming as server-sent
//! events or answering whole, with OpenAI's error bodies; and Ollama's native `/api/chat`
//! (newline-delimited JSON; no Ollama server installs from the package registries here).
//!
//! It answers `Echo: <last user message>` word by word. Models with special names
//! misbehave on purpose: `rate-limited` (429 with `retry-after: 7`), `broken` (500),
//! `flaky` (503 to every other request, starting with the first), `slow` (a long
//! reply, one word every 20 ms, noting when the client hung up), and `stall` (five seconds
//! before anything). Every request is recorded
//! for the test to inspect.
//!
//! It also stands in for Microsoft Entra ID's token endpoint
//! (`POST /{tenant}/oauth2/v2.0/token`, client credentials, Entra's error body): client id
//! [`ENTRA_CLIENT_ID`] with the key as its secret gets a token that Azure-style calls may
//! present as `Authorization: Bearer` instead of `api-key`.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The address model `escaping` adds to a tool call's arguments (written escaped).
pub const ESCAPED_ADDRESS: &str = "jane.doe@example.org";

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The request body.
    pub body: Value,
    /// `authorization` or `api-key` header.
    pub credential: String,
    /// The path asked for.
    pub path: String,
}

#[derive(Clone, Default)]
struct Shared {
    key: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    hung_up: Arc<Mutex<bool>>,
    entra_tokens: Arc<Mutex<Vec<String>>>,
    /// Lifetime the fake Entra ID states for its tokens (`None`: 3599 s, as Entra does).
    entra_expires_in: Arc<Mutex<Option<u64>>>,
    flaky_calls: Arc<Mutex<u32>>,
    /// Whether the model `ailing` answers (it fails with 500 until healed).
    healed: Arc<std::sync::atomic::AtomicBool>,
}

/// The only client id the fake Entra ID knows.
pub const ENTRA_CLIENT_ID: &str = "6f1c3a52-codexcontinue-test";

/// A running fake provider.
pub struct LlmUpstream {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl LlmUpstream {
    /// Starts on a free port, accepting `key` as the only credential.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start(key: &str) -> Self {
        let shared = Shared {
            key: key.to_owned(),
            ..Shared::default()
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/v1/embeddings", post(embeddings))
            .route(
                "/openai/deployments/{deployment}/chat/completions",
                post(azure),
            )
            .route("/api/chat", post(ollama))
            .route("/{tenant}/oauth2/v2.0/token", post(entra_token))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake provider");
        let addr = listener.local_addr().expect("address");
        // Small events must leave at once, as a real provider's do (no Nagle delay).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// Base URL of its OpenAI-style API (`…/v1`).
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Base URL for Azure OpenAI and Ollama settings.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// Tokens the fake Entra ID issued so far.
    pub fn entra_tokens_issued(&self) -> usize {
        self.shared.entra_tokens.lock().expect("lock").len()
    }

    /// Makes the fake Entra ID state `seconds` as its tokens' lifetime.
    pub fn set_entra_expires_in(&self, seconds: u64) {
        *self.shared.entra_expires_in.lock().expect("lock") = Some(seconds);
    }

    /// Makes the model `ailing`, which fails with 500 until now, answer like `echo-1`.
    pub fn heal(&self) {
        self.shared
            .healed
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether a client hung up in the middle of a streamed reply.
    pub fn saw_hang_up(&self) -> bool {
        *self.shared.hung_up.lock().expect("lock")
    }
}

impl Drop for LlmUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    let body =
        json!({ "error": { "message": message, "type": kind, "param": null, "code": code } });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn openai(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let expected = format!("Bearer {}", shared.key);
    answer(
        shared.clone(),
        credential == expected,
        credential,
        "/v1/chat/completions",
        body,
    )
    .await
}

async fn azure(
    State(shared): State<Shared>,
    Path(deployment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let api_key = headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let path = format!("/openai/deployments/{deployment}/chat/completions");
    let mut body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    body["model"] = Value::from(deployment);
    let (ok, credential) = match bearer {
        Some(token) => (
            shared.entra_tokens.lock().expect("lock").contains(&token),
            format!("Bearer {token}"),
        ),
        None => (api_key == shared.key, api_key),
    };
    answer(shared, ok, credential, &path, Bytes::from(body.to_string())).await
}

/// Entra ID's token endpoint, client credentials grant.
async fn entra_token(State(shared): State<Shared>, body: Bytes) -> Response {
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    let refuse = |status: StatusCode, error: &str, description: &str| {
        let body = json!({
            "error": error,
            "error_description": format!("{description}\r\nTrace ID: 0f9c\r\nCorrelation ID: 77aa\r\nTimestamp: 2026-11-24 05:00:00Z"),
            "error_codes": [7_000_215], "timestamp": "2026-11-24 05:00:00Z",
            "trace_id": "0f9c", "correlation_id": "77aa",
        });
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    };
    if field("grant_type") != "client_credentials"
        || field("scope") != "https://cognitiveservices.azure.com/.default"
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
        );
    }
    if field("client_id") != ENTRA_CLIENT_ID || field("client_secret") != shared.key {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    let mut issued = shared.entra_tokens.lock().expect("lock");
    let token = format!("eyJ0eXAiOiJKV1Qi.entra-{}", issued.len() + 1);
    issued.push(token.clone());
    let expires_in = shared
        .entra_expires_in
        .lock()
        .expect("lock")
        .unwrap_or(3599);
    let body = json!({ "token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": 3599, "access_token": token });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn answer(
    shared: Shared,
    authorized: bool,
    credential: String,
    path: &str,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            "invalid_json",
        );
    };
    shared.requests.lock().expect("lock").push(Recorded {
        body: body.clone(),
        credential,
        path: path.to_owned(),
    });
    if !authorized {
        return error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided.",
            "invalid_request_error",
            "invalid_api_key",
        );
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if model == "stall" {
        // Thinks for a long time before a word.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    match model.as_str() {
        "rate-limited" => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached for requests.",
                "requests",
                "rate_limit_exceeded",
            );
            response
                .headers_mut()
                .insert("retry-after", "7".parse().expect("header"));
            return response;
        }
        "flaky" => {
            let mut calls = shared.flaky_calls.lock().expect("lock");
            *calls += 1;
            if *calls % 2 == 1 {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The engine is currently overloaded, please try again later.",
                    "server_error",
                    "overloaded",
                );
            }
        }
        "flood" => {
            // One streamed event that never ends: 8 MiB without a blank line.
            let chunks =
                (0..128).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; 64 << 10])));
            let head = std::iter::once(Ok(Bytes::from_static(b"data: ")));
            return (
                [(header::CONTENT_TYPE, "text/event-stream")],
                Body::from_stream(tokio_stream::iter(head.chain(chunks))),
            )
                .into_response();
        }
        "huge-error" => {
            // A refusal whose body is 8 MiB.
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json")],
                format!("{{\"error\":{{\"message\":\"{}\"}}}}", "x".repeat(8 << 20)),
            )
                .into_response();
        }
        "ailing" if !shared.healed.load(std::sync::atomic::Ordering::SeqCst) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server had an error while processing your request.",
                "server_error",
                "server_error",
            );
        }
        "broken" => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server had an error while processing your request.",
                "server_error",
                "server_error",
            );
        }
        _ => {}
    }
    let last_user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    let mut words: Vec<String> = std::iter::once("Echo:".to_owned())
        .chain(last_user.split(' ').map(|w| format!(" {w}")))
        .collect();
    if model == "slow" {
        words = (0..500).map(|i| format!(" word{i}")).collect();
    }
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or(Value::Null);
    if last["role"] == "tool" {
        // The answer after a tool call: what the tool said.
        let said = last["content"].as_str().unwrap_or_default();
        words = vec!["Tool".to_owned(), " said:".to_owned(), format!(" {said}")];
    }
    // With tools offered and the user speaking last (model `looping`: always), the model
    // calls a tool with the user's message as argument `q` (and `text`, when the tool's
    // schema has it): the one the message names as `tool:<name>`, else the first. Model
    // `escaping` adds an address of its own to `q`, its `@` written as the JSON escape
    // `\u0040`, as a model may.
    let tool_call = (last["role"] == "user" || model == "looping")
        .then(|| chosen_tool(&body, &last_user))
        .flatten()
        .map(|name| {
            let takes_text = body["tools"].as_array().is_some_and(|tools| {
                tools.iter().any(|t| {
                    t["function"]["name"] == name
                        && !t["function"]["parameters"]["properties"]["text"].is_null()
                })
            });
            let mut arguments = json!({ "q": last_user });
            if takes_text {
                arguments["text"] = json!(last_user);
            }
            if model == "escaping" {
                arguments["q"] = json!(format!("{last_user} cc {ESCAPED_ADDRESS}"));
                let written = arguments.to_string().replace('@', "\\u0040");
                return (name.to_owned(), written);
            }
            (name.to_owned(), arguments.to_string())
        });
    if body["response_format"]["type"] == "json_schema" {
        // Structured output: the user's message as the one fact, in the asked shape.
        let fact = json!({ "facts": [{ "content": last_user, "confidence": 0.9 }] });
        words = vec![fact.to_string()];
    }
    let prompt_tokens = body["messages"].as_array().map_or(0, |m| {
        m.iter()
            .map(|m| {
                m["content"]
                    .as_str()
                    .unwrap_or_default()
                    .split_whitespace()
                    .count()
            })
            .sum::<usize>()
    });
    let usage = json!({ "prompt_tokens": prompt_tokens, "completion_tokens": words.len(), "total_tokens": prompt_tokens + words.len() });
    if body["stream"] != true {
        let reply = json!({
            "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": words.concat() }, "finish_reason": "stop" }],
            "usage": usage,
        });
        return (
            [(header::CONTENT_TYPE, "application/json")],
            reply.to_string(),
        )
            .into_response();
    }
    let include_usage = body["stream_options"]["include_usage"] == true;
    let (events, stream) = mpsc::channel::<Result<Bytes, Infallible>>(4);
    let delay = if model == "slow" {
        Duration::from_millis(20)
    } else {
        Duration::ZERO
    };
    tokio::spawn(async move {
        let chunk = |delta: Value, finish: Value| {
            json!({ "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                    "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
        };
        let mut lines = vec![chunk(
            json!({ "role": "assistant", "content": "" }),
            Value::Null,
        )];
        match &tool_call {
            Some((name, arguments)) => {
                let (first, rest) = arguments.split_at(arguments.len() / 2);
                let piece = |call: Value| chunk(json!({ "tool_calls": [call] }), Value::Null);
                lines.push(piece(
                    json!({ "index": 0, "id": "call_test_1", "type": "function",
                                         "function": { "name": name, "arguments": "" } }),
                ));
                lines.push(piece(
                    json!({ "index": 0, "function": { "arguments": first } }),
                ));
                lines.push(piece(
                    json!({ "index": 0, "function": { "arguments": rest } }),
                ));
                lines.push(chunk(json!({}), json!("tool_calls")));
            }
            None => {
                lines.extend(
                    words
                        .iter()
                        .map(|w| chunk(json!({ "content": w }), Value::Null)),
                );
                lines.push(chunk(json!({}), json!("stop")));
            }
        }
        if include_usage {
            lines.push(json!({ "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": [], "usage": usage }));
        }
        for line in lines {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if events
                .send(Ok(Bytes::from(format!("data: {line}\n\n"))))
                .await
                .is_err()
            {
                *shared.hung_up.lock().expect("lock") = true;
                return;
            }
        }
        let _ = events
            .send(Ok(Bytes::from_static(b"data: [DONE]\n\n")))
            .await;
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(ReceiverStream::new(stream)),
    )
        .into_response()
}

/// OpenAI's `/v1/embeddings`: for each input, `[characters, words, 1.0]`.
async fn embeddings(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    shared.requests.lock().expect("lock").push(Recorded {
        body: body.clone(),
        credential: credential.clone(),
        path: "/v1/embeddings".to_owned(),
    });
    if credential != format!("Bearer {}", shared.key) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided.",
            "invalid_request_error",
            "invalid_api_key",
        );
    }
    let texts: Vec<&str> = body["input"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let words: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = [
                text.chars().count() as f64,
                text.split_whitespace().count() as f64,
                1.0,
            ];
            json!({ "object": "embedding", "index": index, "embedding": vector })
        })
        .collect();
    let answer = json!({
        "object": "list", "data": data, "model": body["model"],
        "usage": { "prompt_tokens": words, "total_tokens": words },
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}

/// The tool the model calls among those `body` offers: the one `last_user` names as
/// `tool:<name>`, else the first.
fn chosen_tool<'b>(body: &'b Value, last_user: &str) -> Option<&'b str> {
    let offered: Vec<&str> = body["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["function"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    last_user
        .split_whitespace()
        .find_map(|word| word.strip_prefix("tool:"))
        .and_then(|named| offered.iter().find(|name| **name == named).copied())
        .or_else(|| offered.first().copied())
}

/// Ollama's `/api/chat`: the echo reply as JSON lines (or a tool call, when tools are
/// offered); model `missing` is not pulled.
async fn ollama(State(shared): State<Shared>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.requests.lock().expect("lock").push(Recorded {
        body: body.clone(),
        credential: String::new(),
        path: "/api/chat".to_owned(),
    });
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if model == "missing" {
        let error =
            json!({ "error": format!("model \"{model}\" not found, try pulling it first") });
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            error.to_string(),
        )
            .into_response();
    }
    let last_user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let mut words: Vec<String> = std::iter::once("Echo:".to_owned())
        .chain(last_user.split(' ').map(|w| format!(" {w}")))
        .collect();
    if last["role"] == "tool" {
        // The answer after a tool call: which tool, and what it said.
        let tool = last["tool_name"].as_str().unwrap_or("?");
        let said = last["content"].as_str().unwrap_or_default();
        words = vec![format!("Tool {tool} said: {said}")];
    }
    let mut lines: Vec<Value> = Vec::new();
    // With tools offered and the user speaking last, the model calls the one the message
    // names as `tool:<name>` (else the first) with the message as `q`: the whole call in
    // one line, its arguments an object, without an id (as Ollama writes them).
    if last["role"] == "user"
        && let Some(name) = chosen_tool(&body, &last_user)
    {
        words.clear();
        lines.push(json!({
            "model": model, "created_at": "2026-01-01T00:00:00Z",
            "message": { "role": "assistant", "content": "", "tool_calls": [
                { "function": { "name": name, "arguments": { "q": last_user } } }
            ] },
            "done": false,
        }));
    }
    lines.extend(words.iter().map(|w| json!({ "model": model, "created_at": "2026-01-01T00:00:00Z", "message": { "role": "assistant", "content": w }, "done": false })));
    lines.push(json!({
        "model": model, "created_at": "2026-01-01T00:00:00Z",
        "message": { "role": "assistant", "content": "" },
        "done": true, "done_reason": "stop",
        "total_duration": 1000, "prompt_eval_count": 11, "eval_count": words.len(),
    }));
    let ndjson: String = lines.iter().map(|l| format!("{l}\n")).collect();
    ([(header::CONTENT_TYPE, "application/x-ndjson")], ndjson).into_response()
}
