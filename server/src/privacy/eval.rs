//! Quality floor of the default guard, measured on labelled samples of realistic prompts
//! (clinical, legal, finance and developer chat, with tricky negatives):
//!
//! - `phi_sample.tsv`, written together with the detector;
//! - `phi_holdout.tsv`, a held-out sample written independently of the detector and of
//!   `phi_sample.tsv`, so its floors are the honest (lower) ones.
//!
//! Scoring is per span: a finding is a true positive when its kind matches a label and its
//! text equals the labelled value exactly. Run with `--nocapture` to see the tables and
//! every miss and false positive.

use std::collections::BTreeMap;

use super::{PhiGuard, PhiKind};

const SAMPLE: &str = include_str!("phi_sample.tsv");
const HOLDOUT: &str = include_str!("phi_holdout.tsv");

/// Overall floors of `phi_sample.tsv` (quality, not timing).
const MIN_PRECISION: f64 = 0.95;
const MIN_RECALL: f64 = 0.95;

/// Overall floors of `phi_holdout.tsv`: the measured values (precision 0.978, recall 0.957)
/// rounded down to 0.05.
const HOLDOUT_MIN_PRECISION: f64 = 0.95;
const HOLDOUT_MIN_RECALL: f64 = 0.95;

/// One line of the sample.
struct Case {
    line: usize,
    text: &'static str,
    expected: Vec<(PhiKind, &'static str)>,
}

/// True positives, false positives, false negatives.
#[derive(Default, Clone, Copy)]
struct Tally {
    tp: usize,
    fp: usize,
    missed: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.missed += other.missed;
    }

    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.missed)
    }
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        1.0
    } else {
        num as f64 / den as f64
    }
}

/// The kind named at the start of `s` (`email:...`) and the rest after the colon.
fn kind_prefix(s: &str) -> Option<(PhiKind, &str)> {
    PhiKind::ALL.iter().find_map(|kind| {
        let rest = s.strip_prefix(kind.as_str())?.strip_prefix(':')?;
        Some((*kind, rest))
    })
}

/// `kind:value,kind:value`; values may contain commas ("March 14, 1985"), so a comma
/// only separates labels when a kind name and a colon follow it.
fn parse_labels(line: usize, labels: &'static str) -> Vec<(PhiKind, &'static str)> {
    let mut parsed = Vec::new();
    let mut rest = labels;
    while !rest.is_empty() {
        let Some((kind, after)) = kind_prefix(rest) else {
            panic!("line {line}: label does not start with a kind: {rest:?}");
        };
        let end = after
            .match_indices(',')
            .map(|(i, _)| i)
            .find(|&i| kind_prefix(&after[i + 1..]).is_some())
            .unwrap_or(after.len());
        parsed.push((kind, &after[..end]));
        rest = after.get(end + 1..).unwrap_or_default();
    }
    parsed
}

fn load(name: &str, sample: &'static str) -> Vec<Case> {
    sample
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|(i, raw)| {
            let line = i + 1;
            let (text, labels) = raw
                .split_once('\t')
                .unwrap_or_else(|| panic!("{name} line {line}: no tab"));
            let expected = parse_labels(line, labels);
            for (kind, value) in &expected {
                assert!(
                    text.contains(value),
                    "{name} line {line}: {kind}:{value} not in text"
                );
            }
            Case {
                line,
                text,
                expected,
            }
        })
        .collect()
}

/// Runs the default guard over one sample file, prints its per-kind table and every miss
/// and false positive, and returns the overall tally.
fn evaluate(name: &str, sample: &'static str) -> Tally {
    let cases = load(name, sample);
    let negatives = cases.iter().filter(|c| c.expected.is_empty()).count();
    assert!(cases.len() >= 220, "{name} has {} cases", cases.len());
    assert!(
        negatives * 10 >= cases.len() * 4,
        "{name}: {negatives} negatives"
    );

    let guard = PhiGuard::default();
    let mut per_kind: BTreeMap<PhiKind, Tally> = BTreeMap::new();
    let mut misses = Vec::new();
    for case in &cases {
        let mut expected = case.expected.clone();
        for finding in guard.detect(case.text) {
            let value = finding.value(case.text).unwrap_or_default();
            let tally = per_kind.entry(finding.kind).or_default();
            match expected.iter().position(|e| *e == (finding.kind, value)) {
                Some(i) => {
                    expected.swap_remove(i);
                    tally.tp += 1;
                }
                None => {
                    tally.fp += 1;
                    misses.push(format!(
                        "line {}: unexpected {}:{value}",
                        case.line, finding.kind
                    ));
                }
            }
        }
        for (kind, value) in expected {
            per_kind.entry(kind).or_default().missed += 1;
            misses.push(format!("line {}: missed {kind}:{value}", case.line));
        }
    }

    let mut overall = Tally::default();
    println!(
        "{name}: {} cases ({negatives} without PHI)\n{:<14} {:>4} {:>4} {:>4} {:>9} {:>7}",
        cases.len(),
        "kind",
        "tp",
        "fp",
        "fn",
        "precision",
        "recall"
    );
    for (kind, tally) in &per_kind {
        overall.add(*tally);
        print_row(kind.as_str(), tally);
    }
    print_row("overall", &overall);
    for miss in &misses {
        println!("{name} {miss}");
    }
    overall
}

#[test]
fn labels_parse_with_commas_inside_values() {
    assert_eq!(
        parse_labels(1, "date_of_birth:March 14, 1985,ssn:123-45-6789"),
        [
            (PhiKind::DateOfBirth, "March 14, 1985"),
            (PhiKind::Ssn, "123-45-6789")
        ]
    );
    assert!(parse_labels(1, "").is_empty());
}

#[test]
fn guard_meets_the_quality_floor_on_the_sample() {
    let overall = evaluate("phi_sample.tsv", SAMPLE);
    assert!(
        overall.precision() >= MIN_PRECISION,
        "precision below floor"
    );
    assert!(overall.recall() >= MIN_RECALL, "recall below floor");
}

#[test]
fn guard_meets_the_quality_floor_on_the_holdout() {
    let overall = evaluate("phi_holdout.tsv", HOLDOUT);
    assert!(
        overall.precision() >= HOLDOUT_MIN_PRECISION,
        "held-out precision below floor"
    );
    assert!(
        overall.recall() >= HOLDOUT_MIN_RECALL,
        "held-out recall below floor"
    );
}

fn print_row(name: &str, tally: &Tally) {
    println!(
        "{name:<14} {:>4} {:>4} {:>4} {:>9.3} {:>7.3}",
        tally.tp,
        tally.fp,
        tally.missed,
        tally.precision(),
        tally.recall()
    );
}
