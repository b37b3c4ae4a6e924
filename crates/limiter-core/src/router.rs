//! Model-priority fallback: [`Router`], the classification of provider
//! errors ([`Pushback`], [`RateLimitError`]) and usage helpers.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::Deserialize;

use crate::calendar::{day_index, day_start, TimeZone};
use crate::error::{Error, ModelRefusal, RefusalReason, Result};
use crate::limiter::{Limiter, Permit};
use crate::limits::Cost;
use crate::retry_after::RetryHint;
use crate::time::Timestamp;

/// How a provider pushed back on a call: what a [`Router`] does next
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
    /// [`overload_cooldown`](RouterBuilder::overload_cooldown) is set.
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
    /// use limiter_core::{Pushback, Timestamp};
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
    ///   any; `insufficient_quota`: quota exhausted.
    /// - Anthropic `error.type` `rate_limit_error`: rate limited;
    ///   `error.details.error_code` `enforced_spend_limit_reached`: quota
    ///   exhausted; `overloaded_error`: overloaded.
    /// - Gemini `error.status` `RESOURCE_EXHAUSTED`: rate limited with
    ///   `google.rpc.RetryInfo.retryDelay` as given (never lengthened),
    ///   or, when a `google.rpc.QuotaFailure` violation's `quotaId`
    ///   contains `PerDay`, quota exhausted until the next midnight
    ///   America/Los_Angeles after `now`.
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

