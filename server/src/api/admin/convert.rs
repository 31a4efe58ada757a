//! Conversions and request validation of AdminService: proto messages to domain values and
//! back, and domain errors to API errors.

use std::collections::BTreeMap;

use sqlx::types::Json;

use crate::{
    api::convert::{phi_policy_of, timestamp},
    auth::roles::{BUILTIN_GRANTS, BUILTIN_ROLES, PLATFORM_ADMIN},
    cache::rate_limit::Limits,
    edge::ApiError,
    pb::v1 as pb,
    platform::LimitsChange,
    privacy::PhiPolicy,
    store::{
        identity_providers::IdentityProviderRecord, role_policies::RolePolicy,
        tenants::TenantRecord, users::UserRecord,
    },
};

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

pub(super) fn user_id(value: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::try_parse(value).map_err(|_| ApiError::invalid("user_id", "must be a UUID"))
}

pub(super) fn policy_of(policy: Option<pb::Policy>) -> Result<RolePolicy, ApiError> {
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

pub(super) fn non_empty(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

/// Built-in roles with their grants, then custom roles, each with its custom grants.
pub(super) fn roles_view(custom: Vec<RolePolicy>) -> Vec<pb::Role> {
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
pub(super) fn provider_record(
    provider: pb::IdentityProvider,
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
    if provider.allowed_email_domains.is_empty() {
        return Err(ApiError::invalid(
            "identity_provider.allowed_email_domains",
            "list the email domains that may sign in, or [\"*\"] to admit every account the \
             issuer vouches for",
        ));
    }
    if let Some(bad) = provider
        .allowed_email_domains
        .iter()
        .find(|d| d.as_str() != "*" && !is_domain_name(d))
    {
        return Err(ApiError::invalid(
            "identity_provider.allowed_email_domains",
            format!("{bad:?} is not a domain name (or \"*\" for any)"),
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
        client_secret_sealed: Vec::new(),
        allowed_email_domains: provider.allowed_email_domains,
        groups_claim,
        group_roles: Json(group_roles),
        scopes,
        updated_at: time::OffsetDateTime::now_utc(),
    })
}

/// Whether `name` is a DNS domain name (labels of letters, digits and '-', up to 253).
fn is_domain_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Longest list of allowed email domains or group mappings accepted.
const MAX_LIST: usize = 100;

impl From<TenantRecord> for pb::Tenant {
    fn from(tenant: TenantRecord) -> Self {
        let state = match tenant.state.as_str() {
            "active" => pb::TenantState::Active,
            "suspended" => pb::TenantState::Suspended,
            "deleted" => pb::TenantState::Deleted,
            _ => pb::TenantState::Unspecified,
        };
        let phi_policy = tenant
            .phi_policy
            .parse::<PhiPolicy>()
            .map_or(pb::PhiPolicy::Unspecified, Into::into);
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
pub(super) fn limits_change(settings: Option<&pb::TenantSettings>) -> LimitsChange {
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
pub(super) fn tenant_phi_policy(settings: Option<&pb::TenantSettings>) -> Option<&'static str> {
    phi_policy_of(settings?.phi_policy()).map(PhiPolicy::as_str)
}

pub(super) fn tenant_id(field: &'static str, value: &str) -> Result<Option<uuid::Uuid>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    uuid::Uuid::try_parse(value)
        .map(Some)
        .map_err(|_| ApiError::invalid(field, "must be a UUID"))
}

pub(super) fn required_tenant_id(value: &str) -> Result<uuid::Uuid, ApiError> {
    tenant_id("tenant_id", value)?.ok_or_else(|| ApiError::invalid("tenant_id", "is required"))
}
