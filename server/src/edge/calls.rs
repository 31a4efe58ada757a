//! What a request calls, whichever wire format it speaks: a gRPC method
//! (`/package.Service/Method`, native or translated from gRPC-Web) or a route of the
//! OpenAI-compatible REST API (`/v1/...`, served by `api::openai`).
//!
//! The layers every call passes (audit, load shedding, then authentication, authorization
//! and rate limits) are the same for both. A REST route takes the access rule of its gRPC twin, so
//! one table (`auth::permissions`) decides for both, and it is audited under its own
//! name. Only the way a refusal or an outcome travels differs, and that is decided here.

use std::sync::Arc;

use axum::body::Bytes;
use http::{HeaderMap, Method, Response};
use http_body::Frame;
use tonic::{Code, Status};

use super::openai_wire;

/// Whether `path` is a health check or reflection: calls that touch no tenant data, that
/// load balancers make constantly, and that must answer even when the replica is busy, so
/// they are neither audited nor shed.
pub fn is_infrastructure(path: &str) -> bool {
    path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.")
}

/// The wire format of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC (or gRPC-Web): the status travels in `grpc-status`.
    Grpc,
    /// The OpenAI-compatible REST API: HTTP statuses, JSON errors, server-sent events.
    OpenAi,
}

/// A REST route: its method, its path (a trailing `*` matches any non-empty rest) and the
/// gRPC method whose access rule it takes.
struct RestRoute {
    method: Method,
    path: &'static str,
    twin: (&'static str, &'static str),
}

const MODEL_SERVICE: &str = "codexcontinue.v1.ModelService";
const CHAT_SERVICE: &str = "codexcontinue.v1.ChatService";

/// The OpenAI-compatible routes and their twins.
fn rest_routes() -> [RestRoute; 4] {
    [
        RestRoute {
            method: Method::GET,
            path: "/v1/models",
            twin: (MODEL_SERVICE, "ListModels"),
        },
        RestRoute {
            method: Method::GET,
            path: "/v1/models/*",
            twin: (MODEL_SERVICE, "GetModel"),
        },
        RestRoute {
            method: Method::POST,
            path: "/v1/embeddings",
            twin: (MODEL_SERVICE, "Embed"),
        },
        RestRoute {
            method: Method::POST,
            path: "/v1/chat/completions",
            twin: (CHAT_SERVICE, "SendMessage"),
        },
    ]
}

/// What a request calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Its wire format.
    pub protocol: Protocol,
    /// Its name in the audit trail: the gRPC path, or the REST route as registered
    /// (`/v1/models/{id}`), or the path asked for when it is no route.
    pub action: String,
    twin: Twin,
}

/// Where a call's gRPC twin comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Twin {
    /// An unknown route.
    None,
    /// A REST route's.
    Route(&'static str, &'static str),
    /// A gRPC call is its own: the action, `/service/method`, cut after the service.
    Path(usize),
}

impl Call {
    /// The gRPC (service, method) whose access rule applies; `None` for an unknown route.
    pub fn twin(&self) -> Option<(&str, &str)> {
        match self.twin {
            Twin::None => None,
            Twin::Route(service, method) => Some((service, method)),
            Twin::Path(cut) => Some((&self.action[1..cut], &self.action[cut + 1..])),
        }
    }
}

/// Identifies the call a request with `method` to `path` makes.
pub fn identify(method: &Method, path: &str) -> Call {
    if !path.starts_with("/v1/") {
        let cut = path
            .strip_prefix('/')
            .and_then(|rest| rest.find('/'))
            .map_or(Twin::None, |slash| Twin::Path(slash + 1));
        return Call {
            protocol: Protocol::Grpc,
            action: path.to_owned(),
            twin: cut,
        };
    }
    let route = rest_routes().into_iter().find(|route| {
        route.method == method
            && match route.path.strip_suffix('*') {
                Some(prefix) => path.len() > prefix.len() && path.starts_with(prefix),
                None => route.path == path,
            }
    });
    match route {
        Some(route) => Call {
            protocol: Protocol::OpenAi,
            action: route.path.replace('*', "{id}"),
            twin: Twin::Route(route.twin.0, route.twin.1),
        },
        None => Call {
            protocol: Protocol::OpenAi,
            action: format!("{method} {}", path.chars().take(200).collect::<String>()),
            twin: Twin::None,
        },
    }
}

/// The call `request` makes: identified by the first layer that asks, which leaves it in
/// the request's extensions for the layers inside.
pub fn of<B>(request: &mut http::Request<B>) -> Arc<Call> {
    if let Some(call) = request.extensions().get::<Arc<Call>>() {
        return call.clone();
    }
    let call = Arc::new(identify(request.method(), request.uri().path()));
    request.extensions_mut().insert(call.clone());
    call
}

impl Protocol {
    /// The response refusing a call with `status`, in this format.
    pub fn refusal(self, status: &Status) -> Response<axum::body::Body> {
        match self {
            Protocol::Grpc => status.clone().into_http(),
            Protocol::OpenAi => openai_wire::error_response(status),
        }
    }

    /// The frame that ends a streamed answer whose status was `code`, once its audit
    /// event was written (`Ok`) or could not be (`Err`, the call fails closed); the
    /// trailers the handler ended with are `trailers`.
    pub fn stream_end(
        self,
        code: Code,
        trailers: HeaderMap,
        audited: Result<(), Status>,
    ) -> Option<Frame<Bytes>> {
        match self {
            Protocol::Grpc => {
                let mut trailers = trailers;
                if let Err(status) = audited {
                    let failed: Response<()> = status.into_http();
                    for (name, value) in failed.headers() {
                        trailers.insert(name.clone(), value.clone());
                    }
                }
                Some(Frame::trailers(trailers))
            }
            Protocol::OpenAi => match audited {
                Err(status) => Some(Frame::data(openai_wire::error_event(&status))),
                Ok(()) if code == Code::Ok => Some(Frame::data(openai_wire::done_event())),
                Ok(()) => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_routes_take_their_twins_rule_and_grpc_paths_their_own() {
        let chat = identify(&Method::POST, "/v1/chat/completions");
        assert_eq!(chat.protocol, Protocol::OpenAi);
        assert_eq!(chat.twin(), Some((CHAT_SERVICE, "SendMessage")));
        assert_eq!(chat.action, "/v1/chat/completions");
        let model = identify(&Method::GET, "/v1/models/local/smollm2");
        assert_eq!(model.twin(), Some((MODEL_SERVICE, "GetModel")));
        assert_eq!(model.action, "/v1/models/{id}");
        assert_eq!(identify(&Method::GET, "/v1/models/").twin(), None);
        let wrong_method = identify(&Method::GET, "/v1/chat/completions");
        assert_eq!(wrong_method.twin(), None);
        assert_eq!(wrong_method.action, "GET /v1/chat/completions");
        let grpc = identify(&Method::POST, "/codexcontinue.v1.ChatService/SendMessage");
        assert_eq!(grpc.protocol, Protocol::Grpc);
        assert_eq!(grpc.twin(), Some((CHAT_SERVICE, "SendMessage")));
        assert_eq!(identify(&Method::POST, "/nothing").twin(), None);
    }

    #[test]
    fn every_twin_has_an_access_rule() {
        for route in rest_routes() {
            let (service, method) = route.twin;
            assert!(
                crate::auth::permissions::access(service, method).is_some(),
                "{} has no twin rule",
                route.path
            );
        }
    }
}
