//! The guard as callers see it: merging findings from several detectors, and each policy.

use std::sync::Arc;

use super::*;

/// Reports fixed spans, whatever the text.
struct Fixed(Vec<Finding>);

impl Detector for Fixed {
    fn detect(&self, _text: &str) -> Vec<Finding> {
        self.0.clone()
    }
}

/// Reports every occurrence of a word, like a model tagging a name would.
struct Word(&'static str);

impl Detector for Word {
    fn detect(&self, text: &str) -> Vec<Finding> {
        text.match_indices(self.0)
            .map(|(start, word)| Finding::new(PhiKind::Mrn, start..start + word.len()))
            .collect()
    }
}

fn fixed(spans: &[(PhiKind, std::ops::Range<usize>)]) -> Arc<dyn Detector> {
    Arc::new(Fixed(
        spans
            .iter()
            .map(|(kind, range)| Finding::new(*kind, range.clone()))
            .collect(),
    ))
}

#[test]
fn the_guard_can_be_shared_across_tasks() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<PhiGuard>();
}

#[test]
fn merging_keeps_the_longest_of_overlapping_spans_in_order() {
    let text = "0123456789abcdefghij";
    let guard = PhiGuard::new(vec![
        fixed(&[(PhiKind::Phone, 2..6), (PhiKind::Email, 12..14)]),
        fixed(&[(PhiKind::Ssn, 0..3), (PhiKind::Address, 4..10)]),
        fixed(&[(PhiKind::Mrn, 12..14), (PhiKind::Ssn, 15..20)]),
    ]);
    let kept: Vec<_> = guard
        .detect(text)
        .iter()
        .map(|f| (f.kind, f.range()))
        .collect();
    assert_eq!(
        kept,
        [
            (PhiKind::Ssn, 0..3),
            (PhiKind::Address, 4..10),
            (PhiKind::Email, 12..14),
            (PhiKind::Ssn, 15..20),
        ]
    );
}

#[test]
fn merging_drops_spans_outside_the_text() {
    let guard = PhiGuard::new(vec![fixed(&[
        (PhiKind::Ssn, 0..99),
        (PhiKind::Ssn, 1..2),
        (PhiKind::Ssn, 3..3),
        (PhiKind::Email, 3..5),
    ])]);
    let kept: Vec<_> = guard
        .detect("né abc")
        .iter()
        .map(|f| (f.start, f.end))
        .collect();
    assert_eq!(kept, [(3, 5)]);
}

#[test]
fn a_second_detector_adds_to_the_patterns() {
    let guard = PhiGuard::default().with(Arc::new(Word("Zorblax")));
    let text = "Zorblax (SSN 123-45-6789) wrote to zorb@example.com";
    let kinds: Vec<_> = guard.detect(text).iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [PhiKind::Mrn, PhiKind::Ssn, PhiKind::Email]);
}

#[test]
fn allow_passes_the_text_and_reports_findings() {
    let text = "Reach me at jane.roe@example.com or 555-201-7788.";
    let guarded = PhiGuard::default().apply(PhiPolicy::Allow, text).unwrap();
    assert_eq!(guarded.text(), text);
    assert!(guarded.phi_detected());
    assert_eq!(guarded.count(), 2);
    assert_eq!(guarded.kinds(), [PhiKind::Phone, PhiKind::Email]);
    assert!(guarded.redactions().is_empty());
}

#[test]
fn redact_then_restore_round_trips() {
    let text = "SSN 123-45-6789; email ann@example.org, again ann@example.org, \
                and bob@example.org.";
    let guarded = PhiGuard::default().apply(PhiPolicy::Redact, text).unwrap();
    assert_eq!(
        guarded.text(),
        "SSN [SSN_1]; email [EMAIL_1], again [EMAIL_1], and [EMAIL_2]."
    );
    assert_eq!(guarded.count(), 4);
    let answer = "Noted [EMAIL_1] and [EMAIL_2] (SSN [SSN_1]); unknown [SSN_7].";
    let (_, redactions) = guarded.into_parts();
    assert_eq!(
        redactions.restore(answer),
        "Noted ann@example.org and bob@example.org (SSN 123-45-6789); unknown [SSN_7]."
    );
}

#[test]
fn redact_without_findings_changes_nothing() {
    let text = "Release 1.2.3 ships 2025-06-01.";
    let guarded = PhiGuard::default().apply(PhiPolicy::Redact, text).unwrap();
    assert_eq!(guarded.text(), text);
    assert!(!guarded.phi_detected());
    assert_eq!(guarded.redactions().restore("[EMAIL_1]"), "[EMAIL_1]");
}

#[test]
fn refuse_names_kinds_never_values() {
    let text = "card 4111 1111 1111 1111, DOB 03/14/1985, card 4111 1111 1111 1111";
    let refused = PhiGuard::default()
        .apply(PhiPolicy::Refuse, text)
        .unwrap_err();
    assert_eq!(refused.kinds, [PhiKind::DateOfBirth, PhiKind::CreditCard]);
    let message = refused.to_string();
    assert!(message.contains("date_of_birth, credit_card"), "{message}");
    assert!(
        !message.contains("4111") && !message.contains("1985"),
        "{message}"
    );
}

