//! The classification of providers' errors: [`Pushback`],
//! [`RateLimitError`], [`HttpError`].

use std::fmt;
use std::time::Duration;

use limiter_core::calendar::{day_index, day_start};
use limiter_core::{TimeZone, Timestamp};

use crate::retry_after::RetryHint;

/// How a provider pushed back on a call: what a [`Router`](crate::Router) does next
/// depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pushback {
    /// A retryable rate limit (HTTP 429, OpenAI `rate_limit_exceeded`,
    /// Gemini `RESOURCE_EXHAUSTED` on a per-minute quota). The router cools
    /// the model down for `retry_after` (or its default) and tries the next.
    RateLimited {
        /// The delay the provider asked for, if it said.
        retry_after: Option<Duration>,
    },
    /// The quota of this model is used up and retrying soon cannot help:
    /// OpenAI `insufficient_quota` (billing), Anthropic's spend cap
    /// (`enforced_spend_limit_reached`), a Gemini daily quota (a
    /// `QuotaFailure` whose `quotaId` contains `PerDay`). The router cools
    /// the model down until the reset when known, else for its long
    /// default, and tries the next.
    QuotaExhausted {
        /// The delay until the quota resets, if known.
        retry_after: Option<Duration>,
    },
    /// The provider is over capacity (Anthropic 529 `overloaded_error`):
    /// not this account's quota. The router tries the next model; it cools
    /// the model down only if the provider gave a delay or the router's
    /// [`overload_cooldown`](crate::RouterBuilder::overload_cooldown) is set.
    Overloaded {
        /// The delay the provider asked for, if it said.
        retry_after: Option<Duration>,
    },
    /// Any other error: the router returns it to the caller at once.
    NotRateLimit,
}

