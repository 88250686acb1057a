//! SCRAM-SHA-256 / SCRAM-SHA-512 client (RFC 5802, RFC 7677).
//!
//! Written on sha2 + hmac + pbkdf2 + base64 directly rather than through a SCRAM crate: the
//! available ones are SHA-256 only or pull in a second generation of the RustCrypto crates.
//! The server is treated as hostile until it proves knowledge of the password: every field
//! it sends is checked, its iteration count is bounded (it decides how much CPU we burn), and
//! its final signature is compared in constant time. Like Kafka's own client, names and
//! passwords are used as UTF-8 without SASLprep, so credentials created by Kafka tools match.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::{Credentials, SaslError, Step};
use crate::config::secret::Secret;

/// RFC 7677 and Kafka both require at least 4096 iterations.
pub(super) const MIN_ITERATIONS: u32 = 4096;
/// Kafka itself caps credentials at 16384; the generous bound only stops a hostile or broken
/// server from making one login take minutes of CPU.
pub(super) const MAX_ITERATIONS: u32 = 1_000_000;
/// Longest piece of a server message quoted back in an error.
const QUOTE_LIMIT: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hash {
    Sha256,
    Sha512,
}

enum State {
    Start,
    AwaitServerFirst,
    AwaitServerFinal {
        server_key: Vec<u8>,
        auth_message: String,
    },
    Done,
}

pub(super) struct Scram {
    hash: Hash,
    password: Secret,
    nonce: String,
    client_first_bare: String,
    state: State,
}

/// 24 random bytes, base64: printable and comma-free as RFC 5802 requires.
pub(super) fn random_nonce() -> Result<String, SaslError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| SaslError::Random(e.to_string()))?;
    Ok(B64.encode(bytes))
}

impl Scram {
    pub(super) fn new(hash: Hash, creds: &Credentials, nonce: &str) -> Result<Self, SaslError> {
        if creds.username.is_empty() {
            return Err(SaslError::InvalidCredentials("the user name is empty"));
        }
        if nonce.is_empty()
            || !nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(SaslError::InvalidCredentials(
                "the client nonce must be printable ASCII without ','",
            ));
        }
        let client_first_bare = format!("n={},r={nonce}", escape_username(&creds.username));
        Ok(Scram {
            hash,
            password: creds.password.clone(),
            nonce: nonce.to_string(),
            client_first_bare,
            state: State::Start,
        })
    }

    /// `n,,` = no channel binding, no authorization identity.
    pub(super) fn initial(&mut self) -> Vec<u8> {
        if matches!(self.state, State::Start) {
            self.state = State::AwaitServerFirst;
        }
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    pub(super) fn step(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Start => {
                self.state = State::Start;
                Err(SaslError::OutOfOrder("step() called before initial()"))
            }
            State::AwaitServerFirst => {
                let (msg, next) = self.client_final(server)?;
                self.state = next;
                Ok(Step::Send(msg))
            }
            State::AwaitServerFinal {
                server_key,
                auth_message,
            } => {
                verify_server_final(self.hash, server, &server_key, &auth_message)?;
                Ok(Step::Done)
            }
            State::Done => Err(SaslError::OutOfOrder(
                "the SCRAM exchange is already complete",
            )),
        }
    }

    /// Parses server-first and computes client-final with its proof.
    fn client_final(&self, server: &[u8]) -> Result<(Vec<u8>, State), SaslError> {
        let server_first = as_text(server)?;
        let attrs = attributes(server_first)?;
        if let Some(m) = get(&attrs, 'm') {
            return Err(SaslError::Malformed(format!(
                "the broker requires an unsupported extension 'm={}'",
                quote(m)
            )));
        }
        let combined = get(&attrs, 'r').ok_or_else(|| missing('r', "nonce"))?;
        let salt_b64 = get(&attrs, 's').ok_or_else(|| missing('s', "salt"))?;
        let iter_text = get(&attrs, 'i').ok_or_else(|| missing('i', "iteration count"))?;

        if !combined.starts_with(&self.nonce) || combined.len() <= self.nonce.len() {
            return Err(SaslError::NonceMismatch);
        }
        if !combined.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(SaslError::Malformed(
                "the nonce has non-printable characters".into(),
            ));
        }
        let salt = B64.decode(salt_b64).map_err(|e| {
            SaslError::Malformed(format!(
                "the salt 's={}' is not base64 ({e})",
                quote(salt_b64)
            ))
        })?;
        if salt.is_empty() {
            return Err(SaslError::Malformed("the salt is empty".into()));
        }
        let iterations = parse_iterations(iter_text)?;

        let client_final_bare = format!("c=biws,r={combined}");
        let auth_message = format!(
            "{},{server_first},{client_final_bare}",
            self.client_first_bare
        );
        let keys = derive(
            self.hash,
            self.password.expose().as_bytes(),
            &salt,
            iterations,
            &auth_message,
        )?;
        let msg = format!("{client_final_bare},p={}", B64.encode(&keys.proof)).into_bytes();
        Ok((
            msg,
            State::AwaitServerFinal {
                server_key: keys.server_key,
                auth_message,
            },
        ))
    }
}

