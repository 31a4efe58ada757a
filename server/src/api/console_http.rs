//! `/console/`: the admin web console's built files (`server.console_dir`), served on the
//! API's own port so that the console's gRPC-Web calls are same-origin (no CORS).
//!
//! Content-hashed files under `/console/assets/` are cached for a year (a missing one is a
//! 404); every other path answers with `index.html`, never cached, so a new release
//! reaches browsers at once and the console's own routes survive a reload. Every answer
//! carries a Content-Security-Policy that allows the console's own origin only.

use std::path::Path;

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{Redirect, Response},
    routing::get,
};
use tower_http::services::{ServeDir, ServeFile};

/// What the console's pages may load and talk to: their own origin, nothing else.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; object-src 'none'; \
     frame-ancestors 'none'; form-action 'self'; img-src 'self' data:";
/// Where the build tool puts content-hashed files: safe to cache for good.
const ASSETS: &str = "/console/assets/";

/// The console routes, serving the files in `dir`.
pub fn router(dir: &Path) -> Router {
    let pages = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .nest_service("/console/assets", ServeDir::new(dir.join("assets")))
        .nest_service("/console/", pages)
        .layer(middleware::from_fn(headers))
}

/// Caching and security headers on every console answer.
async fn headers(request: Request, next: Next) -> Response {
    let asset = request.uri().path().starts_with(ASSETS);
    let mut response = next.run(request).await;
    let cache = if asset && response.status() == StatusCode::OK {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
