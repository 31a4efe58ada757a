//! Team login through each tenant's OpenID Connect provider (crate `openidconnect`):
//! authorization code flow with PKCE and a nonce, ID-token validation (signature against the
//! provider's JWKS, issuer, audience, expiry, nonce), just-in-time user provisioning, group
//! claims mapped to roles, and a session at the end.
//!
//! The login state (PKCE verifier, nonce, redirect URI, the hash of the login's binding
//! secret) waits in Redis under a single-use handle: the `state` parameter, which also
//! names the tenant. The binding secret goes only to the client that started the login;
//! finishing the login (CompleteLogin, or trading the callback's one-time code) needs it,
//! so a login started by someone else cannot be completed in a victim's client (login
//! CSRF). Only active tenants log in. Discovery documents (with
//! their keys) are cached per issuer; a token signed with an unknown key triggers one fresh
//! discovery, so key rotation at the provider needs no restart.

use serde_json::json;
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreProviderMetadata},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::{
    roles::PLATFORM_ADMIN,
    sessions::{IssuedSession, SessionOwner, Sessions},
    tokens,
};
use crate::{
    audit::{self, Actor, NewEvent, Outcome},
    cache::{
        Cache,
        rate_limit::{Decision, RateLimiter},
    },
    caller::{CallOrigin, Principal},
    config::AuthConfig,
    crypto::{IDP_CLIENT_SECRET, Sealer},
    egress::Egress,
    store::{self, Database, identity_providers::IdentityProviderRecord},
    tenancy::{TenantId, TenantSlug},
};

mod bounded_http;
mod claims;
mod error;

use claims::{Identity, describe_token_error, email_allowed, groups_claim};
pub use error::LoginError;

/// Prefix of the `state` handle of a login in progress.
const STATE_PREFIX: &str = "cc_state_";
/// Prefix of the one-time code the callback hands the web console.
pub const LOGIN_CODE_PREFIX: &str = "cc_code_";
/// Prefix of the secret binding a login to the client that started it.
const BINDING_PREFIX: &str = "cc_bind_";
/// How long a one-time login code stays valid.
const LOGIN_CODE_TTL: Duration = Duration::from_secs(60);
/// Role of a user whose groups map to no role and who holds none yet.
const DEFAULT_ROLE: &str = "member";

/// What bounds logins: where the server may fetch a provider's documents from, and how
/// often one address or tenant may take a login step.
pub struct LoginGuards {
    /// The outbound address policy providers' URLs pass.
    pub egress: Egress,
    /// The login rate limits.
    pub limiter: Arc<RateLimiter>,
}

/// A login begun: where to send the user.
pub struct LoginStart {
    /// The provider's authorization URL.
    pub authorization_url: String,
    /// The opaque `state` the provider will return.
    pub state: String,
    /// The login must finish before this.
    pub expires_at: OffsetDateTime,
    /// The secret only the starting client holds; finishing the login needs it.
    pub binding: String,
}

/// A login finished.
pub struct LoginDone {
    /// The new session.
    pub session: IssuedSession,
    /// Who logged in.
    pub principal: Principal,
    /// Hash of the login's binding secret (for the one-time code of a browser login).
    binding_sha256: String,
}

/// What waits in Redis between the start and the end of a login.
#[derive(Serialize, Deserialize)]
struct PendingLogin {
    pkce_verifier: String,
    nonce: String,
    redirect_uri: String,
    binding_sha256: String,
}

/// What waits in Redis between a browser login's callback and the console's code exchange.
#[derive(Serialize, Deserialize)]
struct IssuedLoginCode {
    session_token: String,
    binding_sha256: String,
}

/// The hex SHA-256 a binding secret is recognised by.
fn binding_digest(binding: &str) -> String {
    hex::encode(Sha256::digest(binding.as_bytes()))
}

/// Whether `presented` is the binding secret whose digest is `expected` (digests are
/// compared, so timing says nothing about the secret).
fn binding_matches(presented: &str, expected: &str) -> bool {
    !presented.is_empty() && binding_digest(presented) == expected
}

