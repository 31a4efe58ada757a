//! What a detector reports: a kind of identifier and where it is, never the value itself,
//! so findings can be logged, counted and audited without leaking what they point at.

use std::{fmt, ops::Range};

/// A kind of protected information.
///
/// The declaration order is also the tie-break when two detectors report the same span
/// with different kinds, so merging stays deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhiKind {
    /// A US Social Security number.
    Ssn,
    /// A telephone number (US or international).
    Phone,
    /// An email address.
    Email,
    /// A date given as someone's date of birth.
    DateOfBirth,
    /// A medical record number or patient identifier.
    Mrn,
    /// A payment card number (Luhn-valid).
    CreditCard,
    /// A street address or post-office box.
    Address,
}

impl PhiKind {
    /// Every kind, in declaration order.
    pub const ALL: [PhiKind; 7] = [
        PhiKind::Ssn,
        PhiKind::Phone,
        PhiKind::Email,
        PhiKind::DateOfBirth,
        PhiKind::Mrn,
        PhiKind::CreditCard,
        PhiKind::Address,
    ];

    /// The stable name of the kind (used in audit details, metrics and errors).
    pub fn as_str(self) -> &'static str {
        match self {
            PhiKind::Ssn => "ssn",
            PhiKind::Phone => "phone",
            PhiKind::Email => "email",
            PhiKind::DateOfBirth => "date_of_birth",
            PhiKind::Mrn => "mrn",
            PhiKind::CreditCard => "credit_card",
            PhiKind::Address => "address",
        }
    }

    /// The label used in redaction placeholders (`[EMAIL_1]`).
    pub fn placeholder_label(self) -> &'static str {
        match self {
            PhiKind::Ssn => "SSN",
            PhiKind::Phone => "PHONE",
            PhiKind::Email => "EMAIL",
            PhiKind::DateOfBirth => "DATE_OF_BIRTH",
            PhiKind::Mrn => "MRN",
            PhiKind::CreditCard => "CREDIT_CARD",
            PhiKind::Address => "ADDRESS",
        }
    }
}

impl fmt::Display for PhiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of protected information found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Finding {
    /// What was found.
    pub kind: PhiKind,
    /// Byte offset of the first byte of the value (on a char boundary).
    pub start: usize,
    /// Byte offset just past the value (on a char boundary).
    pub end: usize,
}

impl Finding {
    /// A finding of `kind` over `range`.
    pub fn new(kind: PhiKind, range: Range<usize>) -> Self {
        Self {
            kind,
            start: range.start,
            end: range.end,
        }
    }

    /// The byte range of the value.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// Length of the value in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span is empty (detectors should never report one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value in `text`, or `None` when the span does not fit `text` (out of bounds or
    /// not on char boundaries).
    pub fn value<'t>(&self, text: &'t str) -> Option<&'t str> {
        text.get(self.range())
    }

    /// Whether the two spans share at least one byte.
    pub fn overlaps(&self, other: &Finding) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Something that finds protected information in text.
///
/// Implementations must be cheap to call repeatedly (compile patterns or load models once,
/// up front) and must report spans on char boundaries of `text`. Findings may overlap and
/// come in any order: [`PhiGuard`](super::PhiGuard) merges them.
pub trait Detector: Send + Sync {
    /// Every piece of protected information found in `text`.
    fn detect(&self, text: &str) -> Vec<Finding>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_stable_and_distinct() {
        let names: Vec<_> = PhiKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "ssn",
                "phone",
                "email",
                "date_of_birth",
                "mrn",
                "credit_card",
                "address"
            ]
        );
        assert_eq!(PhiKind::CreditCard.to_string(), "credit_card");
    }

    #[test]
    fn value_is_none_for_spans_that_do_not_fit() {
        let text = "né 42";
        assert_eq!(Finding::new(PhiKind::Mrn, 4..6).value(text), Some("42"));
        assert_eq!(Finding::new(PhiKind::Mrn, 2..4).value(text), None);
        assert_eq!(Finding::new(PhiKind::Mrn, 4..60).value(text), None);
    }

    #[test]
    fn overlap_is_strict() {
        let a = Finding::new(PhiKind::Ssn, 0..5);
        assert!(a.overlaps(&Finding::new(PhiKind::Ssn, 4..9)));
        assert!(!a.overlaps(&Finding::new(PhiKind::Ssn, 5..9)));
    }
}
