//! `GET /auth/callback`: where identity providers send the browser back after a login.
//!
//! The route finishes the login and hands the web console a one-time code (never the
//! session token) in the URL fragment of `auth.console_url`, which browsers do not send to
//! servers; the console trades it for the session with `AuthService.ExchangeLoginCode`.
//! Without a console URL, the page shows the code.

use std::sync::Arc;

use axum::{
    Extension, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use tonic::transport::server::TcpConnectInfo;

use crate::{
    auth::oidc::{LoginError, Sso},
    caller::CallOrigin,
    edge::REQUEST_ID_HEADER,
};

/// What the provider appends to the redirect.
#[derive(Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Clone)]
struct LoginState {
    sso: Arc<Sso>,
    console_url: Option<String>,
}

/// The login routes.
pub fn router(sso: Arc<Sso>, console_url: Option<String>) -> Router {
    Router::new()
        .route("/auth/callback", get(callback))
        .with_state(LoginState { sso, console_url })
}

async fn callback(
    State(state): State<LoginState>,
    connection: Option<Extension<TcpConnectInfo>>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    if let Some(error) = params.error {
        // The provider's words are logged (bounded), never shown back.
        let description: String = params
            .error_description
            .unwrap_or_default()
            .chars()
            .take(256)
            .collect();
        let error: String = error.chars().take(64).collect();
        tracing::warn!(%error, %description, "login refused by the identity provider");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the identity provider refused the login; start it again",
        );
    }
    let (Some(code), Some(login_state)) = (params.code, params.state) else {
        return refuse(StatusCode::BAD_REQUEST, "missing code or state");
    };
    let text = |name: &str| -> String {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(256)
            .collect()
    };
    let origin = CallOrigin {
        request_id: text(REQUEST_ID_HEADER.as_str()),
        client_address: connection
            .and_then(|Extension(info)| info.remote_addr())
            .map(|addr| addr.ip().to_string())
            .unwrap_or_default(),
        user_agent: text(header::USER_AGENT.as_str()),
    };
    let done = match state.sso.complete(&login_state, &code, None, origin).await {
        Ok(done) => done,
        Err(err) => {
            tracing::warn!(reason = %err, "login refused");
            let status = match err {
                LoginError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
                LoginError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                LoginError::Provider(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::UNAUTHORIZED,
            };
            return refuse(status, &err.public_message());
        }
    };
    let login_code = match state.sso.login_code(&done).await {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(reason = %err, "cannot issue the login code");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, &err.public_message());
        }
    };
    tracing::info!(tenant = %done.principal.tenant, user = %done.principal.user, "login succeeded");
    match state.console_url {
        Some(console) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, format!("{console}#code={login_code}")),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
        )
            .into_response(),
        None => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            format!(
                "Signed in. One-time code (valid 60 s), for AuthService.ExchangeLoginCode:\n{login_code}\n"
            ),
        )
            .into_response(),
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        format!("{message}\n"),
    )
        .into_response()
}
