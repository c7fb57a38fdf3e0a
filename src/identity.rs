//! Who is calling: a verified client certificate, or an API key (`Authorization: Bearer`).
//!
//! Runs first, before the target is even looked at. A client certificate (already verified
//! against `client_ca` by rustls) identifies by the SHA-256 of its DER (`cert_sha256`) or by
//! an exact DNS SAN (`cert_san`; wildcards never match, so one wildcard certificate cannot
//! stand for every contractor). A connection presenting both a certificate and a key must
//! name the same recipient with each, or it is refused. The key itself is never stored: the rules
//! hold `api_key_sha256`, the presented key is hashed and compared with every recipient's hash
//! in constant time, without stopping at the first match, so response timing says nothing about
//! which hashes exist.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::rules::{Policy, Recipient};
use crate::tls::PeerIdentity;

/// Why the caller could not be identified (all 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("no credentials: send Authorization: Bearer <key>")]
    Missing,
    #[error("the Authorization header is not a Bearer token")]
    Malformed,
    #[error("unknown credentials")]
    Unknown,
    #[error("the client certificate names no recipient")]
    UnknownCertificate,
    #[error("the client certificate and the API key name different recipients")]
    Conflict,
}

impl Error {
    pub fn code(&self) -> &'static str {
        "unauthenticated"
    }
}

/// The recipient named by the connection's client certificate, or else by the API key.
///
/// # Errors
///
/// See [`Error`]; every variant is a 401.
pub fn identify(
    policy: &Policy,
    peer: Option<&PeerIdentity>,
    headers: &http::HeaderMap,
) -> Result<Arc<Recipient>, Error> {
    let Some(peer) = peer else {
        return by_api_key(policy, headers);
    };
    let mut found = None;
    let mut matches = 0;
    for recipient in policy.recipients() {
        let by_hash = recipient
            .cert_sha256
            .is_some_and(|hash| bool::from(hash.ct_eq(&peer.cert_sha256)));
        let by_san = recipient
            .cert_san
            .as_ref()
            .is_some_and(|san| peer.dns_names.iter().any(|n| n == san));
        if by_hash || by_san {
            found = Some(recipient);
            matches += 1;
        }
    }
    // One certificate standing for two recipients (one's hash, another's SAN) is ambiguous.
    if matches > 1 {
        return Err(Error::Conflict);
    }
    let recipient = found.cloned().ok_or(Error::UnknownCertificate)?;
    if headers.contains_key(http::header::AUTHORIZATION) {
        match by_api_key(policy, headers) {
            Ok(other) if other.id == recipient.id => {}
            _ => return Err(Error::Conflict),
        }
    }
    Ok(recipient)
}

/// The recipient named by the request's API key.
///
/// # Errors
///
/// [`Error::Missing`] without an `Authorization` header, [`Error::Malformed`] when it is not a
/// single Bearer token, [`Error::Unknown`] when no recipient holds the key.
pub fn by_api_key(policy: &Policy, headers: &http::HeaderMap) -> Result<Arc<Recipient>, Error> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let value = values.next().ok_or(Error::Missing)?;
    if values.next().is_some() {
        return Err(Error::Malformed);
    }
    let text = value.to_str().map_err(|_| Error::Malformed)?;
    let (scheme, key) = text.split_once(' ').ok_or(Error::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() || key.contains(' ') {
        return Err(Error::Malformed);
    }
    let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let mut found = None;
    for recipient in policy.recipients() {
        if let Some(hash) = &recipient.api_key_sha256 {
            if bool::from(hash.ct_eq(&presented)) {
                found = Some(recipient);
            }
        }
    }
    found.cloned().ok_or(Error::Unknown)
}

/// A new 256-bit API key (hex) and the SHA-256 to paste into `recipients.toml`.
///
/// # Errors
///
/// When the operating system's random source fails.
pub fn new_api_key() -> Result<(String, String), getrandom::Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    let key = hex::encode(key);
    let hash = sha256_hex(key.as_bytes());
    Ok((key, hash))
}

/// Lower-case hex SHA-256, as `api_key_sha256` and `cert_sha256` are written.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fresh_and_hash_matches() {
        let (a, ha) = new_api_key().expect("random");
        let (b, _) = new_api_key().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(ha, sha256_hex(a.as_bytes()));
    }
}
