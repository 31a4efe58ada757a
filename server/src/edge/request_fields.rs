//! The checks every string and list of every request passes, read off the API's own
//! descriptors and applied to the request's wire bytes (nothing is decoded twice).
//!
//! - Text never holds NUL or other control characters; free text (a message, a prompt, a
//!   system prompt, texts to embed, the string values of a `Struct`) may hold tabs and line
//!   breaks. Text is valid UTF-8.
//! - Text is at most [`SHORT_TEXT_CHARS`] characters, free text [`LONG_TEXT_CHARS`];
//!   secrets a little more (provider credentials can be long tokens).
//! - A repeated field holds at most [`MAX_ITEMS`] items; a few lists far fewer (stop
//!   sequences).
//! - Messages nest at most [`MAX_DEPTH`] deep.
//!
//! A failed check names the field the way the request spells it (`options.stop[3]`).

use std::{collections::HashMap, sync::OnceLock};

use prost::Message;
use prost_types::{
    DescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};

use crate::pb;

/// Longest ordinary string: names, ids, URLs, tokens.
pub const SHORT_TEXT_CHARS: usize = 2_048;
/// Longest free text: a chat message, a prompt, a system prompt, a text to embed.
pub const LONG_TEXT_CHARS: usize = 1_048_576;
/// Longest secret handed to the server (a provider credential, a client secret).
pub const SECRET_CHARS: usize = 16_384;
/// Most items of a repeated field.
pub const MAX_ITEMS: usize = 1_000;
/// Deepest nesting of messages (a `Struct` inside a `Struct` ...).
pub const MAX_DEPTH: usize = 32;

/// Fields of free text, by name, wherever they appear.
const FREE_TEXT: &[&str] = &[
    "content",
    "system_prompt",
    "prompt",
    "query",
    "texts",
    "chat_template",
    "default_system",
    "description",
    "string_value",
];
/// Secrets, by name.
const SECRETS: &[&str] = &["client_secret", "credential"];
/// Lists bounded tighter than [`MAX_ITEMS`]: (message, field) → (items, characters each).
const NARROW_LISTS: &[(&str, &str, usize, usize)] = &[
    ("codexcontinue.v1.GenerationOptions", "stop", 16, 256),
    ("codexcontinue.v1.GenerateRequest", "stop", 16, 256),
];

/// Why a request was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, e.g. `options.stop[3]`.
    pub field: String,
    /// What is wrong and what is accepted.
    pub description: String,
}

impl FieldViolation {
    /// Bytes that are not a valid message of the request's type.
    pub fn malformed(reason: impl Into<String>) -> Self {
        Self {
            field: "(request)".to_owned(),
            description: format!("is not a valid protobuf message: {}", reason.into()),
        }
    }

    fn at(field: &str, description: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            description: description.into(),
        }
    }
}

/// What a string field may hold.
#[derive(Debug, Clone, Copy)]
struct TextRule {
    max_chars: usize,
    /// Tabs and line breaks allowed.
    free_text: bool,
}

/// What one field of a message is.
#[derive(Debug, Clone)]
enum FieldKind {
    Text(TextRule),
    Message(String),
    /// Numbers, booleans, enums, bytes: nothing to check here.
    Other,
}

#[derive(Debug, Clone)]
struct FieldInfo {
    name: String,
    kind: FieldKind,
    max_items: usize,
}

/// Every message of the API by full name (no leading dot), its fields by number.
type Index = HashMap<String, HashMap<u32, FieldInfo>>;

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let set = FileDescriptorSet::decode(pb::v1::FILE_DESCRIPTOR_SET)
            .unwrap_or_else(|_| FileDescriptorSet { file: Vec::new() });
        let mut index = Index::new();
        for file in &set.file {
            let package = file.package();
            for message in &file.message_type {
                add_message(&mut index, package, message);
            }
        }
        index
    })
}

