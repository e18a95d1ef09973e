//! When to try a delivery again, kept apart from how long to wait: a [`Failure`] says
//! whether retrying can help (429, 5xx, timeouts and broken connections can; other 4xx
//! cannot), and [`Backoff`] says how long to wait (capped exponential with full jitter,
//! or what `Retry-After` asks, whichever is longer).

use std::time::Duration;

/// Why a delivery did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Worth trying again (after `after`, if the target said so). `down`: the target
    /// as a whole did not take it — no answer, 429, 502, 503 or 504 — rather than this
    /// one change; nothing else is sent to it for a while (see `sync::engine`).
    Transient {
        error: String,
        after: Option<Duration>,
        down: bool,
    },
    /// The target refused the change; trying again will not help until someone acts.
    Permanent {
        status: Option<u16>,
        error: String,
        outcome: Option<serde_json::Value>,
    },
}

impl Failure {
    /// The failure an HTTP status stands for, with the target's body and `Retry-After`.
    pub fn from_status(status: u16, body: &[u8], retry_after: Option<&str>) -> Failure {
        let outcome = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .filter(|v| v["resourceType"] == "OperationOutcome");
        let said = outcome
            .as_ref()
            .and_then(|o| o["issue"][0]["diagnostics"].as_str())
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        let error = format!("the target answered {status}{said}");
        if retryable(status) {
            Failure::Transient {
                error,
                after: retry_after.and_then(parse_retry_after),
                down: matches!(status, 429 | 502 | 503 | 504),
            }
        } else {
            Failure::Permanent {
                status: Some(status),
                error,
                outcome,
            }
        }
    }

    pub fn error(&self) -> &str {
        match self {
            Failure::Transient { error, .. } | Failure::Permanent { error, .. } => error,
        }
    }
}

/// Statuses that say "not now" rather than "no".
pub fn retryable(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || status >= 500
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// Capped exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait before attempt `failures + 1`: a random time up to
    /// `min(max, initial · 2^failures)`, but at least what the target asked for (itself
    /// capped at an hour).
    pub fn delay(&self, failures: u32, asked: Option<Duration>) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(2_u32.saturating_pow(failures.min(30)))
            .min(self.max);
        let jittered = ceiling.mul_f64(fastrand::f64());
        let asked = asked.unwrap_or_default().min(Duration::from_secs(3600));
        jittered.max(asked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_sorted_into_retry_and_dead_letter() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(
                    Failure::from_status(status, b"", None),
                    Failure::Transient { .. }
                ),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 409, 412, 422] {
            assert!(
                matches!(
                    Failure::from_status(status, b"", None),
                    Failure::Permanent { .. }
                ),
                "{status}"
            );
        }
        let outcome = br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"CarePlan.subject is required"}]}"#;
        let Failure::Permanent {
            error,
            outcome,
            status,
        } = Failure::from_status(422, outcome, None)
        else {
            panic!("422 is permanent");
        };
        assert_eq!(status, Some(422));
        assert!(error.contains("CarePlan.subject is required"), "{error}");
        assert!(outcome.is_some());
        let Failure::Transient { after, .. } = Failure::from_status(429, b"", Some("7")) else {
            panic!("429 is transient");
        };
        assert_eq!(after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_to_its_cap_and_honours_the_target() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        };
        for failures in 0..40 {
            let ceiling = Duration::from_millis(100)
                .saturating_mul(2_u32.saturating_pow(failures.min(30)))
                .min(Duration::from_secs(10));
            let d = b.delay(failures, None);
            assert!(d <= ceiling, "{failures}: {d:?} > {ceiling:?}");
        }
        // Full jitter spreads the waits: many draws are not all the same.
        let draws: std::collections::BTreeSet<_> = (0..20).map(|_| b.delay(5, None)).collect();
        assert!(draws.len() > 1);
        assert!(b.delay(0, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
    }
}
