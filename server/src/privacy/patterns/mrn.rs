//! Medical record numbers and patient identifiers: an identifier right after a cue ("MRN",
//! "medical record number", "patient ID", "chart #", ...). Formats differ between
//! hospitals, so the identifier itself is only checked for shape: 6 to 12 letters and
//! digits (hyphens allowed in between), at least two of them digits, which keeps words
//! ("MRN field", "patient ID is required") out.

use regex::Regex;

use super::{compile, scan};
use crate::privacy::{Detector, Finding, PhiKind};

/// Letters and digits an identifier has (hyphens not counted).
const ID_LENGTH: std::ops::RangeInclusive<usize> = 6..=12;

/// Fewest digits in an identifier.
const MIN_DIGITS: usize = 2;

/// Finds record numbers.
pub(super) struct MrnRule {
    /// A cue, then the identifier in group 1.
    cued: Regex,
}

impl MrnRule {
    pub(super) fn new() -> Self {
        Self {
            cued: compile(concat!(
                r"(?i)\b(?:mrn|medical[ \t]+record(?:[ \t]+(?:number|num|no\.?|\#))?",
                r"|patient[ \t]+(?:identifier|id|number|no\.?|\#)|pt\.?[ \t]+id",
                r#"|chart(?:[ \t]+(?:number|no\.?)|[ \t]*\#))[ \t:\#=.'"-]*(?:is[ \t]+|of[ \t]+)?"#,
                r"([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)\b",
            )),
        }
    }
}

impl Detector for MrnRule {
    fn detect(&self, text: &str) -> Vec<Finding> {
        scan(&self.cued, text, |caps| {
            let id = caps.get(1)?;
            let glued_on = text
                .get(id.end()..)
                .and_then(|rest| rest.chars().next())
                .is_some_and(|c| c == '-' || c == '_');
            (plausible_id(id.as_str()) && !glued_on).then(|| id.range())
        })
        .into_iter()
        .map(|range| Finding::new(PhiKind::Mrn, range))
        .collect()
    }
}

/// Whether `id` has the shape of a record number.
fn plausible_id(id: &str) -> bool {
    let alphanumeric = id.chars().filter(char::is_ascii_alphanumeric).count();
    let digits = id.chars().filter(char::is_ascii_digit).count();
    ID_LENGTH.contains(&alphanumeric) && digits >= MIN_DIGITS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        MrnRule::new()
            .detect(text)
            .iter()
            .filter_map(|f| f.value(text))
            .collect()
    }

    #[test]
    fn finds_identifiers_after_cues() {
        assert_eq!(found("MRN: 00482913"), ["00482913"]);
        assert_eq!(found("mrn#A1234567."), ["A1234567"]);
        assert_eq!(found("Medical Record Number is 7731-0042"), ["7731-0042"]);
        assert_eq!(found("patient id PT-448812 admitted"), ["PT-448812"]);
        assert_eq!(found("Patient ID: zx90817 and"), ["zx90817"]);
        assert_eq!(found("see chart #C0099123"), ["C0099123"]);
        assert_eq!(found("pt. ID 55120981"), ["55120981"]);
    }

    #[test]
    fn ignores_words_and_wrong_lengths() {
        for text in [
            "the MRN field is required",
            "patient ID is missing",
            "MRN 12345",
            "patient id 1234567890123",
            "chart #1 shows",
            "MRN: ABCDEFGH",
            "patient number one",
            "an MRN-like column",
            "MRN 123456-",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }
}
