//! AdminService: tenants, users, roles, custom policies and the tenant's identity
//! provider. Model providers, profiles and budgets answer `UNIMPLEMENTED` until they are
//! built.

use std::collections::BTreeMap;

use sqlx::types::Json;
use tonic::{Request, Response, Status};

use super::{
    convert::{principal, timestamp},
    error::ApiError,
    pagination::PageRequest,
    pending::service_impl,
};
use crate::{
    auth::{
        directory::{Directory, DirectoryError},
        oidc::IDP_SECRET_TABLE,
        roles::{BUILTIN_GRANTS, BUILTIN_ROLES, PLATFORM_ADMIN},
    },
    cache::rate_limit::Limits,
    crypto::Sealer,
    pb::v1::{self as pb, admin_service_server::AdminService},
    platform::{LimitsChange, Platform, PlatformError, TenantState},
    store::{
        self, Database, StoreError, identity_providers::IdentityProviderRecord,
        role_policies::RolePolicy, tenants::TenantRecord, users::UserRecord,
    },
    tenancy,
};

/// Longest list of allowed email domains or group mappings accepted.
const MAX_LIST: usize = 100;

/// The AdminService implementation.
pub struct AdminApi {
    db: Database,
    sealer: Sealer,
    directory: Directory,
    platform: Platform,
}

impl AdminApi {
    /// Serves with `db`, managing users and roles through `directory` and tenants through
    /// `platform`.
    pub fn new(db: Database, sealer: Sealer, directory: Directory, platform: Platform) -> Self {
        Self {
            db,
            sealer,
            directory,
            platform,
        }
    }
}

impl From<PlatformError> for ApiError {
    fn from(err: PlatformError) -> Self {
        match err {
            PlatformError::NotFound => ApiError::NotFound("tenant"),
            PlatformError::Exists(_) => ApiError::AlreadyExists(err.to_string()),
            PlatformError::Slug(_) => ApiError::invalid("slug", err.to_string()),
            PlatformError::DisplayName => ApiError::invalid("display_name", err.to_string()),
            PlatformError::PhiPolicy => ApiError::invalid("settings.phi_policy", err.to_string()),
            PlatformError::Deleted => ApiError::FailedPrecondition(err.to_string()),
            PlatformError::RateLimit(_) => {
                ApiError::invalid("settings.rate_limits", err.to_string())
            }
            PlatformError::NotPlatformAdmin => ApiError::PermissionDenied(err.to_string()),
            PlatformError::Store(_) | PlatformError::Sessions(_) | PlatformError::Sync(_) => {
                ApiError::Internal(err.to_string())
            }
        }
    }
}

impl From<TenantRecord> for pb::Tenant {
    fn from(tenant: TenantRecord) -> Self {
        let state = match tenant.state.as_str() {
            "active" => pb::TenantState::Active,
            "suspended" => pb::TenantState::Suspended,
            "deleted" => pb::TenantState::Deleted,
            _ => pb::TenantState::Unspecified,
        };
        let phi_policy = match tenant.phi_policy.as_str() {
            "allow" => pb::PhiPolicy::Allow,
            "redact" => pb::PhiPolicy::Redact,
            "refuse" => pb::PhiPolicy::Refuse,
            _ => pb::PhiPolicy::Unspecified,
        };
        Self {
            id: tenant.id.to_string(),
            slug: tenant.slug,
            display_name: tenant.display_name,
            state: state.into(),
            settings: Some(pb::TenantSettings {
                phi_policy: phi_policy.into(),
                rate_limits: tenant
                    .rate_limits
                    .and_then(|json| serde_json::from_value::<Limits>(json.0).ok())
                    .map(|limits| pb::RateLimits {
                        per_caller_per_second: limits.per_caller_per_second,
                        per_caller_burst: limits.per_caller_burst,
                        per_tenant_per_second: limits.per_tenant_per_second,
                        per_tenant_burst: limits.per_tenant_burst,
                    }),
            }),
            create_time: Some(timestamp(tenant.created_at)),
            update_time: Some(timestamp(tenant.updated_at)),
        }
    }
}

