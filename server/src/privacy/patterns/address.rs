//! Street addresses: a house number, one to four street-name words and a street suffix
//! (`221B Baker Street`, `1600 Pennsylvania Ave NW`), optionally a unit (`Apt 4B`,
//! `Suite 200`, `#12`) and a locality (`, Springfield, IL 62704`); and post-office boxes.
//!
//! "Number, words, suffix" also describes plenty of ordinary prose ("2 cars in the
//! court", "3 Google Drive folders", "9 Supreme Court justices"), so the street name may
//! not contain function words, a few suffixes reject the words that make them something
//! else (a court of law, a disk drive), and an upper-case suffix needs an upper-case name
//! ("123 MAIN ST" is an envelope, "2 prior CT" a scan).

use std::ops::Range;

use regex::{Captures, Regex};

use super::{compile, is_one_of, scan, stands_alone};
use crate::privacy::{Detector, Finding, PhiKind};

/// Unit, then `, City, ST 12345` (city words capitalised, state in two capitals).
const UNIT_AND_LOCALITY: &str = concat!(
    r"(?:,?[ \t]+(?i:apt|apartment|suite|ste|unit|floor|fl|room|rm|bldg)\.?[ \t]*\#?[ \t]*",
    r"[A-Za-z0-9-]+\b|,?[ \t]+\#[ \t]*[A-Za-z0-9-]+\b)?",
    r"(?:,[ \t]+(?:[A-Z][A-Za-z.'-]*[ \t]+){0,2}[A-Z][A-Za-z.'-]*,?[ \t]+[A-Z]{2}\b",
    r"(?:[ \t]+\d{5}(?:-\d{4})?\b)?)?",
);

/// Words that never appear in a street name but often sit between a number and a
/// suffix-like word in prose.
const FUNCTION_WORDS: &str = "a an the and or but nor of in on at to for with by from into onto \
                              via per is are was were be been has have had will would can could \
                              should may must i we you he she they it my our your their times";

/// Words before a suffix that make it something other than a street.
const NOT_A_STREET: &[(&str, &str)] = &[
    (
        "court",
        "supreme district circuit appeals appellate bankruptcy superior federal family probate \
         juvenile tax claims county municipal traffic trial state high",
    ),
    (
        "drive",
        "hard flash usb thumb disk google shared network external ssd tape test cd dvd",
    ),
    ("way", "one no any same other right wrong best easy"),
    ("place", "first second third last 1st 2nd 3rd market"),
];

/// Finds street addresses and post-office boxes.
pub(super) struct AddressRule {
    /// House number, street name (group `name`), suffix (group `suffix`), unit, locality.
    street: Regex,
    /// `P.O. Box 123`, with an optional locality.
    po_box: Regex,
}

impl AddressRule {
    pub(super) fn new() -> Self {
        let street = format!(
            "{number}{name}{suffix}{direction}{UNIT_AND_LOCALITY}",
            number = r"\b\d{1,6}[A-Za-z]?(?:-\d{1,5})?",
            name = r"(?P<name>(?:[ \t]+[A-Za-z0-9][A-Za-z0-9'.-]*){1,4}?)",
            suffix = concat!(
                r"[ \t]+(?P<suffix>(?i:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln",
                r"|drive|dr|court|ct|way|place|pl|terrace|ter|circle|cir|parkway|pkwy",
                r"|highway|hwy|loop|trail|trl|square|sq|crescent|cres|alley|pike))\b\.?",
            ),
            direction = r"(?:[ \t]+(?:NW|NE|SW|SE|N|S|E|W)\b\.?)?",
        );
        Self {
            street: compile(&street),
            po_box: compile(&format!(
                r"(?i:\bp\.?[ \t]?o\.?[ \t]*box|\bpost[ \t]+office[ \t]+box)[ \t]+\#?\d{{1,6}}\b{UNIT_AND_LOCALITY}"
            )),
        }
    }
}

impl Detector for AddressRule {
    fn detect(&self, text: &str) -> Vec<Finding> {
        let streets = scan(&self.street, text, |caps| {
            let whole = caps.get(0)?;
            let number = whole.as_str().split([' ', '\t']).next().unwrap_or_default();
            let number_span = whole.start()..whole.start() + number.len();
            (stands_alone(text, &number_span) && street_like(text, caps))
                .then(|| trim_final_dot(text, whole.range()))
        });
        let boxes = scan(&self.po_box, text, |caps| {
            caps.get(0).map(|whole| trim_final_dot(text, whole.range()))
        });
        streets
            .into_iter()
            .chain(boxes)
            .map(|range| Finding::new(PhiKind::Address, range))
            .collect()
    }
}

/// Whether the name and suffix read as a street rather than prose.
fn street_like(text: &str, caps: &Captures<'_>) -> bool {
    let (Some(name), Some(suffix)) = (caps.name("name"), caps.name("suffix")) else {
        return false;
    };
    let words: Vec<&str> = name.as_str().split_whitespace().collect();
    let lower: Vec<String> = words
        .iter()
        .map(|w| w.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    if lower.iter().any(|w| is_one_of(FUNCTION_WORDS, w)) {
        return false;
    }
    let suffix_lower = suffix.as_str().to_ascii_lowercase();
    let other_thing = NOT_A_STREET.iter().any(|(s, before)| {
        *s == suffix_lower && lower.last().is_some_and(|w| is_one_of(before, w))
    });
    let shouting = suffix.as_str().len() > 1 && !suffix.as_str().chars().any(char::is_lowercase);
    let quiet_name = words.iter().any(|w| w.chars().any(char::is_lowercase));
    let after = caps
        .get(0)
        .and_then(|whole| text.get(whole.end()..))
        .unwrap_or_default();
    // "2 times ln(x)": a suffix-like word called as a function is code or maths.
    let prose = other_thing || (shouting && quiet_name) || after.starts_with('(');
    !prose
}

/// Drops a final `.` (the end of the sentence, or of "St." with nothing after it).
fn trim_final_dot(text: &str, range: Range<usize>) -> Range<usize> {
    match text.get(range.clone()) {
        Some(s) if s.ends_with('.') => range.start..range.end - 1,
        _ => range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        AddressRule::new()
            .detect(text)
            .iter()
            .filter_map(|f| f.value(text))
            .collect()
    }

    #[test]
    fn finds_streets_with_units_and_localities() {
        for address in [
            "221B Baker Street",
            "1600 Pennsylvania Avenue NW, Washington, DC 20500",
            "42 elm st",
            "77 Massachusetts Ave, Cambridge, MA 02139",
            "350 Fifth Ave, Suite 3400, New York, NY 10118",
            "18 Rue Lane Apt 4B",
            "9 Old Mill Rd #12",
            "500 W 2nd St, Austin, TX 78701-1234",
            "12 OAK CT",
            "16 Sycamore Loop",
            "P.O. Box 4417",
            "PO Box 77, Springfield, IL 62704",
        ] {
            assert_eq!(found(&format!("Send it to {address}. Thanks")), [address]);
        }
    }

    #[test]
    fn finds_the_street_hidden_behind_prose() {
        assert_eq!(found("moved 3 times to 42 Elm Street"), ["42 Elm Street"]);
    }

    #[test]
    fn ignores_prose_that_looks_like_an_address() {
        for text in [
            "parked 2 cars in the court",
            "I have 3 Google Drive folders",
            "the 9 Supreme Court justices",
            "had 2 prior CT scans",
            "compute 2 times ln(x)",
            "took 1st place",
            "Section 1983 claims",
            "room 1234",
            "2 one way tickets",
            "v2 Main St",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }
}
