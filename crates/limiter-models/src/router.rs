//! Model-priority fallback: [`Router`].

use std::fmt;
use std::future::Future;
use std::time::Duration;

use limiter_core::{Cost, Dimension, Error, Limiter, NotUntil, Permit, Result, Timestamp};

use crate::pushback::{Pushback, RateLimitError};

/// Why a [`Router`] passed over one model; see
/// [`RouterError::AllModelsExhausted`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRefusal {
    /// The model's name.
    pub model: String,
    /// Why it was passed over.
    pub reason: RefusalReason,
}

impl ModelRefusal {
    fn join(reasons: &[ModelRefusal]) -> String {
        let parts: Vec<String> = reasons.iter().map(ToString::to_string).collect();
        parts.join("; ")
    }
}

impl fmt::Display for ModelRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.model, self.reason)
    }
}

/// The reason in a [`ModelRefusal`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The model was cooling down (a provider pushed back earlier, in this
    /// process or another one sharing the store); it was not called.
    CoolingDown {
        /// When the cooldown ends, on the store's clock.
        until: Timestamp,
    },
    /// Its limiter would have admitted the request only after longer than
    /// the caller's maximum wait; nothing was reserved.
    WouldWait {
        /// When the request could have gone.
        denied: NotUntil,
        /// The caller's maximum wait.
        max_wait: Duration,
    },
    /// The request needs more than this model's limits could ever admit
    /// ([`Error::ExceedsLimit`](limiter_core::Error::ExceedsLimit)); another model's limits may be larger.
    TooLarge {
        /// The limit that can never admit the request.
        dimension: Dimension,
        /// What the request asks for in that dimension.
        requested: u64,
        /// The most one request may ask for in that dimension.
        max: u64,
    },
    /// The model was called and the provider answered with a retryable
    /// rate limit (a 429); the model was cooled down for `cooldown`.
    RateLimited {
        /// The delay the provider asked for, if it said.
        retry_after: Option<Duration>,
        /// How long the model was cooled down for.
        cooldown: Duration,
    },
    /// The model was called and the provider said its quota is used up
    /// (billing, spend cap, daily quota); the model was cooled down for
    /// `cooldown`.
    QuotaExhausted {
        /// The delay until the quota resets, if known.
        retry_after: Option<Duration>,
        /// How long the model was cooled down for.
        cooldown: Duration,
    },
    /// The model was called and the provider said it is overloaded (a
    /// capacity problem, not this account's quota).
    Overloaded {
        /// The delay the provider asked for, if it said.
        retry_after: Option<Duration>,
        /// How long the model was cooled down for (zero: not cooled down).
        cooldown: Duration,
    },
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusalReason::CoolingDown { until } => write!(f, "cooling down until {until}"),
            RefusalReason::WouldWait { denied, max_wait } => {
                write!(f, "would wait {:?}, more than {max_wait:?}", denied.wait())
            }
            RefusalReason::TooLarge {
                dimension,
                requested,
                max,
            } => write!(f, "needs {requested} of {dimension}, at most {max} fit"),
            RefusalReason::RateLimited {
                retry_after,
                cooldown,
            } => write!(
                f,
                "rate-limited by the provider (retry after {retry_after:?}), cooled down for {cooldown:?}"
            ),
            RefusalReason::QuotaExhausted {
                retry_after,
                cooldown,
            } => write!(
                f,
                "quota exhausted (reset in {retry_after:?}), cooled down for {cooldown:?}"
            ),
            RefusalReason::Overloaded {
                retry_after,
                cooldown,
            } => write!(
                f,
                "provider overloaded (retry after {retry_after:?}), cooled down for {cooldown:?}"
            ),
        }
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
    /// [`OpenAiUsage`](crate::OpenAiUsage) or a [`GeminiUsage`](crate::GeminiUsage).
    ///
    /// # Errors
    /// As [`Permit::adjust`].
    pub async fn settle(&self, usage: impl Into<Cost>) -> Result<()> {
        self.permit.adjust(usage.into()).await
    }
}

/// What [`Router::run`] returns when it does not succeed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RouterError<E> {
    /// The limiter failed ([`Error::Store`], bad input).
    Limiter(Error),
    /// No model could run the request: every model in the priority list
    /// was cooling down, would have waited too long, could never admit the
    /// request, or was tried and pushed back by the provider.
    AllModelsExhausted {
        /// Why each model was passed over, one entry per model, in
        /// priority order.
        reasons: Vec<ModelRefusal>,
    },
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
            RouterError::AllModelsExhausted { reasons } => {
                write!(
                    f,
                    "every model is exhausted: {}",
                    ModelRefusal::join(reasons)
                )
            }
            RouterError::Call { model, error } => write!(f, "call to {model} failed: {error}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RouterError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RouterError::Limiter(e) => Some(e),
            RouterError::AllModelsExhausted { .. } => None,
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
/// [`RouterError::AllModelsExhausted`] says why for each.
///
/// The reservation of a call the provider rejected is kept, not refunded:
/// the request reached the provider, and OpenAI and Azure count failed
/// requests against the limits.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use limiter_core::{Cost, Limiter, Limits, Store};
/// use limiter_models::{HttpError, Router, RouterError};
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
    /// [`RouterError::AllModelsExhausted`] when no model could take the
    /// request; [`RouterError::Limiter`] with the limiter's error for a
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
            // The store tells only a cooldown in force by its own clock (the
            // Redis server's): this host's clock, which may be off, decides
            // nothing here.
            if let Some(until) = limiter.cooldown_end().await? {
                refusals.push(ModelRefusal {
                    model: route.name.clone(),
                    reason: RefusalReason::CoolingDown { until },
                });
                continue;
            }
            let permit = match limiter.acquire_within(cost, budget).await {
                Ok(p) => p,
                Err(Error::WouldWaitTooLong { denied, max_wait }) => {
                    refusals.push(ModelRefusal {
                        model: route.name.clone(),
                        reason: RefusalReason::WouldWait { denied, max_wait },
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
            let now = limiter.store().clock().now();
            let pushback = error.pushback(now);
            // Whatever the answer, its headers tell the real limits.
            let report = error.report(now);
            if !pushback.is_pushback() {
                return Err(RouterError::Call {
                    model: route.name.clone(),
                    error,
                });
            }
            // Not held across the awaits below, so `E` need not be `Send`.
            drop(error);
            if let Some(report) = report {
                if let Err(e) = permit.observe(&report).await {
                    tracing::warn!(model = %route.name, error = %e,
                        "could not record what the provider's headers say of its limits");
                }
            }
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
        Err(RouterError::AllModelsExhausted { reasons: refusals })
    }
}
