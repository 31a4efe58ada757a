//! Runs every detector over a prompt, reconciles what they found, and applies the tenant's
//! policy: the single entry point the request path calls before a prompt goes to a model.

use std::{collections::BTreeMap, fmt, sync::Arc};

use thiserror::Error;

use super::{
    Detector, Finding, PatternDetector, PhiKind, PhiPolicy, Redactions,
    redact::{bracketed, map_strings, strings},
};

/// The detectors to run on each prompt. Cheap to clone (detectors are shared).
#[derive(Clone)]
pub struct PhiGuard {
    /// Every detector, run in order; their findings are merged.
    detectors: Vec<Arc<dyn Detector>>,
}

impl PhiGuard {
    /// A guard running `detectors` (none: nothing is ever found).
    pub fn new(detectors: Vec<Arc<dyn Detector>>) -> Self {
        Self { detectors }
    }

    /// The same guard with one more detector (e.g. a model-based one).
    pub fn with(mut self, detector: Arc<dyn Detector>) -> Self {
        self.detectors.push(detector);
        self
    }

    /// Everything the detectors found in `text`, sorted by start, without overlaps: where
    /// spans overlap the longest one is kept (ties: the earlier, then the first kind in
    /// [`PhiKind`] order). Spans that do not fit `text` are dropped.
    pub fn detect(&self, text: &str) -> Vec<Finding> {
        let findings = self
            .detectors
            .iter()
            .flat_map(|detector| detector.detect(text))
            .filter(|finding| {
                let fits = !finding.is_empty() && finding.value(text).is_some();
                if !fits {
                    tracing::warn!(
                        start = finding.start,
                        end = finding.end,
                        "PHI detector reported a span outside the text; ignored"
                    );
                }
                fits
            })
            .collect();
        merge(findings)
    }

    /// Applies `policy` to `text`.
    ///
    /// # Errors
    /// [`PhiRefused`] when the policy is [`PhiPolicy::Refuse`] and anything was found.
    pub fn apply(&self, policy: PhiPolicy, text: &str) -> Result<Guarded, PhiRefused> {
        let findings = self.detect(text);
        match policy {
            PhiPolicy::Refuse if !findings.is_empty() => Err(PhiRefused {
                kinds: distinct_kinds(&findings),
            }),
            PhiPolicy::Allow | PhiPolicy::Refuse => Ok(Guarded {
                text: text.to_owned(),
                findings,
                redactions: Redactions::default(),
            }),
            PhiPolicy::Redact => {
                let (redacted, redactions) = Redactions::redact(text, &findings);
                Ok(Guarded {
                    text: redacted,
                    findings,
                    redactions,
                })
            }
        }
    }

    /// Applies `policy` to the strings of a JSON value (and its object keys), read as
    /// decoded text: an escape such as `\u0040` cannot hide a value from the detectors,
    /// and the redacted value is still valid JSON of the same shape. Placeholders are
    /// numbered across the whole value.
    ///
    /// # Errors
    /// [`PhiRefused`] when the policy is [`PhiPolicy::Refuse`] and anything was found.
    pub fn apply_json(
        &self,
        policy: PhiPolicy,
        value: &serde_json::Value,
    ) -> Result<GuardedValue, PhiRefused> {
        let texts = strings(value);
        let findings: Vec<Vec<Finding>> = texts.iter().map(|text| self.detect(text)).collect();
        let kinds = distinct_kinds(&findings.concat());
        if kinds.is_empty() || policy == PhiPolicy::Allow {
            return Ok(GuardedValue {
                value: value.clone(),
                kinds,
                redactions: Redactions::default(),
            });
        }
        if policy == PhiPolicy::Refuse {
            return Err(PhiRefused { kinds });
        }
        let literal = texts.iter().flat_map(|text| bracketed(text)).collect();
        let mut redactions = Redactions::default();
        let mut found = texts.iter().copied().zip(findings);
        let redacted = map_strings(value, &mut |text| match found.next() {
            // Both walks visit the strings in the same order.
            Some((seen, findings)) if seen == text => {
                redactions.redact_more(text, &findings, &literal)
            }
            _ => text.to_owned(),
        });
        Ok(GuardedValue {
            value: redacted,
            kinds,
            redactions,
        })
    }
}

