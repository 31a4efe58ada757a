//! Ollama's native chat API: `POST {base}/api/chat` with `stream: true`, answered as
//! newline-delimited JSON objects (`message.content` pieces, then one with `done: true`,
//! `done_reason` and the token counts `prompt_eval_count` / `eval_count`).
//!
//! Tools go in its own format: definitions as OpenAI's (`tools`), but a call comes whole
//! in one line's `message.tool_calls` with its arguments as a JSON object (and no id in
//! older servers: the reply's calls are then numbered), and a tool's answer goes back as a
//! `tool` message naming the tool (`tool_name`), not the call. Ollama has no
//! `tool_choice`: only `auto` (or none) is accepted.

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};

use super::{
    ChatMessage, ChatProvider, ChatRequest, Delta, DeltaStream, FinishReason, LlmError,
    ToolCallPiece, Usage, body_limits,
};

/// Deltas buffered ahead of a slow reader.
const BUFFER: usize = 64;
/// Longest line accepted from the server.
const MAX_LINE: usize = body_limits::MAX_EVENT_BYTES;

/// An Ollama server.
pub struct OllamaChat {
    http: reqwest::Client,
    base: String,
}

impl OllamaChat {
    /// The server at `base` (e.g. `http://127.0.0.1:11434`).
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl ChatProvider for OllamaChat {
    async fn stream(&self, request: &ChatRequest) -> Result<DeltaStream, LlmError> {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| message_of(m, &request.messages))
            .collect();
        let mut options = json!({});
        for (name, value) in [
            ("temperature", request.temperature.map(Value::from)),
            ("top_p", request.top_p.map(Value::from)),
            ("num_predict", request.max_tokens.map(Value::from)),
            (
                "stop",
                (!request.stop.is_empty()).then(|| Value::from(request.stop.clone())),
            ),
        ] {
            if let Some(value) = value {
                options[name] = value;
            }
        }
        let mut body = json!({
            "model": request.model,
            "messages": messages,
            "stream": true,
            "options": options,
        });
        if let Some(answer) = &request.answer_schema {
            body["format"] = answer.schema.clone();
        }
        if let Some(tools) = &request.tools {
            if tools.choice.as_ref().is_some_and(|choice| choice != "auto") {
                return Err(LlmError::Rejected(
                    "tool_choice: Ollama lets the model choose; leave it unset or \"auto\""
                        .to_owned(),
                ));
            }
            body["tools"] = Value::from(tools.definitions.clone());
        }
        let response = self
            .http
            .post(format!("{}/api/chat", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|err| LlmError::Unreachable(err.without_url().to_string()))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body: Value = body_limits::json(response, body_limits::MAX_SMALL_BODY_BYTES)
                .await
                .unwrap_or(Value::Null);
            let message: String = body["error"]
                .as_str()
                .unwrap_or("no details")
                .chars()
                .take(500)
                .collect();
            return Err(match status {
                400 | 404 => LlmError::Rejected(message),
                429 => LlmError::RateLimited { retry_after: None },
                _ => LlmError::Upstream { status, message },
            });
        }
        let (deltas, stream) = mpsc::channel(BUFFER);
        tokio::spawn(read_lines(response, deltas));
        Ok(Box::pin(ReceiverStream::new(stream)))
    }
}

/// `message` in Ollama's terms: an assistant's calls with their arguments as objects, a
/// tool's answer naming the tool of the call it answers (found among `all`).
fn message_of(message: &ChatMessage, all: &[ChatMessage]) -> Value {
    let mut out = json!({ "role": message.role, "content": message.content });
    if !message.tool_calls.is_empty() {
        out["tool_calls"] = message
            .tool_calls
            .iter()
            .map(|call| {
                let arguments: Value =
                    serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
                json!({ "function": { "name": call.name, "arguments": arguments } })
            })
            .collect();
    }
    if let Some(id) = &message.tool_call_id
        && let Some(call) = all
            .iter()
            .flat_map(|m| &m.tool_calls)
            .find(|call| &call.id == id)
    {
        out["tool_name"] = Value::from(call.name.clone());
    }
    out
}

/// The reply's tool calls in `message`, as pieces numbered on from `calls` (those seen so
/// far); each call comes whole.
fn tool_calls_of(message: &Value, calls: &mut u32) -> Vec<ToolCallPiece> {
    let Some(listed) = message["tool_calls"].as_array() else {
        return Vec::new();
    };
    listed
        .iter()
        .map(|call| {
            let function = &call["function"];
            let index = *calls;
            *calls += 1;
            let arguments = match &function["arguments"] {
                Value::String(text) => text.clone(),
                Value::Null => "{}".to_owned(),
                object => object.to_string(),
            };
            ToolCallPiece {
                index,
                id: Some(
                    call["id"]
                        .as_str()
                        .map_or_else(|| format!("call_{index}"), str::to_owned),
                ),
                name: Some(function["name"].as_str().unwrap_or_default().to_owned()),
                arguments,
            }
        })
        .collect()
}

/// Reads the reply's lines until `done`, the end of the body or the reader going away.
async fn read_lines(response: reqwest::Response, deltas: mpsc::Sender<Result<Delta, LlmError>>) {
    let mut body = response.bytes_stream();
    let mut line = Vec::new();
    let mut calls = 0;
    loop {
        let Some(chunk) = body.next().await else {
            let _ = deltas
                .send(Err(LlmError::Protocol(
                    "the reply ended before `done`".into(),
                )))
                .await;
            return;
        };
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => {
                let _ = deltas
                    .send(Err(LlmError::Unreachable(err.to_string())))
                    .await;
                return;
            }
        };
        for byte in chunk {
            if byte != b'\n' {
                line.push(byte);
                if line.len() > MAX_LINE {
                    let _ = deltas
                        .send(Err(LlmError::Protocol("line too long".into())))
                        .await;
                    return;
                }
                continue;
            }
            let object: Value = match serde_json::from_slice(&line) {
                Ok(object) => object,
                Err(_) if line.iter().all(u8::is_ascii_whitespace) => {
                    line.clear();
                    continue;
                }
                Err(err) => {
                    let _ = deltas.send(Err(LlmError::Protocol(err.to_string()))).await;
                    return;
                }
            };
            line.clear();
            if let Some(error) = object["error"].as_str() {
                let message = error.to_owned();
                let _ = deltas
                    .send(Err(LlmError::Upstream {
                        status: 200,
                        message,
                    }))
                    .await;
                return;
            }
            if let Some(text) = object["message"]["content"].as_str()
                && !text.is_empty()
                && deltas.send(Ok(Delta::Text(text.to_owned()))).await.is_err()
            {
                return;
            }
            for piece in tool_calls_of(&object["message"], &mut calls) {
                if deltas.send(Ok(Delta::ToolCall(piece))).await.is_err() {
                    return;
                }
            }
            if object["done"] == true {
                let finish_reason = match object["done_reason"].as_str() {
                    Some("length") => FinishReason::Length,
                    _ if calls > 0 => FinishReason::ToolCalls,
                    _ => FinishReason::Stop,
                };
                let usage = Some(Usage {
                    prompt_tokens: object["prompt_eval_count"].as_i64().unwrap_or(0),
                    completion_tokens: object["eval_count"].as_i64().unwrap_or(0),
                });
                let _ = deltas
                    .send(Ok(Delta::Finished {
                        usage,
                        finish_reason,
                    }))
                    .await;
                return;
            }
        }
    }
}
