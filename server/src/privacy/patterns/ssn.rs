//! US Social Security numbers: `123-45-6789` or `123 45 6789` anywhere, nine bare digits
//! only right after an "SSN" cue (bare nine-digit numbers are mostly order numbers).
//! Numbers the SSA never issues (area 000, 666 or 900–999, group 00, serial 0000) are
//! not SSNs, which also weeds out most placeholders and look-alikes.

use regex::Regex;

use super::{compile, digits, scan, stands_alone};
use crate::privacy::{Detector, Finding, PhiKind};

/// Finds Social Security numbers.
pub(super) struct SsnRule {
    /// `123-45-6789` / `123 45 6789` (same separator twice, checked in code).
    formatted: Regex,
    /// `SSN: 123456789`: the cue, then nine digits in group 1.
    cued: Regex,
}

impl SsnRule {
    pub(super) fn new() -> Self {
        Self {
            formatted: compile(r"\b\d{3}([- ])\d{2}([- ])\d{4}\b"),
            cued: compile(
                r#"(?i)\b(?:ssn|ss\#|social[ \t]+security(?:[ \t]+(?:number|no\.?|\#))?)[ \t:\#='"-]*(?:is[ \t]+)?(\d{9})\b"#,
            ),
        }
    }
}

impl Detector for SsnRule {
    fn detect(&self, text: &str) -> Vec<Finding> {
        let formatted = scan(&self.formatted, text, |caps| {
            let whole = caps.get(0)?;
            let same_separator = caps.get(1)?.as_str() == caps.get(2)?.as_str();
            (same_separator && stands_alone(text, &whole.range()) && issuable(whole.as_str()))
                .then(|| whole.range())
        });
        let cued = scan(&self.cued, text, |caps| {
            let number = caps.get(1)?;
            (stands_alone(text, &number.range()) && issuable(number.as_str()))
                .then(|| number.range())
        });
        formatted
            .into_iter()
            .chain(cued)
            .map(|range| Finding::new(PhiKind::Ssn, range))
            .collect()
    }
}

/// Whether the nine digits of `number` could be an issued SSN.
pub(super) fn issuable(number: &str) -> bool {
    let d = digits(number);
    let [a1, a2, a3, g1, g2, s1, s2, s3, s4] = d[..] else {
        return false;
    };
    let area = u16::from(a1) * 100 + u16::from(a2) * 10 + u16::from(a3);
    let group = g1 * 10 + g2;
    let serial_is_zero = [s1, s2, s3, s4] == [0; 4];
    area != 0 && area != 666 && area < 900 && group != 0 && !serial_is_zero
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        SsnRule::new()
            .detect(text)
            .iter()
            .filter_map(|f| f.value(text))
            .collect()
    }

    #[test]
    fn numbering_rules() {
        assert!(issuable("123-45-6789"));
        assert!(issuable("899 99 0001"));
        assert!(issuable("665-01-0001"));
        for invalid in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "999-99-9999",
            "123-00-4567",
            "123-45-0000",
            "1234567890",
        ] {
            assert!(!issuable(invalid), "{invalid}");
        }
    }

    #[test]
    fn finds_formatted_and_cued_numbers() {
        assert_eq!(found("SSN 123-45-6789."), ["123-45-6789"]);
        assert_eq!(found("ssn 123 45 6789, thanks"), ["123 45 6789"]);
        assert_eq!(found("her ssn: 234567890"), ["234567890"]);
        assert_eq!(found("Social Security No. is 345678901"), ["345678901"]);
        assert_eq!(
            found("a 219-09-9999 b 078-05-1120"),
            ["219-09-9999", "078-05-1120"]
        );
    }

    #[test]
    fn ignores_look_alikes() {
        for text in [
            "000-12-3456",
            "666-12-3456 and 987-65-4321",
            "123-45-678",
            "order 123456789",
            "123-45 6789",
            "part 1-123-45-6789-0",
            "zip 12345-6789",
            "ssn: 000123456",
            "2024-03-14",
            "id 123-45-67890",
        ] {
            assert!(found(text).is_empty(), "{text}");
        }
    }
}
