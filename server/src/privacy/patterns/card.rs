//! Payment card numbers: 13 to 19 digits, bare or grouped with spaces or dashes (4-4-4-4,
//! 4-4-4-4-3, 4-6-5 for Amex, 4-6-4 for Diners), that pass the Luhn check and start with
//! a major network's digit (2–6: Mastercard, Amex, Diners, JCB, Visa, Discover, UnionPay).
//!
//! The network digit keeps out long numbers that pass Luhn by chance (one in ten do):
//! millisecond timestamps start with 1, ISBN-13s with 9.

use regex::Regex;

use super::{compile, digits, scan, stands_alone};
use crate::privacy::{Detector, Finding, PhiKind};

/// How many digits a card number has.
const CARD_DIGITS: std::ops::RangeInclusive<usize> = 13..=19;

/// Finds card numbers.
pub(super) struct CardRule {
    /// Candidates: grouped or bare digit runs.
    candidate: Regex,
}

impl CardRule {
    pub(super) fn new() -> Self {
        Self {
            candidate: compile(concat!(
                r"\b(?:\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?",
                r"|\d{4}[ -]\d{6}[ -]\d{4,5}",
                r"|\d{13,19})\b",
            )),
        }
    }
}

impl Detector for CardRule {
    fn detect(&self, text: &str) -> Vec<Finding> {
        scan(&self.candidate, text, |caps| {
            let whole = caps.get(0)?;
            let number = whole.as_str();
            let one_separator = !(number.contains(' ') && number.contains('-'));
            (one_separator && plausible_card(number) && stands_alone(text, &whole.range()))
                .then(|| whole.range())
        })
        .into_iter()
        .map(|range| Finding::new(PhiKind::CreditCard, range))
        .collect()
    }
}

/// Whether the digits of `number` could be a card: length, network digit, Luhn.
fn plausible_card(number: &str) -> bool {
    let digits = digits(number);
    CARD_DIGITS.contains(&digits.len())
        && digits.first().is_some_and(|first| (2..=6).contains(first))
        && luhn_valid(&digits)
}

/// The Luhn checksum: from the right, every second digit doubled (minus 9 past 9), the sum
/// a multiple of ten.
pub(super) fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            match (i % 2 == 1, d * 2) {
                (false, _) => d,
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        CardRule::new()
            .detect(text)
            .iter()
            .filter_map(|f| f.value(text))
            .collect()
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid(&digits("4111 1111 1111 1111")));
        assert!(luhn_valid(&digits("79927398713")));
        assert!(luhn_valid(&digits("378282246310005")));
        assert!(!luhn_valid(&digits("4111 1111 1111 1112")));
        assert!(!luhn_valid(&digits("79927398710")));
        assert!(!luhn_valid(&[]));
    }

    #[test]
    fn finds_valid_numbers_in_common_groupings() {
        for number in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "3782 822463 10005",
            "30569309025904",
            "6011 0009 9013 9424",
            "2223003122003222",
            "6759 6498 2643 8453 714",
        ] {
            assert_eq!(found(&format!("card: {number}.")), [number], "{number}");
        }
    }

    #[test]
    fn ignores_invalid_and_look_alike_numbers() {
        for text in [
            "4111 1111 1111 1112",
            "4111-1111 1111-1111",
            "ts 1700000000000",
            "ISBN 9780306406157",
            "order 4111111111111111-2",
            "acct 12345678901234",
            "v4111111111111111",
            "9111111111111111",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }
}
