//! Placeholders for redacted values, and putting the values back into the model's answer.
//!
//! Each value becomes `[KIND_n]`, numbered per kind in order of appearance; the same value
//! of the same kind gets the same placeholder, so the model can still tell that two
//! mentions are the same person or number. The values stay on the premises, in
//! [`Redactions`], held as secrets (zeroed on drop, hidden from `Debug`).

use std::{
    collections::{HashMap, HashSet},
    fmt,
};

use secrecy::{ExposeSecret, SecretString};

use super::{Finding, PhiKind};

/// Longest placeholder looked for when restoring (`[DATE_OF_BIRTH_` plus a number).
const MAX_PLACEHOLDER_LEN: usize = 40;

/// The placeholders of one redacted text (or of several redacted together, such as the
/// strings of one JSON value) and the values they stand for.
#[derive(Default)]
pub struct Redactions {
    /// Placeholder (with its brackets) → the kind and original value.
    values: HashMap<String, (PhiKind, SecretString)>,
    /// Placeholders handed out so far, per kind.
    numbered: HashMap<PhiKind, usize>,
}

impl Redactions {
    /// Replaces each finding of `text` by its placeholder.
    ///
    /// `findings` must be sorted by start and must not overlap (as
    /// [`PhiGuard`](super::PhiGuard) makes them); a span that does not fit `text` is left
    /// in place rather than panicking.
    pub(super) fn redact(text: &str, findings: &[Finding]) -> (String, Redactions) {
        let mut redactions = Redactions::default();
        let redacted = redactions.redact_more(text, findings, &bracketed(text));
        (redacted, redactions)
    }

    /// Like [`Self::redact`], numbering on from the placeholders these redactions hold
    /// (a value seen before keeps its placeholder) and skipping the `literal` ones, which
    /// occur in the original text.
    pub(super) fn redact_more(
        &mut self,
        text: &str,
        findings: &[Finding],
        literal: &HashSet<&str>,
    ) -> String {
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for finding in findings {
            if finding.start < copied {
                continue;
            }
            let (Some(value), Some(before)) =
                (finding.value(text), text.get(copied..finding.start))
            else {
                continue;
            };
            out.push_str(before);
            let known = self
                .values
                .iter()
                .find(|(_, (kind, known))| *kind == finding.kind && known.expose_secret() == value)
                .map(|(placeholder, _)| placeholder.clone());
            let placeholder = known.unwrap_or_else(|| {
                let placeholder = fresh_placeholder(literal, finding.kind, &mut self.numbered);
                self.values.insert(
                    placeholder.clone(),
                    (finding.kind, SecretString::from(value.to_owned())),
                );
                placeholder
            });
            out.push_str(&placeholder);
            copied = finding.end;
        }
        out.push_str(text.get(copied..).unwrap_or_default());
        out
    }

    /// `value` with [`Self::restore`] applied to each of its strings and keys, so a
    /// restored value with quotes or backslashes still makes valid JSON.
    pub fn restore_json(&self, value: &serde_json::Value) -> serde_json::Value {
        if self.values.is_empty() {
            return value.clone();
        }
        map_strings(value, &mut |text| self.restore(text))
    }

