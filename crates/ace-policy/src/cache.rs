//! [`TokenCache`]: verified bearer tokens remembered until they expire, so the signature check
//! (RS256 and ES256 cost hundreds of microseconds each) is paid once per token rather than once
//! per request.
//!
//! - The key is the SHA-256 of the token, never the token itself: a dump of the cache grants
//!   nothing.
//! - Only tokens that verified are kept; a refused token is checked again every time (a
//!   refusal is cheap to reach and must not be pinned).
//! - `exp` is checked on every hit against the caller's clock: a hit past `exp` is dropped and
//!   the token verified again in full, so a cached token is never worth more than an uncached
//!   one (the verifier's leeway and its `Expired` refusal apply the same way).
//! - Bounded: at capacity, expired entries are swept first; if none expired, the entry closest
//!   to expiry is evicted (it is the least valuable one to keep). An index of the entries by
//!   `exp` finds both at its front, so a full cache costs O(log n) per insert, not a scan.

use std::collections::{BTreeSet, HashMap};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::error::AuthFailure;
use crate::jwt::TokenVerifier;
use crate::principal::Principal;

/// Entries kept by default.
pub const DEFAULT_TOKEN_CACHE_CAPACITY: usize = 10_000;

/// A [`TokenVerifier`] with a bounded cache of verified tokens.
#[derive(Debug)]
pub struct TokenCache {
    verifier: TokenVerifier,
    capacity: usize,
    entries: Mutex<Entries>,
}

/// The cached principals by token hash, with their `exp`, and the same entries ordered by
/// `exp` (soonest first); the two always hold the same keys.
#[derive(Debug, Default)]
struct Entries {
    tokens: HashMap<[u8; 32], (Principal, u64)>,
    by_exp: BTreeSet<(u64, [u8; 32])>,
}

impl Entries {
    fn remove(&mut self, key: &[u8; 32]) {
        if let Some((_, exp)) = self.tokens.remove(key) {
            self.by_exp.remove(&(exp, *key));
        }
    }

    /// Adds `key`, first making room below `capacity`: every entry expired at `now` goes, and
    /// if that freed nothing, the one closest to expiry.
    fn insert(&mut self, key: [u8; 32], principal: Principal, exp: u64, capacity: usize, now: u64) {
        self.remove(&key);
        if self.tokens.len() >= capacity {
            while let Some(&(soonest, expired)) = self.by_exp.first()
                && soonest <= now
            {
                self.remove(&expired);
            }
        }
        if self.tokens.len() >= capacity
            && let Some((_, soonest)) = self.by_exp.pop_first()
        {
            self.tokens.remove(&soonest);
        }
        self.tokens.insert(key, (principal, exp));
        self.by_exp.insert((exp, key));
    }
}

