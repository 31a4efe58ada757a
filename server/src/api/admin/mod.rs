//! AdminService: tenants, users, roles, custom policies, the tenant's identity provider,
//! model providers and aliases, domain profiles, budgets and usage.

use tonic::{Request, Response, Status};

use super::{
    convert::{audit_resource, principal},
    pagination::{PageRequest, split_page},
};
use crate::{
    auth::{directory::Directory, identity_providers::IdentityProviders},
    chat::Profiles,
    edge::ApiError,
    llm::Providers,
    pb::v1::{self as pb, admin_service_server::AdminService},
    platform::{Platform, TenantState},
    usage::Accounting,
};

/// The AdminService implementation.
pub struct AdminApi {
    identity_providers: IdentityProviders,
    directory: Directory,
    platform: Platform,
    providers: Providers,
    accounting: Accounting,
    profiles: Profiles,
}

impl AdminApi {
    /// Serves the identity provider through `identity_providers`, users and roles through
    /// `directory`, tenants through
    /// `platform`, model providers through `providers`, budgets and usage through
    /// `accounting` and domain profiles through `profiles`.
    pub fn new(
        identity_providers: IdentityProviders,
        directory: Directory,
        platform: Platform,
        providers: Providers,
        accounting: Accounting,
        profiles: Profiles,
    ) -> Self {
        Self {
            identity_providers,
            directory,
            platform,
            providers,
            accounting,
            profiles,
        }
    }
}

mod convert;
mod profiles;
mod providers;
mod usage;

