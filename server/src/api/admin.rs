//! AdminService: the tenant's identity provider settings. Tenants, users, roles,
//! providers, profiles and budgets answer `UNIMPLEMENTED` until they are built.

use std::collections::BTreeMap;

use sqlx::types::Json;
use tonic::{Request, Response, Status};

use super::{
    convert::{principal, timestamp},
    error::ApiError,
    pending::service_impl,
};
use crate::{
    pb::v1::{self as pb, admin_service_server::AdminService},
    store::{self, Database, StoreError, identity_providers::IdentityProviderRecord},
    tenancy,
};

/// Longest list of allowed email domains or group mappings accepted.
const MAX_LIST: usize = 100;

/// The AdminService implementation.
pub struct AdminApi {
    db: Database,
}

impl AdminApi {
    /// Serves with `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl From<IdentityProviderRecord> for pb::IdentityProvider {
    fn from(record: IdentityProviderRecord) -> Self {
        Self {
            issuer_url: record.issuer_url,
            client_id: record.client_id,
            client_secret_set: !record.client_secret.is_empty(),
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
    client_secret: String,
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
        client_secret,
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
    missing: "tenant, user, role, provider, profile and budget administration is not built yet";
    pending: [
        create_tenant(CreateTenantRequest) -> CreateTenantResponse = "CreateTenant",
        get_tenant(GetTenantRequest) -> GetTenantResponse = "GetTenant",
        list_tenants(ListTenantsRequest) -> ListTenantsResponse = "ListTenants",
        update_tenant(UpdateTenantRequest) -> UpdateTenantResponse = "UpdateTenant",
        suspend_tenant(SuspendTenantRequest) -> SuspendTenantResponse = "SuspendTenant",
        resume_tenant(ResumeTenantRequest) -> ResumeTenantResponse = "ResumeTenant",
        delete_tenant(DeleteTenantRequest) -> DeleteTenantResponse = "DeleteTenant",
        list_users(ListUsersRequest) -> ListUsersResponse = "ListUsers",
        get_user(GetUserRequest) -> GetUserResponse = "GetUser",
        set_user_disabled(SetUserDisabledRequest) -> SetUserDisabledResponse = "SetUserDisabled",
        delete_user(DeleteUserRequest) -> DeleteUserResponse = "DeleteUser",
        revoke_user_sessions(RevokeUserSessionsRequest) -> RevokeUserSessionsResponse = "RevokeUserSessions",
        list_roles(ListRolesRequest) -> ListRolesResponse = "ListRoles",
        grant_role(GrantRoleRequest) -> GrantRoleResponse = "GrantRole",
        revoke_role(RevokeRoleRequest) -> RevokeRoleResponse = "RevokeRole",
        list_policies(ListPoliciesRequest) -> ListPoliciesResponse = "ListPolicies",
        add_policy(AddPolicyRequest) -> AddPolicyResponse = "AddPolicy",
        remove_policy(RemovePolicyRequest) -> RemovePolicyResponse = "RemovePolicy",
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
            let record = provider_record(provider, body.client_secret)?;
            let mut tx = tenancy::begin(&self.db, principal.tenant).await.map_err(ApiError::from)?;
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
