//! Removing secrets from text that came back from a server before it reaches a log line.
//!
//! A proxy or an API that echoes the request can put an API key or a token into an error body
//! in any of the encodings the request used: raw, URL-encoded (a form body, a query), escaped
//! inside JSON, or inside base64 (an `Authorization: Basic` header). Matching only the raw text
//! misses `apikey=AK%2BSECRET%2F…`, so the matcher here accepts, for every byte of the secret,
//! the byte itself or any of its escapes (`%2B`/`%2b`, `+` for a space, `\/`, `\"`, `\u002B`),
//! and it also finds the secret inside base64 at each of the three alignments. One helper for
//! IAM and Code Engine alike.

use base64::Engine;

use crate::config::secret::Secret;

/// What replaces a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// Secrets shorter than this are not searched for: they would match ordinary text.
const MIN_LEN: usize = 4;

/// `text` with every occurrence of every secret, in any encoding above, replaced.
pub(crate) fn redact(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        let secret = s.expose().as_bytes();
        if secret.len() < MIN_LEN {
            continue;
        }
        out = replace_encoded(&out, secret);
        for core in base64_cores(secret) {
            if core.len() >= MIN_LEN {
                out = out.replace(&core, REDACTED);
            }
        }
    }
    out
}

/// Replaces every match of `secret` (each byte raw or escaped) in `text`.
fn replace_encoded(text: &str, secret: &[u8]) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match match_at(bytes, i, secret) {
            Some(end) => {
                out.extend_from_slice(REDACTED.as_bytes());
                i = end;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    // Only whole matches of valid UTF-8 were replaced by ASCII, so this is still UTF-8; never
    // panic if not.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The end of a match of `secret` starting at `start`, if there is one.
fn match_at(text: &[u8], start: usize, secret: &[u8]) -> Option<usize> {
    let mut i = start;
    for &b in secret {
        i = byte_at(text, i, b)?;
    }
    Some(i)
}

/// The end of one encoding of byte `b` at `i`.
fn byte_at(text: &[u8], i: usize, b: u8) -> Option<usize> {
    let rest = text.get(i..)?;
    match rest {
        [c, ..] if *c == b => Some(i + 1),
        [b'%', h, l, ..] if hex(*h)? * 16 + hex(*l)? == b => Some(i + 3),
        [b'+', ..] if b == b' ' => Some(i + 1),
        [b'\\', c, ..] if *c == b && matches!(b, b'"' | b'\\' | b'/') => Some(i + 2),
        [b'\\', b'u', a, b2, c, d, ..] if b < 0x80 => {
            let v = ((hex(*a)? as u32) << 12)
                | ((hex(*b2)? as u32) << 8)
                | ((hex(*c)? as u32) << 4)
                | hex(*d)? as u32;
            (v == u32::from(b)).then_some(i + 6)
        }
        _ => None,
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The base64 characters that depend on `secret` alone, for the secret starting at each of
/// the three byte offsets (mod 3) of the encoded text: `Basic base64("user:" + secret)`
/// contains one of them, whatever the user name.
fn base64_cores(secret: &[u8]) -> Vec<String> {
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ];
    let mut cores = Vec::new();
    for engine in engines {
        for pad in 0..3usize {
            let mut buf = vec![0u8; pad];
            buf.extend_from_slice(secret);
            let enc = engine.encode(&buf);
            // Characters cover 6 bits each; the first pad*8 bits are not the secret's, nor
            // are the bits after its end.
            let first = (pad * 8).div_ceil(6);
            let last = ((pad + secret.len()) * 8) / 6;
            if let Some(core) = enc.get(first..last) {
                if !cores.iter().any(|c| c == core) {
                    cores.push(core.to_string());
                }
            }
        }
    }
    cores
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AK+SECRET/abc=xyz 9";

    fn has_key(text: &str) -> bool {
        let k = Secret::new(KEY);
        redact(text, &[&k]) != text
    }

    #[test]
    fn every_encoding_is_redacted() {
        let k = Secret::new(KEY);
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let json = serde_json::to_string(KEY).unwrap();
        let cases = [
            format!("raw {KEY} end"),
            "form apikey=AK%2BSECRET%2Fabc%3Dxyz+9&x=1".to_string(),
            "lower apikey=AK%2bSECRET%2fabc%3dxyz%209".to_string(),
            "partly AK%2BSECRET/abc%3Dxyz 9".to_string(),
            format!("json {{\"apikey\":{json}}}"),
            r#"escaped "AK+SECRET\/abc=xyz 9""#.to_string(),
            r#"unicode "AK\u002BSECRET\u002fabc\u003dxyz\u00209""#.to_string(),
            format!("basic Basic {}", b64(&format!("user:{KEY}"))),
            format!("basic Basic {}", b64(&format!("u:{KEY}"))),
            format!("basic Basic {}", b64(&format!("us:{KEY}"))),
            format!(
                "url-safe {}",
                base64::engine::general_purpose::URL_SAFE.encode(format!("bx:{KEY}"))
            ),
        ];
        for text in &cases {
            let out = redact(text, &[&k]);
            assert!(out.contains(REDACTED), "{text} -> {out}");
            assert!(!out.contains("SECRET"), "{text} -> {out}");
            assert!(!has_key(&out), "{text} -> {out}");
        }
    }

    #[test]
    fn other_text_is_left_alone() {
        let k = Secret::new(KEY);
        for text in [
            "Provided API key could not be found.",
            "AK+SECRET/abc=xyz 8",
            "AK SECRET",
            "",
            "%%%\\u00",
            "é ü 日本",
        ] {
            assert_eq!(redact(text, &[&k]), text);
        }
        // Short secrets are not searched for (they would eat ordinary words).
        assert_eq!(redact("a bx c", &[&Secret::new("bx")]), "a bx c");
    }

    #[test]
    fn several_secrets_and_repeats() {
        let (a, b) = (Secret::new("token-1234"), Secret::new("key-5678"));
        assert_eq!(
            redact("token-1234 key%2D5678 token-1234", &[&a, &b]),
            "<redacted> <redacted> <redacted>"
        );
    }
}
