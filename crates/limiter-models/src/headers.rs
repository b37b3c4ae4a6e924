//! The providers' rate-limit headers, read into a
//! [`ProviderReport`](limiter_core::ProviderReport) for calibration
//! ([`Limiter::observe`](limiter_core::Limiter::observe)).

use std::time::Duration;

use limiter_core::{Dimension, ProviderReport, Timestamp};

use crate::retry_after::{parse_go_duration, parse_rfc3339};

/// What a provider's response headers say of the key's limits, for
/// [`Limiter::observe`](limiter_core::Limiter::observe) (or
/// [`Permit::observe`](limiter_core::Permit::observe), which also says when
/// the provider counted the call):
///
/// - OpenAI and Azure OpenAI: `x-ratelimit-limit-requests` /
///   `-remaining-requests` / `-reset-requests` (requests per minute) and the
///   same for `-tokens` (combined tokens per minute); resets are durations
///   such as `6m0s`, `1s`, `20ms`.
/// - Anthropic: `anthropic-ratelimit-requests-{limit,remaining,reset}`
///   (requests per minute), `anthropic-ratelimit-input-tokens-*` and
///   `-output-tokens-*` (input and output tokens per minute); resets are
///   RFC 3339 instants, read against `now` (the store's time).
///
/// Headers it does not know, and values that do not parse, are left out;
/// names are matched in any case. Anthropic's `-tokens-*` (the most
/// restrictive of its token limits, not a limit of its own) is left out.
///
/// ```
/// use std::time::Duration;
/// use limiter_core::{Dimension, Timestamp};
/// use limiter_models::report_from_headers;
///
/// let headers = [
///     ("x-ratelimit-limit-requests", "500"),
///     ("x-ratelimit-remaining-requests", "499"),
///     ("x-ratelimit-reset-requests", "120ms"),
///     ("x-ratelimit-limit-tokens", "30000"),
///     ("X-RateLimit-Remaining-Tokens", "29000"),
///     ("x-ratelimit-reset-tokens", "2s"),
/// ];
/// let report = report_from_headers(headers, Timestamp::now_system());
/// assert_eq!(report.limit_of(Dimension::Tpm), Some(30_000));
/// assert_eq!(report.used(Dimension::Rpm), Some(1));
/// assert!(report.remaining.contains(&(Dimension::Tpm, 29_000, Duration::from_secs(2))));
/// ```
pub fn report_from_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    now: Timestamp,
) -> ProviderReport {
    let mut limits: Vec<(Dimension, u64)> = Vec::new();
    let mut remaining: Vec<(Dimension, u64)> = Vec::new();
    let mut resets: Vec<(Dimension, Duration)> = Vec::new();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        let Some((dimension, field, anthropic)) = classify(&name) else {
            continue;
        };
        match field {
            Field::Limit => {
                if let Ok(v) = value.parse::<u64>() {
                    limits.push((dimension, v));
                }
            }
            Field::Remaining => {
                if let Ok(v) = value.parse::<u64>() {
                    remaining.push((dimension, v));
                }
            }
            Field::Reset => {
                let reset = if anthropic {
                    parse_rfc3339(value).map(|at| at.duration_since(now))
                } else {
                    parse_go_duration(value)
                };
                if let Some(d) = reset {
                    resets.push((dimension, d));
                }
            }
        }
    }
    let mut report = ProviderReport::default();
    for (d, v) in limits {
        report = report.limit(d, v);
    }
    for (d, v) in remaining {
        let reset = resets
            .iter()
            .find(|(r, _)| *r == d)
            .map_or(Duration::from_secs(60), |&(_, r)| r);
        report = report.remaining(d, v, reset);
    }
    report
}

#[derive(Clone, Copy)]
enum Field {
    Limit,
    Remaining,
    Reset,
}

/// The dimension and field a header names, and whether it is Anthropic's.
fn classify(name: &str) -> Option<(Dimension, Field, bool)> {
    if let Some(rest) = name.strip_prefix("x-ratelimit-") {
        let (field, what) = if let Some(w) = rest.strip_prefix("limit-") {
            (Field::Limit, w)
        } else if let Some(w) = rest.strip_prefix("remaining-") {
            (Field::Remaining, w)
        } else if let Some(w) = rest.strip_prefix("reset-") {
            (Field::Reset, w)
        } else {
            return None;
        };
        let dimension = match what {
            "requests" => Dimension::Rpm,
            "tokens" => Dimension::Tpm,
            _ => return None,
        };
        return Some((dimension, field, false));
    }
    let rest = name.strip_prefix("anthropic-ratelimit-")?;
    let (what, field) = rest.rsplit_once('-')?;
    let field = match field {
        "limit" => Field::Limit,
        "remaining" => Field::Remaining,
        "reset" => Field::Reset,
        _ => return None,
    };
    let dimension = match what {
        "requests" => Dimension::Rpm,
        "input-tokens" => Dimension::InputTpm,
        "output-tokens" => Dimension::OutputTpm,
        _ => return None,
    };
    Some((dimension, field, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_headers() {
        // 2026-01-01T00:00:00Z.
        let now = Timestamp::from_secs(1_767_225_600);
        let headers = [
            ("anthropic-ratelimit-requests-limit", "1000"),
            ("anthropic-ratelimit-requests-remaining", "999"),
            ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:01Z"),
            ("anthropic-ratelimit-input-tokens-limit", "2000000"),
            ("anthropic-ratelimit-input-tokens-remaining", "1990000"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2026-01-01T00:00:00.3Z",
            ),
            ("anthropic-ratelimit-output-tokens-limit", "400000"),
            ("anthropic-ratelimit-output-tokens-remaining", "399000"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2026-01-01T00:00:00Z",
            ),
            ("anthropic-ratelimit-tokens-limit", "2400000"),
            ("retry-after", "3"),
        ];
        let r = report_from_headers(headers, now);
        assert_eq!(
            r.limits,
            [
                (Dimension::Rpm, 1000),
                (Dimension::InputTpm, 2_000_000),
                (Dimension::OutputTpm, 400_000)
            ]
        );
        assert!(r.remaining.contains(&(
            Dimension::InputTpm,
            1_990_000,
            Duration::from_millis(300)
        )));
        assert!(r
            .remaining
            .contains(&(Dimension::Rpm, 999, Duration::from_secs(1))));
        assert_eq!(r.used(Dimension::OutputTpm), Some(1000));
    }

    #[test]
    fn bad_and_unknown_headers_are_left_out() {
        let now = Timestamp::from_secs(1_767_225_600);
        let r = report_from_headers(
            [
                ("x-ratelimit-limit-requests", "many"),
                ("x-ratelimit-limit-project-tokens", "100"),
                ("x-ratelimit-remaining-tokens", "-5"),
                ("content-type", "application/json"),
                ("anthropic-ratelimit-requests-reset", "soon"),
            ],
            now,
        );
        assert!(r.is_empty(), "{r:?}");
    }
}
