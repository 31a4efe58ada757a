//! Cutting a message into the chunks that are embedded as message memories.
//!
//! The embedding model reads at most 256 tokens, and one vector for a long text blurs what
//! it says, so messages are cut into windows of [`CHUNK_WORDS`] words (about 160 tokens of
//! English) that overlap by [`OVERLAP_WORDS`], so a sentence cut at one edge is whole in
//! the next chunk.

/// Words per chunk.
pub const CHUNK_WORDS: usize = 120;
/// Words each chunk repeats from the one before.
pub const OVERLAP_WORDS: usize = 20;
/// Chunks kept of one message; the rest of a longer text is not indexed.
pub const MAX_CHUNKS: usize = 32;

/// The chunks of `text`, in order; none for a text without words.
pub fn chunks(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < words.len() && chunks.len() < MAX_CHUNKS {
        let end = (start + CHUNK_WORDS).min(words.len());
        chunks.push(words[start..end].join(" "));
        if end == words.len() {
            break;
        }
        start = end - OVERLAP_WORDS;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_one_chunk_and_empty_ones_none() {
        assert_eq!(
            chunks("  Prefers   Rust\nover Go "),
            vec!["Prefers Rust over Go"]
        );
        assert!(chunks(" \n\t").is_empty());
    }

    #[test]
    fn long_texts_overlap_and_lose_no_word() {
        let text: Vec<String> = (0..300).map(|i| format!("w{i}")).collect();
        let cut = chunks(&text.join(" "));
        assert_eq!(cut.len(), 3);
        let first: Vec<&str> = cut[0].split(' ').collect();
        let second: Vec<&str> = cut[1].split(' ').collect();
        assert_eq!(first.len(), CHUNK_WORDS);
        assert_eq!(second[0], format!("w{}", CHUNK_WORDS - OVERLAP_WORDS));
        assert!(cut[2].ends_with("w299"));
    }

    #[test]
    fn very_long_texts_stop_at_the_chunk_limit() {
        let text = "word ".repeat(CHUNK_WORDS * (MAX_CHUNKS + 10));
        assert_eq!(chunks(&text).len(), MAX_CHUNKS);
    }
}
