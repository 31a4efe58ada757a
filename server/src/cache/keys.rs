//! The key layout: the only place Redis key names are assembled.
//!
//! Everything tenant-owned lives under `{key_prefix}cc:{<tenant>}:...` and everything
//! else under `{key_prefix}cc:{_platform}:...`. The braces are a Redis Cluster hash tag:
//! all of a tenant's keys are in one slot, so the scripts and transactions that touch
//! several of them run on a cluster too, and no two tenants share a key.

use crate::tenancy::TenantId;

/// The tag of the keys and channels that belong to no tenant.
const PLATFORM: &str = "_platform";
/// [`PLATFORM`] as a hash tag: whatever hashes to it lands in the platform keys' slot.
pub(super) const PLATFORM_TAG: &str = "{_platform}";

/// Builds Redis keys.
#[derive(Clone, Debug)]
pub struct KeySpace {
    prefix: String,
}

impl KeySpace {
    /// Keys will start with `prefix` (may be empty; configuration refuses braces in it).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// `{prefix}cc:{<tenant>}:{parts joined by ':'}`.
    pub fn tenant(&self, tenant: TenantId, parts: &[&str]) -> String {
        self.key(&tenant.to_string(), parts)
    }

    /// `{prefix}cc:{_platform}:{parts}`: the keys and channels that belong to no tenant
    /// (the job queue, replica-to-replica events) or that one script checks together with
    /// such keys (login limits per address and per tenant, which expire on their own).
    pub fn platform(&self, parts: &[&str]) -> String {
        self.key(PLATFORM, parts)
    }

    fn key(&self, tag: &str, parts: &[&str]) -> String {
        let mut key = format!("{}cc:{{{tag}}}", self.prefix);
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// Pattern matching every key of `tenant` under `parts` (all of the tenant's keys when
    /// `parts` is empty), for SCAN.
    pub fn tenant_pattern(&self, tenant: TenantId, parts: &[&str]) -> String {
        let mut pattern = format!("{}cc:{{{tenant}}}", escape_glob(&self.prefix));
        for part in parts {
            pattern.push(':');
            pattern.push_str(&escape_glob(part));
        }
        pattern.push_str(":*");
        pattern
    }

    /// Pattern matching the keys of the layout before hash tags (`{prefix}cc:<tenant>:…`
    /// and `{prefix}cc:_platform:…`), for SCAN.
    pub(super) fn untagged_pattern(&self) -> String {
        format!("{}cc:[^{{]*", escape_glob(&self.prefix))
    }

    /// Where an untagged key of the earlier layout lives now; `None` for a key that is not
    /// one.
    pub(super) fn tagged(&self, untagged: &str) -> Option<String> {
        let rest = untagged.strip_prefix(&self.prefix)?.strip_prefix("cc:")?;
        let (owner, parts) = rest.split_once(':')?;
        let known = owner == PLATFORM || uuid::Uuid::try_parse(owner).is_ok();
        known.then(|| format!("{}cc:{{{owner}}}:{parts}", self.prefix))
    }
}

/// Escapes Redis glob metacharacters so a prefix matches only itself.
fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIL: &str = "00000000-0000-0000-0000-000000000000";

    #[test]
    fn keys_are_prefixed_and_tagged_by_owner() {
        let tenant = TenantId(uuid::Uuid::nil());
        let keys = KeySpace::new("t1:");
        assert_eq!(
            keys.tenant(tenant, &["session", "abc"]),
            format!("t1:cc:{{{NIL}}}:session:abc")
        );
        assert_eq!(keys.platform(&["jobs"]), "t1:cc:{_platform}:jobs");
        assert_eq!(
            keys.tenant_pattern(tenant, &[]),
            format!("t1:cc:{{{NIL}}}:*")
        );
        assert_eq!(
            keys.tenant_pattern(tenant, &["rl"]),
            format!("t1:cc:{{{NIL}}}:rl:*")
        );
        assert_eq!(
            KeySpace::new("a*[")
                .tenant_pattern(tenant, &[])
                .split("cc:")
                .next(),
            Some("a\\*\\[")
        );
    }

    #[test]
    fn untagged_keys_map_to_their_tagged_place() {
        let keys = KeySpace::new("p:");
        assert_eq!(
            keys.tagged(&format!("p:cc:{NIL}:session:ab")),
            Some(format!("p:cc:{{{NIL}}}:session:ab"))
        );
        assert_eq!(
            keys.tagged("p:cc:_platform:jobs:dead").as_deref(),
            Some("p:cc:{_platform}:jobs:dead")
        );
        assert_eq!(keys.tagged("p:cc:{_platform}:jobs"), None);
        assert_eq!(keys.tagged("p:cc:someone-else:x"), None);
        assert_eq!(keys.tagged("q:cc:_platform:jobs"), None);
        assert_eq!(keys.untagged_pattern(), "p:cc:[^{]*");
    }
}