/// RFC 5802 `saslname`: `=` and `,` are the only characters that need escaping.
fn escape_username(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn as_text(server: &[u8]) -> Result<&str, SaslError> {
    std::str::from_utf8(server)
        .map_err(|_| SaslError::Malformed("the message is not UTF-8 text".into()))
}

/// Splits `k=v,k=v`; an `e=` anywhere first means the server refused.
fn attributes(msg: &str) -> Result<Vec<(char, &str)>, SaslError> {
    if msg.is_empty() {
        return Err(SaslError::Malformed("the message is empty".into()));
    }
    let mut out = Vec::new();
    for part in msg.split(',') {
        let mut chars = part.chars();
        let (Some(key), Some('=')) = (chars.next(), chars.next()) else {
            return Err(SaslError::Malformed(format!(
                "expected 'x=value' attributes, got '{}'",
                quote(part)
            )));
        };
        let value = &part[key.len_utf8() + 1..];
        if key == 'e' && out.is_empty() {
            return Err(rejected(value));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn get<'a>(attrs: &[(char, &'a str)], key: char) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn missing(key: char, what: &str) -> SaslError {
    SaslError::Malformed(format!("the server-first message has no '{key}=' ({what})"))
}

fn rejected(reason: &str) -> SaslError {
    let hint = match reason {
        "invalid-proof" | "unknown-user" | "invalid-username-encoding" => {
            " (check the user name and password)"
        }
        _ => "",
    };
    SaslError::Rejected(format!("{}{hint}", quote(reason)))
}

fn parse_iterations(text: &str) -> Result<u32, SaslError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SaslError::Malformed(format!(
            "the iteration count 'i={}' is not a number",
            quote(text)
        )));
    }
    let got = text.parse::<u64>().unwrap_or(u64::MAX);
    if got < u64::from(MIN_ITERATIONS) || got > u64::from(MAX_ITERATIONS) {
        return Err(SaslError::Iterations {
            got,
            min: MIN_ITERATIONS,
            max: MAX_ITERATIONS,
        });
    }
    Ok(got as u32)
}

/// Server bytes quoted in an error: printable ASCII only, bounded length.
fn quote(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(QUOTE_LIMIT)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if text.chars().count() > QUOTE_LIMIT {
        out.push('…');
    }
    out
}

fn verify_server_final(
    hash: Hash,
    server: &[u8],
    server_key: &[u8],
    auth_message: &str,
) -> Result<(), SaslError> {
    let attrs = attributes(as_text(server)?)?;
    let v = get(&attrs, 'v').ok_or_else(|| {
        SaslError::Malformed("the server-final message has no 'v=' (server signature)".into())
    })?;
    let signature = B64.decode(v).map_err(|e| {
        SaslError::Malformed(format!(
            "the server signature 'v={}' is not base64 ({e})",
            quote(v)
        ))
    })?;
    let ok = match hash {
        Hash::Sha256 => verify::<Sha256>(server_key, auth_message.as_bytes(), &signature),
        Hash::Sha512 => verify::<Sha512>(server_key, auth_message.as_bytes(), &signature),
    };
    if ok {
        Ok(())
    } else {
        Err(SaslError::ServerSignatureMismatch)
    }
}

struct Keys {
    proof: Vec<u8>,
    server_key: Vec<u8>,
}

fn derive(
    hash: Hash,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    auth_message: &str,
) -> Result<Keys, SaslError> {
    match hash {
        Hash::Sha256 => derive_with::<Sha256>(password, salt, iterations, auth_message),
        Hash::Sha512 => derive_with::<Sha512>(password, salt, iterations, auth_message),
    }
}

/// RFC 5802 §3: SaltedPassword → ClientKey/StoredKey/ServerKey → ClientProof.
fn derive_with<D>(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    auth_message: &str,
) -> Result<Keys, SaslError>
where
    D: hmac::EagerHash,
{
    let mut salted = vec![0u8; <D as Digest>::output_size()];
    pbkdf2::pbkdf2_hmac::<D>(password, salt, iterations, &mut salted);
    let client_key = hmac::<D>(&salted, b"Client Key")?;
    let stored_key = D::digest(&client_key);
    let client_signature = hmac::<D>(&stored_key, auth_message.as_bytes())?;
    let proof = client_key
        .iter()
        .zip(&client_signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_key = hmac::<D>(&salted, b"Server Key")?;
    Ok(Keys { proof, server_key })
}

fn hmac<D: hmac::EagerHash>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, SaslError> {
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key)
        .map_err(|_| SaslError::InvalidCredentials("HMAC key rejected"))?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// Constant-time comparison through the MAC's own verifier.
fn verify<D: hmac::EagerHash>(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    match <Hmac<D> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.verify_slice(tag).is_ok()
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
