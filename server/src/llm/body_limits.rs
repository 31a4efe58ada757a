//! Bounds on what a provider may send back: a provider is an address a tenant chose, so
//! nothing it answers may hold the server's memory without limit. Whole answers
//! (embeddings, refusals, tokens) are read up to a size; streamed answers may not hold an
//! event (a blank-line-separated block) or a line longer than [`MAX_EVENT_BYTES`].

use reqwest::Response;
use serde::de::DeserializeOwned;
use tokio_stream::{Stream, StreamExt};

use super::LlmError;

/// Largest whole answer read (embeddings of a large batch fit).
pub const MAX_BODY_BYTES: usize = 32 << 20;
/// Largest refusal or token answer read.
pub const MAX_SMALL_BODY_BYTES: usize = 64 << 10;
/// Largest event or line of a streamed answer.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// The JSON of `response`'s body, read up to `max` bytes.
///
/// # Errors
/// [`LlmError::Protocol`] for a longer body or one that is not JSON of type `T`,
/// [`LlmError::Unreachable`] when reading fails.
pub async fn json<T: DeserializeOwned>(response: Response, max: usize) -> Result<T, LlmError> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|err| LlmError::Unreachable(err.without_url().to_string()))?;
        if body.len() + chunk.len() > max {
            return Err(LlmError::Protocol(format!(
                "the provider's answer is larger than {max} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|err| LlmError::Protocol(err.to_string()))
}

/// `response`'s body as a stream of chunks that ends with an error once an event (bytes
/// between blank lines) grows past [`MAX_EVENT_BYTES`].
pub fn bounded_stream(
    response: Response,
) -> impl Stream<Item = Result<prost::bytes::Bytes, std::io::Error>> {
    let mut since_blank = 0usize;
    let mut last = 0u8;
    response.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        for &byte in chunk.iter() {
            match byte {
                b'\r' => continue,
                b'\n' if last == b'\n' => since_blank = 0,
                _ => since_blank += 1,
            }
            last = byte;
            if since_blank > MAX_EVENT_BYTES {
                return Err(std::io::Error::other(format!(
                    "an event of the provider's stream is longer than {MAX_EVENT_BYTES} bytes"
                )));
            }
        }
        Ok(chunk)
    })
}
