//! The chat completions API of OpenAI, Azure OpenAI and OpenAI-compatible servers, streamed:
//! `POST …/chat/completions` with `stream: true` and `stream_options.include_usage`, read
//! as server-sent events (`data: {chunk}` … `data: [DONE]`).

use std::time::Duration;

use eventsource_stream::Eventsource;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};

use super::{
    ChatMessage, ChatProvider, ChatRequest, Delta, DeltaStream, Embeddings, FinishReason, LlmError,
    ToolCallPiece, Usage, body_limits, entra::EntraCredential,
};

/// Where OpenAI serves its API when a provider of that kind names no endpoint.
pub(super) const OPENAI_ENDPOINT: &str = "https://api.openai.com/v1";
/// Deltas buffered ahead of a slow reader.
const BUFFER: usize = 64;

/// Where and how requests go.
enum Flavor {
    /// `{base}/chat/completions`, `Authorization: Bearer`.
    OpenAi,
    /// `{base}/openai/deployments/{model}/chat/completions?api-version=…`, `api-key`, or a
    /// bearer token from Entra ID.
    Azure {
        /// The `api-version` query parameter.
        api_version: String,
        /// Set when calls authenticate with Entra ID tokens instead of the key.
        entra: Option<Box<EntraCredential>>,
    },
}

/// A chat completions endpoint.
pub struct OpenAiChat {
    http: reqwest::Client,
    base: String,
    key: Option<SecretString>,
    flavor: Flavor,
}

impl OpenAiChat {
    /// OpenAI or an OpenAI-compatible server at `base` (e.g. `http://vllm:8000/v1`).
    pub fn openai(http: reqwest::Client, base: &str, key: Option<SecretString>) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
            flavor: Flavor::OpenAi,
        }
    }

    /// An Azure OpenAI resource at `base`; the request's model names the deployment. Calls
    /// send `key` as `api-key`, or, with `entra`, a token from Entra ID.
    pub fn azure(
        http: reqwest::Client,
        base: &str,
        api_version: &str,
        key: Option<SecretString>,
        entra: Option<EntraCredential>,
    ) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
            flavor: Flavor::Azure {
                api_version: api_version.to_owned(),
                entra: entra.map(Box::new),
            },
        }
    }

    /// The request for `request`, authenticated with `bearer` when given (an Entra ID
    /// token), else with the key.
    fn request(
        &self,
        request: &ChatRequest,
        bearer: Option<SecretString>,
    ) -> reqwest::RequestBuilder {
        let messages: Vec<Value> = request.messages.iter().map(message).collect();
        let mut body = json!({
            "messages": messages,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        for (name, value) in [
            ("temperature", request.temperature.map(Value::from)),
            ("top_p", request.top_p.map(Value::from)),
            ("max_tokens", request.max_tokens.map(Value::from)),
            (
                "stop",
                (!request.stop.is_empty()).then(|| Value::from(request.stop.clone())),
            ),
        ] {
            if let Some(value) = value {
                body[name] = value;
            }
        }
        if let Some(tools) = &request.tools {
            body["tools"] = Value::from(tools.definitions.clone());
            if let Some(choice) = &tools.choice {
                body["tool_choice"] = choice.clone();
            }
        }
        if let Some(answer) = &request.answer_schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": { "name": answer.name, "strict": true, "schema": answer.schema },
            });
        }
        let builder = match &self.flavor {
            Flavor::OpenAi => {
                body["model"] = Value::from(request.model.clone());
                self.http.post(format!("{}/chat/completions", self.base))
            }
            Flavor::Azure { api_version, .. } => self
                .http
                .post(format!(
                    "{}/openai/deployments/{}/chat/completions",
                    self.base,
                    deployment(&request.model)
                ))
                .query(&[("api-version", api_version)]),
        };
        self.authorized(builder, bearer).json(&body)
    }

    /// `builder` with the credential: an Entra ID token as `bearer` when given, else the
    /// key (`Authorization: Bearer` for OpenAI, `api-key` for Azure).
    fn authorized(
        &self,
        builder: reqwest::RequestBuilder,
        bearer: Option<SecretString>,
    ) -> reqwest::RequestBuilder {
        match (&self.flavor, bearer, &self.key) {
            (_, Some(token), _) => builder.bearer_auth(token.expose_secret()),
            (Flavor::OpenAi, None, Some(key)) => builder.bearer_auth(key.expose_secret()),
            (Flavor::Azure { .. }, None, Some(key)) => {
                builder.header("api-key", key.expose_secret())
            }
            (_, None, None) => builder,
        }
    }

    /// An Entra ID token, for Azure resources that authenticate with one.
    async fn bearer(&self) -> Result<Option<SecretString>, LlmError> {
        Ok(match &self.flavor {
            Flavor::Azure {
                entra: Some(entra), ..
            } => Some(entra.token().await?),
            _ => None,
        })
    }
}

