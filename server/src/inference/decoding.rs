//! Turning a model's outputs into text: picking each token (greedy, or a seeded draw from
//! the nucleus) and releasing the decoded text as deltas that never split a character or
//! show the start of a stop string.

/// How to generate: the caller's choice of sampling and where to stop.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0: greedy.
    pub temperature: f32,
    /// Nucleus: the smallest set of tokens whose probabilities reach this.
    pub top_p: f32,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Generation stops before any of these.
    pub stop: Vec<String>,
    /// Makes sampling repeatable.
    pub seed: Option<u64>,
}

/// Text decoded so far, released as deltas: held back while it ends in an incomplete
/// character or could be the start of a stop string, and cut at a stop string.
pub(super) struct Decoded<'s> {
    stop: &'s [String],
    sent: usize,
    text: String,
}

impl<'s> Decoded<'s> {
    pub(super) fn new(stop: &'s [String]) -> Self {
        Self {
            stop,
            sent: 0,
            text: String::new(),
        }
    }

    /// Takes the whole decoded text so far; returns what may be sent now and whether a
    /// stop string was reached.
    pub(super) fn advance(&mut self, text: &str) -> (String, bool) {
        text.clone_into(&mut self.text);
        if let Some(at) = self
            .stop
            .iter()
            .filter_map(|s| self.text.find(s.as_str()))
            .min()
        {
            self.text.truncate(at);
            return (self.release(self.text.len()), true);
        }
        // An incomplete character decodes as U+FFFD until its last byte arrives.
        let mut safe = self.text.trim_end_matches('\u{fffd}').len();
        for stop in self.stop {
            for cut in (1..stop.len()).rev() {
                if stop.is_char_boundary(cut) && self.text[..safe].ends_with(&stop[..cut]) {
                    safe -= cut;
                    break;
                }
            }
        }
        (self.release(safe), false)
    }

    /// What is left to send at the end.
    pub(super) fn finish(&mut self) -> String {
        let end = self.text.trim_end_matches('\u{fffd}').len();
        self.release(end)
    }

    fn release(&mut self, upto: usize) -> String {
        if upto <= self.sent || !self.text.is_char_boundary(upto) {
            return String::new();
        }
        let delta = self.text[self.sent..upto].to_owned();
        self.sent = upto;
        delta
    }
}

/// Picks tokens: the most likely one at temperature 0, else a draw from the nucleus.
pub(super) struct Sampler {
    temperature: f32,
    top_p: f32,
    state: u64,
}

impl Sampler {
    pub(super) fn new(sampling: &Sampling) -> Self {
        let seed = sampling.seed.unwrap_or_else(|| {
            crate::random::random_bytes::<8>().map_or(0x9e37_79b9_7f4a_7c15, u64::from_le_bytes)
        });
        Self {
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            state: seed,
        }
    }

    pub(super) fn next(&mut self, logits: &[f32]) -> u32 {
        let best = || {
            logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i)
        };
        if self.temperature <= 0.0 {
            return u32::try_from(best()).unwrap_or(0);
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut weighted: Vec<(usize, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i, ((l - max) / self.temperature).exp()))
            .collect();
        let total: f32 = weighted.iter().map(|(_, w)| w).sum();
        weighted.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut kept = 0.0;
        let mut nucleus = Vec::new();
        for (i, w) in weighted {
            nucleus.push((i, w));
            kept += w / total;
            if kept >= self.top_p {
                break;
            }
        }
        let mass: f32 = nucleus.iter().map(|(_, w)| w).sum();
        #[allow(clippy::cast_precision_loss)]
        let mut target = (self.uniform() as f32) * mass;
        for (i, w) in &nucleus {
            target -= w;
            if target <= 0.0 {
                return u32::try_from(*i).unwrap_or(0);
            }
        }
        u32::try_from(nucleus.last().map_or_else(best, |(i, _)| *i)).unwrap_or(0)
    }

    /// SplitMix64: a uniform draw in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        #[allow(clippy::cast_precision_loss)]
        let draw = (z >> 11) as f64 / (1u64 << 53) as f64;
        draw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_held_back_at_a_possible_stop_and_cut_at_a_real_one() {
        let stop = vec!["END".to_owned()];
        let mut decoded = Decoded::new(&stop);
        assert_eq!(decoded.advance("Hello E"), ("Hello ".to_owned(), false));
        assert_eq!(decoded.advance("Hello EN"), (String::new(), false));
        assert_eq!(decoded.advance("Hello ENX"), ("ENX".to_owned(), false));
        assert_eq!(
            decoded.advance("Hello ENX caf\u{fffd}"),
            (" caf".to_owned(), false)
        );
        assert_eq!(
            decoded.advance("Hello ENX café END more"),
            ("é ".to_owned(), true)
        );
    }

    #[test]
    fn sampling_is_greedy_at_zero_and_repeatable_with_a_seed() {
        let logits = [0.1, 2.0, 1.9, -1.0];
        let greedy = Sampling {
            temperature: 0.0,
            top_p: 1.0,
            max_tokens: 1,
            stop: Vec::new(),
            seed: None,
        };
        assert_eq!(Sampler::new(&greedy).next(&logits), 1);
        let seeded = Sampling {
            temperature: 1.0,
            seed: Some(42),
            ..greedy.clone()
        };
        let draws = |s: &Sampling| {
            let mut sampler = Sampler::new(s);
            (0..32).map(|_| sampler.next(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draws(&seeded), draws(&seeded));
        assert!(draws(&seeded).iter().all(|&t| t < 4));
        let narrow = Sampling {
            top_p: 0.1,
            ..seeded
        };
        assert!(
            draws(&narrow).iter().all(|&t| t == 1),
            "the nucleus is the best token"
        );
    }
}
