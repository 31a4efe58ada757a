//! Checks of single values, shared by [`super::Config::validate`].

use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use super::ConfigError;

pub(super) fn check_url(
    setting: &'static str,
    url: &SecretString,
    schemes: &[&str],
) -> Result<(), ConfigError> {
    match url::Url::parse(url.expose_secret()) {
        Ok(parsed) if schemes.contains(&parsed.scheme()) => Ok(()),
        Ok(parsed) => Err(ConfigError::Rejected {
            setting,
            reason: format!(
                "scheme {:?} is not one of {}",
                parsed.scheme(),
                schemes.join(", ")
            ),
        }),
        Err(err) => Err(ConfigError::Rejected {
            setting,
            reason: format!("not a URL ({err})"),
        }),
    }
}

pub(super) fn positive(setting: &'static str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::Rejected {
            setting,
            reason: "must be at least 1".to_owned(),
        });
    }
    Ok(())
}

pub(super) fn non_zero(setting: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::Rejected {
            setting,
            reason: "must be longer than 0 (e.g. \"5s\", \"250ms\")".to_owned(),
        });
    }
    Ok(())
}

/// A 32-byte key written in base64 (the master key, the audit signing key): its shape
/// only; the module that uses the key builds it from the same text.
pub(super) fn key_32(setting: &'static str, key: &SecretString) -> Result<(), ConfigError> {
    let reason = match base64::engine::general_purpose::STANDARD.decode(key.expose_secret().trim())
    {
        Ok(bytes) if bytes.len() == 32 => return Ok(()),
        Ok(_) => "must be 32 bytes (base64 of `head -c 32 /dev/urandom`)",
        Err(_) => "is not base64",
    };
    Err(ConfigError::Rejected {
        setting,
        reason: reason.to_owned(),
    })
}
