//! The HTTP client identity provider calls go through: the policy-checked `reqwest`
//! client, with every answer (discovery documents, key sets, token responses) read only up
//! to [`MAX_ANSWER_BYTES`]. A provider is an address a tenant chose: it may not make the
//! server hold an answer without limit.

use openidconnect::{HttpRequest, HttpResponse};
use tokio_stream::StreamExt;

/// Largest answer read from an identity provider.
pub(super) const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Why a call to an identity provider failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum BoundedHttpError {
    /// Sending or reading failed (the URL is left out: it is the provider's).
    #[error("{0}")]
    Transport(String),
    /// The answer is larger than [`MAX_ANSWER_BYTES`].
    #[error("the identity provider's answer is larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
}

/// Sends `request` with `http` and reads the answer up to [`MAX_ANSWER_BYTES`].
///
/// # Errors
/// [`BoundedHttpError`] when sending or reading fails or the answer is too large.
pub(super) async fn call(
    http: reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, BoundedHttpError> {
    let (parts, body) = request.into_parts();
    let transport =
        |err: reqwest::Error| BoundedHttpError::Transport(err.without_url().to_string());
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(transport)?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut answer = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(transport)?;
        if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(BoundedHttpError::TooLarge);
        }
        answer.extend_from_slice(&chunk);
    }
    let mut response = HttpResponse::new(answer);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}
