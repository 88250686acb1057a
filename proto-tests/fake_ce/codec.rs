//! Small text helpers of the fake: URL decoding, random ids, RFC 3339 timestamps.
//!
//! Written out here so the fake depends on nothing the client under test uses for the same job
//! (the client encodes with `kafka_observer::http_client::percent_encode`; decoding it with an
//! independent routine is what makes the round trip a test).

use std::time::{SystemTime, UNIX_EPOCH};

/// Decodes `%XX` escapes and `+` (as space, form style). Malformed escapes are an error.
pub fn url_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("malformed percent escape in '{text}'"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{text}' does not decode to UTF-8"))
}

/// `a=1&b=2` → pairs, decoded. Empty input gives no pairs.
pub fn parse_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((url_decode(k)?, url_decode(v)?))
        })
        .collect()
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("OS randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A random UUID-shaped id (8-4-4-4-12 hex).
pub fn random_id() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// An unsecured JWT (RFC 7519 §6: header `{"alg":"none"}`, base64url without padding, empty
/// signature) with `claims` — what Kafka's default OAUTHBEARER validator accepts.
pub fn unsecured_jwt(claims: &serde_json::Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use base64::Engine as _;
    format!(
        "{}.{}.",
        B64URL.encode(br#"{"alg":"none"}"#),
        B64URL.encode(claims.to_string())
    )
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn codec_helpers() {
    assert_eq!(url_decode("a%20b+c%2Fd").unwrap(), "a b c/d");
    assert!(url_decode("%zz").is_err());
    assert!(url_decode("%2").is_err());
    assert_eq!(
        parse_pairs("x=1&y=a%3Ab&&z").unwrap(),
        vec![
            ("x".to_string(), "1".to_string()),
            ("y".to_string(), "a:b".to_string()),
            ("z".to_string(), String::new())
        ]
    );
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(random_id().len(), 36);
}
