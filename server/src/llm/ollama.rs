//! Ollama's native chat API: `POST {base}/api/chat` with `stream: true`, answered as
//! newline-delimited JSON objects (`message.content` pieces, then one with `done: true`,
//! `done_reason` and the token counts `prompt_eval_count` / `eval_count`).

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};

use super::{
    ChatProvider, ChatRequest, Delta, DeltaStream, FinishReason, LlmError, Usage, body_limits,
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
        if request.tools.is_some() {
            return Err(LlmError::Rejected(
                "tools are passed to OpenAI-compatible providers only".to_owned(),
            ));
        }
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| json!({ "role": m.role, "content": m.content }))
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

/// Reads the reply's lines until `done`, the end of the body or the reader going away.
async fn read_lines(response: reqwest::Response, deltas: mpsc::Sender<Result<Delta, LlmError>>) {
    let mut body = response.bytes_stream();
    let mut line = Vec::new();
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
            if object["done"] == true {
                let finish_reason = match object["done_reason"].as_str() {
                    Some("length") => FinishReason::Length,
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