impl Pushback {
    /// The delay the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match *self {
            Pushback::RateLimited { retry_after }
            | Pushback::QuotaExhausted { retry_after }
            | Pushback::Overloaded { retry_after } => retry_after,
            Pushback::NotRateLimit => None,
        }
    }

    /// Whether the router should try another model.
    pub fn is_pushback(&self) -> bool {
        !matches!(self, Pushback::NotRateLimit)
    }

    /// The same classification with a delay of at least `delay` (the
    /// longer of the two when both are known).
    #[must_use]
    pub fn with_at_least(self, delay: Option<Duration>) -> Self {
        let longer = |d: Option<Duration>| match (d, delay) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        match self {
            Pushback::RateLimited { retry_after } => Pushback::RateLimited {
                retry_after: longer(retry_after),
            },
            Pushback::QuotaExhausted { retry_after } => Pushback::QuotaExhausted {
                retry_after: longer(retry_after),
            },
            Pushback::Overloaded { retry_after } => Pushback::Overloaded {
                retry_after: longer(retry_after),
            },
            Pushback::NotRateLimit => Pushback::NotRateLimit,
        }
    }

    /// Classifies an HTTP answer by its status and headers: 429 is
    /// [`RateLimited`](Pushback::RateLimited), 529 (Anthropic) is
    /// [`Overloaded`](Pushback::Overloaded), anything else
    /// [`NotRateLimit`](Pushback::NotRateLimit). The delay is
    /// [`RetryHint::from_headers`]. Telling a billing 429 from a rate 429
    /// needs the body: see `from_response` (feature `json`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use limiter_core::Timestamp;
    /// use limiter_models::Pushback;
    ///
    /// let p = Pushback::from_http(429, [("retry-after", "7")], Timestamp::EPOCH);
    /// assert_eq!(p, Pushback::RateLimited { retry_after: Some(Duration::from_secs(7)) });
    /// assert_eq!(Pushback::from_http(500, [], Timestamp::EPOCH), Pushback::NotRateLimit);
    /// ```
    pub fn from_http<'a>(
        status: u16,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: Timestamp,
    ) -> Pushback {
        match status {
            429 => Pushback::RateLimited {
                retry_after: RetryHint::from_headers(headers, now),
            },
            529 => Pushback::Overloaded {
                retry_after: RetryHint::from_headers(headers, now),
            },
            _ => Pushback::NotRateLimit,
        }
    }

    /// Classifies an error body of OpenAI, Anthropic or Gemini (JSON text;
    /// a Gemini body wrapped in an array is read too):
    ///
    /// - OpenAI `error.code`/`error.type` `rate_limit_exceeded`: rate
    ///   limited, with the delay of "try again in 20ms" in the message if
    ///   any; the billing codes `insufficient_quota`,
    ///   `credit_balance_exhausted`, `organization_spend_limit_exceeded`,
    ///   `project_spend_limit_exceeded`, `organization_usage_limit_exceeded`:
    ///   quota exhausted (no delay: the router's long quota cooldown);
    ///   `server_is_overloaded` (a 503): overloaded.
    /// - Anthropic `error.type` `rate_limit_error`: rate limited;
    ///   `error.details.error_code` `enforced_spend_limit_reached`: quota
    ///   exhausted until 00:00 UTC on the first of the next month;
    ///   `overloaded_error`: overloaded.
    /// - Gemini `error.status` `RESOURCE_EXHAUSTED`: rate limited with
    ///   `google.rpc.RetryInfo.retryDelay` as given (never lengthened);
    ///   when a `google.rpc.QuotaFailure` violation's `quotaId` contains
    ///   `PerDay`, quota exhausted until the next midnight
    ///   America/Los_Angeles after `now`; when its `quotaValue` is 0 (or the
    ///   message says `limit: 0`: no quota on this tier), quota exhausted
    ///   with no delay.
    ///
    /// Anything else, invalid JSON included, is
    /// [`NotRateLimit`](Pushback::NotRateLimit).
    #[cfg(feature = "json")]
    #[cfg_attr(docsrs, doc(cfg(feature = "json")))]
    pub fn from_json_body(body: &str, now: Timestamp) -> Pushback {
        json::classify(body, now)
    }

    /// Classifies an HTTP answer by status, headers and JSON body: the
    /// body's classification when it recognises one
    /// ([`from_json_body`](Self::from_json_body)), else the status's
    /// ([`from_http`](Self::from_http)); the delay is the longer of the
    /// body's and the headers'.
    #[cfg(feature = "json")]
    #[cfg_attr(docsrs, doc(cfg(feature = "json")))]
    pub fn from_response<'a>(
        status: u16,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        body: &str,
        now: Timestamp,
    ) -> Pushback {
        let headers: Vec<(&str, &str)> = headers.into_iter().collect();
        let by_status = Pushback::from_http(status, headers.iter().copied(), now);
        match Pushback::from_json_body(body, now) {
            Pushback::NotRateLimit => by_status,
            // Billing, a spend cap, a quota of 0: a `retry-after` on such an
            // answer is not when access comes back; only the body's own
            // reset (a daily quota's, a spend cap's) is.
            quota @ Pushback::QuotaExhausted { .. } => quota,
            by_body => by_body.with_at_least(RetryHint::from_headers(headers, now)),
        }
    }
}

/// The time until the next midnight America/Los_Angeles after `now`, when
/// Gemini's daily quotas reset.
pub fn until_pacific_midnight(now: Timestamp) -> Duration {
    let now_us = i64::try_from(now.as_micros()).unwrap_or(i64::MAX / 2);
    let today = day_index(&TimeZone::US_PACIFIC, 0, now_us);
    let next = day_start(&TimeZone::US_PACIFIC, 0, today + 1);
    Duration::from_micros(u64::try_from(next - now_us).unwrap_or(0))
}

/// The time until 00:00 UTC on the first day of the month after `now`,
/// when Anthropic lifts a spend cap.
pub fn until_next_month_utc(now: Timestamp) -> Duration {
    let secs = i64::try_from(now.as_micros() / 1_000_000).unwrap_or(i64::MAX / 2);
    let (year, month, _) = limiter_core::calendar::civil_from_days(secs.div_euclid(86_400));
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let start = limiter_core::calendar::days_from_civil(y, m, 1) * 86_400_000_000;
    let now_us = i64::try_from(now.as_micros()).unwrap_or(i64::MAX / 2);
    Duration::from_micros(u64::try_from(start - now_us).unwrap_or(0))
}

