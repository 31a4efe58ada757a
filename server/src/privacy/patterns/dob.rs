//! Dates of birth: a full date (`03/14/1985`, `14.03.1985`, `1985-03-14`,
//! `March 14, 1985`, `14 Mar 1985`, `3/14/85`) tied to a birth cue ("DOB", "date of
//! birth", "born", "birthday", ...) shortly before it, or right after it ("03/14/1985
//! (DOB)").
//!
//! A date on its own is not flagged: prompts are full of meeting, release and filing
//! dates. A cue ties itself to the first date that follows it within the same sentence.

use std::ops::Range;

use regex::{Captures, Regex};

use super::{compile, is_one_of, scan};
use crate::privacy::{Detector, Finding, PhiKind};

/// How far (bytes) a cue may be before its date ("born in Springfield, Ohio on").
const MAX_GAP_AFTER_CUE: usize = 40;

/// Words between a cue and a date that tie the date to some other event ("born in the USA
/// was released 06/04/1984", "born in Ohio, admitted 04/02/2024").
const OTHER_EVENTS: &str = "released published filed signed founded launched shipped \
                            scheduled admitted discharged seen visited due expires expired \
                            married died hired enrolled issued";

/// Words after "birthday" that make it an event rather than a date of birth.
const BIRTHDAY_EVENTS: &str = "party celebration card cake dinner lunch gift present reminder";

/// A month name or abbreviation (a macro so that it can go into `concat!`).
macro_rules! month {
    () => {
        "(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?\
         |sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
    };
}

/// Any full date. Named groups give the parts per format (see [`valid_date`]); `time`
/// marks an ISO time glued on (`1985-03-14T00:00:00Z`), which is not part of the date.
const DATE: &str = concat!(
    r"(?i)\b(?:",
    // 03/14/1985, 14.03.1985, 3-14-85
    r"(?P<a>\d{1,2})(?P<s1>[/.-])(?P<b>\d{1,2})(?P<s2>[/.-])(?P<y>\d{4}|\d{2})",
    // 1985-03-14, 1985/03/14
    r"|(?P<iy>\d{4})(?P<s3>[/.-])(?P<im>\d{1,2})(?P<s4>[/.-])(?P<id>\d{1,2})",
    // March 14, 1985; Mar. 14th 1985
    r"|(?P<m1>",
    month!(),
    r")\.?[ \t]+(?P<d1>\d{1,2})(?:st|nd|rd|th)?,?[ \t]+(?P<y1>\d{4})",
    // 14 Mar 1985; 14th of March, 1985
    r"|(?P<d2>\d{1,2})(?:st|nd|rd|th)?[ \t]+(?:of[ \t]+)?(?P<m2>",
    month!(),
    r")\.?,?[ \t]+(?P<y2>\d{4})",
    // 14-MAR-1985, 14/Mar/85
    r"|(?P<d3>\d{1,2})(?P<s5>[/-])(?P<m3>",
    month!(),
    r")(?P<s6>[/-])(?P<y3>\d{4}|\d{2})",
    r")(?:\b|(?P<time>T)\d)",
);

/// Finds dates of birth.
pub(super) struct DateOfBirthRule {
    /// Any full date; the named groups give its parts (see [`valid_date`]).
    date: Regex,
    /// A birth cue.
    cue: Regex,
}

impl DateOfBirthRule {
    pub(super) fn new() -> Self {
        Self {
            date: compile(DATE),
            cue: compile(concat!(
                r"(?i)(?:\b|_)dob\b|\bd\.o\.b\b\.?|(?:\b|_)date[ \t_-]*of[ \t_-]*birth\b",
                r"|(?:\b|_)birth[ \t_-]*date\b",
                r"|\bbirthday\b|\bborn\b",
            )),
        }
    }
}

impl Detector for DateOfBirthRule {
    fn detect(&self, text: &str) -> Vec<Finding> {
        let cues: Vec<Range<usize>> = self
            .cue
            .find_iter(text)
            .map(|m| m.range())
            .filter(|cue| !names_an_event(text, cue))
            .collect();
        let dates = scan(&self.date, text, |caps| {
            let whole = caps.get(0)?;
            let end = caps.name("time").map_or(whole.end(), |t| t.start());
            valid_date(caps).then_some(whole.start()..end)
        });
        let mut used_cue = None;
        let mut found = Vec::new();
        for date in dates {
            // Cues do not overlap, so both their starts and their ends are sorted.
            let before = cues
                .partition_point(|cue| cue.end <= date.start)
                .checked_sub(1)
                .filter(|&i| used_cue != Some(i))
                .filter(|&i| {
                    cues.get(i)
                        .and_then(|cue| text.get(cue.end..date.start))
                        .is_some_and(gap_joins)
                });
            let after = cues
                .get(cues.partition_point(|cue| cue.start < date.end))
                .and_then(|cue| text.get(date.end..cue.start))
                .is_some_and(|gap| gap.len() <= 3 && gap.chars().all(|c| " \t(:,-".contains(c)));
            if before.is_some() {
                used_cue = before;
            }
            if before.is_some() || after {
                found.push(Finding::new(PhiKind::DateOfBirth, date));
            }
        }
        found
    }
}

