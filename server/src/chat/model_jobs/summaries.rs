//! Conversation summaries: what a model (`memory.summary_model`) is asked about a
//! conversation's recent turns, and how its answer is read; `chat::model_jobs::memory_writer` keeps
//! the summary as a `summary` memory of the conversation.

use crate::chat::{Message, MessageRole};
use crate::memory::long_term::MAX_CONTENT_CHARS;

/// What the model is asked.
pub const INSTRUCTIONS: &str = "Summarise the conversation below for the assistant's long-term \
    memory: what the user wanted, what was decided or found, and facts about the user worth \
    remembering. At most five sentences, third person, no preamble.";
/// Most tokens the answer may take.
pub const ANSWER_TOKENS: i32 = 300;
/// Most characters of the conversation sent (its end, when longer).
const TRANSCRIPT_CHARS: usize = 24_000;

/// The conversation as one text ("User: …" / "Assistant: …" lines), its last
/// [`TRANSCRIPT_CHARS`] characters.
pub fn transcript(messages: &[Message]) -> String {
    let text = messages
        .iter()
        .filter(|m| matches!(m.role, MessageRole::User | MessageRole::Assistant))
        .map(|m| {
            let who = if m.role == MessageRole::User {
                "User"
            } else {
                "Assistant"
            };
            format!("{who}: {}", m.content.trim())
        })
        .collect::<Vec<_>>()
        .join("\n");
    let chars = text.chars().count();
    text.chars()
        .skip(chars.saturating_sub(TRANSCRIPT_CHARS))
        .collect()
}

/// The summary in a model's answer: trimmed, at most [`MAX_CONTENT_CHARS`] characters;
/// none when empty.
pub fn cleaned(answer: &str) -> Option<String> {
    let text = answer.trim();
    (!text.is_empty()).then(|| text.chars().take(MAX_CONTENT_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;

    fn message(role: MessageRole, content: &str) -> Message {
        Message {
            id: Uuid::now_v7(),
            conversation_id: Uuid::nil(),
            role,
            content: content.to_owned(),
            model_used: String::new(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_micros: 0,
            finish_reason: String::new(),
            tool_calls: Vec::new(),
            created_at: OffsetDateTime::now_utc(),
        }
    }

    #[test]
    fn the_transcript_names_speakers_and_keeps_the_end() {
        let messages = [
            message(MessageRole::System, "hidden"),
            message(MessageRole::User, " Plan the Q3 migration "),
            message(MessageRole::Assistant, "Move billing first."),
        ];
        assert_eq!(
            transcript(&messages),
            "User: Plan the Q3 migration\nAssistant: Move billing first."
        );
        let long = [message(MessageRole::User, &"x".repeat(30_000))];
        let cut = transcript(&long);
        assert_eq!(cut.chars().count(), TRANSCRIPT_CHARS);
        assert!(cut.ends_with('x'));
        assert_eq!(cleaned("  \n"), None);
        assert_eq!(cleaned(" A summary. ").as_deref(), Some("A summary."));
    }
}