/// An error type a [`Router`](crate::Router) can classify: the extension point for the
/// caller's own error type (an HTTP client's error, an SDK's error).
///
/// ```
/// use limiter_core::Timestamp;
/// use limiter_models::{Pushback, RateLimitError};
///
/// #[derive(Debug)]
/// struct ApiError { status: u16, headers: Vec<(String, String)> }
///
/// impl RateLimitError for ApiError {
///     fn pushback(&self, now: Timestamp) -> Pushback {
///         let headers = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
///         Pushback::from_http(self.status, headers, now)
///     }
/// }
/// ```
pub trait RateLimitError {
    /// How the provider pushed back, if it did. `now` is the store's time,
    /// for delays given as an instant (HTTP-date, RFC 3339).
    fn pushback(&self, now: Timestamp) -> Pushback;

    /// What the response's rate-limit headers say of the limits, for
    /// calibration ([`report_from_headers`](crate::report_from_headers));
    /// `None` (the default) when the error carries no headers.
    fn report(&self, _now: Timestamp) -> Option<limiter_core::ProviderReport> {
        None
    }
}

impl RateLimitError for Pushback {
    fn pushback(&self, _now: Timestamp) -> Pushback {
        *self
    }
}

impl<T: RateLimitError + ?Sized> RateLimitError for Box<T> {
    fn pushback(&self, now: Timestamp) -> Pushback {
        (**self).pushback(now)
    }
}

/// An HTTP error answer as most clients can give it: status, headers and
/// body text. Implements [`RateLimitError`] with
/// [`Pushback::from_http`], or, with feature `json`,
/// `Pushback::from_response`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpError {
    /// The HTTP status.
    pub status: u16,
    /// The response headers (names in any case).
    pub headers: Vec<(String, String)>,
    /// The response body.
    pub body: String,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.body)
    }
}

impl std::error::Error for HttpError {}

impl RateLimitError for HttpError {
    fn report(&self, now: Timestamp) -> Option<limiter_core::ProviderReport> {
        let headers = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let report = crate::report_from_headers(headers, now);
        (!report.is_empty()).then_some(report)
    }

    fn pushback(&self, now: Timestamp) -> Pushback {
        let headers = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        #[cfg(feature = "json")]
        {
            Pushback::from_response(self.status, headers, &self.body, now)
        }
        #[cfg(not(feature = "json"))]
        {
            Pushback::from_http(self.status, headers, now)
        }
    }
}

#[cfg(feature = "json")]
mod json {
    use std::time::Duration;

    use serde_json::Value;

    use limiter_core::Timestamp;

    use super::{until_next_month_utc, until_pacific_midnight, Pushback};
    use crate::retry_after::{parse_go_duration, parse_protobuf_duration};

    fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
        let mut cur = v;
        for p in path {
            cur = cur.get(p)?;
        }
        cur.as_str()
    }

    /// "Please try again in 20ms." -> 20 ms (OpenAI's messages).
    fn delay_in_message(message: &str) -> Option<Duration> {
        let (_, rest) = message.split_once("try again in ")?;
        let word = rest.split_whitespace().next()?;
        parse_go_duration(word.trim_end_matches(['.', ',', ';']))
    }

    pub(super) fn classify(body: &str, now: Timestamp) -> Pushback {
        let Ok(mut v) = serde_json::from_str::<Value>(body) else {
            return Pushback::NotRateLimit;
        };
        if let Value::Array(items) = &mut v {
            match items.first() {
                Some(first) => v = first.clone(),
                None => return Pushback::NotRateLimit,
            }
        }
        let Some(err) = v.get("error") else {
            return Pushback::NotRateLimit;
        };
        let code = str_at(err, &["code"]).unwrap_or("");
        let kind = str_at(err, &["type"]).unwrap_or("");
        let message = str_at(err, &["message"]).unwrap_or("");
        let status = str_at(err, &["status"]).unwrap_or("");
        let detail_code = str_at(err, &["details", "error_code"]).unwrap_or("");

        // Gemini / Google RPC.
        if status == "RESOURCE_EXHAUSTED" {
            let details = err.get("details").and_then(Value::as_array);
            let mut delay = None;
            let mut daily = false;
            // A quota of 0: this model has no quota on this tier (or
            // project); waiting does not help.
            let mut none = message.contains("limit: 0");
            for d in details.into_iter().flatten() {
                let ty = str_at(d, &["@type"]).unwrap_or("");
                if ty.ends_with("google.rpc.RetryInfo") {
                    delay = str_at(d, &["retryDelay"]).and_then(parse_protobuf_duration);
                } else if ty.ends_with("google.rpc.QuotaFailure") {
                    for v in d
                        .get("violations")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        daily |= str_at(v, &["quotaId"]).is_some_and(|id| id.contains("PerDay"));
                        none |= match v.get("quotaValue") {
                            Some(Value::String(q)) => q.trim() == "0",
                            Some(Value::Number(q)) => q.as_u64() == Some(0),
                            _ => false,
                        };
                    }
                }
            }
            if none {
                return Pushback::QuotaExhausted { retry_after: None };
            }
            return if daily {
                Pushback::QuotaExhausted {
                    retry_after: Some(until_pacific_midnight(now)),
                }
            } else {
                Pushback::RateLimited { retry_after: delay }
            };
        }
        // Anthropic's spend cap: it resumes at 00:00 UTC on the first of
        // the next month.
        if detail_code == "enforced_spend_limit_reached" {
            return Pushback::QuotaExhausted {
                retry_after: Some(until_next_month_utc(now)),
            };
        }
        // OpenAI's billing, spend and usage-limit codes: retrying does not
        // restore access.
        const BILLING: [&str; 5] = [
            "insufficient_quota",
            "credit_balance_exhausted",
            "organization_spend_limit_exceeded",
            "project_spend_limit_exceeded",
            "organization_usage_limit_exceeded",
        ];
        if BILLING.contains(&code) || BILLING.contains(&kind) {
            return Pushback::QuotaExhausted { retry_after: None };
        }
        if kind == "overloaded_error"
            || code == "server_is_overloaded"
            || kind == "server_is_overloaded"
        {
            return Pushback::Overloaded { retry_after: None };
        }
        if code == "rate_limit_exceeded" || kind == "rate_limit_error" {
            return Pushback::RateLimited {
                retry_after: delay_in_message(message),
            };
        }
        Pushback::NotRateLimit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z

    #[test]
    fn http_status_classification() {
        assert_eq!(
            Pushback::from_http(429, [("Retry-After", "12")], NOW),
            Pushback::RateLimited {
                retry_after: Some(Duration::from_secs(12))
            }
        );
        assert_eq!(
            Pushback::from_http(429, [("retry-after", "garbage")], NOW),
            Pushback::RateLimited { retry_after: None }
        );
        assert_eq!(
            Pushback::from_http(529, [], NOW),
            Pushback::Overloaded { retry_after: None }
        );
        for s in [200, 400, 401, 404, 500, 503] {
            assert_eq!(
                Pushback::from_http(s, [("retry-after", "5")], NOW),
                Pushback::NotRateLimit
            );
        }
    }

    #[test]
    fn with_at_least_takes_the_longer() {
        let p = Pushback::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            p.with_at_least(Some(Duration::from_secs(5))).retry_after(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            p.with_at_least(Some(Duration::from_secs(1))).retry_after(),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            p.with_at_least(None).retry_after(),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            Pushback::QuotaExhausted { retry_after: None }
                .with_at_least(Some(Duration::from_secs(9))),
            Pushback::QuotaExhausted {
                retry_after: Some(Duration::from_secs(9))
            }
        );
        assert_eq!(
            Pushback::NotRateLimit.with_at_least(Some(Duration::from_secs(1))),
            Pushback::NotRateLimit
        );
    }

    #[test]
    fn next_month_in_utc() {
        // 2026-12-31T23:59:00Z: a minute to 2027-01-01.
        assert_eq!(
            until_next_month_utc(Timestamp::from_secs(1_798_761_540)),
            Duration::from_secs(60)
        );
        // 2026-02-01T00:00:00Z exactly: a whole month (28 days) to March.
        assert_eq!(
            until_next_month_utc(Timestamp::from_secs(1_769_904_000)),
            Duration::from_secs(28 * 86_400)
        );
    }

    #[test]
    fn pacific_midnight() {
        // 2026-01-01T00:00:00Z is 2025-12-31 16:00 PST: 8 h to midnight.
        assert_eq!(until_pacific_midnight(NOW), Duration::from_secs(8 * 3600));
        // 2026-07-01T06:59:00Z is 23:59 PDT: one minute.
        let t = Timestamp::from_secs(1_782_889_140);
        assert_eq!(until_pacific_midnight(t), Duration::from_secs(60));
    }

    #[cfg(feature = "json")]
    mod json_bodies {
        use super::*;

        fn body(b: &str) -> Pushback {
            Pushback::from_json_body(b, NOW)
        }

        #[test]
        fn openai_bodies() {
            assert_eq!(
                body(
                    r#"{"error": {"message": "Rate limit reached for gpt-4o-mini in organization org-x on tokens per min (TPM): Limit 200000, Used 199000, Requested 1500. Please try again in 150ms. Visit https://platform.openai.com/account/rate-limits to learn more.", "type": "tokens", "param": null, "code": "rate_limit_exceeded"}}"#
                ),
                Pushback::RateLimited {
                    retry_after: Some(Duration::from_millis(150))
                }
            );
            assert_eq!(
                body(
                    r#"{"error": {"message": "Rate limit reached for requests. Please try again in 1m30.5s.", "type": "requests", "code": "rate_limit_exceeded"}}"#
                ),
                Pushback::RateLimited {
                    retry_after: Some(Duration::from_millis(90_500))
                }
            );
            assert_eq!(
                body(
                    r#"{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}"#
                ),
                Pushback::RateLimited { retry_after: None }
            );
            assert_eq!(
                body(
                    r#"{"error": {"message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}"#
                ),
                Pushback::QuotaExhausted { retry_after: None }
            );
            assert_eq!(
                body(
                    r#"{"error": {"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}}"#
                ),
                Pushback::NotRateLimit
            );
        }

        #[test]
        fn anthropic_bodies() {
            assert_eq!(
                body(
                    r#"{"type": "error", "error": {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your per-minute rate limit"}}"#
                ),
                Pushback::RateLimited { retry_after: None }
            );
            assert_eq!(
                body(
                    r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#
                ),
                Pushback::Overloaded { retry_after: None }
            );
            assert_eq!(
                body(
                    r#"{"type": "error", "error": {"type": "rate_limit_error", "message": "spend limit", "details": {"error_code": "enforced_spend_limit_reached"}}}"#
                ),
                Pushback::QuotaExhausted {
                    // NOW is 2026-01-01T00:00:00Z: the cap lifts on 1 February.
                    retry_after: Some(Duration::from_secs(31 * 86_400))
                }
            );
        }

        const GEMINI_MINUTE: &str = r#"{"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED", "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"}, "quotaValue": "10"}]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]}}"#;

        #[test]
        fn gemini_bodies() {
            assert_eq!(
                body(GEMINI_MINUTE),
                Pushback::RateLimited {
                    retry_after: Some(Duration::from_secs(17))
                }
            );
            // Wrapped in an array (streaming endpoints).
            assert_eq!(
                body(&format!("[{GEMINI_MINUTE}]")),
                Pushback::RateLimited {
                    retry_after: Some(Duration::from_secs(17))
                }
            );
            let daily = GEMINI_MINUTE
                .replace("PerMinute", "PerDay")
                .replace("\"17s\"", "\"1.5s\"");
            assert_eq!(
                body(&daily),
                Pushback::QuotaExhausted {
                    retry_after: Some(Duration::from_secs(8 * 3600))
                }
            );
            let bad_delay = GEMINI_MINUTE.replace("\"17s\"", "\"soon\"");
            assert_eq!(
                body(&bad_delay),
                Pushback::RateLimited { retry_after: None }
            );
            assert_eq!(
                body(r#"{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "x"}}"#),
                Pushback::RateLimited { retry_after: None }
            );
            assert_eq!(
                body(r#"{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "x"}}"#),
                Pushback::NotRateLimit
            );
        }

        #[test]
        fn garbage_bodies() {
            for b in [
                "",
                "null",
                "[]",
                "{}",
                "not json",
                "{\"error\": 5}",
                "{\"error\": null}",
                "{\"error\": {\"code\": 429}}",
                "[1,2]",
                "{\"error\": {\"status\": \"RESOURCE_EXHAUSTED\", \"details\": 3}}",
                "<html>Too Many Requests</html>",
            ] {
                let p = body(b);
                assert!(
                    matches!(
                        p,
                        Pushback::NotRateLimit | Pushback::RateLimited { retry_after: None }
                    ),
                    "{b:?} -> {p:?}"
                );
            }
            assert_eq!(body("<html>429</html>"), Pushback::NotRateLimit);
        }

        /// OpenAI's billing, spend and usage-limit codes (guides/error-codes)
        /// are exhausted quotas, never rate limits to retry.
        #[test]
        fn openai_billing_codes_are_exhausted_quotas() {
            for code in [
                "insufficient_quota",
                "credit_balance_exhausted",
                "organization_spend_limit_exceeded",
                "project_spend_limit_exceeded",
                "organization_usage_limit_exceeded",
            ] {
                let b = format!(
                    r#"{{"error": {{"message": "You exceeded your current quota.", "type": "{code}", "param": null, "code": "{code}"}}}}"#
                );
                assert_eq!(
                    Pushback::from_response(429, [("retry-after", "20")], &b, NOW),
                    Pushback::QuotaExhausted { retry_after: None },
                    "{code}"
                );
            }
        }

        /// OpenAI's 503 `server_is_overloaded` is an overload (try another
        /// model), after its Retry-After.
        #[test]
        fn openai_server_overloaded_is_an_overload() {
            let b = r#"{"error": {"message": "The server is overloaded or not ready yet.", "type": "server_error", "param": null, "code": "server_is_overloaded"}}"#;
            assert_eq!(
                Pushback::from_response(503, [("retry-after", "3")], b, NOW),
                Pushback::Overloaded {
                    retry_after: Some(Duration::from_secs(3))
                }
            );
        }

        /// A Gemini quota of 0 (the model has no quota on this tier) is an
        /// exhausted quota, not a rate limit retried every few seconds.
        #[test]
        fn gemini_quota_of_zero_is_no_quota() {
            let b = r#"{"error": {"code": 429, "message": "You exceeded your current quota. Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.5-pro", "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaDimensions": {"location": "global", "model": "gemini-2.5-pro"}, "quotaValue": "0"}]}, {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "21s"}]}}"#;
            assert_eq!(body(b), Pushback::QuotaExhausted { retry_after: None });
            // The same quota with a real value is a rate limit.
            let b = b
                .replace(r#""quotaValue": "0""#, r#""quotaValue": "5""#)
                .replace("limit: 0", "limit: 5");
            assert_eq!(
                body(&b),
                Pushback::RateLimited {
                    retry_after: Some(Duration::from_secs(21))
                }
            );
        }

        #[test]
        fn response_combines_status_headers_and_body() {
            let quota = r#"{"error": {"type": "insufficient_quota", "code": "insufficient_quota", "message": "x"}}"#;
            // A billing 429's retry-after is not when access comes back.
            assert_eq!(
                Pushback::from_response(429, [("retry-after", "20")], quota, NOW),
                Pushback::QuotaExhausted { retry_after: None }
            );
            assert_eq!(
                Pushback::from_response(
                    429,
                    [("x-ratelimit-reset-requests", "30s")],
                    GEMINI_MINUTE,
                    NOW
                ),
                Pushback::RateLimited {
                    retry_after: Some(Duration::from_secs(30))
                }
            );
            assert_eq!(
                Pushback::from_response(429, [("retry-after-ms", "800")], "Too Many Requests", NOW),
                Pushback::RateLimited {
                    retry_after: Some(Duration::from_millis(800))
                }
            );
            assert_eq!(
                Pushback::from_response(500, [], "oops", NOW),
                Pushback::NotRateLimit
            );
            let e = HttpError {
                status: 429,
                headers: vec![],
                body: quota.into(),
            };
            assert_eq!(
                e.pushback(NOW),
                Pushback::QuotaExhausted { retry_after: None }
            );
        }
    }
}
