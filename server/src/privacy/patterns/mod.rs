//! The rule-based detector: one small rule per kind of identifier, each a regular
//! expression that proposes candidates plus plain-Rust checks that throw out look-alikes
//! (Luhn for cards, numbering rules for SSNs, a nearby cue for dates of birth and record
//! numbers, glued digits for everything numeric).
//!
//! The expressions are compiled once, when the detector is built; build one per process
//! and share it.

mod address;
mod card;
mod dob;
mod email;
mod mrn;
mod phone;
mod ssn;

use std::ops::Range;

use regex::{Captures, Regex};

use super::{Detector, Finding};

/// Finds every kind of [`PhiKind`](super::PhiKind) with regular expressions and checks.
pub struct PatternDetector {
    /// One detector per kind, run in turn.
    rules: Vec<Box<dyn Detector>>,
}

impl PatternDetector {
    /// Compiles every rule (a few milliseconds: do it once, at start-up).
    pub fn new() -> Self {
        Self {
            rules: vec![
                Box::new(ssn::SsnRule::new()),
                Box::new(phone::PhoneRule::new()),
                Box::new(email::EmailRule::new()),
                Box::new(dob::DateOfBirthRule::new()),
                Box::new(mrn::MrnRule::new()),
                Box::new(card::CardRule::new()),
                Box::new(address::AddressRule::new()),
            ],
        }
    }
}

impl Default for PatternDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl Detector for PatternDetector {
    fn detect(&self, text: &str) -> Vec<Finding> {
        self.rules
            .iter()
            .flat_map(|rule| rule.detect(text))
            .collect()
    }
}

/// Compiles one of the rules' fixed patterns.
///
/// # Panics
/// When `pattern` is not a valid expression: the patterns are constants of this module,
/// so that is a programming error caught by every test.
fn compile(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(regex) => regex,
        Err(err) => panic!("invalid built-in PHI pattern: {err}"),
    }
}

/// Runs `regex` over `text` and lets `accept` turn each match into a span or reject it.
///
/// After a rejection the search resumes one character after the rejected match's start
/// rather than after its end, so a long look-alike cannot hide a real value inside it
/// ("moved 3 times to 42 Elm Street").
fn scan(
    regex: &Regex,
    text: &str,
    mut accept: impl FnMut(&Captures<'_>) -> Option<Range<usize>>,
) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut at = 0;
    while let Some(caps) = regex.captures_at(text, at) {
        let Some(whole) = caps.get(0) else { break };
        let next_char = text
            .get(whole.start()..)
            .and_then(|rest| rest.chars().next())
            .map_or(1, char::len_utf8);
        match accept(&caps) {
            Some(span) => {
                spans.push(span);
                at = whole.end().max(whole.start() + next_char);
            }
            None => at = whole.start() + next_char,
        }
        if at > text.len() {
            break;
        }
    }
    spans
}

/// Whether the number at `span` stands on its own: not glued to letters or digits, nor to
/// digits across one separator (`-`, `.`, `/`, `:`), which would make it part of a longer
/// number, date, version or identifier.
fn stands_alone(text: &str, span: &Range<usize>) -> bool {
    let before = text.get(..span.start).unwrap_or_default();
    let after = text.get(span.end..).unwrap_or_default();
    !glued(before.chars().rev()) && !glued(after.chars())
}

/// Whether the characters next to a number, read outwards, continue it.
fn glued(mut outward: impl Iterator<Item = char>) -> bool {
    match outward.next() {
        Some(c) if c.is_alphanumeric() || c == '_' => true,
        Some('-' | '.' | '/' | ':') => outward.next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// Whether `word` is one of the white-space separated `words` (word lists stay readable
/// as one string).
fn is_one_of(words: &str, word: &str) -> bool {
    !word.is_empty() && words.split_whitespace().any(|w| w == word)
}

/// The ASCII digits of `s`, as numbers.
fn digits(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stands_alone_rejects_glued_numbers() {
        assert!(stands_alone("a 123 b", &(2..5)));
        assert!(stands_alone("(123)", &(0..5)));
        assert!(stands_alone("123, 4", &(0..3)));
        assert!(stands_alone("123-x", &(0..3)));
        assert!(stands_alone("end 123.", &(4..7)));
        assert!(!stands_alone("x123", &(1..4)), "letter before");
        assert!(!stands_alone("1-123", &(2..5)), "digit and dash before");
        assert!(!stands_alone("123.4", &(0..3)), "dot and digit after");
        assert!(!stands_alone("v1.123", &(3..6)), "version");
        assert!(!stands_alone("1231", &(0..3)), "digit after");
    }

    #[test]
    fn scan_resumes_inside_rejected_matches() {
        let regex = compile(r"\d+ \w+ \w+");
        let spans = scan(&regex, "1 no 2 yes 3", |caps| {
            let whole = caps.get(0)?;
            whole.as_str().contains("yes").then(|| whole.range())
        });
        assert_eq!(
            spans.iter().map(|s| (s.start, s.end)).collect::<Vec<_>>(),
            [(5, 12)]
        );
    }

    #[test]
    fn digits_skips_separators() {
        assert_eq!(digits("4-1 2"), [4, 1, 2]);
    }
}
