//! What a verified ID token says: the identity, its groups, whether its email may sign in.

use base64::Engine;
use openidconnect::core::CoreIdToken;

/// Who the provider says logged in.
pub(super) struct Identity {
    pub(super) subject: String,
    pub(super) email: String,
    /// The provider's `email_verified` claim, when it sends one.
    pub(super) email_verified: Option<bool>,
    pub(super) name: String,
    pub(super) groups: Vec<String>,
}

/// The groups listed in `claim` of a token whose signature was already verified.
pub(super) fn groups_claim(id_token: &CoreIdToken, claim: &str) -> Vec<String> {
    let compact = id_token.to_string();
    let payload = compact.split('.').nth(1).unwrap_or_default();
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
        return Vec::new();
    };
    let Ok(claims) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
    else {
        return Vec::new();
    };
    match claims.get(claim) {
        Some(serde_json::Value::Array(values)) => values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// Whether `email` may sign in: its domain is listed, or `*` (any domain) is. An empty
/// list admits nobody: admitting every account of an issuer must be an explicit choice.
pub(super) fn email_allowed(email: &str, domains: &[String]) -> bool {
    let Some((_, domain)) = email.rsplit_once('@') else {
        return false;
    };
    domains
        .iter()
        .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(domain))
}

pub(super) fn describe_token_error<E: std::error::Error>(err: &E) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::email_allowed;

    #[test]
    fn email_domains() {
        assert!(!email_allowed("a@acme.example", &[]));
        assert!(email_allowed("a@acme.example", &["*".into()]));
        assert!(email_allowed("a@ACME.example", &["acme.example".into()]));
        assert!(!email_allowed("a@evil.example", &["acme.example".into()]));
        assert!(!email_allowed(
            "a@acme.example.evil",
            &["acme.example".into()]
        ));
        assert!(!email_allowed("no-at-sign", &["*".into()]));
    }
}