/// What a settings message asks for the tenant's rate limits: unset keeps them, all zero
/// resets them to the server's defaults.
fn limits_change(settings: Option<&pb::TenantSettings>) -> LimitsChange {
    match settings.and_then(|s| s.rate_limits.as_ref()) {
        None => LimitsChange::Keep,
        Some(limits) if *limits == pb::RateLimits::default() => LimitsChange::Reset,
        Some(limits) => LimitsChange::Set(Limits {
            per_caller_per_second: limits.per_caller_per_second,
            per_caller_burst: limits.per_caller_burst,
            per_tenant_per_second: limits.per_tenant_per_second,
            per_tenant_burst: limits.per_tenant_burst,
        }),
    }
}

/// The PHI policy a settings message asks for (`None`: unchanged).
fn phi_policy_of(settings: Option<&pb::TenantSettings>) -> Option<&'static str> {
    match settings?.phi_policy() {
        pb::PhiPolicy::Unspecified => None,
        pb::PhiPolicy::Allow => Some("allow"),
        pb::PhiPolicy::Redact => Some("redact"),
        pb::PhiPolicy::Refuse => Some("refuse"),
    }
}

fn tenant_id(field: &'static str, value: &str) -> Result<Option<uuid::Uuid>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    uuid::Uuid::try_parse(value)
        .map(Some)
        .map_err(|_| ApiError::invalid(field, "must be a UUID"))
}

fn required_tenant_id(value: &str) -> Result<uuid::Uuid, ApiError> {
    tenant_id("tenant_id", value)?.ok_or_else(|| ApiError::invalid("tenant_id", "is required"))
}

impl From<DirectoryError> for ApiError {
    fn from(err: DirectoryError) -> Self {
        match err {
            DirectoryError::NotFound => ApiError::NotFound("user"),
            DirectoryError::BadRole(_) => ApiError::invalid("role", err.to_string()),
            DirectoryError::BadPolicy(_) => ApiError::invalid("policy", err.to_string()),
            DirectoryError::RoleNotAssignable(_) => ApiError::PermissionDenied(err.to_string()),
            DirectoryError::LastOwner => ApiError::FailedPrecondition(err.to_string()),
            DirectoryError::Store(_) | DirectoryError::Sessions(_) | DirectoryError::Sync(_) => {
                ApiError::Internal(err.to_string())
            }
        }
    }
}

impl From<UserRecord> for pb::User {
    fn from(user: UserRecord) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email,
            display_name: user.display_name,
            roles: user.roles,
            disabled: user.disabled,
            external_subject: user.external_subject.unwrap_or_default(),
            create_time: Some(timestamp(user.created_at)),
            last_login_time: user.last_login_at.map(timestamp),
        }
    }
}

impl From<RolePolicy> for pb::Policy {
    fn from(policy: RolePolicy) -> Self {
        Self {
            role: policy.role,
            permission: Some(pb::Permission {
                object: policy.object,
                action: policy.action,
            }),
        }
    }
}

fn user_id(value: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::try_parse(value).map_err(|_| ApiError::invalid("user_id", "must be a UUID"))
}

fn policy_of(policy: Option<pb::Policy>) -> Result<RolePolicy, ApiError> {
    let policy = policy.ok_or_else(|| ApiError::invalid("policy", "is required"))?;
    let permission = policy
        .permission
        .ok_or_else(|| ApiError::invalid("policy.permission", "is required"))?;
    Ok(RolePolicy {
        role: policy.role,
        object: permission.object,
        action: permission.action,
    })
}

