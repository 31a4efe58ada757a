//! Domain profiles: how the assistant behaves for a field of work — its instructions, the
//! model alias it uses, what happens to protected information in prompts, and which
//! plugins it may call.
//!
//! Every tenant has the built-in profiles below. A tenant may change a built-in one (its
//! row overrides the defaults; deleting the row restores them) and add profiles of its own.
//! A conversation whose own profile was deleted is served with `general`.

use std::sync::Arc;

use serde_json::json;
use sqlx::PgConnection;

use crate::chat::ChatError;
use crate::{
    audit::{self, NewEvent},
    cache::SettingsChanges,
    caller::Principal,
    privacy::{PhiPolicy, tenant_policy},
    store::{self, Database, profiles::ProfileRow},
};

/// The profile of conversations that name none.
pub const DEFAULT_PROFILE: &str = "general";
/// Longest system prompt, in bytes.
pub const MAX_SYSTEM_PROMPT_BYTES: usize = 16 * 1024;
/// Most profiles a tenant may store (overrides included).
const MAX_STORED: i64 = 100;
/// Most plugins one profile may allow.
const MAX_PLUGINS: usize = 64;

/// What a tenant may set on a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSettings {
    /// Stable id: lowercase letters, digits, `_`, `-`.
    pub id: String,
    /// Name to show.
    pub display_name: String,
    /// What it is for.
    pub description: String,
    /// Instructions given to the model first.
    pub system_prompt: String,
    /// Model alias (or `provider/model`) used when a conversation names none.
    pub default_model: String,
    /// The profile's own PHI policy; `None`: the tenant's.
    pub phi_policy: Option<PhiPolicy>,
    /// Plugin ids the assistant may call.
    pub allowed_plugins: Vec<String>,
}

/// A profile as it applies to a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Its settings (the built-in defaults or the tenant's).
    pub settings: ProfileSettings,
    /// The PHI policy in effect: the profile's own, else the tenant's.
    pub phi_policy: PhiPolicy,
    /// Whether the tenant defined it (not a built-in id).
    pub custom: bool,
}

/// A built-in profile's defaults.
struct Builtin {
    id: &'static str,
    display_name: &'static str,
    description: &'static str,
    system_prompt: &'static str,
}

impl Builtin {
    fn settings(&self) -> ProfileSettings {
        ProfileSettings {
            id: self.id.to_owned(),
            display_name: self.display_name.to_owned(),
            description: self.description.to_owned(),
            system_prompt: self.system_prompt.to_owned(),
            default_model: "default".to_owned(),
            phi_policy: None,
            allowed_plugins: Vec::new(),
        }
    }
}

/// The profiles every tenant has.
const BUILTINS: [Builtin; 5] = [
    Builtin {
        id: "general",
        display_name: "General",
        description: "Everyday questions and writing.",
        system_prompt: "You are a helpful, precise assistant.",
    },
    Builtin {
        id: "health",
        display_name: "Health",
        description: "Clinical documentation and medical questions, for professionals.",
        system_prompt: "You assist healthcare professionals. Be accurate, cite uncertainty, \
                        and never present a diagnosis as certain.",
    },
    Builtin {
        id: "legal",
        display_name: "Legal",
        description: "Drafting and reviewing legal text.",
        system_prompt: "You assist legal professionals. Be precise about jurisdiction and \
                        say when something needs a qualified lawyer's review.",
    },
    Builtin {
        id: "finance",
        display_name: "Finance",
        description: "Financial analysis and reporting.",
        system_prompt: "You assist finance professionals. Show your calculations and state \
                        assumptions.",
    },
    Builtin {
        id: "developer",
        display_name: "Developer",
        description: "Software engineering: code, reviews, debugging.",
        system_prompt: "You are an expert software engineer. Prefer working code and short \
                        explanations.",
    },
];

fn builtin(id: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.id == id)
}

/// The tenants' profiles.
#[derive(Clone)]
pub struct Profiles {
    db: Database,
    changes: Arc<SettingsChanges>,
}

impl Profiles {
    /// Profiles kept in `db`; changes announced through `changes`.
    pub fn new(db: Database, changes: Arc<SettingsChanges>) -> Self {
        Self { db, changes }
    }