#[test]
fn refuse_lets_clean_text_through() {
    let text = "How do I rotate the API key?";
    let guarded = PhiGuard::default().apply(PhiPolicy::Refuse, text).unwrap();
    assert_eq!(guarded.text(), text);
    assert!(!guarded.phi_detected());
}

#[test]
fn debug_output_hides_values() {
    let text = "ann@example.org";
    let guard = PhiGuard::default();
    for policy in [PhiPolicy::Allow, PhiPolicy::Redact] {
        let debug = format!("{:?}", guard.apply(policy, text).unwrap());
        assert!(!debug.contains("ann@"), "{debug}");
        assert!(debug.contains("Email"), "{debug}");
    }
}

/// Texts glued together from PHI, look-alikes, brackets and multi-byte characters, from a
/// fixed-seed generator (reproducible, no extra crate).
fn generated_texts() -> impl Iterator<Item = String> {
    const PIECES: &[&str] = &[
        "DOB 03/14/1985",
        "née ",
        "✓",
        " ",
        "\n",
        "[EMAIL_1]",
        "[",
        "]",
        "SSN ",
        "123-45-6789",
        "4111 1111 1111 1111",
        "a@example.com",
        "+44 20 7946 0958",
        "(555) 123-4567",
        "MRN ",
        "A1234567",
        "42 Elm Street",
        ", Springfield, IL 62704",
        "born ",
        "1.2.3",
        "-",
        ".",
        "日本語",
        "P.O. Box 7",
        "0",
        "9",
        "x",
        "'",
        "\"",
        "#",
        "St",
        "March 14, 1985",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..500).map(move |_| {
        let len = next() % 24;
        (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect()
    })
}

#[test]
fn arbitrary_text_gives_ordered_spans_and_round_trips() {
    let guard = PhiGuard::default();
    for text in generated_texts() {
        let findings = guard.detect(&text);
        for pair in findings.windows(2) {
            assert!(pair[0].end <= pair[1].start, "{text:?}: {findings:?}");
        }
        assert!(findings.iter().all(|f| f.value(&text).is_some()));
        let (redacted, redactions) = guard.apply(PhiPolicy::Redact, &text).unwrap().into_parts();
        assert_eq!(redactions.restore(&redacted), text);
    }
}

#[test]
fn json_is_read_decoded_so_escapes_hide_nothing() {
    let guard = PhiGuard::default();
    let written = r#"{"to": "jane.doe\u0040example.org", "n": 3}"#;
    assert!(
        guard.detect(written).is_empty(),
        "the escape hides it from a text scan"
    );
    let value: serde_json::Value = serde_json::from_str(written).unwrap();
    let refused = guard.apply_json(PhiPolicy::Refuse, &value).unwrap_err();
    assert_eq!(refused.kinds, [PhiKind::Email]);
}

#[test]
fn json_redaction_keeps_the_shape_and_numbers_across_strings() {
    let guard = PhiGuard::default();
    let value = serde_json::json!({
        "to": "a@x.org",
        "cc": ["b@x.org", "a@x.org"],
        "literal": "[EMAIL_1]",
        "count": 2,
    });
    let guarded = guard.apply_json(PhiPolicy::Redact, &value).unwrap();
    assert_eq!(guarded.kinds, [PhiKind::Email]);
    let redacted = &guarded.value;
    let (a, b) = (
        redacted["to"].as_str().unwrap(),
        redacted["cc"][0].as_str().unwrap(),
    );
    assert_eq!(
        redacted["cc"][1], a,
        "one value, one placeholder across strings"
    );
    assert_ne!(a, b);
    for placeholder in [a, b] {
        assert!(
            placeholder == "[EMAIL_2]" || placeholder == "[EMAIL_3]",
            "{placeholder}"
        );
    }
    assert_eq!(redacted["literal"], "[EMAIL_1]");
    assert_eq!(redacted["count"], 2);
    let answer = serde_json::json!({ "sent": [a, format!("{b} \"quoted\"")] });
    assert_eq!(
        guarded.redactions.restore_json(&answer),
        serde_json::json!({ "sent": ["a@x.org", "b@x.org \"quoted\""] })
    );
}

#[test]
fn json_without_findings_passes_under_every_policy() {
    let guard = PhiGuard::default();
    let value = serde_json::json!({ "city": "the clinic's cafeteria", "floor": 3 });
    for policy in [PhiPolicy::Allow, PhiPolicy::Redact, PhiPolicy::Refuse] {
        let guarded = guard.apply_json(policy, &value).unwrap();
        assert_eq!(guarded.value, value);
        assert!(guarded.kinds.is_empty());
    }
}
