//! A `/v1/chat/completions` request, and the checks that turn it into the domain's terms:
//! messages as turns, sampling settings as [`GenerationOptions`], tools as [`Tools`]. Each
//! refusal names the request field, as OpenAI's `param`.

use serde::Deserialize;

use super::RestError;
use crate::{
    chat::{GenerationOptions, MessageRole, Turn},
    llm::{ToolCall, ToolOwner, Tools},
};

/// A chat completion request (the fields this server reads; others are ignored, as
/// OpenAI-compatible servers commonly do).
#[derive(Deserialize)]
pub(super) struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<RequestMessage>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<i64>,
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub n: Option<i64>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub tools: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub tool_choice: Option<serde_json::Value>,
}

/// `stop`: one sequence or several.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Stop {
    One(String),
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Deserialize, Default)]
pub(super) struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// One message of the request.
#[derive(Deserialize)]
pub(super) struct RequestMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub tool_calls: Option<Vec<RequestToolCall>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

/// A tool call an assistant message of the request made.
#[derive(Deserialize)]
pub(super) struct RequestToolCall {
    pub id: String,
    pub function: RequestFunction,
}

/// The function a tool call names.
#[derive(Deserialize)]
pub(super) struct RequestFunction {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

/// A message's content: text, or an array of parts of which only text is accepted.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One part of a message's content.
#[derive(Deserialize)]
pub(super) struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

/// Longest `max_tokens` accepted.
const MAX_TOKENS: i64 = 1 << 20;
/// Most tools one request may offer the model.
const MAX_TOOLS: usize = 128;
/// Longest tool name (OpenAI's own limit).
const MAX_TOOL_NAME: usize = 64;
/// Longest tool definition, as JSON.
const MAX_TOOL_BYTES: usize = 16 << 10;
/// Longest stop sequence.
const MAX_STOP_CHARS: usize = 256;
/// Longest model name.
const MAX_MODEL_CHARS: usize = 256;

impl ChatCompletionRequest {
    /// The messages as the domain's turns.
    ///
    /// # Errors
    /// A bad request naming `messages[i].role` or `messages[i].content`.
    pub fn turns(&self) -> Result<Vec<Turn>, RestError> {
        if self.messages.is_empty() {
            return Err(RestError::invalid("messages", "must not be empty"));
        }
        self.messages
            .iter()
            .enumerate()
            .map(|(i, message)| {
                let role = match message.role.as_str() {
                    "system" | "developer" => MessageRole::System,
                    "user" => MessageRole::User,
                    "assistant" => MessageRole::Assistant,
                    "tool" => MessageRole::Tool,
                    other => {
                        return Err(RestError::invalid(
                            format!("messages[{i}].role"),
                            format!(
                                "{other:?} is not one of system, developer, user, assistant, tool"
                            ),
                        ));
                    }
                };
                let text = match &message.content {
                    None => String::new(),
                    Some(Content::Text(text)) => text.clone(),
                    Some(Content::Parts(parts)) => {
                        let mut text = String::new();
                        for (j, part) in parts.iter().enumerate() {
                            match (part.kind.as_str(), &part.text) {
                                ("text", Some(piece)) => text.push_str(piece),
                                (kind, _) => {
                                    return Err(RestError::invalid(
                                        format!("messages[{i}].content[{j}]"),
                                        format!(
                                            "parts of type {kind:?} are not accepted; send text"
                                        ),
                                    ));
                                }
                            }
                        }
                        text
                    }
                };
                let tool_calls = message
                    .tool_calls
                    .iter()
                    .flatten()
                    .map(|call| ToolCall {
                        id: call.id.clone(),
                        name: call.function.name.clone(),
                        arguments: call.function.arguments.clone(),
                    })
                    .collect();
                Ok(Turn {
                    role,
                    text,
                    tool_calls,
                    tool_call_id: message.tool_call_id.clone(),
                })
            })
            .collect()
    }

    /// The tools the model may call.
    ///
    /// # Errors
    /// A bad request naming `tools[i]` when one is not a function definition.
    pub fn tools(&self) -> Result<Option<Tools>, RestError> {
        let Some(definitions) = &self.tools else {
            return Ok(None);
        };
        if definitions.len() > MAX_TOOLS {
            return Err(RestError::invalid(
                "tools",
                format!("at most {MAX_TOOLS} tools"),
            ));
        }
        for (i, tool) in definitions.iter().enumerate() {
            if tool["type"] != "function" || !tool["function"]["name"].is_string() {
                return Err(RestError::invalid(
                    format!("tools[{i}]"),
                    "must be {\"type\": \"function\", \"function\": {\"name\": ...}}",
                ));
            }
            if !tool["function"]["name"]
                .as_str()
                .is_some_and(|name| (1..=MAX_TOOL_NAME).contains(&name.len()))
            {
                return Err(RestError::invalid(
                    format!("tools[{i}].function.name"),
                    format!("must be 1 to {MAX_TOOL_NAME} characters"),
                ));
            }
            if tool.to_string().len() > MAX_TOOL_BYTES {
                return Err(RestError::invalid(
                    format!("tools[{i}]"),
                    format!("a tool's definition is at most {MAX_TOOL_BYTES} bytes of JSON"),
                ));
            }
        }
        Ok((!definitions.is_empty()).then(|| Tools {
            definitions: definitions.clone(),
            choice: self.tool_choice.clone(),
            owner: ToolOwner::Caller,
        }))
    }

