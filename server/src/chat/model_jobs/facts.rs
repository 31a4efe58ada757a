//! Fact extraction: what a model (`memory.extract_model`) is asked about a user's message,
//! and how its answer is read. The model answers, as JSON following a strict schema, the
//! lasting facts and preferences the message states about the user ("prefers Rust",
//! "works on the billing service"), each with a confidence; `chat::model_jobs::memory_writer` keeps
//! them as episodic memories.

use serde_json::{Value, json};

use crate::{llm::AnswerSchema, memory::long_term::MAX_CONTENT_CHARS};

/// What the model is asked.
pub const INSTRUCTIONS: &str = "Read the user's message below. List the lasting facts and \
    preferences it states about the user (who they are, what they work on, what they like or \
    avoid, plans and commitments), each as one short sentence in the third person, with how \
    sure you are (0 to 1). Leave out questions, one-off requests and anything about other \
    people only. Answer with JSON only; an empty list when there is nothing to keep.";
/// Most facts kept from one message.
const MAX_FACTS: usize = 8;
/// Most tokens the answer may take.
pub const ANSWER_TOKENS: i32 = 400;

/// The schema the answer must follow: `{"facts": [{"content", "confidence"}]}`.
pub fn answer_schema() -> AnswerSchema {
    AnswerSchema {
        name: "user_facts",
        schema: json!({
            "type": "object",
            "properties": {
                "facts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "content": { "type": "string" },
                            "confidence": { "type": "number" },
                        },
                        "required": ["content", "confidence"],
                        "additionalProperties": false,
                    },
                },
            },
            "required": ["facts"],
            "additionalProperties": false,
        }),
    }
}

/// The facts in a model's answer: at most [`MAX_FACTS`], each a non-empty text of at most
/// [`MAX_CONTENT_CHARS`] characters with a confidence within 0..1. An answer that is not
/// the asked JSON (a model that ignores the schema) gives none.
pub fn parse(answer: &str) -> Vec<(String, f32)> {
    let text = answer.trim();
    let text = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.strip_suffix("```"))
        .unwrap_or(text);
    let Ok(parsed) = serde_json::from_str::<Value>(text.trim()) else {
        return Vec::new();
    };
    parsed["facts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|fact| {
            let content = fact["content"].as_str()?.trim();
            let chars = content.chars().count();
            (chars > 0 && chars <= MAX_CONTENT_CHARS).then(|| {
                let confidence = fact["confidence"].as_f64().unwrap_or(0.5).clamp(0.0, 1.0);
                (content.to_owned(), confidence as f32)
            })
        })
        .take(MAX_FACTS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_the_schema_says_and_bounded() {
        let answer = r#"```json
            {"facts": [
                {"content": " Prefers Rust over Go ", "confidence": 0.9},
                {"content": "", "confidence": 1},
                {"content": "Works on billing", "confidence": 7},
                {"confidence": 0.5}
            ]}
        ```"#;
        assert_eq!(
            parse(answer),
            vec![
                ("Prefers Rust over Go".to_owned(), 0.9),
                ("Works on billing".to_owned(), 1.0)
            ]
        );
        assert!(parse("Sure! The user likes Rust.").is_empty());
        assert!(parse(r#"{"facts": []}"#).is_empty());
        let many: Vec<Value> = (0..20)
            .map(|i| json!({"content": format!("fact {i}"), "confidence": 0.5}))
            .collect();
        assert_eq!(
            parse(&json!({ "facts": many }).to_string()).len(),
            MAX_FACTS
        );
    }
}