/// An error type a [`Router`] can classify: the extension point for the
/// caller's own error type (an HTTP client's error, an SDK's error).
///
/// ```
/// use limiter_core::{Pushback, RateLimitError, Timestamp};
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

    use super::{until_pacific_midnight, Pushback};
    use crate::retry_after::{parse_go_duration, parse_protobuf_duration};
    use crate::time::Timestamp;

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
            for d in details.into_iter().flatten() {
                let ty = str_at(d, &["@type"]).unwrap_or("");
                if ty.ends_with("google.rpc.RetryInfo") {
                    delay = str_at(d, &["retryDelay"]).and_then(parse_protobuf_duration);
                } else if ty.ends_with("google.rpc.QuotaFailure") {
                    let violations = d.get("violations").and_then(Value::as_array);
                    daily |= violations
                        .into_iter()
                        .flatten()
                        .any(|v| str_at(v, &["quotaId"]).is_some_and(|id| id.contains("PerDay")));
                }
            }
            return if daily {
                Pushback::QuotaExhausted {
                    retry_after: Some(until_pacific_midnight(now)),
                }
            } else {
                Pushback::RateLimited { retry_after: delay }
            };
        }
        if code == "insufficient_quota"
            || kind == "insufficient_quota"
            || detail_code == "enforced_spend_limit_reached"
        {
            return Pushback::QuotaExhausted { retry_after: None };
        }
        if kind == "overloaded_error" {
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

/// One model of a [`Router`]: its name (passed to the caller's closure)
/// and its limiter (whose key cooldowns are stored under).
#[derive(Clone, Debug)]
struct Route {
    name: String,
    limiter: Limiter,
}

/// Builds a [`Router`]; see [`Router::builder`].
#[derive(Debug)]
pub struct RouterBuilder {
    routes: Vec<Route>,
    default_cooldown: Duration,
    quota_cooldown: Duration,
    overload_cooldown: Duration,
    max_cooldown: Duration,
}

impl RouterBuilder {
    /// Adds a model, after those already added (lower priority), named
    /// `name` and limited by `limiter`.
    #[must_use]
    pub fn model(mut self, name: impl Into<String>, limiter: Limiter) -> Self {
        self.routes.push(Route {
            name: name.into(),
            limiter,
        });
        self
    }

    /// Adds a model named after its limiter's key.
    #[must_use]
    pub fn limiter(self, limiter: Limiter) -> Self {
        let name = limiter.key().to_owned();
        self.model(name, limiter)
    }

    /// The cooldown after a rate limit whose delay the provider did not
    /// give (or gave in a form that does not parse). 60 s by default.
    #[must_use]
    pub fn default_cooldown(mut self, d: Duration) -> Self {
        self.default_cooldown = d;
        self
    }

    /// The cooldown after a quota exhaustion whose reset is unknown
    /// (billing, spend cap). 1 hour by default.
    #[must_use]
    pub fn quota_cooldown(mut self, d: Duration) -> Self {
        self.quota_cooldown = d;
        self
    }

    /// The cooldown after an overload without a delay. Zero (no cooldown,
    /// just try the next model) by default.
    #[must_use]
    pub fn overload_cooldown(mut self, d: Duration) -> Self {
        self.overload_cooldown = d;
        self
    }

    /// The longest cooldown the router sets, whatever the provider says.
    /// 25 hours by default.
    #[must_use]
    pub fn max_cooldown(mut self, d: Duration) -> Self {
        self.max_cooldown = d;
        self
    }

    /// Builds the router.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when no model was added or two models have
    /// the same name.
    pub fn build(self) -> Result<Router> {
        if self.routes.is_empty() {
            return Err(Error::InvalidConfig {
                field: "models".into(),
                reason: "a router needs at least one model".into(),
            });
        }
        for (i, r) in self.routes.iter().enumerate() {
            if self.routes[..i].iter().any(|o| o.name == r.name) {
                return Err(Error::InvalidConfig {
                    field: "models".into(),
                    reason: format!("model {:?} is listed twice", r.name),
                });
            }
        }
        Ok(Router {
            routes: self.routes,
            default_cooldown: self.default_cooldown,
            quota_cooldown: self.quota_cooldown,
            overload_cooldown: self.overload_cooldown,
            max_cooldown: self.max_cooldown,
        })
    }
}

/// The outcome of a successful [`Router::run`].
#[derive(Debug)]
pub struct Routed<T> {
    /// The model that answered.
    pub model: String,
    /// What the caller's closure returned.
    pub value: T,
    /// The permit of the call, to settle with the usage the provider
    /// reported ([`Permit::adjust`], [`Routed::settle`]).
    pub permit: Permit,
    /// The models passed over before this one, with why.
    pub skipped: Vec<ModelRefusal>,
}

impl<T> Routed<T> {
    /// Settles the permit with the usage the provider reported, e.g. an
    /// [`OpenAiUsage`] or a [`GeminiUsage`].
    ///
    /// # Errors
    /// As [`Permit::adjust`].
    pub async fn settle(&self, usage: impl Into<Cost>) -> Result<()> {
        self.permit.adjust(usage.into()).await
    }
}

/// What [`Router::run`] returns when it does not succeed.
#[derive(Debug)]
pub enum RouterError<E> {
    /// The limiter failed ([`Error::Store`], bad input), or every model was
    /// exhausted ([`Error::AllModelsExhausted`]).
    Limiter(Error),
    /// The caller's closure failed with an error that is not a rate limit;
    /// it is returned as it was, and no other model was tried.
    Call {
        /// The model that was called.
        model: String,
        /// The closure's error.
        error: E,
    },
}

impl<E: fmt::Display> fmt::Display for RouterError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouterError::Limiter(e) => write!(f, "{e}"),
            RouterError::Call { model, error } => write!(f, "call to {model} failed: {error}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RouterError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RouterError::Limiter(e) => Some(e),
            RouterError::Call { error, .. } => Some(error),
        }
    }
}

impl<E> From<Error> for RouterError<E> {
    fn from(e: Error) -> Self {
        RouterError::Limiter(e)
    }
}

