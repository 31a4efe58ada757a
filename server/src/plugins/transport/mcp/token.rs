//! The caller token an MCP plugin receives with each call: a JWT (HS256) signed with the
//! plugin's own static credential, so the plugin can check it without asking the server.
//! It names the plugin as its audience, the opaque user as its subject and the opaque
//! tenant, and lives 60 seconds.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a token is good for.
const LIFETIME_SECONDS: i64 = 60;
/// Issuer claim.
const ISSUER: &str = "codexcontinue";

/// A token for `audience` (the plugin) saying `user` of `tenant` (opaque ids) is calling.
pub(super) fn sign(key: &str, audience: &str, tenant: &str, user: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": ISSUER,
        "aud": audience,
        "sub": user,
        "tenant": tenant,
        "iat": now,
        "exp": now + LIFETIME_SECONDS,
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{claims}");
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(signed.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signed}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_with_the_key_and_says_who_for_whom_until_when() {
        let token = sign("secret", "plugin-1", "t-opaque", "u-opaque");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").expect("key");
        mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("base64");
        assert!(mac.verify_slice(&signature).is_ok());
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64"))
                .expect("json");
        assert_eq!(claims["aud"], "plugin-1");
        assert_eq!(claims["sub"], "u-opaque");
        assert_eq!(claims["tenant"], "t-opaque");
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert_eq!(lifetime, 60);
        let mut wrong = Hmac::<Sha256>::new_from_slice(b"other").expect("key");
        wrong.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
        assert!(wrong.verify_slice(&signature).is_err());
    }
}