    /// Every profile of the caller's tenant, by id: the built-in ones (as the tenant set
    /// them) and its own.
    ///
    /// # Errors
    /// [`ChatError::Store`] when Postgres fails.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<Profile>, ChatError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let tenant_policy = tenant_policy(&mut tx).await?;
        let rows = store::profiles::list(&mut tx).await?;
        tx.commit().await?;
        let defaults: Vec<Profile> = BUILTINS
            .iter()
            .filter(|b| !rows.iter().any(|row| row.id == b.id))
            .map(|b| applied(b.settings(), tenant_policy))
            .collect();
        let mut profiles: Vec<Profile> = defaults
            .into_iter()
            .chain(
                rows.into_iter()
                    .map(|row| applied(settings_of(row), tenant_policy)),
            )
            .collect();
        profiles.sort_by(|a, b| a.settings.id.cmp(&b.settings.id));
        Ok(profiles)
    }

    /// Creates or replaces a profile of the caller's tenant, recorded as `profile.set`.
    ///
    /// # Errors
    /// [`ChatError::Invalid`] for an unacceptable setting or when the tenant already
    /// stores the most profiles; [`ChatError::Store`] when Postgres fails.
    pub async fn set(
        &self,
        principal: &Principal,
        settings: ProfileSettings,
    ) -> Result<Profile, ChatError> {
        let settings = validated(settings)?;
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let exists = store::profiles::get(&mut tx, &settings.id).await?.is_some();
        if !exists && store::profiles::count(&mut tx).await? >= MAX_STORED {
            return Err(ChatError::invalid(
                "profile.id",
                format!("a tenant may store at most {MAX_STORED} profiles; delete one first"),
            ));
        }
        let row = ProfileRow {
            id: settings.id.clone(),
            display_name: settings.display_name.clone(),
            description: settings.description.clone(),
            system_prompt: settings.system_prompt.clone(),
            default_model: settings.default_model.clone(),
            phi_policy: settings.phi_policy.map(|p| p.as_str().to_owned()),
            allowed_plugins: settings.allowed_plugins.clone(),
        };
        store::profiles::upsert(&mut tx, &row).await?;
        let details = json!({
            "default_model": settings.default_model,
            "phi_policy": settings.phi_policy.map(PhiPolicy::as_str),
            "allowed_plugins": settings.allowed_plugins,
            "builtin": builtin(&settings.id).is_some(),
        });
        let event = NewEvent::by(principal, "profile.set", "profile", &settings.id, details);
        audit::append(&mut tx, principal.tenant, &event).await?;
        let tenant_policy = tenant_policy(&mut tx).await?;
        tx.commit().await?;
        self.changes.changed(principal.tenant).await;
        Ok(applied(settings, tenant_policy))
    }

    /// Deletes a tenant's own profile, or restores a built-in one to its defaults;
    /// recorded as `profile.delete`.
    ///
    /// # Errors
    /// [`ChatError::UnknownProfile`] when the tenant stores no profile `id`;
    /// [`ChatError::Store`] when Postgres fails.
    pub async fn delete(&self, principal: &Principal, id: &str) -> Result<(), ChatError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        if !store::profiles::delete(&mut tx, id).await? {
            return Err(ChatError::UnknownProfile(id.to_owned()));
        }
        let details = json!({ "builtin": builtin(id).is_some() });
        let event = NewEvent::by(principal, "profile.delete", "profile", id, details);
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        self.changes.changed(principal.tenant).await;
        Ok(())
    }
}