/// Model-priority fallback over limiters that share one store.
///
/// [`run`](Router::run) tries the models in priority order: it skips a
/// model that is cooling down (a cooldown set by any process sharing the
/// store) or whose limiter would not admit the request within the caller's
/// maximum wait, and calls the caller's closure with the first that does.
/// When the provider pushes back ([`RateLimitError`]), the model is cooled
/// down in the store — so every process skips it — for the provider's delay
/// or the router's default, and the next model is tried. Any other error
/// goes back to the caller at once. When no model is left,
/// [`Error::AllModelsExhausted`] says why for each.
///
/// The reservation of a call the provider rejected is kept, not refunded:
/// the request reached the provider, and OpenAI and Azure count failed
/// requests against the limits.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use limiter_core::{Cost, HttpError, Limiter, Limits, Router, RouterError, Store};
///
/// async fn call_provider(model: &str, prompt: &str) -> Result<String, HttpError> {
///     Ok(format!("{model} says hello to {prompt}"))
/// }
///
/// # async fn demo(store: impl Store) -> Result<(), Box<dyn std::error::Error>> {
/// let store: Arc<dyn Store> = Arc::new(store);
/// let limiter = |key: &str, limits: Limits| {
///     Limiter::builder_shared(store.clone(), key).limits(limits).build()
/// };
/// let router = Router::builder()
///     .limiter(limiter("gemini-2.5-flash", Limits::new().rpm(10).tpm(250_000))?)
///     .limiter(limiter("gpt-4o-mini", Limits::new().rpm(500).tpm(200_000))?)
///     .default_cooldown(Duration::from_secs(30))
///     .build()?;
///
/// let prompt = "world".to_string();
/// let routed = router
///     .run(Cost::split(1_000, 500), Duration::from_secs(5), |model| {
///         let prompt = prompt.clone();
///         async move { call_provider(&model, &prompt).await }
///     })
///     .await?;
/// println!("{} answered: {}", routed.model, routed.value);
/// routed.settle(Cost::split(1_000, 120)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Router {
    routes: Vec<Route>,
    default_cooldown: Duration,
    quota_cooldown: Duration,
    overload_cooldown: Duration,
    max_cooldown: Duration,
}

impl Router {
    /// A builder with no models and the default cooldowns.
    pub fn builder() -> RouterBuilder {
        RouterBuilder {
            routes: Vec::new(),
            default_cooldown: Duration::from_secs(60),
            quota_cooldown: Duration::from_secs(3600),
            overload_cooldown: Duration::ZERO,
            max_cooldown: Duration::from_secs(25 * 3600),
        }
    }