/// "birthday party", "birthday card": the cue names an event, not someone's birth.
fn names_an_event(text: &str, cue: &Range<usize>) -> bool {
    let after = text.get(cue.end..).unwrap_or_default().trim_start();
    let word: String = after
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_lowercase();
    is_one_of(BIRTHDAY_EVENTS, &word)
        || word
            .strip_suffix('s')
            .is_some_and(|w| is_one_of(BIRTHDAY_EVENTS, w))
}

/// Whether the text between a cue and a date keeps them together: short, and within one
/// sentence (a line break only when nothing but punctuation is in between, as in forms).
fn gap_joins(gap: &str) -> bool {
    if gap.len() > MAX_GAP_AFTER_CUE || gap.contains([';', '!', '?']) {
        return false;
    }
    if gap.contains('\n') && gap.chars().any(char::is_alphanumeric) {
        return false;
    }
    let other_event = gap
        .split(|c: char| !c.is_alphabetic())
        .any(|word| is_one_of(OTHER_EVENTS, &word.to_lowercase()));
    if other_event {
        return false;
    }
    !ends_sentence(gap)
}

/// Whether `gap` contains a full stop ending a sentence: a `.` followed by white space
/// after a word longer than an abbreviation ("St.", "Dr.", "Mrs." do not count).
fn ends_sentence(gap: &str) -> bool {
    gap.match_indices(". ").any(|(dot, _)| {
        let word = gap[..dot]
            .rsplit(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default();
        word.len() > 3 || (!word.is_empty() && word.chars().all(|c| c.is_ascii_digit()))
    })
}

/// Whether the parts captured by the date pattern make a calendar date.
fn valid_date(caps: &Captures<'_>) -> bool {
    let num = |name: &str| caps.name(name).and_then(|m| m.as_str().parse::<u32>().ok());
    let same =
        |a: &str, b: &str| caps.name(a).map(|m| m.as_str()) == caps.name(b).map(|m| m.as_str());
    let day = |name: &str| num(name).is_some_and(|d| (1..=31).contains(&d));
    let month = |name: &str| num(name).is_some_and(|m| (1..=12).contains(&m));
    // Two-digit years cannot be checked; four-digit ones must fit a living person.
    let year = |name: &str| {
        caps.name(name).is_some_and(|y| {
            y.as_str().len() == 2 || y.as_str().parse().is_ok_and(|y| (1880..=2099).contains(&y))
        })
    };
    if caps.name("a").is_some() {
        // Month first (US) or day first (most elsewhere): either reading will do.
        let calendar = month("a") && day("b") || month("b") && day("a");
        return same("s1", "s2") && year("y") && calendar;
    }
    if caps.name("iy").is_some() {
        return same("s3", "s4") && year("iy") && month("im") && day("id");
    }
    if caps.name("m1").is_some() {
        return day("d1") && year("y1");
    }
    if caps.name("m3").is_some() {
        return same("s5", "s6") && day("d3") && year("y3");
    }
    day("d2") && year("y2")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        DateOfBirthRule::new()
            .detect(text)
            .iter()
            .filter_map(|f| f.value(text))
            .collect()
    }

    #[test]
    fn finds_dates_after_a_cue_in_every_format() {
        for date in [
            "03/14/1985",
            "3/14/85",
            "14.03.1985",
            "1985-03-14",
            "March 14, 1985",
            "Mar. 14 1985",
            "14 Mar 1985",
            "14th of March, 1985",
        ] {
            assert_eq!(found(&format!("Patient DOB: {date}, seen today")), [date]);
        }
        assert_eq!(found("date of birth 1990/07/04"), ["1990/07/04"]);
        assert_eq!(
            found("she was born in Dayton, Ohio on 2 May 1979"),
            ["2 May 1979"]
        );
        assert_eq!(found("d.o.b. 12-01-1960"), ["12-01-1960"]);
        assert_eq!(found("Name: J. Roe\nDOB:\n07/04/1971"), ["07/04/1971"]);
        assert_eq!(found("J. Roe, 07/04/1971 (DOB)"), ["07/04/1971"]);
        assert_eq!(found("DOB 14-MAR-85"), ["14-MAR-85"]);
        assert_eq!(
            found(r#"{"birthDate": "1985-03-14T00:00:00Z"}"#),
            ["1985-03-14"]
        );
        assert_eq!(found("patient_dob=1958-02-17"), ["1958-02-17"]);
    }

    #[test]
    fn only_the_first_date_after_a_cue() {
        assert_eq!(
            found("DOB 03/14/1985, admitted 04/02/2024, discharged 04/09/2024"),
            ["03/14/1985"]
        );
    }

    #[test]
    fn ignores_dates_without_a_birth_cue() {
        for text in [
            "Meeting moved to 03/14/2025.",
            "Release 2.4 ships on 2025-06-01",
            "born in Texas. The hearing is on March 3, 2025",
            "The firstborn was seen 04/02/2024",
            "birthday party on 06/12/2025",
            "DOB unknown; visit 13/13/2020",
            "DOB: 02/30/1985x",
            "born 1985",
            "Born in the USA was released 06/04/1984",
            "born in Ohio, admitted 04/02/2024",
            "DOB 1985-13-01",
            "DOB 03/14-1985",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }
}