fn add_message(index: &mut Index, scope: &str, message: &DescriptorProto) {
    let full_name = format!("{scope}.{}", message.name());
    for nested in &message.nested_type {
        add_message(index, &full_name, nested);
    }
    let narrow = |field: &str| {
        NARROW_LISTS
            .iter()
            .find(|(m, f, ..)| *m == full_name && *f == field)
            .map(|(_, _, items, chars)| (*items, *chars))
    };
    let fields = message
        .field
        .iter()
        .map(|field| {
            let name = field.name().to_owned();
            let narrowed = narrow(&name);
            let kind = match field.r#type() {
                Type::String => {
                    let free_text = FREE_TEXT.contains(&name.as_str());
                    let max_chars = match narrowed {
                        Some((_, chars)) => chars,
                        None if free_text => LONG_TEXT_CHARS,
                        None if SECRETS.contains(&name.as_str()) => SECRET_CHARS,
                        None => SHORT_TEXT_CHARS,
                    };
                    FieldKind::Text(TextRule {
                        max_chars,
                        free_text,
                    })
                }
                Type::Message => {
                    FieldKind::Message(field.type_name().trim_start_matches('.').to_owned())
                }
                _ => FieldKind::Other,
            };
            let max_items = match (field.label(), narrowed) {
                (Label::Repeated, Some((items, _))) => items,
                (Label::Repeated, None) => MAX_ITEMS,
                _ => usize::MAX,
            };
            let number = u32::try_from(field.number()).unwrap_or(0);
            (
                number,
                FieldInfo {
                    name,
                    kind,
                    max_items,
                },
            )
        })
        .collect();
    index.insert(full_name, fields);
}

/// Checks the wire bytes of a message of type `message` (full name, e.g.
/// `codexcontinue.v1.SendMessageRequest`). A type the API does not describe passes.
///
/// # Errors
/// The first [`FieldViolation`] found.
pub fn check(message: &str, bytes: &[u8]) -> Result<(), FieldViolation> {
    walk(index(), message, bytes, "", 0)
}

fn walk(
    index: &Index,
    message: &str,
    mut bytes: &[u8],
    path: &str,
    depth: usize,
) -> Result<(), FieldViolation> {
    if depth > MAX_DEPTH {
        return Err(FieldViolation::at(
            if path.is_empty() { "(request)" } else { path },
            format!("nests messages more than {MAX_DEPTH} deep"),
        ));
    }
    let fields = index.get(message);
    let mut counts: Vec<(u32, usize)> = Vec::new();
    while !bytes.is_empty() {
        let key = read_varint(&mut bytes).ok_or_else(|| malformed_at(path))?;
        let number = u32::try_from(key >> 3).map_err(|_| malformed_at(path))?;
        let wire_type = key & 0x7;
        let payload = match wire_type {
            0 => {
                read_varint(&mut bytes).ok_or_else(|| malformed_at(path))?;
                None
            }
            1 | 5 => {
                let width = if wire_type == 1 { 8 } else { 4 };
                take(&mut bytes, width).ok_or_else(|| malformed_at(path))?;
                None
            }
            2 => {
                let len = read_varint(&mut bytes).ok_or_else(|| malformed_at(path))?;
                let len = usize::try_from(len).map_err(|_| malformed_at(path))?;
                Some(take(&mut bytes, len).ok_or_else(|| malformed_at(path))?)
            }
            _ => return Err(malformed_at(path)),
        };
        let Some(field) = fields.and_then(|fields| fields.get(&number)) else {
            continue;
        };
        let item = match counts.iter_mut().find(|(n, _)| *n == number) {
            Some((_, count)) => {
                *count += 1;
                *count - 1
            }
            None => {
                counts.push((number, 1));
                0
            }
        };
        let field_path = field_path(path, field, item);
        if item >= field.max_items {
            return Err(FieldViolation::at(
                &prefixed(path, &field.name),
                format!("holds more than {} items", field.max_items),
            ));
        }
        let Some(payload) = payload else {
            continue;
        };
        match &field.kind {
            FieldKind::Text(rule) => check_text(&field_path, payload, *rule)?,
            FieldKind::Message(name) => walk(index, name, payload, &field_path, depth + 1)?,
            FieldKind::Other => {}
        }
    }
    Ok(())
}

