//! When a token should be refreshed and when it is no longer usable — pure, so the schedule is
//! tested without waiting for a clock.
//!
//! go-sdk-core refreshes after 80 % of the lifetime (`refresh_at = expiration − 0.2 × expires_in`)
//! and treats a token as expired 10 s early. The early window here is `min(10 s, 10 % of the
//! lifetime)`: with a fixed 10 s a short-lived token (as the tests use) would be expired on
//! arrival and every call would fetch a new one.
//!
//! Clocks disagree: if the server's absolute `expiration` is already past by our clock (ours is
//! ahead), the lifetime is counted from now instead, otherwise every token would look expired.
//! If ours is behind, a token may be used past its real end; the API then answers 401 and the
//! caller invalidates it.

use serde::Deserialize;

/// The fields of an IAM token response we use (the rest, `refresh_token`, `scope`, …, is ignored).
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub expiration: Option<i64>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// The moments (Unix milliseconds, by our clock) that matter for one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenTimes {
    /// When the token stops being valid.
    pub expires_at_ms: i64,
    /// From here on, a background refresh is started (the token is still served).
    pub refresh_at_ms: i64,
    /// From here on, the token is not served any more: callers wait for a new one.
    pub stale_at_ms: i64,
}

/// What to do with a cached token now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Serve it.
    Fresh,
    /// Serve it, and start a background refresh if none runs.
    Refresh,
    /// Do not serve it: fetch a new one and wait.
    Expired,
}

/// A token response that says nothing about when its token expires (neither a positive
/// `expires_in` nor a future `expiration`): it cannot be scheduled, so it is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the token response has neither a positive expires_in nor a future expiration")]
pub(crate) struct NoLifetime;

/// The longest early-expiry window (go-sdk-core's fixed value).
const MAX_EARLY_MS: i64 = 10_000;

/// `expiration − 0.2 × expires_in`, in Unix seconds (go-sdk-core's formula).
#[cfg(test)]
pub(crate) fn refresh_at(expires_in: i64, expiration: i64) -> i64 {
    expiration - expires_in / 5
}

/// The schedule of a token received at `now_ms` with the response's `expires_in` (seconds) and
/// `expiration` (Unix seconds). Either may be missing (≤ 0); both missing is an error.
pub(crate) fn token_times(
    now_ms: i64,
    expires_in: Option<i64>,
    expiration: Option<i64>,
) -> Result<TokenTimes, NoLifetime> {
    let expiration_ms = expiration
        .filter(|e| *e > 0)
        .map(|e| e.saturating_mul(1000));
    let lifetime_ms = match (expires_in.filter(|s| *s > 0), expiration_ms) {
        (Some(s), _) => s.saturating_mul(1000),
        (None, Some(e)) if e > now_ms => e - now_ms,
        _ => return Err(NoLifetime),
    };
    let expires_at_ms = match expiration_ms {
        Some(e) if e > now_ms => e,
        _ => now_ms.saturating_add(lifetime_ms),
    };
    let refresh_at_ms = expires_at_ms - lifetime_ms / 5;
    let stale_at_ms = expires_at_ms - (lifetime_ms / 10).min(MAX_EARLY_MS);
    Ok(TokenTimes {
        expires_at_ms,
        refresh_at_ms,
        stale_at_ms,
    })
}

/// Where `now_ms` falls in the token's schedule.
pub(crate) fn freshness(now_ms: i64, t: &TokenTimes) -> Freshness {
    if now_ms >= t.stale_at_ms {
        Freshness::Expired
    } else if now_ms >= t.refresh_at_ms {
        Freshness::Refresh
    } else {
        Freshness::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_at_table() {
        for (expires_in, expiration, want) in [
            (3600, 1_700_003_600, 1_700_002_880),
            (1200, 10_000, 9_760),
            (5, 105, 104),
            (0, 500, 500),
        ] {
            assert_eq!(refresh_at(expires_in, expiration), want);
        }
    }

    #[test]
    fn schedule_table() {
        let now = 1_000_000_000; // ms
        let s = now / 1000;
        /// expires_in, expiration → (expires_at, refresh_at, stale_at)
        type Case = (
            Option<i64>,
            Option<i64>,
            Result<(i64, i64, i64), NoLifetime>,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            // normal 1 h token: refresh at 48 min, stale 10 s early
            (Some(3600), Some(s + 3600), Ok((now + 3_600_000, now + 2_880_000, now + 3_590_000))),
            // short token: early window is 10 % of the lifetime
            (Some(5), Some(s + 5), Ok((now + 5000, now + 4000, now + 4500))),
            // our clock is ahead: expiration already past → count from now
            (Some(60), Some(s - 100), Ok((now + 60_000, now + 48_000, now + 54_000))),
            // expiration missing
            (Some(100), None, Ok((now + 100_000, now + 80_000, now + 90_000))),
            // expires_in missing: lifetime from expiration
            (None, Some(s + 50), Ok((now + 50_000, now + 40_000, now + 45_000))),
            // both missing or useless
            (None, None, Err(NoLifetime)),
            (Some(0), Some(s - 1), Err(NoLifetime)),
            (Some(-5), None, Err(NoLifetime)),
        ];
        for (expires_in, expiration, want) in cases {
            let got = token_times(now, expires_in, expiration)
                .map(|t| (t.expires_at_ms, t.refresh_at_ms, t.stale_at_ms));
            assert_eq!(
                got, want,
                "expires_in {expires_in:?} expiration {expiration:?}"
            );
        }
    }

    #[test]
    fn freshness_table() {
        let t = TokenTimes {
            expires_at_ms: 1000,
            refresh_at_ms: 800,
            stale_at_ms: 990,
        };
        for (now, want) in [
            (0, Freshness::Fresh),
            (799, Freshness::Fresh),
            (800, Freshness::Refresh),
            (989, Freshness::Refresh),
            (990, Freshness::Expired),
            (5000, Freshness::Expired),
        ] {
            assert_eq!(freshness(now, &t), want, "now {now}");
        }
    }

    #[test]
    fn response_debug_hides_the_token() {
        let r: TokenResponse = serde_json::from_str(
            r#"{"access_token":"eyJsecret","refresh_token":"r","token_type":"Bearer","expires_in":3600,"expiration":1,"scope":"ibm"}"#,
        )
        .unwrap();
        assert_eq!(r.access_token, "eyJsecret");
        assert!(!format!("{r:?}").contains("eyJsecret"));
    }
}
