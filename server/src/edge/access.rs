//! The tower layer every call passes (gRPC, and the OpenAI-compatible REST routes, which
//! take their gRPC twin's rule): look up the method's access rule, authenticate,
//! authorize, count the call against the rate limits, and hand the [`Principal`] to the
//! handler in the request extensions. Refusals are answered here, in the call's own wire
//! format (`UNAUTHENTICATED` / HTTP 401, `PERMISSION_DENIED` / 403, ...), and logged.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tonic::Status;

use super::calls;
use crate::{
    auth::{
        AuthError, Authenticator,
        permissions::{self, Access, Permission},
        rbac::Rbac,
    },
    cache::rate_limit::{Decision, RateLimiter},
    caller::{AuditSlot, CallOrigin, Principal},
};

/// Authentication and authorization for every RPC.
#[derive(Clone)]
pub struct AuthLayer {
    state: Arc<AuthState>,
}

struct AuthState {
    authenticator: Authenticator,
    rbac: Arc<Rbac>,
    limiter: Arc<RateLimiter>,
}

impl AuthState {
    /// Authenticates, counts the call against the rate limits, and authorizes: `check`
    /// false asks only for `permission` on some plugin (the domain decides which, see
    /// [`Access::PerPlugin`]).
    async fn admit(
        &self,
        authorization: Option<&http::HeaderValue>,
        permission: Permission,
        check: bool,
    ) -> Result<Principal, (AuthError, Option<Principal>)> {
        let principal = self
            .authenticator
            .authenticate(authorization)
            .await
            .map_err(|err| (err, None))?;
        // Counted before authorizing: calls that will be refused count too, so probing
        // for permissions costs what any call costs.
        let caller = principal.api_key.unwrap_or(principal.user).to_string();
        match self.limiter.check(principal.tenant, &caller).await {
            Ok(Decision::Allowed) => {}
            Ok(Decision::Limited { retry_after }) => {
                return Err((AuthError::RateLimited { retry_after }, Some(principal)));
            }
            Err(err) if self.limiter.fails_open() => {
                tracing::warn!(error = %err, "rate limiter unavailable: letting the call through");
            }
            Err(err) => {
                tracing::error!(error = %err, "rate limiter unavailable: refusing the call");
                return Err((AuthError::LimiterUnavailable, Some(principal)));
            }
        }
        let allowed = if check {
            self.rbac.allows(&principal, permission).await
        } else {
            self.rbac
                .allows_on_some_plugin(&principal, permission)
                .await
        };
        if !allowed {
            return Err((AuthError::Denied(permission), Some(principal)));
        }
        Ok(principal)
    }
}

impl AuthLayer {
    /// A layer checking credentials with `authenticator`, permissions with `rbac` and
    /// call rates with `limiter`.
    pub fn new(authenticator: Authenticator, rbac: Arc<Rbac>, limiter: Arc<RateLimiter>) -> Self {
        Self {
            state: Arc::new(AuthState {
                authenticator,
                rbac,
                limiter,
            }),
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            state: self.state.clone(),
        }
    }
}

/// Service made by [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    state: Arc<AuthState>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for AuthService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<axum::body::Body> + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone that was driven to readiness serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move {
            let call = calls::of(&mut request);
            let (permission, checked_here) =
                match call.twin().and_then(|(s, m)| permissions::access(s, m)) {
                    Some(Access::Public) => return inner.call(request).await,
                    Some(Access::Requires(permission)) => (permission, true),
                    Some(Access::PerPlugin(permission)) => (permission, false),
                    None => {
                        let status =
                            Status::unimplemented(format!("unknown method {}", call.action));
                        return Ok(call.protocol.refusal(&status).map(ResBody::from));
                    }
                };
            let authorization = request.headers().get(http::header::AUTHORIZATION);
            let admitted = state.admit(authorization, permission, checked_here).await;
            if let Some(slot) = request.extensions().get::<AuditSlot>() {
                let known = match &admitted {
                    Ok(principal) | Err((_, Some(principal))) => Some(principal),
                    Err((_, None)) => None,
                };
                if let Some(principal) = known {
                    slot.set(principal, permission.object);
                }
            }
            match admitted {
                Ok(mut principal) => {
                    if let Some(origin) = request.extensions().get::<CallOrigin>() {
                        principal.origin = origin.clone();
                    }
                    tracing::Span::current()
                        .record("tenant", tracing::field::display(principal.tenant));
                    request.extensions_mut().insert::<Principal>(principal);
                    inner.call(request).await
                }
                Err((err, principal)) => {
                    tracing::warn!(
                        reason = %err,
                        tenant = principal.as_ref().map(|p| p.tenant.to_string()),
                        user = principal.as_ref().map(|p| p.user.to_string()),
                        "call refused"
                    );
                    Ok(call
                        .protocol
                        .refusal(&Status::from(super::ApiError::from(&err)))
                        .map(ResBody::from))
                }
            }
        })
    }
}
