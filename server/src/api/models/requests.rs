//! ModelService request checks: the texts, tensors and generation settings a call may
//! ask for, with the field named when one is wrong.

use crate::{
    edge::ApiError,
    inference::{
        generation::{ChatTurn, Prompt, Sampling},
        predict::{TensorData, Tensors, Values},
    },
    pb::v1 as pb,
};

/// Most texts per Embed call.
const MAX_TEXTS: usize = 256;
/// Most characters of one text.
const MAX_TEXT_CHARS: usize = 100_000;

/// The texts of an Embed or Classify call (or of the REST embeddings' `input`), checked;
/// `field` names them in errors.
pub(in crate::api) fn texts_of(
    field: &'static str,
    texts: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    if texts.is_empty() || texts.len() > MAX_TEXTS {
        return Err(ApiError::invalid(
            field,
            format!("give 1 to {MAX_TEXTS} texts"),
        ));
    }
    if texts.iter().any(|t| t.chars().count() > MAX_TEXT_CHARS) {
        return Err(ApiError::invalid(
            field,
            format!("each text may have at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(texts)
}

/// Most values in the inputs of one Predict call.
const MAX_PREDICT_VALUES: usize = 4 << 20;

/// The named tensors of a Predict call, checked: a shape that holds exactly its values,
/// one kind of values each.
pub(super) fn tensors_of(
    inputs: std::collections::HashMap<String, pb::Tensor>,
) -> Result<Tensors, ApiError> {
    if inputs.is_empty() {
        return Err(ApiError::invalid(
            "inputs",
            "give the model's inputs by name",
        ));
    }
    let mut total = 0usize;
    let mut tensors = Tensors::new();
    for (name, tensor) in inputs {
        let elements = tensor.shape.iter().try_fold(1usize, |n, &d| {
            usize::try_from(d).ok().and_then(|d| n.checked_mul(d))
        });
        let (values, count) = match (tensor.float_values.is_empty(), tensor.int_values.is_empty()) {
            (false, true) => {
                let count = tensor.float_values.len();
                (Values::Float(tensor.float_values), count)
            }
            (true, false) => {
                let count = tensor.int_values.len();
                (Values::Int(tensor.int_values), count)
            }
            _ => {
                return Err(ApiError::invalid(
                    "inputs",
                    format!("{name:?}: set exactly one of float_values and int_values"),
                ));
            }
        };
        if elements != Some(count) {
            return Err(ApiError::invalid(
                "inputs",
                format!(
                    "{name:?}: shape {:?} does not hold {count} values",
                    tensor.shape
                ),
            ));
        }
        total += count;
        if total > MAX_PREDICT_VALUES {
            return Err(ApiError::invalid(
                "inputs",
                format!("at most {MAX_PREDICT_VALUES} values in all"),
            ));
        }
        tensors.insert(
            name,
            TensorData {
                shape: tensor.shape,
                values,
            },
        );
    }
    Ok(tensors)
}

/// Most characters of a prompt or of one chat message.
const MAX_PROMPT_CHARS: usize = 100_000;
/// Most chat messages.
const MAX_MESSAGES: usize = 64;

/// The prompt and sampling of a Generate call, checked.
pub(super) fn generation_of(body: &pb::GenerateRequest) -> Result<(Prompt, Sampling), ApiError> {
    let prompt = match &body.input {
        Some(pb::generate_request::Input::Prompt(text))
            if !text.trim().is_empty() && text.chars().count() <= MAX_PROMPT_CHARS =>
        {
            Prompt::Raw(text.clone())
        }
        Some(pb::generate_request::Input::Prompt(_)) => {
            return Err(ApiError::invalid(
                "prompt",
                format!("must be 1 to {MAX_PROMPT_CHARS} characters"),
            ));
        }
        Some(pb::generate_request::Input::Messages(chat)) => {
            if chat.messages.is_empty() || chat.messages.len() > MAX_MESSAGES {
                return Err(ApiError::invalid(
                    "messages",
                    format!("give 1 to {MAX_MESSAGES} messages"),
                ));
            }
            let mut turns = Vec::with_capacity(chat.messages.len());
            for message in &chat.messages {
                if !matches!(message.role.as_str(), "system" | "user" | "assistant") {
                    return Err(ApiError::invalid(
                        "messages.role",
                        "must be system, user or assistant",
                    ));
                }
                if message.content.chars().count() > MAX_PROMPT_CHARS {
                    return Err(ApiError::invalid(
                        "messages.content",
                        format!("must be at most {MAX_PROMPT_CHARS} characters"),
                    ));
                }
                turns.push(ChatTurn {
                    role: message.role.clone(),
                    content: message.content.clone(),
                });
            }
            Prompt::Chat(turns)
        }
        None => return Err(ApiError::invalid("input", "give a prompt or messages")),
    };
    let temperature = body.temperature.unwrap_or(0.7);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid("temperature", "must be 0 to 2"));
    }
    let top_p = body.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(
            "top_p",
            "must be more than 0 and at most 1",
        ));
    }
    let max_tokens = match body.max_tokens {
        0 => 256,
        n @ 1..=4096 => usize::try_from(n).unwrap_or(256),
        _ => return Err(ApiError::invalid("max_tokens", "must be 1 to 4096")),
    };
    if body.stop.len() > 4
        || body
            .stop
            .iter()
            .any(|s| s.is_empty() || s.chars().count() > 64)
    {
        return Err(ApiError::invalid(
            "stop",
            "at most 4 strings of 1 to 64 characters",
        ));
    }
    Ok((
        prompt,
        Sampling {
            temperature,
            top_p,
            max_tokens,
            stop: body.stop.clone(),
            seed: body.seed,
        },
    ))
}