/// An Azure deployment name as one path segment: every byte but ASCII letters, digits,
/// `-`, `_` and `.` percent-encoded, and dots alone (`.`, `..`) too, so that a model name
/// can never reach another path of the provider's host with its key.
fn deployment(name: &str) -> String {
    let dots_only = name.bytes().all(|b| b == b'.');
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            b'.' if !dots_only => ".".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The vectors of an embeddings answer, by `index`.
fn vectors_of(answer: &Value, expected: usize) -> Result<Vec<Vec<f32>>, LlmError> {
    let mut data: Vec<&Value> = answer["data"]
        .as_array()
        .map(|d| d.iter().collect())
        .unwrap_or_default();
    data.sort_by_key(|item| item["index"].as_u64().unwrap_or(0));
    let vectors: Vec<Vec<f32>> = data
        .iter()
        .map(|item| {
            item["embedding"]
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .filter_map(Value::as_f64)
                        .map(|v| v as f32)
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    if vectors.len() != expected || vectors.iter().any(Vec::is_empty) {
        return Err(LlmError::Protocol(format!(
            "expected {expected} embeddings, got {}",
            vectors.len()
        )));
    }
    Ok(vectors)
}

/// One message in the chat completions format: an assistant's tool calls and the call a
/// tool message answers included.
fn message(m: &ChatMessage) -> Value {
    let mut message = json!({ "role": m.role, "content": m.content });
    if !m.tool_calls.is_empty() {
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(|call| {
                json!({
                    "id": call.id,
                    "type": "function",
                    "function": { "name": call.name, "arguments": call.arguments },
                })
            })
            .collect();
        message["tool_calls"] = Value::from(calls);
        if m.content.is_empty() {
            message["content"] = Value::Null;
        }
    }
    if let Some(id) = &m.tool_call_id {
        message["tool_call_id"] = Value::from(id.clone());
    }
    message
}

/// The tool call pieces of a streamed chunk's delta.
fn tool_call_pieces(delta: &Value) -> Vec<ToolCallPiece> {
    delta["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(position, call)| ToolCallPiece {
                    index: call["index"]
                        .as_u64()
                        .and_then(|i| u32::try_from(i).ok())
                        .unwrap_or(u32::try_from(position).unwrap_or(0)),
                    id: call["id"].as_str().map(str::to_owned),
                    name: call["function"]["name"].as_str().map(str::to_owned),
                    arguments: call["function"]["arguments"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl ChatProvider for OpenAiChat {
    async fn embed(&self, model: &str, texts: &[String]) -> Result<Embeddings, LlmError> {
        let bearer = self.bearer().await?;
        let mut body = json!({ "input": texts, "encoding_format": "float" });
        let builder = match &self.flavor {
            Flavor::OpenAi => {
                body["model"] = Value::from(model);
                self.http.post(format!("{}/embeddings", self.base))
            }
            Flavor::Azure { api_version, .. } => self
                .http
                .post(format!(
                    "{}/openai/deployments/{}/embeddings",
                    self.base,
                    deployment(model)
                ))
                .query(&[("api-version", api_version)]),
        };
        let response = self
            .authorized(builder, bearer)
            .json(&body)
            .send()
            .await
            .map_err(|err| LlmError::Unreachable(err.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        let answer: Value = body_limits::json(response, body_limits::MAX_BODY_BYTES).await?;
        Ok(Embeddings {
            vectors: vectors_of(&answer, texts.len())?,
            prompt_tokens: answer["usage"]["prompt_tokens"].as_i64().unwrap_or(0),
        })
    }

    async fn stream(&self, request: &ChatRequest) -> Result<DeltaStream, LlmError> {
        let bearer = self.bearer().await?;
        let response = self
            .request(request, bearer)
            .send()
            .await
            .map_err(|err| LlmError::Unreachable(err.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        let (deltas, stream) = mpsc::channel(BUFFER);
        tokio::spawn(read_events(response, deltas));
        Ok(Box::pin(ReceiverStream::new(stream)))
    }
}

/// Reads the events of a reply until `[DONE]`, the end of the body, or the reader going
/// away (which drops the response and so the upstream request).
async fn read_events(response: reqwest::Response, deltas: mpsc::Sender<Result<Delta, LlmError>>) {
    let mut events = body_limits::bounded_stream(response).eventsource();
    let mut usage = None;
    let mut finish_reason = None;
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                let _ = deltas.send(Err(LlmError::Protocol(err.to_string()))).await;
                return;
            }
        };
        if event.data.trim() == "[DONE]" {
            break;
        }
        let chunk: Value = match serde_json::from_str(&event.data) {
            Ok(chunk) => chunk,
            Err(err) => {
                let _ = deltas.send(Err(LlmError::Protocol(err.to_string()))).await;
                return;
            }
        };
        if let Some(error) = chunk.get("error") {
            let message = error["message"]
                .as_str()
                .unwrap_or("error in stream")
                .to_owned();
            let _ = deltas
                .send(Err(LlmError::Upstream {
                    status: 200,
                    message,
                }))
                .await;
            return;
        }
        if let Some(counts) = chunk.get("usage").filter(|u| u.is_object()) {
            usage = Some(Usage {
                prompt_tokens: counts["prompt_tokens"].as_i64().unwrap_or(0),
                completion_tokens: counts["completion_tokens"].as_i64().unwrap_or(0),
            });
        }
        let choice = &chunk["choices"][0];
        if let Some(reason) = choice["finish_reason"].as_str() {
            finish_reason = Some(match reason {
                "length" => FinishReason::Length,
                "content_filter" => FinishReason::ContentFilter,
                "tool_calls" | "function_call" => FinishReason::ToolCalls,
                _ => FinishReason::Stop,
            });
        }
        if let Some(text) = choice["delta"]["content"].as_str()
            && !text.is_empty()
            && deltas.send(Ok(Delta::Text(text.to_owned()))).await.is_err()
        {
            return;
        }
        for piece in tool_call_pieces(&choice["delta"]) {
            if deltas.send(Ok(Delta::ToolCall(piece))).await.is_err() {
                return;
            }
        }
    }
    let _ = deltas
        .send(Ok(Delta::Finished {
            usage,
            finish_reason: finish_reason.unwrap_or(FinishReason::Stop),
        }))
        .await;
}

/// The error of a non-success answer, from its status, `retry-after` and OpenAI error body.
async fn refusal(response: reqwest::Response) -> LlmError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body: Value = body_limits::json(response, body_limits::MAX_SMALL_BODY_BYTES)
        .await
        .unwrap_or(Value::Null);
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or("no details")
        .chars()
        .take(500)
        .collect::<String>();
    match status {
        401 | 403 => LlmError::Unauthorized(message),
        429 => LlmError::RateLimited { retry_after },
        400 | 404 | 413 | 422 => LlmError::Rejected(message),
        _ => LlmError::Upstream { status, message },
    }
}

#[cfg(test)]
mod tests {
    use super::deployment;

    #[test]
    fn a_deployment_name_stays_one_path_segment() {
        assert_eq!(deployment("gpt-4o_mini.v2"), "gpt-4o_mini.v2");
        assert_eq!(deployment("../x"), "..%2Fx");
        assert_eq!(deployment(".."), "%2E%2E");
        assert_eq!(deployment("a b?c#"), "a%20b%3Fc%23");
    }
}
