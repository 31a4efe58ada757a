//! The MCP SDK's HTTP client port (`rmcp`'s `StreamableHttpClient`) on the server's own
//! HTTP client: every request goes through the egress policy's resolver, follows no
//! redirect, and reads at most [`MAX_RESPONSE_BYTES`] of any answer (SSE streams
//! included), so a plugin cannot make the server buffer without end.

use std::{borrow::Cow, collections::HashMap, sync::Arc};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use http::{HeaderName, HeaderValue, StatusCode, header};
use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::streamable_http_client::{
        SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    },
};
use sse_stream::{Sse, SseStream};

/// Most bytes read from one answer of a plugin.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// MCP's session header.
const SESSION_ID: &str = "Mcp-Session-Id";
/// SSE resumption header.
const LAST_EVENT_ID: &str = "Last-Event-Id";
const EVENT_STREAM: &str = "text/event-stream";
const JSON: &str = "application/json";

/// The server's HTTP client (built by the egress policy), as MCP's SDK sees it.
#[derive(Clone)]
pub(super) struct McpHttp(pub(super) reqwest::Client);

type Failure = StreamableHttpError<reqwest::Error>;

/// Whether a `content-type` value names `expected` (parameters ignored).
fn media_type_is(value: &HeaderValue, expected: &str) -> bool {
    value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
}

/// The body as a stream that fails once it passed [`MAX_RESPONSE_BYTES`].
fn bounded(
    response: reqwest::Response,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut read = 0usize;
    response
        .bytes_stream()
        .map_err(std::io::Error::other)
        .map(move |chunk| {
            let chunk = chunk?;
            read += chunk.len();
            if read > MAX_RESPONSE_BYTES {
                return Err(std::io::Error::other(format!(
                    "the plugin's answer is larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            Ok(chunk)
        })
}

/// The whole body, at most [`MAX_RESPONSE_BYTES`].
async fn body(response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut read = Vec::new();
    let mut chunks = std::pin::pin!(bounded(response));
    while let Some(chunk) = chunks.next().await {
        read.extend_from_slice(&chunk?);
    }
    Ok(read)
}

fn sse(response: reqwest::Response) -> BoxStream<'static, Result<Sse, SseError>> {
    SseStream::from_bytes_stream(bounded(response)).boxed()
}

fn with_headers(
    mut request: reqwest::RequestBuilder,
    session: Option<&str>,
    auth: Option<String>,
    custom: HashMap<HeaderName, HeaderValue>,
) -> reqwest::RequestBuilder {
    if let Some(session) = session {
        request = request.header(SESSION_ID, session);
    }
    if let Some(token) = auth {
        request = request.bearer_auth(token);
    }
    for (name, value) in custom {
        request = request.header(name, value);
    }
    request
}

/// A failure status as the SDK's error, with a bounded piece of the body.
async fn unexpected(response: reqwest::Response) -> Failure {
    let status = response.status();
    let said = body(response).await.unwrap_or_default();
    let said = String::from_utf8_lossy(&said[..said.len().min(500)]).into_owned();
    StreamableHttpError::UnexpectedServerResponse(Cow::Owned(format!("HTTP {status}: {said}")))
}

impl StreamableHttpClient for McpHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let request = self
            .0
            .post(uri.as_ref())
            .header(header::ACCEPT, format!("{EVENT_STREAM}, {JSON}"))
            .json(&message);
        let request = with_headers(request, session_id.as_deref(), auth_header, custom_headers);
        let response = request.send().await.map_err(StreamableHttpError::Client)?;
        let status = response.status();
        if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status == StatusCode::NOT_FOUND && session_id.is_some() {
            return Err(StreamableHttpError::SessionExpired);
        }
        let awaits_nothing = !matches!(message, ClientJsonRpcMessage::Request(_));
        let session = response
            .headers()
            .get(SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let is = |expected| {
            content_type
                .as_ref()
                .is_some_and(|ct| media_type_is(ct, expected))
        };
        if !status.is_success() {
            // A JSON-RPC error in the body says more than the status.
            if is(JSON) {
                let said = body(response).await?;
                if let Ok(error @ ServerJsonRpcMessage::Error(_)) = serde_json::from_slice(&said) {
                    return Ok(StreamableHttpPostResponse::Json(error, session));
                }
                let said = String::from_utf8_lossy(&said[..said.len().min(500)]).into_owned();
                return Err(StreamableHttpError::UnexpectedServerResponse(Cow::Owned(
                    format!("HTTP {status}: {said}"),
                )));
            }
            return Err(unexpected(response).await);
        }
        if is(EVENT_STREAM) {
            return Ok(StreamableHttpPostResponse::Sse(sse(response), session));
        }
        if is(JSON) {
            let said = body(response).await?;
            return match serde_json::from_slice::<ServerJsonRpcMessage>(&said) {
                Ok(parsed) => Ok(StreamableHttpPostResponse::Json(parsed, session)),
                Err(_) if awaits_nothing => Ok(StreamableHttpPostResponse::Accepted),
                Err(err) => Err(StreamableHttpError::Deserialize(err)),
            };
        }
        if awaits_nothing {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        Err(StreamableHttpError::UnexpectedContentType(
            content_type.map(|ct| String::from_utf8_lossy(ct.as_bytes()).into_owned()),
        ))
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Failure> {
        let request = with_headers(
            self.0.delete(uri.as_ref()),
            Some(&session_id),
            auth_header,
            custom_headers,
        );
        let response = request.send().await.map_err(StreamableHttpError::Client)?;
        if response.status() == StatusCode::METHOD_NOT_ALLOWED || response.status().is_success() {
            return Ok(());
        }
        Err(unexpected(response).await)
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Failure> {
        let mut request = self
            .0
            .get(uri.as_ref())
            .header(header::ACCEPT, format!("{EVENT_STREAM}, {JSON}"));
        if let Some(last) = last_event_id {
            request = request.header(LAST_EVENT_ID, last);
        }
        let request = with_headers(request, session_id.as_deref(), auth_header, custom_headers);
        let response = request.send().await.map_err(StreamableHttpError::Client)?;
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        if !response.status().is_success() {
            return Err(unexpected(response).await);
        }
        match response.headers().get(header::CONTENT_TYPE) {
            Some(ct) if media_type_is(ct, EVENT_STREAM) || media_type_is(ct, JSON) => {
                Ok(sse(response))
            }
            other => Err(StreamableHttpError::UnexpectedContentType(
                other.map(|ct| String::from_utf8_lossy(ct.as_bytes()).into_owned()),
            )),
        }
    }
}