use convert::{
    limits_change, non_empty, policy_of, provider_record, required_tenant_id, roles_view,
    tenant_id, tenant_phi_policy, user_id,
};

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn set_profile(
        &self,
        request: Request<pb::SetProfileRequest>,
    ) -> Result<Response<pb::SetProfileResponse>, Status> {
        let principal = principal(&request)?;
        if let Some(profile) = &request.get_ref().profile {
            audit_resource(&request, &profile.id);
        }
        let settings = profiles::settings_of(request.into_inner())?;
        let saved = self.profiles.set(&principal, settings).await?;
        Ok(Response::new(pb::SetProfileResponse {
            profile: Some(saved.into()),
        }))
    }

    async fn delete_profile(
        &self,
        request: Request<pb::DeleteProfileRequest>,
    ) -> Result<Response<pb::DeleteProfileResponse>, Status> {
        let principal = principal(&request)?;
        audit_resource(&request, &request.get_ref().profile_id);
        self.profiles
            .delete(&principal, &request.get_ref().profile_id)
            .await?;
        Ok(Response::new(pb::DeleteProfileResponse {}))
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let principal = principal(&request)?;
        let body = request.into_inner();
        let size = PageRequest::parse(body.page_size, "")?.size;
        let after = non_empty(&body.page_token);
        let providers = self.providers.list(&principal, after, size + 1).await?;
        let (providers, next_page_token) = split_page(providers, size, |p| p.name.clone());
        Ok(Response::new(pb::ListProvidersResponse {
            providers: providers.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn set_provider(
        &self,
        request: Request<pb::SetProviderRequest>,
    ) -> Result<Response<pb::SetProviderResponse>, Status> {
        let principal = principal(&request)?;
        let body = request.into_inner();
        let settings = providers::settings_of(body.provider)?;
        let saved = self
            .providers
            .set(&principal, &settings, &body.credential)
            .await?;
        Ok(Response::new(pb::SetProviderResponse {
            provider: Some(saved.into()),
        }))
    }

    async fn delete_provider(
        &self,
        request: Request<pb::DeleteProviderRequest>,
    ) -> Result<Response<pb::DeleteProviderResponse>, Status> {
        let principal = principal(&request)?;
        audit_resource(&request, &request.get_ref().name);
        self.providers
            .delete(&principal, &request.get_ref().name)
            .await?;
        Ok(Response::new(pb::DeleteProviderResponse {}))
    }

    async fn list_model_routes(
        &self,
        request: Request<pb::ListModelRoutesRequest>,
    ) -> Result<Response<pb::ListModelRoutesResponse>, Status> {
        let principal = principal(&request)?;
        let body = request.into_inner();
        let size = PageRequest::parse(body.page_size, "")?.size;
        let routes = self
            .providers
            .routes(&principal, non_empty(&body.page_token), size + 1)
            .await?;
        let (routes, next_page_token) = split_page(routes, size, |r| r.alias.clone());
        Ok(Response::new(pb::ListModelRoutesResponse {
            routes: routes.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn set_model_route(
        &self,
        request: Request<pb::SetModelRouteRequest>,
    ) -> Result<Response<pb::SetModelRouteResponse>, Status> {
        let principal = principal(&request)?;
        let route = providers::route_of(request.into_inner().route)?;
        let saved = self.providers.set_route(&principal, &route).await?;
        Ok(Response::new(pb::SetModelRouteResponse {
            route: Some(saved.into()),
        }))
    }

    async fn delete_model_route(
        &self,
        request: Request<pb::DeleteModelRouteRequest>,
    ) -> Result<Response<pb::DeleteModelRouteResponse>, Status> {
        let principal = principal(&request)?;
        audit_resource(&request, &request.get_ref().alias);
        self.providers
            .delete_route(&principal, &request.get_ref().alias)
            .await?;
        Ok(Response::new(pb::DeleteModelRouteResponse {}))
    }

    async fn list_budgets(
        &self,
        request: Request<pb::ListBudgetsRequest>,
    ) -> Result<Response<pb::ListBudgetsResponse>, Status> {
        let principal = principal(&request)?;
        if !request.get_ref().page_token.is_empty() {
            return Err(
                ApiError::invalid("page_token", "not a token from a previous response").into(),
            );
        }
        let budgets = self.accounting.budgets_of(&principal, None).await?;
        Ok(Response::new(pb::ListBudgetsResponse {
            budgets: budgets.into_iter().map(Into::into).collect(),
            next_page_token: String::new(),
        }))
    }

    async fn set_budget(
        &self,
        request: Request<pb::SetBudgetRequest>,
    ) -> Result<Response<pb::SetBudgetResponse>, Status> {
        let principal = principal(&request)?;
        let (user, period, limit) = usage::budget_of(request.into_inner().budget)?;
        self.accounting
            .set_budget(&principal, user, period, limit)
            .await?;
        let budget = self
            .accounting
            .budgets_of(&principal, None)
            .await?
            .into_iter()
            .find(|b| b.user == user && b.period == period);
        Ok(Response::new(pb::SetBudgetResponse {
            budget: Some(budget.map_or_else(|| usage::removed(user, period), Into::into)),
        }))
    }

    async fn get_usage_report(
        &self,
        request: Request<pb::GetUsageReportRequest>,
    ) -> Result<Response<pb::GetUsageReportResponse>, Status> {
        let principal = principal(&request)?;
        let query = usage::report_query(request.into_inner())?;
        let rows = self
            .accounting
            .report(
                &principal,
                query.from,
                query.until,
                query.user,
                query.model.as_deref(),
            )
            .await?;
        Ok(Response::new(usage::report_page(rows, &query)?))
    }

    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::CreateTenantResponse>, Status> {
        let principal = principal(&request)?;
        let body = request.into_inner();
        let tenant = self
            .platform
            .create(
                &principal,
                &body.slug,
                &body.display_name,
                tenant_phi_policy(body.settings.as_ref()),
                limits_change(body.settings.as_ref()),
            )
            .await?;
        Ok(Response::new(pb::CreateTenantResponse {
            tenant: Some(tenant.into()),
        }))
    }

    async fn get_tenant(
        &self,
        request: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::GetTenantResponse>, Status> {
        let principal = principal(&request)?;
        let id = tenant_id("tenant_id", &request.get_ref().tenant_id)?;
        audit_resource(&request, id.unwrap_or(principal.tenant.0));
        let tenant = self.platform.get(&principal, id).await?;
        Ok(Response::new(pb::GetTenantResponse {
            tenant: Some(tenant.into()),
        }))
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
        let tenants = self.platform.list(page.after, state, page.size + 1).await?;
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
        let id = tenant_id("tenant_id", &request.get_ref().tenant_id)?;
        audit_resource(&request, id.unwrap_or(principal.tenant.0));
        let body = request.into_inner();
        let tenant = self
            .platform
            .update(
                &principal,
                id,
                non_empty(&body.display_name),
                tenant_phi_policy(body.settings.as_ref()),
                limits_change(body.settings.as_ref()),
            )
            .await?;
        Ok(Response::new(pb::UpdateTenantResponse {
            tenant: Some(tenant.into()),
        }))
    }

    async fn suspend_tenant(
        &self,
        request: Request<pb::SuspendTenantRequest>,
    ) -> Result<Response<pb::SuspendTenantResponse>, Status> {
        let principal = principal(&request)?;
        let id = required_tenant_id(&request.get_ref().tenant_id)?;
        audit_resource(&request, id);
        let reason = &request.get_ref().reason;
        tracing::info!(tenant = %id, %reason, "suspending tenant");
        let tenant = self
            .platform
            .set_state(&principal, id, TenantState::Suspended, reason)
            .await?;
        Ok(Response::new(pb::SuspendTenantResponse {
            tenant: Some(tenant.into()),
        }))
    }

    async fn resume_tenant(
        &self,
        request: Request<pb::ResumeTenantRequest>,
    ) -> Result<Response<pb::ResumeTenantResponse>, Status> {
        let principal = principal(&request)?;
        let id = required_tenant_id(&request.get_ref().tenant_id)?;
        audit_resource(&request, id);
        let tenant = self
            .platform
            .set_state(&principal, id, TenantState::Active, "")
            .await?;
        Ok(Response::new(pb::ResumeTenantResponse {
            tenant: Some(tenant.into()),
        }))
    }

    async fn delete_tenant(
        &self,
        request: Request<pb::DeleteTenantRequest>,
    ) -> Result<Response<pb::DeleteTenantResponse>, Status> {
        let principal = principal(&request)?;
        let id = required_tenant_id(&request.get_ref().tenant_id)?;
        audit_resource(&request, id);
        let current = self.platform.get(&principal, Some(id)).await?;
        if current.slug != request.get_ref().confirm_slug {
            return Err(ApiError::invalid(
                "confirm_slug",
                "must equal the tenant's slug to confirm the deletion",
            )
            .into());
        }
        let tenant = self
            .platform
            .set_state(&principal, id, TenantState::Deleted, "")
            .await?;
        Ok(Response::new(pb::DeleteTenantResponse {
            tenant: Some(tenant.into()),
        }))
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
            .list(
                &principal,
                non_empty(&body.query),
                non_empty(&body.role),
                page.after,
                page.size + 1,
            )
            .await?;
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
        audit_resource(&request, user);
        let user = self.directory.get(&principal, user).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(user.into()),
        }))
    }

    async fn set_user_disabled(
        &self,
        request: Request<pb::SetUserDisabledRequest>,
    ) -> Result<Response<pb::SetUserDisabledResponse>, Status> {
        let principal = principal(&request)?;
        let user = user_id(&request.get_ref().user_id)?;
        audit_resource(&request, user);
        let user = self
            .directory
            .set_disabled(&principal, user, request.get_ref().disabled)
            .await?;
        Ok(Response::new(pb::SetUserDisabledResponse {
            user: Some(user.into()),
        }))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let principal = principal(&request)?;
        let user = user_id(&request.get_ref().user_id)?;
        audit_resource(&request, user);
        self.directory.delete(&principal, user).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn revoke_user_sessions(
        &self,
        request: Request<pb::RevokeUserSessionsRequest>,
    ) -> Result<Response<pb::RevokeUserSessionsResponse>, Status> {
        let principal = principal(&request)?;
        let user = user_id(&request.get_ref().user_id)?;
        audit_resource(&request, user);
        let revoked = self.directory.revoke_sessions(&principal, user).await?;
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
        let custom = self.directory.policies(&principal, None).await?;
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
        audit_resource(&request, user);
        let user = self
            .directory
            .grant(&principal, user, &request.get_ref().role)
            .await?;
        Ok(Response::new(pb::GrantRoleResponse {
            user: Some(user.into()),
        }))
    }

    async fn revoke_role(
        &self,
        request: Request<pb::RevokeRoleRequest>,
    ) -> Result<Response<pb::RevokeRoleResponse>, Status> {
        let principal = principal(&request)?;
        let user = user_id(&request.get_ref().user_id)?;
        audit_resource(&request, user);
        let user = self
            .directory
            .revoke(&principal, user, &request.get_ref().role)
            .await?;
        Ok(Response::new(pb::RevokeRoleResponse {
            user: Some(user.into()),
        }))
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
            .await?;
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
        self.directory.add_policy(&principal, &policy).await?;
        Ok(Response::new(pb::AddPolicyResponse {
            policy: Some(policy.into()),
        }))
    }

    async fn remove_policy(
        &self,
        request: Request<pb::RemovePolicyRequest>,
    ) -> Result<Response<pb::RemovePolicyResponse>, Status> {
        let principal = principal(&request)?;
        let policy = policy_of(request.into_inner().policy)?;
        if !self.directory.remove_policy(&principal, &policy).await? {
            return Err(ApiError::NotFound("policy").into());
        }
        Ok(Response::new(pb::RemovePolicyResponse {}))
    }

    async fn get_identity_provider(
        &self,
        request: Request<pb::GetIdentityProviderRequest>,
    ) -> Result<Response<pb::GetIdentityProviderResponse>, Status> {
        let principal = principal(&request)?;
        let provider = self.identity_providers.get(&principal).await?;
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
        let saved = self
            .identity_providers
            .set(&principal, provider_record(provider)?, &body.client_secret)
            .await?;
        Ok(Response::new(pb::SetIdentityProviderResponse {
            identity_provider: Some(saved.into()),
        }))
    }
}