    /// The model names in priority order.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.name.as_str())
    }

    /// The limiter of a model, if the router has it.
    pub fn limiter(&self, model: &str) -> Option<&Limiter> {
        self.routes
            .iter()
            .find(|r| r.name == model)
            .map(|r| &r.limiter)
    }

    /// The cooldown the router sets for a pushback (zero: none).
    fn cooldown_for(&self, p: Pushback) -> Duration {
        let d = match p {
            Pushback::RateLimited { retry_after } => retry_after.unwrap_or(self.default_cooldown),
            Pushback::QuotaExhausted { retry_after } => retry_after.unwrap_or(self.quota_cooldown),
            Pushback::Overloaded { retry_after } => retry_after.unwrap_or(self.overload_cooldown),
            Pushback::NotRateLimit => Duration::ZERO,
        };
        d.min(self.max_cooldown)
    }

    /// Runs `call` on the first model that can take a request of `cost`
    /// within `max_wait`, falling back down the priority list on pushback.
    ///
    /// `call` gets the model's name and is called at most once per model.
    /// On success the permit comes back in [`Routed`] for settling.
    /// `max_wait` bounds the total time spent waiting for slots: time
    /// waited for a model that then pushed back is deducted from what the
    /// next models may wait.
    ///
    /// # Errors
    /// [`RouterError::Call`] with the closure's error when it is not a
    /// rate limit ([`Pushback::NotRateLimit`]);
    /// [`RouterError::Limiter`] with [`Error::AllModelsExhausted`] when no
    /// model could take the request, or with the limiter's error for a
    /// store fault or bad input.
    pub async fn run<T, E, F, Fut>(
        &self,
        cost: Cost,
        max_wait: Duration,
        mut call: F,
    ) -> Result<Routed<T>, RouterError<E>>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: RateLimitError,
    {
        let mut refusals = Vec::new();
        // What is left of the caller's maximum wait: time spent waiting for
        // a model that then pushed back counts against it.
        let mut budget = max_wait;
        for route in &self.routes {
            let limiter = &route.limiter;
            let now = limiter.store().clock().now();
            if let Some(until) = limiter.cooldown().await? {
                if until > now {
                    refusals.push(ModelRefusal {
                        model: route.name.clone(),
                        reason: RefusalReason::CoolingDown { until },
                    });
                    continue;
                }
            }
            let permit = match limiter.acquire_within(cost, budget).await {
                Ok(p) => p,
                Err(Error::WouldWaitTooLong { wait, max_wait }) => {
                    refusals.push(ModelRefusal {
                        model: route.name.clone(),
                        reason: RefusalReason::WouldWait { wait, max_wait },
                    });
                    continue;
                }
                Err(Error::ExceedsLimit {
                    dimension,
                    requested,
                    max,
                }) => {
                    refusals.push(ModelRefusal {
                        model: route.name.clone(),
                        reason: RefusalReason::TooLarge {
                            dimension,
                            requested,
                            max,
                        },
                    });
                    continue;
                }
                Err(e) => return Err(RouterError::Limiter(e)),
            };
            let error = match call(route.name.clone()).await {
                Ok(value) => {
                    return Ok(Routed {
                        model: route.name.clone(),
                        value,
                        permit,
                        skipped: refusals,
                    })
                }
                Err(e) => e,
            };
            let pushback = error.pushback(limiter.store().clock().now());
            if !pushback.is_pushback() {
                return Err(RouterError::Call {
                    model: route.name.clone(),
                    error,
                });
            }
            // Not held across the awaits below, so `E` need not be `Send`.
            drop(error);
            budget = budget.saturating_sub(permit.waited());
            // The request reached the provider: its reservation stands.
            drop(permit);
            let cooldown = self.cooldown_for(pushback);
            if !cooldown.is_zero() {
                if let Err(e) = limiter.cool_down(cooldown).await {
                    tracing::warn!(model = %route.name, error = %e,
                        "could not record the cooldown of a model the provider pushed back on");
                }
            }
            let retry_after = pushback.retry_after();
            let reason = match pushback {
                Pushback::QuotaExhausted { .. } => RefusalReason::QuotaExhausted {
                    retry_after,
                    cooldown,
                },
                Pushback::Overloaded { .. } => RefusalReason::Overloaded {
                    retry_after,
                    cooldown,
                },
                _ => RefusalReason::RateLimited {
                    retry_after,
                    cooldown,
                },
            };
            tracing::debug!(model = %route.name, %reason, "falling back to the next model");
            refusals.push(ModelRefusal {
                model: route.name.clone(),
                reason,
            });
        }
        Err(RouterError::Limiter(Error::AllModelsExhausted {
            reasons: refusals,
        }))
    }
}

/// OpenAI's `usage` object, of the Chat Completions API (`prompt_tokens`,
/// `completion_tokens`) or the Responses API (`input_tokens`,
/// `output_tokens`). Cached prompt tokens are part of the input and stay
/// counted: OpenAI counts them towards the limits.
///
/// ```
/// use limiter_core::{Cost, OpenAiUsage};
///
/// let usage: OpenAiUsage = serde_json::from_str(
///     r#"{"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}"#,
/// ).unwrap();
/// assert_eq!(Cost::from(usage), Cost::split(19, 10));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OpenAiUsage {
    /// Chat Completions: input tokens.
    pub prompt_tokens: Option<u64>,
    /// Chat Completions: output tokens (reasoning tokens included).
    pub completion_tokens: Option<u64>,
    /// Responses API: input tokens.
    pub input_tokens: Option<u64>,
    /// Responses API: output tokens (reasoning tokens included).
    pub output_tokens: Option<u64>,
    /// Input plus output, as reported (not used for the cost).
    pub total_tokens: Option<u64>,
}

impl From<OpenAiUsage> for Cost {
    fn from(u: OpenAiUsage) -> Cost {
        Cost::split(
            u.prompt_tokens.or(u.input_tokens).unwrap_or(0),
            u.completion_tokens.or(u.output_tokens).unwrap_or(0),
        )
    }
}

