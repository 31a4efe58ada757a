//! `codexcontinue bootstrap`: the first tenant, its first admin, and a credential to start
//! with. Idempotent: when the tenant exists nothing changes and no credential is issued.

use crate::{
    audit::{self, NewEvent},
    auth::{api_key::IssuedApiKey, roles::PLATFORM_ADMIN},
    random::RandomnessUnavailable,
    store::{self, Database, StoreError},
    tenancy::{InvalidSlug, TenantId, TenantSlug},
};

/// Role of the first admin; it can do everything within the tenant.
const FIRST_ADMIN_ROLE: &str = "owner";

/// What bootstrap did.
pub enum BootstrapOutcome {
    /// The tenant was made now.
    Created {
        /// The new tenant.
        tenant: TenantId,
        /// The admin user.
        admin_user: uuid::Uuid,
        /// The admin's API key; its secret is shown once.
        api_key: IssuedApiKey,
    },
    /// A tenant with the slug already existed; nothing was changed.
    AlreadyExists {
        /// Its id.
        tenant: TenantId,
    },
}

/// Why bootstrap failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// `--tenant` is not a valid slug.
    #[error(transparent)]
    Slug(#[from] InvalidSlug),
    /// `--admin-email` is not an email address.
    #[error("admin email {0:?} is not an email address (expected name@domain)")]
    Email(String),
    /// No key could be generated.
    #[error(transparent)]
    Randomness(#[from] RandomnessUnavailable),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates tenant `slug` with `email` as its owner and an API key for them, all in one
/// transaction. With `platform_admin`, the owner also gets the platform operator's role
/// (creating and suspending tenants), which nothing else can grant.
///
/// # Errors
/// [`BootstrapError`] for bad input or a database failure.
pub async fn bootstrap(
    db: &Database,
    slug: &str,
    display_name: Option<&str>,
    email: &str,
    platform_admin: bool,
) -> Result<BootstrapOutcome, BootstrapError> {
    let slug = TenantSlug::parse(slug)?;
    let email = email.trim();
    if !looks_like_email(email) {
        return Err(BootstrapError::Email(email.to_owned()));
    }
    if let Some(tenant) = store::tenants::find_by_slug(db, &slug).await? {
        return Ok(BootstrapOutcome::AlreadyExists { tenant });
    }
    let api_key = IssuedApiKey::generate()?;
    let mut tx = db.begin_platform().await?;
    let display_name = display_name.unwrap_or(slug.as_str());
    let Some(tenant) = store::tenants::create(&mut tx, &slug, display_name).await? else {
        // Another bootstrap won the race.
        let tenant = store::tenants::find_by_slug(db, &slug)
            .await?
            .ok_or(StoreError::Query(sqlx::Error::RowNotFound))?;
        return Ok(BootstrapOutcome::AlreadyExists { tenant });
    };
    let mut tx = tx.scope(tenant).await?;
    let admin_user = store::users::insert(&mut tx, email, "").await?;
    let mut roles = vec![FIRST_ADMIN_ROLE.to_owned()];
    if platform_admin {
        roles.push(PLATFORM_ADMIN.to_owned());
    }
    for role in &roles {
        store::users::grant_role(&mut tx, admin_user, role).await?;
    }
    let row = store::api_keys::NewKeyRow {
        id: api_key.id,
        owner: admin_user,
        parent: None,
        name: "bootstrap",
        prefix: &api_key.prefix,
        roles: &roles,
        expires_at: None,
    };
    let key = store::api_keys::insert(&mut tx, &row, &api_key.secret_sha256).await?;
    let details =
        serde_json::json!({ "admin_user": admin_user, "roles": roles, "api_key": key.id });
    let event = NewEvent::by_system("bootstrap", "tenant.bootstrap", "tenant", tenant, details);
    audit::append(&mut tx, tenant, &event).await?;
    tx.commit().await?;
    Ok(BootstrapOutcome::Created {
        tenant,
        admin_user,
        api_key,
    })
}

/// A deliberately loose check: one `@` with text on both sides, a dot in the domain, no
/// spaces, at most 254 characters. The identity provider is the authority on addresses.
fn looks_like_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && email.len() <= 254
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_email;

    #[test]
    fn email_shapes() {
        assert!(looks_like_email("admin@example.com"));
        for bad in [
            "",
            "admin",
            "@example.com",
            "a@b",
            "a@.com",
            "a b@c.d",
            "a@b@c.d",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }
}
