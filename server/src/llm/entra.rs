//! Microsoft Entra ID tokens for Azure OpenAI: the OAuth 2.0 client credentials flow
//! (`POST {authority}/{tenant}/oauth2/v2.0/token` with the app's id and secret and the
//! Cognitive Services scope). Tokens are kept per app registration and secret until five
//! minutes before they expire, so calls do not each go to Entra.
//!
//! The request is one form POST over the server's `reqwest` client; the `oauth2` crate's
//! typed client would add generic state for the one grant used here.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{LlmError, body_limits};
use crate::store::providers::EntraSettings;

/// Where Entra ID serves tokens in the public cloud.
pub const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The scope Azure OpenAI accepts tokens for.
pub const COGNITIVE_SERVICES_SCOPE: &str = "https://cognitiveservices.azure.com/.default";
/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// Longest a token is kept, whatever lifetime Entra ID (or a server posing as it) states.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A token and when it expires.
type Token = (SecretString, Instant);

/// Tokens fetched so far, shared by every provider of every tenant of this replica, keyed
/// by a digest of the registration and secret.
#[derive(Clone, Default)]
pub struct EntraTokens {
    cached: Arc<Mutex<HashMap<[u8; 32], Token>>>,
}

/// The credential of one Azure OpenAI provider that uses Entra ID.
pub struct EntraCredential {
    pub(super) http: reqwest::Client,
    pub(super) tokens: EntraTokens,
    pub(super) settings: EntraSettings,
    pub(super) secret: Option<SecretString>,
}

/// Entra's token response.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

/// Entra's error response.
#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl EntraCredential {
    /// A bearer token for Azure OpenAI, from the cache or fetched.
    ///
    /// # Errors
    /// [`LlmError::Unauthorized`] when no secret is stored or Entra refuses the client;
    /// [`LlmError::Unreachable`] or [`LlmError::Upstream`] when Entra is not available.
    pub async fn token(&self) -> Result<SecretString, LlmError> {
        let secret = self.secret.as_ref().ok_or_else(|| {
            LlmError::Unauthorized(
                "no client secret is stored for this Entra ID registration; set it as the \
                 provider's credential"
                    .to_owned(),
            )
        })?;
        let key = self.cache_key(secret);
        if let Some((token, expires)) = self.tokens.get(&key)
            && Instant::now() + RENEW_BEFORE < expires
        {
            return Ok(token);
        }
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.settings.authority.trim_end_matches('/'),
            self.settings.tenant_id
        );
        let response = self
            .http
            .post(url)
            .form(&[
                ("client_id", self.settings.client_id.as_str()),
                ("client_secret", secret.expose_secret()),
                ("scope", self.settings.scope.as_str()),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .map_err(|err| LlmError::Unreachable(format!("Entra ID: {}", err.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            let refusal: Option<TokenError> =
                body_limits::json(response, body_limits::MAX_SMALL_BODY_BYTES)
                    .await
                    .ok();
            let (error, description) = refusal.map_or_else(
                || ("unknown".to_owned(), String::new()),
                |e| (e.error, e.error_description),
            );
            // Entra's descriptions end with trace and correlation ids on further lines.
            let description = description.lines().next().unwrap_or_default().to_owned();
            return Err(if status.is_server_error() {
                LlmError::Upstream {
                    status: status.as_u16(),
                    message: format!("Entra ID: {error}"),
                }
            } else {
                LlmError::Unauthorized(format!(
                    "Entra ID refused the app registration's client credentials ({error}: \
                     {description}); check the provider's entra tenant_id, client_id and \
                     the client secret stored as its credential"
                ))
            });
        }
        let token: TokenResponse = body_limits::json(response, body_limits::MAX_SMALL_BODY_BYTES)
            .await
            .map_err(|err| LlmError::Protocol(format!("Entra ID token response: {err}")))?;
        let secret_token = SecretString::from(token.access_token);
        // The lifetime comes from a server the tenant chose: never trust it to fit.
        let lifetime = Duration::from_secs(token.expires_in).min(MAX_TOKEN_LIFETIME);
        let expires = Instant::now()
            .checked_add(lifetime)
            .unwrap_or_else(Instant::now);
        self.tokens.put(key, secret_token.clone(), expires);
        Ok(secret_token)
    }

    /// Identifies the registration and secret without keeping the secret as a key.
    fn cache_key(&self, secret: &SecretString) -> [u8; 32] {
        let mut digest = Sha256::new();
        for part in [
            self.settings.authority.as_str(),
            self.settings.tenant_id.as_str(),
            self.settings.client_id.as_str(),
            self.settings.scope.as_str(),
            secret.expose_secret(),
        ] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        digest.finalize().into()
    }
}

impl EntraTokens {
    fn get(&self, key: &[u8; 32]) -> Option<Token> {
        self.cached
            .lock()
            .ok()?
            .get(key)
            .map(|(token, expires)| (token.clone(), *expires))
    }

    fn put(&self, key: [u8; 32], token: SecretString, expires: Instant) {
        if let Ok(mut cached) = self.cached.lock() {
            let now = Instant::now();
            cached.retain(|_, (_, at)| *at > now);
            cached.insert(key, (token, expires));
        }
    }
}