    /// The sampling settings.
    ///
    /// # Errors
    /// A bad request naming the field out of range.
    pub fn options(&self) -> Result<GenerationOptions, RestError> {
        if self.model.is_empty() {
            return Err(RestError::invalid("model", "is required"));
        }
        if self.model.chars().count() > MAX_MODEL_CHARS || self.model.chars().any(char::is_control)
        {
            return Err(RestError::invalid(
                "model",
                format!("at most {MAX_MODEL_CHARS} characters, none of them control characters"),
            ));
        }
        if let Some(n) = self.n
            && n != 1
        {
            return Err(RestError::invalid(
                "n",
                "only 1 choice per request is generated",
            ));
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(RestError::invalid("temperature", "must be between 0 and 2"));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(RestError::invalid(
                "top_p",
                "must be greater than 0 and at most 1",
            ));
        }
        let (field, limit) = match (self.max_completion_tokens, self.max_tokens) {
            (Some(limit), _) => ("max_completion_tokens", Some(limit)),
            (None, limit) => ("max_tokens", limit),
        };
        let max_tokens = match limit {
            None => None,
            Some(limit) if (1..=MAX_TOKENS).contains(&limit) => i32::try_from(limit).ok(),
            Some(_) => {
                return Err(RestError::invalid(
                    field,
                    format!("must be between 1 and {MAX_TOKENS}"),
                ));
            }
        };
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(stop)) => vec![stop.clone()],
            Some(Stop::Many(stops)) => stops.clone(),
        };
        if stop.len() > 4
            || stop
                .iter()
                .any(|s| s.is_empty() || s.chars().count() > MAX_STOP_CHARS || s.contains('\0'))
        {
            return Err(RestError::invalid(
                "stop",
                format!("at most 4 sequences of 1 to {MAX_STOP_CHARS} characters"),
            ));
        }
        Ok(GenerationOptions {
            model: self.model.clone(),
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens,
            stop,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> ChatCompletionRequest {
        serde_json::from_value(json).expect("parses")
    }

    fn param_of(err: RestError) -> String {
        use tonic_types::StatusExt;
        err.0
            .get_details_bad_request()
            .expect("bad request")
            .field_violations[0]
            .field
            .clone()
    }

    #[test]
    fn messages_become_turns_and_bad_parts_are_named() {
        let ok = request(serde_json::json!({
            "model": "m",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]},
                {"role": "assistant", "content": null}
            ]
        }));
        let turns = ok.turns().expect("turns");
        assert_eq!(turns[0], Turn::new(MessageRole::System, "Be brief."));
        assert_eq!(turns[1], Turn::new(MessageRole::User, "Hello"));
        assert_eq!(turns[2], Turn::new(MessageRole::Assistant, ""));
        let called = request(serde_json::json!({
            "model": "m",
            "messages": [
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "42"}
            ],
            "tools": [{"type": "function", "function": {"name": "lookup"}}]
        }));
        let turns = called.turns().expect("turns");
        assert_eq!(turns[0].tool_calls[0].name, "lookup");
        assert_eq!(turns[1].tool_call_id.as_deref(), Some("call_1"));
        assert!(called.tools().expect("tools").is_some());
        let bad_tool = request(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web"}]
        }));
        assert_eq!(param_of(bad_tool.tools().unwrap_err()), "tools[0]");
        let tool = serde_json::json!({"type": "function", "function": {"name": "t"}});
        let many = request(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": vec![tool; MAX_TOOLS + 1]
        }));
        assert_eq!(param_of(many.tools().unwrap_err()), "tools");
        let huge = request(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "t", "description": "d".repeat(MAX_TOOL_BYTES)}}]
        }));
        assert_eq!(param_of(huge.tools().unwrap_err()), "tools[0]");

        let image = request(serde_json::json!({
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
        }));
        assert_eq!(
            param_of(image.turns().unwrap_err()),
            "messages[0].content[0]"
        );
        let role = request(
            serde_json::json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
        );
        assert_eq!(param_of(role.turns().unwrap_err()), "messages[0].role");
    }

    #[test]
    fn options_are_checked_field_by_field() {
        let base = |extra: serde_json::Value| {
            let mut json =
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
            json.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            request(json)
        };
        let options =
            base(serde_json::json!({"max_completion_tokens": 5, "max_tokens": 9, "stop": "END"}))
                .options()
                .expect("options");
        assert_eq!(options.max_tokens, Some(5));
        assert_eq!(options.stop, ["END"]);
        for (extra, param) in [
            (serde_json::json!({"n": 2}), "n"),
            (serde_json::json!({"temperature": 3.0}), "temperature"),
            (serde_json::json!({"top_p": 0.0}), "top_p"),
            (serde_json::json!({"max_tokens": 0}), "max_tokens"),
            (
                serde_json::json!({"stop": ["a", "b", "c", "d", "e"]}),
                "stop",
            ),
            (serde_json::json!({"model": ""}), "model"),
            (serde_json::json!({"model": "m\u{0}"}), "model"),
            (serde_json::json!({"stop": ["x".repeat(257)]}), "stop"),
        ] {
            assert_eq!(param_of(base(extra).options().unwrap_err()), param);
        }
    }
}