impl TokenCache {
    /// A cache of at most `capacity` tokens over `verifier` (0 disables caching).
    pub fn new(verifier: TokenVerifier, capacity: usize) -> Self {
        TokenCache {
            verifier,
            capacity,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The verifier behind the cache.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// Tokens cached now.
    pub fn len(&self) -> usize {
        self.entries.lock().tokens.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When a cached `token` expires (its `exp`, seconds since the epoch); `None` when it is not
    /// cached (never verified here, already expired, or evicted). A live connection authenticated
    /// by the token asks this to re-check its credentials the moment they lapse.
    pub fn expiry(&self, token: &str) -> Option<u64> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.entries.lock().tokens.get(&key).map(|(_, exp)| *exp)
    }

    /// The principal of `token` at `now` (seconds since the epoch): from the cache when it
    /// verified before and has not expired, otherwise verified (and cached when valid).
    pub fn verify(&self, token: &str, now: u64) -> Result<Principal, AuthFailure> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        {
            let mut entries = self.entries.lock();
            match entries.tokens.get(&key) {
                Some((principal, exp)) if *exp > now => return Ok(principal.clone()),
                // Past `exp`: forgotten, and judged again in full below (the verifier's
                // leeway then decides, exactly as for a token never seen).
                Some(_) => {
                    entries.remove(&key);
                }
                None => {}
            }
        }
        let (principal, exp) = self.verifier.verify_until(token)?;
        if self.capacity > 0 && exp > now {
            let mut entries = self.entries.lock();
            entries.insert(key, principal.clone(), exp, self.capacity, now);
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-unit";

    fn cache(capacity: usize) -> TokenCache {
        let mut verifier = TokenVerifier::new(None, None).with_leeway(0);
        verifier.add_hmac_secret(None, SECRET).unwrap();
        TokenCache::new(verifier, capacity)
    }

    fn token(sub: &str, exp: u64) -> String {
        let header = Header::new(jsonwebtoken::Algorithm::HS256);
        let claims = json!({"sub": sub, "exp": exp, "iat": now() - 60, "roles": ["agent"]});
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET)).unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn given_a_verified_token_when_presented_again_then_it_is_answered_from_the_cache() {
        let cache = cache(10);
        let t = token("a", now() + 60);
        assert_eq!(cache.verify(&t, now()).unwrap().id, "a");
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.verify(&t, now()).unwrap().id, "a");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn given_a_cached_token_when_its_exp_passes_then_it_is_dropped_and_verified_again() {
        let cache = cache(10);
        let exp = now() + 2;
        let t = token("a", exp);
        cache.verify(&t, now()).unwrap();
        assert_eq!(cache.len(), 1);
        // At `exp` by the caller's clock the entry is no longer trusted; the verifier (whose
        // own clock is still before `exp`) accepts it again and it is cached anew only while
        // it is still valid at the caller's `now`.
        assert!(cache.verify(&t, exp).is_ok());
        assert!(cache.is_empty(), "not re-cached past its exp");
        let old = token("b", now() - 120);
        assert_eq!(cache.verify(&old, now()), Err(AuthFailure::Expired));
        assert!(cache.is_empty());
    }

    #[test]
    fn given_a_refused_token_when_presented_then_it_is_never_cached() {
        let cache = cache(10);
        let mut t = token("a", now() + 60);
        t.push('x');
        assert!(cache.verify(&t, now()).is_err());
        assert!(cache.is_empty());
    }

    #[test]
    fn given_a_full_cache_when_a_new_token_verifies_then_the_soonest_to_expire_goes() {
        let cache = cache(2);
        let (a, b, c) = (
            token("a", now() + 10),
            token("b", now() + 100),
            token("c", now() + 50),
        );
        for t in [&a, &b, &c] {
            cache.verify(t, now()).unwrap();
        }
        assert_eq!(cache.len(), 2);
        assert!(!cached(&cache, &a), "the soonest expiry is evicted");
        assert!(cached(&cache, &b) && cached(&cache, &c));
    }

    fn cached(cache: &TokenCache, token: &str) -> bool {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        cache.entries.lock().tokens.contains_key(&key)
    }

    #[test]
    fn given_a_full_cache_with_expired_entries_when_a_token_verifies_then_all_expired_go() {
        let cache = cache(3);
        let start = now();
        let (a, b, c) = (
            token("a", start + 10),
            token("b", start + 20),
            token("c", start + 100),
        );
        for t in [&a, &b, &c] {
            cache.verify(t, start).unwrap();
        }
        // By the caller's clock a and b have expired (the verifier's own clock has not).
        let d = token("d", start + 200);
        cache.verify(&d, start + 30).unwrap();
        assert_eq!(cache.len(), 2);
        assert!(!cached(&cache, &a) && !cached(&cache, &b));
        assert!(cached(&cache, &c) && cached(&cache, &d));
    }

    #[test]
    fn given_a_full_cache_when_many_tokens_verify_then_each_evicts_the_soonest_and_stays_bounded() {
        let cache = cache(4);
        let start = now();
        // Expiries out of order and repeated; the first six are presented twice.
        let tokens: Vec<String> = (0..24u64)
            .map(|i| token(&format!("p{i}"), start + 60 + (i * 37) % 50))
            .collect();
        for t in tokens.iter().chain(&tokens[..6]) {
            let soonest = cache.entries.lock().by_exp.first().copied();
            let (full, known) = (cache.len() == 4, cached(&cache, t));
            cache.verify(t, start).unwrap();
            let entries = cache.entries.lock();
            assert_eq!(entries.tokens.len(), entries.by_exp.len());
            assert!(entries.tokens.len() <= 4);
            for (key, (_, exp)) in &entries.tokens {
                assert!(entries.by_exp.contains(&(*exp, *key)), "index in step");
            }
            if let Some((_, evicted)) = soonest.filter(|_| full && !known) {
                assert!(!entries.tokens.contains_key(&evicted), "the soonest went");
            }
            drop(entries);
            assert!(cached(&cache, t));
        }
        assert_eq!(cache.len(), 4);
    }
}
