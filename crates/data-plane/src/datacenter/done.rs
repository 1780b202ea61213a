//! What this process last did to each datacenter's Cassandra nodes (roles upserted, seeds
//! reloaded), remembered as a SHA-256 of what it was done with, so that a pass repeats a
//! Management API write only when its input changed. Nothing secret is kept: a fingerprint of
//! credentials reveals none. After a restart everything is done once more.

use std::{collections::HashMap, sync::Mutex};

/// SHA-256 of the parts, each length-prefixed so that no two lists of parts collide.
#[must_use]
pub fn fingerprint<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    let mut out = [0_u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// The fingerprint of what was last done, per datacenter UID.
#[derive(Debug, Default)]
pub struct LastDone(Mutex<HashMap<String, [u8; 32]>>);

impl LastDone {
    /// Whether it was last done for `uid` with `print`.
    #[must_use]
    pub fn is_current(&self, uid: &str, print: &[u8; 32]) -> bool {
        self.0
            .lock()
            .map(|m| m.get(uid) == Some(print))
            .unwrap_or(false)
    }

    /// Records that it was done for `uid` with `print`.
    pub fn record(&self, uid: &str, print: [u8; 32]) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(uid.to_owned(), print);
        }
    }

    /// Forgets a datacenter (it was deleted).
    pub fn forget(&self, uid: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_told_apart_by_their_boundaries() {
        assert_ne!(
            fingerprint([b"ab".as_slice(), b"c"]),
            fingerprint([b"a".as_slice(), b"bc"])
        );
        assert_eq!(
            fingerprint([b"a".as_slice()]),
            fingerprint([b"a".as_slice()])
        );
    }

    #[test]
    fn only_the_recorded_print_is_current_until_forgotten() {
        let done = LastDone::default();
        let one = fingerprint([b"one".as_slice()]);
        done.record("uid", one);
        assert!(done.is_current("uid", &one));
        assert!(!done.is_current("uid", &fingerprint([b"two".as_slice()])));
        assert!(!done.is_current("other", &one));
        done.forget("uid");
        assert!(!done.is_current("uid", &one));
    }
}
