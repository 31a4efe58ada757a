//! Randomness from the operating system, for secrets, keys, nonces and seeds. The ground
//! floor: everything that needs random bytes takes them from here, and it imports nothing
//! of the crate.

/// Why a secret could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomnessUnavailable(getrandom::Error);

/// 256 random bits from the operating system.
///
/// # Errors
/// [`RandomnessUnavailable`] when the OS has none.
pub fn random_secret() -> Result<[u8; 32], RandomnessUnavailable> {
    random_bytes()
}

/// `N` random bytes from the operating system.
///
/// # Errors
/// [`RandomnessUnavailable`] when the OS has none.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomnessUnavailable> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(RandomnessUnavailable)?;
    Ok(bytes)
}
