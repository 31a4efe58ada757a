//! Putting redacted values back into a reply that arrives in pieces: a placeholder such
//! as `[EMAIL_1]` may be split across two deltas, so text from an unclosed `[` on is held
//! back until the bracket closes (or grows too long to be a placeholder).

use crate::privacy::Redactions;

/// Longest run held back waiting for a `]`.
const MAX_PENDING: usize = 64;

/// Restores placeholders in a streamed reply.
#[derive(Debug)]
pub struct Restorer<'r> {
    redactions: &'r Redactions,
    pending: String,
}

impl<'r> Restorer<'r> {
    /// Restores with `redactions`.
    pub fn new(redactions: &'r Redactions) -> Self {
        Self {
            redactions,
            pending: String::new(),
        }
    }

    /// The text of `delta` that can be shown now, placeholders restored.
    pub fn push(&mut self, delta: &str) -> String {
        self.pending.push_str(delta);
        let cut = match self.pending.rfind('[') {
            Some(open)
                if !self.pending[open..].contains(']')
                    && self.pending.len() - open < MAX_PENDING =>
            {
                open
            }
            _ => self.pending.len(),
        };
        let ready: String = self.pending.drain(..cut).collect();
        self.redactions.restore(&ready)
    }

    /// Whatever is still held back, restored.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        self.redactions.restore(&rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::{PhiGuard, PhiPolicy};

    #[test]
    fn a_placeholder_split_across_deltas_is_restored_whole() {
        let guarded = PhiGuard::default()
            .apply(PhiPolicy::Redact, "write to jane.roe@example.com today")
            .unwrap();
        let placeholder = guarded.text().split_whitespace().nth(2).unwrap().to_owned();
        assert!(placeholder.starts_with('['), "{placeholder}");
        let (head, tail) = placeholder.split_at(4);
        let mut restorer = Restorer::new(guarded.redactions());
        let mut shown = restorer.push("Sure, I wrote to ");
        shown += &restorer.push(head);
        assert!(!shown.contains('['), "held back: {shown}");
        shown += &restorer.push(tail);
        shown += &restorer.push(" [not a placeholder] and [open");
        shown += &restorer.finish();
        assert_eq!(
            shown,
            "Sure, I wrote to jane.roe@example.com [not a placeholder] and [open"
        );
    }
}
