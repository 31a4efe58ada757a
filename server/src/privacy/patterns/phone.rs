//! Telephone numbers: North American formats (`(555) 123-4567`, `555-123-4567`,
//! `555.123.4567`, `+1 555 123 4567`, `1-800-555-0199`, with an optional extension), `+`
//! international numbers in groups (`+44 20 7946 0958`), and ten bare digits right after
//! a cue such as "phone" or "call".
//!
//! Separators are required in the uncued forms: ten bare digits are as often an order
//! number or a timestamp as a phone number.

use regex::Regex;

use super::{compile, digits, scan, stands_alone};
use crate::privacy::{Detector, Finding, PhiKind};

/// Shortest and longest international number, country code included (E.164 caps at 15).
const INTERNATIONAL_DIGITS: std::ops::RangeInclusive<usize> = 8..=15;

/// Finds telephone numbers.
pub(super) struct PhoneRule {
    /// North American numbers with separators.
    north_american: Regex,
    /// `+` and a country code other than 1, then groups of digits.
    international: Regex,
    /// A cue, then ten bare digits in group 1.
    cued: Regex,
}

impl PhoneRule {
    pub(super) fn new() -> Self {
        Self {
            north_american: compile(concat!(
                r"(?:(?:\+1[ .-]?|\b1[ .-])?",
                r"(?:\(\d{3}\)[ -]?|\b\d{3}[ .-])\d{3}[ .-]\d{4}|\+1\d{10})\b",
                r"(?:[ ]?(?i:ext\.?|x)[ ]?\d{1,5}\b)?",
            )),
            international: compile(r"\+[2-9]\d{0,2}(?:[ .-]?\(?\d{1,5}\)?){2,6}"),
            cued: compile(concat!(
                r"(?i)\b(?:phone|tel|telephone|cell|mobile|fax|call|text|contact)",
                r#"(?:[ \t]+(?:no\.?|number|\#))?[ \t:\#.='"]*(?:is[ \t]+|at[ \t]+)?"#,
                r"(\d{10})\b",
            )),
        }
    }
}

impl Detector for PhoneRule {
    fn detect(&self, text: &str) -> Vec<Finding> {
        let north_american = scan(&self.north_american, text, |caps| {
            let whole = caps.get(0)?;
            stands_alone(text, &whole.range()).then(|| whole.range())
        });
        let international = scan(&self.international, text, |caps| {
            let whole = caps.get(0)?;
            let count = digits(whole.as_str()).len();
            (INTERNATIONAL_DIGITS.contains(&count)
                && balanced_parentheses(whole.as_str())
                && stands_alone(text, &whole.range()))
            .then(|| whole.range())
        });
        let cued = scan(&self.cued, text, |caps| {
            let number = caps.get(1)?;
            let area_ok = !number.as_str().starts_with(['0', '1']);
            (area_ok && stands_alone(text, &number.range())).then(|| number.range())
        });
        north_american
            .into_iter()
            .chain(international)
            .chain(cued)
            .map(|range| Finding::new(PhiKind::Phone, range))
            .collect()
    }
}

/// Whether every `(` in `s` is closed (a trailing `(` belongs to the sentence).
fn balanced_parentheses(s: &str) -> bool {
    s.matches('(').count() == s.matches(')').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut found: Vec<_> = PhoneRule::new()
            .detect(text)
            .iter()
            .filter_map(|f| f.value(text))
            .collect();
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn north_american_formats() {
        for number in [
            "(555) 123-4567",
            "(555)123-4567",
            "555-123-4567",
            "555.123.4567",
            "555 123 4567",
            "+1 555 123 4567",
            "+1-555-123-4567",
            "1-800-555-0199",
            "+1 (555) 123-4567",
            "555-123-4567 ext. 204",
        ] {
            assert_eq!(found(&format!("call {number}, thanks")), [number]);
        }
    }

    #[test]
    fn international_and_cued() {
        assert_eq!(found("London: +44 20 7946 0958."), ["+44 20 7946 0958"]);
        assert_eq!(found("Paris +33 1 23 45 67 89"), ["+33 1 23 45 67 89"]);
        assert_eq!(found("Berlin +49 30 12345678"), ["+49 30 12345678"]);
        assert_eq!(found("mobile: 5551234567"), ["5551234567"]);
    }

    #[test]
    fn ignores_look_alikes() {
        for text in [
            "ip 192.168.100.200",
            "version 1.2.3",
            "order 5551234567",
            "ISBN 978-0-306-40615-7",
            "card 4111-1111-1111-1111",
            "date 2024-03-14 10:30",
            "ssn 123-45-6789",
            "+5 points",
            "uuid 123e4567-e89b-12d3-a456-426614174000",
            "ts 1700000000000",
            "call 0123456789",
            "12.555.123.4567",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }
}