    /// `response` with every known placeholder replaced by its original value. Text that
    /// merely looks like a placeholder (`[EMAIL_9]` when there were two emails) is left as
    /// is.
    pub fn restore(&self, response: &str) -> String {
        if self.values.is_empty() {
            return response.to_owned();
        }
        let mut out = String::with_capacity(response.len());
        let mut rest = response;
        while let Some(open) = rest.find('[') {
            let (before, from_open) = rest.split_at(open);
            out.push_str(before);
            let known = bracket_at(from_open)
                .and_then(|candidate| Some((candidate.len(), self.values.get(candidate)?)));
            match known {
                Some((len, (_, value))) => {
                    out.push_str(value.expose_secret());
                    rest = &from_open[len..];
                }
                None => {
                    out.push('[');
                    rest = &from_open[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// How many distinct values were redacted.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing was redacted.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl fmt::Debug for Redactions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut placeholders: Vec<_> = self.values.keys().collect();
        placeholders.sort();
        f.debug_struct("Redactions")
            .field("placeholders", &placeholders)
            .finish_non_exhaustive()
    }
}

/// `value` with `text` applied to each of its strings and object keys.
pub(super) fn map_strings(
    value: &serde_json::Value,
    text: &mut impl FnMut(&str) -> String,
) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(text(s)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| map_strings(item, text)).collect())
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, field)| (text(key), map_strings(field, text)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every string and object key of `value`.
pub(super) fn strings(value: &serde_json::Value) -> Vec<&str> {
    fn walk<'v>(value: &'v serde_json::Value, out: &mut Vec<&'v str>) {
        match value {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            serde_json::Value::Object(fields) => {
                for (key, field) in fields {
                    out.push(key);
                    walk(field, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut out);
    out
}

/// The short bracketed pieces of `text` (`[...]`), which placeholders must not collide with.
pub(super) fn bracketed(text: &str) -> HashSet<&str> {
    text.match_indices('[')
        .filter_map(|(open, _)| text.get(open..).and_then(bracket_at))
        .collect()
}

/// The bracketed piece at the start of `s` (which starts with `[`), if it closes soon
/// enough to be a placeholder.
fn bracket_at(s: &str) -> Option<&str> {
    s.char_indices()
        .take_while(|&(i, _)| i < MAX_PLACEHOLDER_LEN)
        .find(|&(_, c)| c == ']')
        .and_then(|(close, _)| s.get(..=close))
}

/// The next placeholder of `kind`, skipping any that already occur in the original text
/// (otherwise restoring would turn the user's own literal `[EMAIL_1]` into a value).
fn fresh_placeholder(
    literal: &HashSet<&str>,
    kind: PhiKind,
    next: &mut HashMap<PhiKind, usize>,
) -> String {
    let counter = next.entry(kind).or_insert(0);
    loop {
        *counter += 1;
        let placeholder = format!("[{}_{}]", kind.placeholder_label(), counter);
        if !literal.contains(placeholder.as_str()) {
            return placeholder;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: PhiKind, text: &str, value: &str, nth: usize) -> Finding {
        let start = text.match_indices(value).nth(nth).unwrap().0;
        Finding::new(kind, start..start + value.len())
    }

    #[test]
    fn numbers_per_kind_and_reuses_placeholders_for_the_same_value() {
        let text = "a@x.org, b@x.org, a@x.org, SSN 123-45-6789";
        let findings = [
            finding(PhiKind::Email, text, "a@x.org", 0),
            finding(PhiKind::Email, text, "b@x.org", 0),
            finding(PhiKind::Email, text, "a@x.org", 1),
            finding(PhiKind::Ssn, text, "123-45-6789", 0),
        ];
        let (redacted, redactions) = Redactions::redact(text, &findings);
        assert_eq!(redacted, "[EMAIL_1], [EMAIL_2], [EMAIL_1], SSN [SSN_1]");
        assert_eq!(redactions.len(), 3);
        assert_eq!(redactions.restore(&redacted), text);
    }

    #[test]
    fn restore_leaves_unknown_and_partial_placeholders() {
        let text = "mail a@x.org";
        let (redacted, redactions) =
            Redactions::redact(text, &[finding(PhiKind::Email, text, "a@x.org", 0)]);
        assert_eq!(redacted, "mail [EMAIL_1]");
        let answer = "[EMAIL_1] [EMAIL_2] [EMAIL_1 [[EMAIL_1]] [email_1] [";
        assert_eq!(
            redactions.restore(answer),
            "a@x.org [EMAIL_2] [EMAIL_1 [a@x.org] [email_1] ["
        );
    }

    #[test]
    fn skips_placeholders_already_present_in_the_text() {
        let text = "literal [EMAIL_1] then a@x.org";
        let (redacted, redactions) =
            Redactions::redact(text, &[finding(PhiKind::Email, text, "a@x.org", 0)]);
        assert_eq!(redacted, "literal [EMAIL_1] then [EMAIL_2]");
        assert_eq!(
            redactions.restore("[EMAIL_1] [EMAIL_2]"),
            "[EMAIL_1] a@x.org"
        );
    }

    #[test]
    fn debug_shows_placeholders_not_values() {
        let text = "a@x.org";
        let (_, redactions) =
            Redactions::redact(text, &[finding(PhiKind::Email, text, "a@x.org", 0)]);
        let debug = format!("{redactions:?}");
        assert!(debug.contains("[EMAIL_1]"));
        assert!(!debug.contains("a@x.org"));
    }

    #[test]
    fn spans_that_do_not_fit_are_left_alone() {
        let text = "né";
        let (redacted, redactions) = Redactions::redact(text, &[Finding::new(PhiKind::Mrn, 2..3)]);
        assert_eq!(redacted, "né");
        assert!(redactions.is_empty());
    }
}