/// The scoped tenant's profile `id`, if it has one.
///
/// # Errors
/// [`ChatError::Store`] when Postgres fails.
pub(in crate::chat) async fn find(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<Profile>, ChatError> {
    let stored = store::profiles::get(conn, id).await?;
    let settings = match (stored, builtin(id)) {
        (Some(row), _) => settings_of(row),
        (None, Some(builtin)) => builtin.settings(),
        (None, None) => return Ok(None),
    };
    Ok(Some(applied(settings, tenant_policy(conn).await?)))
}

/// The profile a conversation with profile `id` is served with: that one, or `general`
/// when it no longer exists.
///
/// # Errors
/// [`ChatError::Store`] when Postgres fails.
pub(in crate::chat) async fn serving(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Profile, ChatError> {
    if let Some(profile) = find(conn, id).await? {
        return Ok(profile);
    }
    Ok(find(conn, DEFAULT_PROFILE)
        .await?
        .expect("the default profile is built in"))
}

/// The profile `id` as it serves; unlike [`serving`], an unknown id is an error.
pub(in crate::chat) async fn named(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Profile, ChatError> {
    find(conn, id)
        .await?
        .ok_or_else(|| ChatError::UnknownProfile(id.to_owned()))
}

fn applied(settings: ProfileSettings, tenant_policy: PhiPolicy) -> Profile {
    Profile {
        phi_policy: settings.phi_policy.unwrap_or(tenant_policy),
        custom: builtin(&settings.id).is_none(),
        settings,
    }
}

fn settings_of(row: ProfileRow) -> ProfileSettings {
    ProfileSettings {
        // The column's CHECK admits only the three names; anything else is treated as
        // the strictest policy.
        phi_policy: row
            .phi_policy
            .map(|p| p.parse().unwrap_or(PhiPolicy::Refuse)),
        id: row.id,
        display_name: row.display_name,
        description: row.description,
        system_prompt: row.system_prompt,
        default_model: row.default_model,
        allowed_plugins: row.allowed_plugins,
    }
}

/// `settings` trimmed and checked.
fn validated(mut settings: ProfileSettings) -> Result<ProfileSettings, ChatError> {
    if !crate::tenancy::is_identifier(&settings.id) {
        return Err(ChatError::invalid(
            "profile.id",
            "must be lowercase letters, digits, '_' or '-', starting with a letter, at most 63",
        ));
    }
    settings.display_name = settings.display_name.trim().to_owned();
    if settings.display_name.is_empty() {
        settings.display_name = builtin(&settings.id)
            .map_or_else(|| settings.id.clone(), |b| b.display_name.to_owned());
    }
    if settings.display_name.chars().count() > 100 {
        return Err(ChatError::invalid(
            "profile.display_name",
            "must be at most 100 characters",
        ));
    }
    settings.description = settings.description.trim().to_owned();
    if settings.description.chars().count() > 500 {
        return Err(ChatError::invalid(
            "profile.description",
            "must be at most 500 characters",
        ));
    }
    if settings.system_prompt.trim().is_empty() {
        return Err(ChatError::invalid("system_prompt", "must not be empty"));
    }
    if settings.system_prompt.len() > MAX_SYSTEM_PROMPT_BYTES {
        return Err(ChatError::invalid(
            "system_prompt",
            format!("must be at most {MAX_SYSTEM_PROMPT_BYTES} bytes"),
        ));
    }
    settings.default_model = settings.default_model.trim().to_owned();
    if settings.default_model.is_empty() {
        "default".clone_into(&mut settings.default_model);
    }
    if settings.default_model.chars().count() > 200
        || settings.default_model.chars().any(char::is_whitespace)
    {
        return Err(ChatError::invalid(
            "profile.default_model",
            "must be a model alias or \"provider/model\", at most 200 characters, no spaces",
        ));
    }
    settings.allowed_plugins.sort();
    settings.allowed_plugins.dedup();
    if settings.allowed_plugins.len() > MAX_PLUGINS
        || !settings
            .allowed_plugins
            .iter()
            .all(|p| crate::tenancy::is_identifier(p))
    {
        return Err(ChatError::invalid(
            "profile.allowed_plugins",
            format!(
                "at most {MAX_PLUGINS} plugin ids of lowercase letters, digits, '_' or '-', \
                 starting with a letter"
            ),
        ));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(id: &str) -> ProfileSettings {
        ProfileSettings {
            id: id.to_owned(),
            display_name: String::new(),
            description: " Radiology reports ".to_owned(),
            system_prompt: "You help radiologists.".to_owned(),
            default_model: String::new(),
            phi_policy: None,
            allowed_plugins: vec!["pacs".to_owned(), "pacs".to_owned()],
        }
    }

    #[test]
    fn validation_fills_defaults_and_trims() {
        let checked = validated(settings("radiology")).unwrap();
        assert_eq!(checked.display_name, "radiology");
        assert_eq!(checked.description, "Radiology reports");
        assert_eq!(checked.default_model, "default");
        assert_eq!(checked.allowed_plugins, ["pacs"]);
        assert_eq!(
            validated(settings("health")).unwrap().display_name,
            "Health"
        );
    }

    #[test]
    fn validation_names_the_bad_field() {
        let field_of = |s: ProfileSettings| match validated(s) {
            Err(ChatError::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(field_of(settings("Radiology")), "profile.id");
        let mut long = settings("radiology");
        long.system_prompt = "x".repeat(MAX_SYSTEM_PROMPT_BYTES + 1);
        assert_eq!(field_of(long), "system_prompt");
        let mut blank = settings("radiology");
        blank.system_prompt = "  ".to_owned();
        assert_eq!(field_of(blank), "system_prompt");
        let mut spaced = settings("radiology");
        spaced.default_model = "my model".to_owned();
        assert_eq!(field_of(spaced), "profile.default_model");
        let mut plugin = settings("radiology");
        plugin.allowed_plugins = vec!["Bad Plugin".to_owned()];
        assert_eq!(field_of(plugin), "profile.allowed_plugins");
    }

    #[test]
    fn a_tenant_row_overrides_a_builtin_and_inherits_the_tenant_policy() {
        let profile = applied(builtin("legal").unwrap().settings(), PhiPolicy::Redact);
        assert!(!profile.custom);
        assert_eq!(profile.phi_policy, PhiPolicy::Redact);
        let mut own = settings("radiology");
        own.phi_policy = Some(PhiPolicy::Refuse);
        let profile = applied(own, PhiPolicy::Allow);
        assert!(profile.custom);
        assert_eq!(profile.phi_policy, PhiPolicy::Refuse);
    }
}
