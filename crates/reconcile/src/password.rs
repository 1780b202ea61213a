//! Generated passwords: 54 characters of the URL-safe base64 alphabet made from 40 random bytes
//! (upstream's length: short enough for bcrypt's 55-byte limit).

use base64::Engine as _;

/// Random bytes a password is made from.
pub const PASSWORD_RANDOM_BYTES: usize = 40;

/// The system's secure random source failed.
#[derive(Debug, thiserror::Error)]
#[error("the system's secure random source failed")]
pub struct RandomUnavailable;

/// The password made from `random` (URL-safe base64 without padding: 54 characters).
#[must_use]
pub fn password_from_random(random: &[u8; PASSWORD_RANDOM_BYTES]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
}

/// Random bytes for a password, from the system's secure source.
///
/// # Errors
/// When that source fails.
pub fn random_bytes() -> Result<[u8; PASSWORD_RANDOM_BYTES], RandomUnavailable> {
    let mut random = [0_u8; PASSWORD_RANDOM_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| RandomUnavailable)?;
    Ok(random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_54_url_safe_characters_and_differ() {
        let password = password_from_random(&random_bytes().expect("random"));
        assert_eq!(password.len(), 54);
        assert!(
            password
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(
            password,
            password_from_random(&random_bytes().expect("random"))
        );
    }
}