/// Gemini's `usageMetadata`. Input is `promptTokenCount` plus
/// `toolUsePromptTokenCount`; output is `candidatesTokenCount` plus
/// `thoughtsTokenCount` (thinking is billed and metered as output).
/// `cachedContentTokenCount` is already part of `promptTokenCount` and is
/// not subtracted.
///
/// ```
/// use limiter_core::{Cost, GeminiUsage};
///
/// let usage: GeminiUsage = serde_json::from_str(
///     r#"{"promptTokenCount": 12, "candidatesTokenCount": 30, "thoughtsTokenCount": 100, "totalTokenCount": 142}"#,
/// ).unwrap();
/// assert_eq!(Cost::from(usage), Cost::split(12, 130));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GeminiUsage {
    /// Input tokens (cached ones included).
    pub prompt_token_count: u64,
    /// Output tokens of the candidates.
    pub candidates_token_count: u64,
    /// Thinking tokens, counted as output.
    pub thoughts_token_count: u64,
    /// Tokens of tool-use prompts, counted as input.
    pub tool_use_prompt_token_count: u64,
    /// Input tokens read from a cache (a part of `prompt_token_count`).
    pub cached_content_token_count: u64,
    /// The total, as reported (not used for the cost).
    pub total_token_count: u64,
}

impl From<GeminiUsage> for Cost {
    fn from(u: GeminiUsage) -> Cost {
        Cost::split(
            u.prompt_token_count
                .saturating_add(u.tool_use_prompt_token_count),
            u.candidates_token_count
                .saturating_add(u.thoughts_token_count),
        )
    }
}

/// Anthropic's `usage`. Input is `input_tokens` plus
/// `cache_creation_input_tokens`; `cache_read_input_tokens` are left out,
/// as Anthropic does not count them towards ITPM on current models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AnthropicUsage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Input tokens written to the cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the cache (not counted).
    pub cache_read_input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

impl From<AnthropicUsage> for Cost {
    fn from(u: AnthropicUsage) -> Cost {
        Cost::split(
            u.input_tokens.saturating_add(u.cache_creation_input_tokens),
            u.output_tokens,
        )
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
    fn pacific_midnight() {
        // 2026-01-01T00:00:00Z is 2025-12-31 16:00 PST: 8 h to midnight.
        assert_eq!(until_pacific_midnight(NOW), Duration::from_secs(8 * 3600));
        // 2026-07-01T06:59:00Z is 23:59 PDT: one minute.
        let t = Timestamp::from_secs(1_782_889_140);
        assert_eq!(until_pacific_midnight(t), Duration::from_secs(60));
    }

    #[test]
    fn usage_helpers() {
        let u: OpenAiUsage = serde_json::from_str(
            r#"{"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 123}"#,
        )
        .unwrap();
        assert_eq!(Cost::from(u), Cost::split(36, 87));
        let u: OpenAiUsage = serde_json::from_str(
            r#"{"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
                "prompt_tokens_details": {"cached_tokens": 1024}}"#,
        )
        .unwrap();
        assert_eq!(Cost::from(u), Cost::split(1117, 46));
        let u: OpenAiUsage = serde_json::from_str("{}").unwrap();
        assert_eq!(Cost::from(u), Cost::request());
        let g: GeminiUsage = serde_json::from_str(
            r#"{"promptTokenCount": 2000, "candidatesTokenCount": 50, "thoughtsTokenCount": 950,
                "cachedContentTokenCount": 1500, "toolUsePromptTokenCount": 10,
                "totalTokenCount": 3010, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2000}]}"#,
        )
        .unwrap();
        assert_eq!(Cost::from(g), Cost::split(2010, 1000));
        assert_eq!(g.cached_content_token_count, 1500);
        let a: AnthropicUsage = serde_json::from_str(
            r#"{"input_tokens": 20, "cache_creation_input_tokens": 2000,
                "cache_read_input_tokens": 5000, "output_tokens": 300}"#,
        )
        .unwrap();
        assert_eq!(Cost::from(a), Cost::split(2020, 300));
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
                Pushback::QuotaExhausted { retry_after: None }
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

        #[test]
        fn response_combines_status_headers_and_body() {
            let quota = r#"{"error": {"type": "insufficient_quota", "code": "insufficient_quota", "message": "x"}}"#;
            assert_eq!(
                Pushback::from_response(429, [("retry-after", "20")], quota, NOW),
                Pushback::QuotaExhausted {
                    retry_after: Some(Duration::from_secs(20))
                }
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