fn check_text(path: &str, payload: &[u8], rule: TextRule) -> Result<(), FieldViolation> {
    let text =
        std::str::from_utf8(payload).map_err(|_| FieldViolation::at(path, "is not valid UTF-8"))?;
    if text.len() > rule.max_chars && text.chars().count() > rule.max_chars {
        return Err(FieldViolation::at(
            path,
            format!("is longer than {} characters", rule.max_chars),
        ));
    }
    let allowed = |c: char| rule.free_text && matches!(c, '\t' | '\n' | '\r');
    if let Some(bad) = text.chars().find(|c| c.is_control() && !allowed(*c)) {
        let what = if bad == '\0' {
            "a NUL character".to_owned()
        } else {
            format!("the control character U+{:04X}", u32::from(bad))
        };
        return Err(FieldViolation::at(path, format!("contains {what}")));
    }
    Ok(())
}

fn prefixed(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn field_path(path: &str, field: &FieldInfo, item: usize) -> String {
    let name = prefixed(path, &field.name);
    if field.max_items == usize::MAX {
        name
    } else {
        format!("{name}[{item}]")
    }
}

fn malformed_at(path: &str) -> FieldViolation {
    FieldViolation::at(
        if path.is_empty() { "(request)" } else { path },
        "is not a valid protobuf message",
    )
}

fn take<'a>(bytes: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if bytes.len() < len {
        return None;
    }
    let (head, rest) = bytes.split_at(len);
    *bytes = rest;
    Some(head)
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::v1;

    fn check_of<M: Message + prost::Name>(message: &M) -> Result<(), FieldViolation> {
        check(&M::full_name(), &message.encode_to_vec())
    }

    #[test]
    fn text_is_checked_where_it_is() {
        let ok = v1::SendMessageRequest {
            conversation_id: "c".into(),
            content: "line one\n\tline two".into(),
            ..Default::default()
        };
        assert_eq!(check_of(&ok), Ok(()));
        let nul = v1::SendMessageRequest {
            conversation_id: "c\0".into(),
            ..Default::default()
        };
        assert_eq!(check_of(&nul).unwrap_err().field, "conversation_id");
        let newline_in_id = v1::SendMessageRequest {
            idempotency_key: "a\nb".into(),
            ..Default::default()
        };
        assert_eq!(
            check_of(&newline_in_id).unwrap_err().field,
            "idempotency_key"
        );
        let long = v1::GetUserRequest {
            user_id: "x".repeat(SHORT_TEXT_CHARS + 1),
        };
        assert!(check_of(&long).unwrap_err().description.contains("longer"));
    }

    #[test]
    fn lists_are_bounded_and_named_by_index() {
        let stop = v1::SendMessageRequest {
            options: Some(v1::GenerationOptions {
                stop: vec!["ok".into(), "bad\u{7}".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(check_of(&stop).unwrap_err().field, "options.stop[1]");
        let many = v1::SendMessageRequest {
            options: Some(v1::GenerationOptions {
                stop: vec!["s".into(); 17],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(check_of(&many).unwrap_err().field, "options.stop");
    }

    #[test]
    fn garbage_and_deep_nesting_are_refused() {
        let garbage = check("codexcontinue.v1.GetUserRequest", &[0x0a, 0xff]);
        assert!(garbage.is_err());
        let mut value = prost_types::Value { kind: None };
        for _ in 0..40 {
            value = prost_types::Value {
                kind: Some(prost_types::value::Kind::ListValue(
                    prost_types::ListValue {
                        values: vec![value],
                    },
                )),
            };
        }
        assert!(
            check("google.protobuf.Value", &value.encode_to_vec())
                .unwrap_err()
                .description
                .contains("deep")
        );
    }
}