fn non_empty(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

/// Built-in roles with their grants, then custom roles, each with its custom grants.
fn roles_view(custom: Vec<RolePolicy>) -> Vec<pb::Role> {
    let mut roles: BTreeMap<String, pb::Role> = BTreeMap::new();
    for (role, object, action) in BUILTIN_GRANTS {
        if *role == PLATFORM_ADMIN {
            continue;
        }
        roles
            .entry((*role).to_owned())
            .or_insert_with(|| pb::Role {
                name: (*role).to_owned(),
                builtin: true,
                permissions: Vec::new(),
            })
            .permissions
            .push(pb::Permission {
                object: (*object).to_owned(),
                action: (*action).to_owned(),
            });
    }
    for policy in custom {
        roles
            .entry(policy.role.clone())
            .or_insert_with(|| pb::Role {
                name: policy.role.clone(),
                builtin: BUILTIN_ROLES.contains(&policy.role.as_str()),
                permissions: Vec::new(),
            })
            .permissions
            .push(pb::Permission {
                object: policy.object,
                action: policy.action,
            });
    }
    let (mut builtin, custom): (Vec<_>, Vec<_>) = roles.into_values().partition(|r| r.builtin);
    builtin.sort_by_key(|r| BUILTIN_ROLES.iter().position(|b| *b == r.name));
    builtin.into_iter().chain(custom).collect()
}

impl From<IdentityProviderRecord> for pb::IdentityProvider {
    fn from(record: IdentityProviderRecord) -> Self {
        Self {
            issuer_url: record.issuer_url,
            client_id: record.client_id,
            client_secret_set: !record.client_secret_sealed.is_empty(),
            allowed_email_domains: record.allowed_email_domains,
            groups_claim: record.groups_claim,
            group_roles: record
                .group_roles
                .0
                .into_iter()
                .map(|(group, roles)| (group, pb::RoleList { roles }))
                .collect(),
            scopes: record.scopes,
            update_time: Some(timestamp(record.updated_at)),
        }
    }
}

/// Validates and converts the settings sent with SetIdentityProvider.
fn provider_record(
    provider: pb::IdentityProvider,
    client_secret_sealed: Vec<u8>,
) -> Result<IdentityProviderRecord, ApiError> {
    let issuer = url::Url::parse(&provider.issuer_url)
        .map_err(|_| ApiError::invalid("identity_provider.issuer_url", "must be an http(s) URL"))?;
    if !matches!(issuer.scheme(), "http" | "https") {
        return Err(ApiError::invalid(
            "identity_provider.issuer_url",
            "must be an http(s) URL",
        ));
    }
    if provider.client_id.is_empty() || provider.client_id.len() > 255 {
        return Err(ApiError::invalid(
            "identity_provider.client_id",
            "must be 1 to 255 characters",
        ));
    }
    if provider.allowed_email_domains.len() > MAX_LIST || provider.group_roles.len() > MAX_LIST {
        return Err(ApiError::invalid(
            "identity_provider",
            format!("at most {MAX_LIST} email domains and group mappings"),
        ));
    }
    let groups_claim = if provider.groups_claim.is_empty() {
        "groups".to_owned()
    } else {
        provider.groups_claim
    };
    let scopes = if provider.scopes.is_empty() {
        vec!["email".to_owned(), "profile".to_owned()]
    } else {
        provider.scopes
    };
    let group_roles: BTreeMap<String, Vec<String>> = provider
        .group_roles
        .into_iter()
        .map(|(group, list)| (group, list.roles))
        .collect();
    Ok(IdentityProviderRecord {
        issuer_url: provider.issuer_url.trim_end_matches('/').to_owned(),
        client_id: provider.client_id,
        client_secret_sealed,
        allowed_email_domains: provider.allowed_email_domains,
        groups_claim,
        group_roles: Json(group_roles),
        scopes,
        updated_at: time::OffsetDateTime::now_utc(),
    })
}

service_impl! {
    impl AdminService, for AdminApi;
    service: pb::admin_service_server::SERVICE_NAME;
    missing: "provider, profile and budget administration is not built yet";
    pending: [
        list_providers(ListProvidersRequest) -> ListProvidersResponse = "ListProviders",
        set_provider(SetProviderRequest) -> SetProviderResponse = "SetProvider",
        delete_provider(DeleteProviderRequest) -> DeleteProviderResponse = "DeleteProvider",
        list_model_routes(ListModelRoutesRequest) -> ListModelRoutesResponse = "ListModelRoutes",
        set_model_route(SetModelRouteRequest) -> SetModelRouteResponse = "SetModelRoute",
        delete_model_route(DeleteModelRouteRequest) -> DeleteModelRouteResponse = "DeleteModelRoute",
        set_profile(SetProfileRequest) -> SetProfileResponse = "SetProfile",
        delete_profile(DeleteProfileRequest) -> DeleteProfileResponse = "DeleteProfile",
        list_budgets(ListBudgetsRequest) -> ListBudgetsResponse = "ListBudgets",
        set_budget(SetBudgetRequest) -> SetBudgetResponse = "SetBudget",
        get_usage_report(GetUsageReportRequest) -> GetUsageReportResponse = "GetUsageReport",
    ];
    built: {
        async fn create_tenant(
            &self,
            request: Request<pb::CreateTenantRequest>,
        ) -> Result<Response<pb::CreateTenantResponse>, Status> {
            let body = request.into_inner();
            let tenant = self
                .platform
                .create(
                    &body.slug,
                    &body.display_name,
                    phi_policy_of(body.settings.as_ref()),
                    limits_change(body.settings.as_ref()),
                )
                .await
                .map_err(ApiError::from)?;
            Ok(Response::new(pb::CreateTenantResponse { tenant: Some(tenant.into()) }))
        }

        async fn get_tenant(
            &self,
            request: Request<pb::GetTenantRequest>,
        ) -> Result<Response<pb::GetTenantResponse>, Status> {
            let principal = principal(&request)?;
            let id = tenant_id("tenant_id", &request.get_ref().tenant_id)?;
            let tenant = self.platform.get(&principal, id).await.map_err(ApiError::from)?;
            Ok(Response::new(pb::GetTenantResponse { tenant: Some(tenant.into()) }))
        }

        async fn list_tenants(
            &self,
            request: Request<pb::ListTenantsRequest>,
        ) -> Result<Response<pb::ListTenantsResponse>, Status> {
            let body = request.into_inner();
            let page = PageRequest::parse(body.page_size, &body.page_token)?;
            let state = match body.state() {
                pb::TenantState::Unspecified => None,
                pb::TenantState::Active => Some(TenantState::Active),
                pb::TenantState::Suspended => Some(TenantState::Suspended),
                pb::TenantState::Deleted => Some(TenantState::Deleted),
            };
            let tenants = self
                .platform
                .list(page.after, state, page.size + 1)
                .await
                .map_err(ApiError::from)?;
            let (tenants, next_page_token) = page.finish(tenants, |t| t.id);
            Ok(Response::new(pb::ListTenantsResponse {
                tenants: tenants.into_iter().map(Into::into).collect(),
                next_page_token,
            }))
        }

        async fn update_tenant(
            &self,
            request: Request<pb::UpdateTenantRequest>,
        ) -> Result<Response<pb::UpdateTenantResponse>, Status> {
            let principal = principal(&request)?;
            let body = request.into_inner();
            let id = tenant_id("tenant_id", &body.tenant_id)?;
            let tenant = self
                .platform
                .update(
                    &principal,
                    id,
                    non_empty(&body.display_name),
                    phi_policy_of(body.settings.as_ref()),
                    limits_change(body.settings.as_ref()),
                )
                .await
                .map_err(ApiError::from)?;
            Ok(Response::new(pb::UpdateTenantResponse { tenant: Some(tenant.into()) }))
        }

        async fn suspend_tenant(
            &self,
            request: Request<pb::SuspendTenantRequest>,
        ) -> Result<Response<pb::SuspendTenantResponse>, Status> {
            let id = required_tenant_id(&request.get_ref().tenant_id)?;
            tracing::info!(tenant = %id, reason = %request.get_ref().reason, "suspending tenant");
            let tenant = self
                .platform
                .set_state(id, TenantState::Suspended)
                .await
                .map_err(ApiError::from)?;
            Ok(Response::new(pb::SuspendTenantResponse { tenant: Some(tenant.into()) }))
        }

        async fn resume_tenant(
            &self,
            request: Request<pb::ResumeTenantRequest>,
        ) -> Result<Response<pb::ResumeTenantResponse>, Status> {
            let id = required_tenant_id(&request.get_ref().tenant_id)?;
            let tenant = self
                .platform
                .set_state(id, TenantState::Active)
                .await
                .map_err(ApiError::from)?;
            Ok(Response::new(pb::ResumeTenantResponse { tenant: Some(tenant.into()) }))
        }

        async fn delete_tenant(
            &self,
            request: Request<pb::DeleteTenantRequest>,
        ) -> Result<Response<pb::DeleteTenantResponse>, Status> {
            let principal = principal(&request)?;
            let id = required_tenant_id(&request.get_ref().tenant_id)?;
            let current = self.platform.get(&principal, Some(id)).await.map_err(ApiError::from)?;
            if current.slug != request.get_ref().confirm_slug {
                return Err(ApiError::invalid(
                    "confirm_slug",
                    "must equal the tenant's slug to confirm the deletion",
                )
                .into());
            }
            let tenant = self
                .platform
                .set_state(id, TenantState::Deleted)
                .await
                .map_err(ApiError::from)?;
            Ok(Response::new(pb::DeleteTenantResponse { tenant: Some(tenant.into()) }))
        }

        async fn list_users(
            &self,
            request: Request<pb::ListUsersRequest>,
        ) -> Result<Response<pb::ListUsersResponse>, Status> {
            let principal = principal(&request)?;
            let body = request.into_inner();
            let page = PageRequest::parse(body.page_size, &body.page_token)?;
            let users = self
                .directory
                .list(&principal, non_empty(&body.query), non_empty(&body.role), page.after, page.size + 1)
                .await
                .map_err(ApiError::from)?;
            let (users, next_page_token) = page.finish(users, |u| u.id);
            Ok(Response::new(pb::ListUsersResponse {
                users: users.into_iter().map(Into::into).collect(),
                next_page_token,
            }))
        }

        async fn get_user(
            &self,
            request: Request<pb::GetUserRequest>,
        ) -> Result<Response<pb::GetUserResponse>, Status> {
            let principal = principal(&request)?;
            let user = user_id(&request.get_ref().user_id)?;
            let user = self.directory.get(&principal, user).await.map_err(ApiError::from)?;
            Ok(Response::new(pb::GetUserResponse { user: Some(user.into()) }))
        }

        async fn set_user_disabled(
            &self,
            request: Request<pb::SetUserDisabledRequest>,
        ) -> Result<Response<pb::SetUserDisabledResponse>, Status> {
            let principal = principal(&request)?;
            let user = user_id(&request.get_ref().user_id)?;
            let user = self
                .directory
                .set_disabled(&principal, user, request.get_ref().disabled)
                .await
                .map_err(ApiError::from)?;
            Ok(Response::new(pb::SetUserDisabledResponse { user: Some(user.into()) }))
        }

        async fn delete_user(
            &self,
            request: Request<pb::DeleteUserRequest>,
        ) -> Result<Response<pb::DeleteUserResponse>, Status> {
            let principal = principal(&request)?;
            let user = user_id(&request.get_ref().user_id)?;
            self.directory.delete(&principal, user).await.map_err(ApiError::from)?;
            Ok(Response::new(pb::DeleteUserResponse {}))
        }

        async fn revoke_user_sessions(
            &self,
            request: Request<pb::RevokeUserSessionsRequest>,
        ) -> Result<Response<pb::RevokeUserSessionsResponse>, Status> {
            let principal = principal(&request)?;
            let user = user_id(&request.get_ref().user_id)?;
            let revoked = self
                .directory
                .revoke_sessions(&principal, user)
                .await
                .map_err(ApiError::from)?;
            Ok(Response::new(pb::RevokeUserSessionsResponse {
                revoked: i64::try_from(revoked).unwrap_or(i64::MAX),
            }))
        }

        async fn list_roles(
            &self,
            request: Request<pb::ListRolesRequest>,
        ) -> Result<Response<pb::ListRolesResponse>, Status> {
            let principal = principal(&request)?;
            // A tenant's roles fit one page; the page fields are validated all the same.
            PageRequest::parse(request.get_ref().page_size, &request.get_ref().page_token)?;
            let custom = self.directory.policies(&principal, None).await.map_err(ApiError::from)?;
            Ok(Response::new(pb::ListRolesResponse {
                roles: roles_view(custom),
                next_page_token: String::new(),
            }))
        }

        async fn grant_role(
            &self,
            request: Request<pb::GrantRoleRequest>,
        ) -> Result<Response<pb::GrantRoleResponse>, Status> {
            let principal = principal(&request)?;
            let user = user_id(&request.get_ref().user_id)?;
            let user = self
                .directory
                .grant(&principal, user, &request.get_ref().role)
                .await
                .map_err(ApiError::from)?;
            Ok(Response::new(pb::GrantRoleResponse { user: Some(user.into()) }))
        }

        async fn revoke_role(
            &self,
            request: Request<pb::RevokeRoleRequest>,
        ) -> Result<Response<pb::RevokeRoleResponse>, Status> {
            let principal = principal(&request)?;
            let user = user_id(&request.get_ref().user_id)?;
            let user = self
                .directory
                .revoke(&principal, user, &request.get_ref().role)
                .await
                .map_err(ApiError::from)?;
            Ok(Response::new(pb::RevokeRoleResponse { user: Some(user.into()) }))
        }

        async fn list_policies(
            &self,
            request: Request<pb::ListPoliciesRequest>,
        ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
            let principal = principal(&request)?;
            PageRequest::parse(request.get_ref().page_size, &request.get_ref().page_token)?;
            let policies = self
                .directory
                .policies(&principal, non_empty(&request.get_ref().role))
                .await
                .map_err(ApiError::from)?;
            Ok(Response::new(pb::ListPoliciesResponse {
                policies: policies.into_iter().map(Into::into).collect(),
                next_page_token: String::new(),
            }))
        }

        async fn add_policy(
            &self,
            request: Request<pb::AddPolicyRequest>,
        ) -> Result<Response<pb::AddPolicyResponse>, Status> {
            let principal = principal(&request)?;
            let policy = policy_of(request.into_inner().policy)?;
            self.directory.add_policy(&principal, &policy).await.map_err(ApiError::from)?;
            Ok(Response::new(pb::AddPolicyResponse { policy: Some(policy.into()) }))
        }

        async fn remove_policy(
            &self,
            request: Request<pb::RemovePolicyRequest>,
        ) -> Result<Response<pb::RemovePolicyResponse>, Status> {
            let principal = principal(&request)?;
            let policy = policy_of(request.into_inner().policy)?;
            if !self.directory.remove_policy(&principal, &policy).await.map_err(ApiError::from)? {
                return Err(ApiError::NotFound("policy").into());
            }
            Ok(Response::new(pb::RemovePolicyResponse {}))
        }

        async fn get_identity_provider(
            &self,
            request: Request<pb::GetIdentityProviderRequest>,
        ) -> Result<Response<pb::GetIdentityProviderResponse>, Status> {
            let principal = principal(&request)?;
            let mut tx = tenancy::begin(&self.db, principal.tenant).await.map_err(ApiError::from)?;
            let provider = store::identity_providers::get(&mut tx).await.map_err(ApiError::from)?;
            tx.commit().await.map_err(|e| ApiError::from(StoreError::from(e)))?;
            Ok(Response::new(pb::GetIdentityProviderResponse {
                identity_provider: provider.map(Into::into),
            }))
        }

        async fn set_identity_provider(
            &self,
            request: Request<pb::SetIdentityProviderRequest>,
        ) -> Result<Response<pb::SetIdentityProviderResponse>, Status> {
            let principal = principal(&request)?;
            let body = request.into_inner();
            let provider = body
                .identity_provider
                .ok_or_else(|| ApiError::invalid("identity_provider", "is required"))?;
            let mut tx = tenancy::begin(&self.db, principal.tenant).await.map_err(ApiError::from)?;
            let sealed = if body.client_secret.is_empty() {
                Vec::new()
            } else {
                self.sealer
                    .seal(
                        &mut tx,
                        principal.tenant,
                        IDP_SECRET_TABLE,
                        &principal.tenant.to_string(),
                        body.client_secret.as_bytes(),
                    )
                    .await
                    .map_err(|err| ApiError::Internal(err.to_string()))?
            };
            let record = provider_record(provider, sealed)?;
            let saved = store::identity_providers::upsert(&mut tx, principal.tenant, &record)
                .await
                .map_err(ApiError::from)?;
            tx.commit().await.map_err(|e| ApiError::from(StoreError::from(e)))?;
            Ok(Response::new(pb::SetIdentityProviderResponse {
                identity_provider: Some(saved.into()),
            }))
        }
    }
}