/// The SSO login service.
pub struct Sso {
    db: Database,
    sealer: Sealer,
    cache: Cache,
    sessions: Sessions,
    config: AuthConfig,
    callback_url: String,
    http: reqwest::Client,
    egress: Egress,
    limiter: Arc<RateLimiter>,
    discovery: std::sync::Mutex<HashMap<String, DiscoverySlot>>,
}

impl Sso {
    /// Logins whose browser redirect lands on `callback_url` unless a client brings its own;
    /// providers reached as `egress` allows.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        db: Database,
        sealer: Sealer,
        cache: Cache,
        sessions: Sessions,
        config: AuthConfig,
        guards: LoginGuards,
        callback_url: String,
    ) -> Result<Self, reqwest::Error> {
        let LoginGuards { egress, limiter } = guards;
        // The egress policy's client follows no redirects and connects only where the
        // policy allows: a provider URL is an address a tenant chose.
        let http = egress
            .client(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            db,
            sealer,
            cache,
            sessions,
            config,
            callback_url,
            http,
            egress,
            limiter,
            discovery: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The redirect URI of browser logins that end at this server.
    pub fn callback_url(&self) -> &str {
        &self.callback_url
    }

    /// Begins a login to tenant `slug`; the provider will redirect to `redirect_uri`, or to
    /// this server's callback when `None`.
    ///
    /// # Errors
    /// [`LoginError`] for an unknown tenant, a missing or unreachable provider, or a bad
    /// redirect URI.
    pub async fn start(
        &self,
        slug: &str,
        redirect_uri: Option<&str>,
        origin: &CallOrigin,
    ) -> Result<LoginStart, LoginError> {
        let tenant = match TenantSlug::parse(slug) {
            Ok(parsed) => store::tenants::find_by_slug(&self.db, &parsed).await?,
            Err(_) => None,
        };
        self.throttle(Some(origin), tenant).await?;
        let tenant = tenant.ok_or_else(|| LoginError::UnknownTenant(slug.to_owned()))?;
        self.ensure_active(tenant).await?;
        let provider = self.provider_of(tenant, slug).await?;
        let redirect_uri = redirect_uri.unwrap_or(&self.callback_url).to_owned();
        let client = self.client(&provider, &redirect_uri, false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let handle = tokens::issue(STATE_PREFIX, tenant)?;
        let binding = tokens::issue(BINDING_PREFIX, tenant)?.token;
        let state = handle.token.clone();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state.clone()),
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &provider.record.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _, nonce) = request.url();
        let pending = serde_json::to_string(&PendingLogin {
            pkce_verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            redirect_uri,
            binding_sha256: binding_digest(&binding),
        })
        .map_err(|err| LoginError::Internal(err.to_string()))?;
        self.cache
            .put_once(
                tenant,
                "login",
                &handle.sha256,
                &pending,
                self.config.login_timeout,
            )
            .await?;
        Ok(LoginStart {
            authorization_url: url.to_string(),
            state: handle.token,
            expires_at: OffsetDateTime::now_utc() + self.config.login_timeout,
            binding,
        })
    }

    /// Counts a login step from `origin`'s address and/or into `tenant` against the login
    /// rate limits.
    async fn throttle(
        &self,
        origin: Option<&CallOrigin>,
        tenant: Option<TenantId>,
    ) -> Result<(), LoginError> {
        let address = origin.map(|origin| origin.client_address.as_str());
        match self.limiter.check_login(address, tenant).await {
            Ok(Decision::Allowed) => Ok(()),
            Ok(Decision::Limited { retry_after }) => Err(LoginError::Throttled(retry_after)),
            Err(err) if self.limiter.fails_open() => {
                tracing::warn!(error = %err, "rate limiter unavailable: letting the login through");
                Ok(())
            }
            Err(err) => Err(LoginError::Internal(err.to_string())),
        }
    }

    /// Refuses a login to a tenant that is suspended, deleted or unknown.
    async fn ensure_active(&self, tenant: TenantId) -> Result<(), LoginError> {
        match store::tenants::get_any(&self.db, tenant).await? {
            Some(record) if record.state == "active" => Ok(()),
            Some(_) => Err(LoginError::TenantNotActive),
            None => Err(LoginError::BadState),
        }
    }

    /// Finishes a login: exchanges `code`, validates the ID token, provisions the user and
    /// issues a session. A client finishing its own login (CompleteLogin) presents the
    /// binding secret StartLogin gave it (`Some`); the browser callback does not have it
    /// (`None`) and hands out only a one-time code that needs it.
    ///
    /// # Errors
    /// [`LoginError`] saying which check failed.
    pub async fn complete(
        &self,
        state: &str,
        code: &str,
        binding: Option<&str>,
        origin: CallOrigin,
    ) -> Result<LoginDone, LoginError> {
        self.throttle(Some(&origin), None).await?;
        let (tenant, handle) = tokens::parse(STATE_PREFIX, state).ok_or(LoginError::BadState)?;
        let result = self
            .finish_login(tenant, &handle, code, binding, &origin)
            .await;
        // A state that was never issued proves nothing about its tenant: record failures
        // in a tenant's trail only once the state checked out.
        if let Err(err) = &result
            && !matches!(err, LoginError::BadState)
        {
            let event = NewEvent::from_origin(
                Actor::Anonymous,
                &origin,
                "login.failure",
                "identity_provider",
                "",
                json!({ "reason": err.reason() }),
            )
            .with_outcome(Outcome::Denied, tonic::Code::Unauthenticated);
            audit::record(&self.db, tenant, &event).await?;
        }
        result
    }

    async fn finish_login(
        &self,
        tenant: TenantId,
        handle: &[u8; 32],
        code: &str,
        binding: Option<&str>,
        origin: &CallOrigin,
    ) -> Result<LoginDone, LoginError> {
        let pending = self
            .cache
            .take_once(tenant, "login", handle)
            .await?
            .ok_or(LoginError::BadState)?;
        let pending: PendingLogin =
            serde_json::from_str(&pending).map_err(|err| LoginError::Internal(err.to_string()))?;
        if binding.is_some_and(|binding| !binding_matches(binding, &pending.binding_sha256)) {
            return Err(LoginError::BadBinding);
        }
        // The tenant counts only once the state proved it: forged states cannot use up a
        // tenant's logins.
        self.throttle(None, Some(tenant)).await?;
        self.ensure_active(tenant).await?;
        let provider = self.provider_of(tenant, &tenant.to_string()).await?;
        let client = self.client(&provider, &pending.redirect_uri, false).await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|err| LoginError::Provider(err.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&|request| bounded_http::call(self.http.clone(), request))
            .await
            .map_err(|err| LoginError::CodeRefused(describe_token_error(&err)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| LoginError::InvalidIdToken("the provider returned none".into()))?;
        let nonce = Nonce::new(pending.nonce);
        let identity = match self.verify(&client, id_token, &nonce, &provider.record) {
            Ok(identity) => identity,
            Err(first) => {
                // Perhaps the provider rotated its keys: rediscover once and retry.
                let client = self.client(&provider, &pending.redirect_uri, true).await?;
                self.verify(&client, id_token, &nonce, &provider.record)
                    .map_err(|_| first)?
            }
        };
        self.provision(tenant, &provider.record, identity, origin)
            .await
            .map(|done| LoginDone {
                binding_sha256: pending.binding_sha256,
                ..done
            })
    }

    /// A single-use code the web console trades for the session of `done` (so that the
    /// token never appears in a URL); the trade needs the login's binding secret.
    ///
    /// # Errors
    /// [`LoginError::Internal`] when Redis fails.
    pub async fn login_code(&self, done: &LoginDone) -> Result<String, LoginError> {
        let tenant = done.principal.tenant;
        let code = tokens::issue(LOGIN_CODE_PREFIX, tenant)?;
        let issued = serde_json::to_string(&IssuedLoginCode {
            session_token: done.session.token.clone(),
            binding_sha256: done.binding_sha256.clone(),
        })
        .map_err(|err| LoginError::Internal(err.to_string()))?;
        self.cache
            .put_once(tenant, "login-code", &code.sha256, &issued, LOGIN_CODE_TTL)
            .await?;
        Ok(code.token)
    }

    /// Trades a one-time login code, presented with its login's binding secret, for its
    /// session token.
    ///
    /// # Errors
    /// [`LoginError::BadLoginCode`] when the code is unknown, expired or used,
    /// [`LoginError::BadBinding`] when the binding secret is not the login's,
    /// [`LoginError::TenantNotActive`] when the tenant was suspended meanwhile.
    pub async fn exchange_login_code(
        &self,
        code: &str,
        binding: &str,
        origin: &CallOrigin,
    ) -> Result<String, LoginError> {
        self.throttle(Some(origin), None).await?;
        let (tenant, sha256) =
            tokens::parse(LOGIN_CODE_PREFIX, code).ok_or(LoginError::BadLoginCode)?;
        let issued = self
            .cache
            .take_once(tenant, "login-code", &sha256)
            .await?
            .ok_or(LoginError::BadLoginCode)?;
        let issued: IssuedLoginCode =
            serde_json::from_str(&issued).map_err(|err| LoginError::Internal(err.to_string()))?;
        if !binding_matches(binding, &issued.binding_sha256) {
            return Err(LoginError::BadBinding);
        }
        self.ensure_active(tenant).await?;
        Ok(issued.session_token)
    }

    async fn provider_of(&self, tenant: TenantId, name: &str) -> Result<Provider, LoginError> {
        let mut tx = self.db.begin_tenant(tenant).await?;
        let record = store::identity_providers::get(&mut tx)
            .await?
            .ok_or_else(|| LoginError::NoProvider(name.to_owned()))?;
        let secret = if record.client_secret_sealed.is_empty() {
            None
        } else {
            let opened = self
                .sealer
                .open(
                    &mut tx,
                    tenant,
                    IDP_CLIENT_SECRET.table,
                    &tenant.to_string(),
                    &record.client_secret_sealed,
                )
                .await
                .map_err(|err| LoginError::Internal(err.to_string()))?;
            Some(String::from_utf8(opened).map_err(|err| LoginError::Internal(err.to_string()))?)
        };
        tx.commit().await?;
        Ok(Provider { record, secret })
    }

    async fn client(
        &self,
        provider: &Provider,
        redirect_uri: &str,
        refresh: bool,
    ) -> Result<OidcClient, LoginError> {
        let metadata = self.metadata(&provider.record.issuer_url, refresh).await?;
        let secret = provider.secret.clone().map(ClientSecret::new);
        let redirect =
            RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| LoginError::BadRedirect)?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.record.client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect))
    }

    async fn metadata(
        &self,
        issuer: &str,
        refresh: bool,
    ) -> Result<CoreProviderMetadata, LoginError> {
        // One lock per issuer, held across its discovery: logins at one slow provider wait
        // for it, logins at every other go on.
        let slot = self
            .discovery
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(issuer.to_owned())
            .or_default()
            .clone();
        let mut cached = slot.lock().await;
        if !refresh
            && let Some((metadata, fetched)) = cached.as_ref()
            && fetched.elapsed() < self.config.discovery_cache_ttl
        {
            return Ok(metadata.clone());
        }
        self.egress
            .check_url(issuer)
            .await
            .map_err(|err| LoginError::Provider(format!("issuer {issuer}: {err}")))?;
        let issuer_url = IssuerUrl::new(issuer.to_owned())
            .map_err(|err| LoginError::Provider(err.to_string()))?;
        let http = |request| bounded_http::call(self.http.clone(), request);
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
            .await
            .map_err(|err| {
                LoginError::Provider(format!(
                    "discovery of {issuer} failed: {}",
                    describe_token_error(&err)
                ))
            })?;
        // Names pass the policy when they are resolved; addresses written as IPs must be
        // checked here, since no resolver sees them.
        let named = [
            Some(metadata.jwks_uri().url().as_str()),
            metadata.token_endpoint().map(|url| url.url().as_str()),
        ];
        for url in named.into_iter().flatten() {
            self.egress.check_url(url).await.map_err(|err| {
                LoginError::Provider(format!("discovery of {issuer} names {url}: {err}"))
            })?;
        }
        *cached = Some((metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    fn verify(
        &self,
        client: &OidcClient,
        id_token: &CoreIdToken,
        nonce: &Nonce,
        provider: &IdentityProviderRecord,
    ) -> Result<Identity, LoginError> {
        let claims = id_token
            .claims(&client.id_token_verifier(), nonce)
            .map_err(|err| LoginError::InvalidIdToken(err.to_string()))?;
        let email = claims
            .email()
            .map(|email| email.as_str().to_owned())
            .ok_or_else(|| LoginError::EmailNotAllowed(String::new()))?;
        let name = claims
            .name()
            .and_then(|name| name.get(None))
            .map(|name| name.as_str().to_owned())
            .unwrap_or_default();
        let groups = groups_claim(id_token, &provider.groups_claim);
        Ok(Identity {
            subject: claims.subject().as_str().to_owned(),
            email,
            email_verified: claims.email_verified(),
            name,
            groups,
        })
    }

    async fn provision(
        &self,
        tenant: TenantId,
        provider: &IdentityProviderRecord,
        identity: Identity,
        origin: &CallOrigin,
    ) -> Result<LoginDone, LoginError> {
        if identity.email_verified == Some(false) {
            return Err(LoginError::EmailNotVerified);
        }
        if !email_allowed(&identity.email, &provider.allowed_email_domains) {
            return Err(LoginError::EmailNotAllowed(identity.email));
        }
        let mut tx = self.db.begin_tenant(tenant).await?;
        let external = store::users::ExternalIdentity {
            issuer: &provider.issuer_url,
            subject: &identity.subject,
        };
        let (user, disabled) = store::users::upsert_sso(
            &mut tx,
            external,
            &identity.email,
            &identity.name,
            identity.email_verified == Some(true),
        )
        .await?
        .ok_or(LoginError::EmailNotVerified)?;
        if disabled {
            return Err(LoginError::UserDisabled);
        }
        let mut mapped: Vec<&str> = identity
            .groups
            .iter()
            .filter_map(|group| provider.group_roles.0.get(group))
            .flatten()
            .map(String::as_str)
            // Never from a provider, whatever its settings say.
            .filter(|role| *role != PLATFORM_ADMIN)
            .collect();
        let held = store::users::roles(&mut tx, user).await?;
        if mapped.is_empty() && held.is_empty() {
            mapped.push(DEFAULT_ROLE);
        }
        for role in mapped {
            store::users::grant_role(&mut tx, user, role).await?;
        }
        // Platform administration uses API keys: a session signed in through a tenant's
        // provider (which the tenant controls) never carries it.
        let roles: Vec<String> = store::users::roles(&mut tx, user)
            .await?
            .into_iter()
            .filter(|role| role != PLATFORM_ADMIN)
            .collect();
        let tenant_slug: String = store::tenants::slug(&mut tx).await?;
        tx.commit().await?;
        let session = self
            .sessions
            .issue(SessionOwner {
                tenant,
                tenant_slug: &tenant_slug,
                user,
                email: &identity.email,
                roles: &roles,
                origin,
            })
            .await?;
        let principal = Principal {
            tenant,
            tenant_slug,
            user,
            email: identity.email,
            api_key: None,
            session: Some(session.record.id),
            roles,
            origin: origin.clone(),
        };
        Ok(LoginDone {
            session,
            principal,
            binding_sha256: String::new(),
        })
    }
}

type OidcClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// One issuer's discovery document and when it was fetched, behind that issuer's lock.
type DiscoverySlot = Arc<Mutex<Option<(CoreProviderMetadata, Instant)>>>;

/// A tenant's provider settings with the client secret opened.
struct Provider {
    record: IdentityProviderRecord,
    secret: Option<String>,
}