/// A JSON value that may be sent, and what was found in it.
pub struct GuardedValue {
    /// The value to send: the original, or the redacted one.
    pub value: serde_json::Value,
    /// The distinct kinds found, in [`PhiKind`] order.
    pub kinds: Vec<PhiKind>,
    /// Placeholders to restore in the answer (empty unless redacted).
    pub redactions: Redactions,
}

impl fmt::Debug for GuardedValue {
    /// Kinds only: the value may still hold what was found (policy `allow`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedValue")
            .field("kinds", &self.kinds)
            .field("redactions", &self.redactions)
            .finish_non_exhaustive()
    }
}

impl Default for PhiGuard {
    /// A guard with the rule-based [`PatternDetector`].
    fn default() -> Self {
        Self::new(vec![Arc::new(PatternDetector::new())])
    }
}

impl fmt::Debug for PhiGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhiGuard")
            .field("detectors", &self.detectors.len())
            .finish()
    }
}

/// A prompt that may be sent, and what was found in it.
pub struct Guarded {
    /// The text to send: the original, or the redacted one.
    text: String,
    /// What was found, as byte spans of the original text.
    findings: Vec<Finding>,
    /// Placeholders to restore in the answer (empty unless redacted).
    redactions: Redactions,
}

impl Guarded {
    /// The text to send to the model.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What was found, sorted by start, as spans of the *original* text (not of
    /// [`text`](Self::text) when it was redacted).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The distinct kinds found, in [`PhiKind`] order.
    pub fn kinds(&self) -> Vec<PhiKind> {
        distinct_kinds(&self.findings)
    }

    /// How many values were found.
    pub fn count(&self) -> usize {
        self.findings.len()
    }

    /// Whether anything was found (the audit event's `phi` flag).
    pub fn phi_detected(&self) -> bool {
        !self.findings.is_empty()
    }

    /// The placeholders used, to [`restore`](Redactions::restore) the model's answer.
    pub fn redactions(&self) -> &Redactions {
        &self.redactions
    }

    /// The text to send and the redactions, for callers that hand them to different
    /// places (the model client and the answer path).
    pub fn into_parts(self) -> (String, Redactions) {
        (self.text, self.redactions)
    }
}

impl fmt::Debug for Guarded {
    /// Kinds and count only: the text may still hold the values (policy `allow`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("kinds", &self.kinds())
            .field("count", &self.count())
            .field("redactions", &self.redactions)
            .finish_non_exhaustive()
    }
}

/// The tenant's policy refuses prompts with protected information, and some was found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the prompt contains protected information ({}) and the tenant's policy refuses it", kind_list(.kinds))]
pub struct PhiRefused {
    /// The kinds found, distinct, in [`PhiKind`] order (never the values).
    pub kinds: Vec<PhiKind>,
}

fn kind_list(kinds: &[PhiKind]) -> String {
    kinds
        .iter()
        .map(|kind| kind.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn distinct_kinds(findings: &[Finding]) -> Vec<PhiKind> {
    let mut kinds: Vec<_> = findings.iter().map(|finding| finding.kind).collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Keeps the longest of overlapping spans, greedily from the longest down; returns the
/// survivors by start.
fn merge(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by(|a, b| {
        b.len()
            .cmp(&a.len())
            .then(a.start.cmp(&b.start))
            .then(a.kind.cmp(&b.kind))
    });
    let mut kept: BTreeMap<usize, Finding> = BTreeMap::new();
    for finding in findings {
        // Kept spans are disjoint, so the one starting last before our end is the only
        // one that can reach into us.
        let clash = kept
            .range(..finding.end)
            .next_back()
            .is_some_and(|(_, before)| before.overlaps(&finding));
        if !clash {
            kept.insert(finding.start, finding);
        }
    }
    kept.into_values().collect()
}
