//! Bounds on what an audit event may hold, applied in the one place an event becomes a
//! row: the trail is kept for years, so no caller (through a resource id, a user agent or
//! a detail) may write megabytes into it, and no character Postgres refuses (NUL) may fail
//! the event, or the batch it was committed with. The database checks the same bounds
//! (migration 0024), so a bug here refuses one event instead of storing it.

use serde_json::Value;

/// Longest `action`.
pub const ACTION_CHARS: usize = 256;
/// Longest `resource_type`.
pub const RESOURCE_TYPE_CHARS: usize = 64;
/// Longest `resource_id`.
pub const RESOURCE_ID_CHARS: usize = 512;
/// Longest `actor_id`, `request_id` and `client_address`.
pub const ID_CHARS: usize = 256;
/// Longest `user_agent`.
pub const USER_AGENT_CHARS: usize = 512;
/// Most bytes of `details` as JSON; larger details are replaced by a note of their size.
pub const DETAILS_BYTES: usize = 8_192;

/// `value` without NUL characters (each becomes U+FFFD) and cut to `max` characters.
pub fn text(value: &str, max: usize) -> String {
    value
        .chars()
        .take(max)
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect()
}

/// `value` with NUL characters replaced in every string and key, or a note of its size
/// when its JSON is longer than [`DETAILS_BYTES`].
pub fn details(value: &Value) -> Value {
    let clean = without_nul(value);
    let size = clean.to_string().len();
    if size > DETAILS_BYTES {
        serde_json::json!({ "truncated": true, "bytes": size })
    } else {
        clean
    }
}

fn without_nul(value: &Value) -> Value {
    let clean = |s: &str| s.replace('\0', "\u{FFFD}");
    match value {
        Value::String(s) => Value::String(clean(s)),
        Value::Array(items) => Value::Array(items.iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (clean(key), without_nul(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_replaced_and_length_cut() {
        assert_eq!(text("a\0b", 10), "a\u{FFFD}b");
        assert_eq!(
            text(&"é".repeat(600), RESOURCE_ID_CHARS).chars().count(),
            512
        );
        let nested = serde_json::json!({"k\0": ["v\0", {"x": "\0"}]});
        assert_eq!(
            details(&nested),
            serde_json::json!({"k\u{FFFD}": ["v\u{FFFD}", {"x": "\u{FFFD}"}]})
        );
        let big = serde_json::json!({ "blob": "x".repeat(DETAILS_BYTES) });
        assert_eq!(details(&big)["truncated"], true);
    }
}
