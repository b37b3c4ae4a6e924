//! The live limiter and its builder.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use limiter_core::{
    lease::check_ttl, Clock, Cost, Dimension, LeaseDecision, LeaseRequest, LeaseStore, Limiter,
    Timestamp,
};
use parking_lot::Mutex;

use crate::availability::{Availability, LiveStatus, Unavailable};
use crate::limits::LiveLimits;
use crate::model::Model;
use crate::session::{LeaseGuard, LiveSession};
use crate::{Error, Result};

#[cfg(feature = "models")]
#[derive(Debug)]
struct Tables {
    registry: limiter_models::Registry,
    provider: limiter_models::Provider,
    tier: limiter_models::Tier,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn LeaseStore>,
    pub(crate) clock: Arc<dyn Clock>,
    custom: HashMap<String, LiveLimits>,
    #[cfg(feature = "models")]
    tables: Option<Tables>,
    models: Mutex<HashMap<String, Arc<Model>>>,
    pub(crate) lease_ttl: Duration,
    max_wait: Duration,
    poll: Duration,
    prefix: String,
}

/// Limits for live (streaming, WebSocket) sessions of several models,
/// shared by every process on the same store.
///
/// For each model: how many sessions may start per window and per day
/// (session limits), how many may be open at once (concurrent-session
/// leases), and how many tokens may flow per window while they are open
/// (token limits), plus the shared cooldown after a provider pushed back.
/// Cheap to clone: clones share everything.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> limiter_live::Result<()> {
/// use limiter_live::{LiveLimiter, LiveLimits};
/// use limiter_memory::MemoryStore;
///
/// let live = LiveLimiter::builder(MemoryStore::new())
///     .model("my-live-model", LiveLimits::new().concurrent_sessions(2).tokens_per_minute(10_000))
///     .build()?;
///
/// let availability = live.check_availability("my-live-model").await?;
/// assert!(availability.is_allowed(), "{availability}");
///
/// let session = live.acquire_session("my-live-model").await?;
/// // ... stream; as the provider reports usage:
/// session.record_token_usage(1_200).await?;
/// // Before sending more, wait until the token rate has room for it:
/// session.wait_for_tokens(500).await?;
/// session.end().await?; // or drop it
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LiveLimiter {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for LiveLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("LiveLimiter")
            .field("store", &i.store)
            .field("models", &i.custom.keys().collect::<Vec<_>>())
            .field("lease_ttl", &i.lease_ttl)
            .field("max_wait", &i.max_wait)
            .field("poll", &i.poll)
            .field("prefix", &i.prefix)
            .finish()
    }
}

/// Builds a [`LiveLimiter`]; see [`LiveLimiter::builder`].
#[derive(Debug)]
pub struct LiveLimiterBuilder {
    store: Arc<dyn LeaseStore>,
    custom: HashMap<String, LiveLimits>,
    #[cfg(feature = "models")]
    tables: Option<Tables>,
    lease_ttl: Duration,
    max_wait: Duration,
    poll: Duration,
    prefix: String,
}

impl LiveLimiterBuilder {
    /// Sets the limits of `model`. Limits set here win over the built-in
    /// tables of [`registry`](Self::registry), under whichever name of the
    /// model they are set (canonical, alias or snapshot): every name of the
    /// model then gets them, under its canonical key.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>, limits: LiveLimits) -> Self {
        self.custom.insert(model.into(), limits);
        self
    }

    /// Takes the limits of models not set by [`model`](Self::model) from
    /// `registry` at `tier` of `provider` (the built-in tables, with the
    /// registry's own overrides): the model's request limits count session
    /// starts, its token limits the tokens of open sessions, and its
    /// `concurrent_sessions` (when the table knows it) caps open sessions.
    #[cfg(feature = "models")]
    #[cfg_attr(docsrs, doc(cfg(feature = "models")))]
    #[must_use]
    pub fn registry(
        mut self,
        registry: limiter_models::Registry,
        provider: limiter_models::Provider,
        tier: limiter_models::Tier,
    ) -> Self {
        self.tables = Some(Tables {
            registry,
            provider,
            tier,
        });
        self
    }

    /// How long a concurrent-session slot outlives its holder: a session
    /// renews its lease every third of this while it lives, so the slots
    /// of a process that died come back within this time. 30 s by default.
    #[must_use]
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// How long [`acquire_session`](LiveLimiter::acquire_session) and
    /// [`wait_for_tokens`](LiveSession::wait_for_tokens) may wait before
    /// they give up. 60 s by default.
    #[must_use]
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// How often a caller waiting for a concurrent-session slot asks the
    /// store again (a slot freed in another process is seen within this
    /// time). 100 ms by default; at most half the lease time to live.
    #[must_use]
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The prefix of the store keys: a model's session starts, leases and
    /// cooldown live under `"{prefix}:{model}"`, its tokens under
    /// `"{prefix}:{model}:tokens"`. `live` by default. In both parts `%` and
    /// `:` are percent-encoded (`%25`, `%3A`), so that no two models (nor
    /// two prefixes) can meet in one key: a model named `x:tokens` is
    /// `live:x%3Atokens`, apart from model `x`'s tokens.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Checks the settings and builds the limiter.
    ///
    /// # Errors
    /// [`limiter_core::Error::InvalidConfig`] or
    /// [`limiter_core::Error::InvalidNumber`] (as [`Error::Limiter`]) for
    /// invalid limits of a model, a lease time to live out of range, or a
    /// poll interval of zero or over half the lease time to live.
    pub fn build(self) -> Result<LiveLimiter> {
        for (name, limits) in &self.custom {
            limits.validate().map_err(|e| match e {
                limiter_core::Error::InvalidConfig { field, reason } => {
                    limiter_core::Error::InvalidConfig {
                        field: format!("{name}: {field}"),
                        reason,
                    }
                }
                limiter_core::Error::InvalidNumber { field, reason } => {
                    limiter_core::Error::InvalidNumber {
                        field,
                        reason: format!("{name}: {reason}"),
                    }
                }
                e => e,
            })?;
        }
        check_ttl(self.lease_ttl)?;
        if self.poll.is_zero() || self.poll > self.lease_ttl / 2 {
            return Err(limiter_core::Error::InvalidConfig {
                field: "poll_interval".into(),
                reason: format!(
                    "{:?} is not between 0 and half the lease time to live ({:?}): a waiter's \
                     place in the queue expires when it does not ask again within the lease time",
                    self.poll,
                    self.lease_ttl / 2
                ),
            }
            .into());
        }
        let clock = self.store.clock();
        Ok(LiveLimiter {
            inner: Arc::new(Inner {
                store: self.store,
                clock,
                custom: self.custom,
                #[cfg(feature = "models")]
                tables: self.tables,
                models: Mutex::new(HashMap::new()),
                lease_ttl: self.lease_ttl,
                max_wait: self.max_wait,
                poll: self.poll,
                prefix: self.prefix,
            }),
        })
    }
}

impl LiveLimiter {
    /// The default lease time to live: 30 s.
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
    /// The default maximum wait: 60 s.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);
    /// The default poll interval: 100 ms.
    pub const DEFAULT_POLL: Duration = Duration::from_millis(100);

    /// A builder over `store` (any [`LeaseStore`]: memory, Redis, or a
    /// resilient wrapper).
    pub fn builder(store: impl LeaseStore) -> LiveLimiterBuilder {
        Self::builder_shared(Arc::new(store))
    }

    /// [`builder`](Self::builder) over a shared store.
    pub fn builder_shared(store: Arc<dyn LeaseStore>) -> LiveLimiterBuilder {
        LiveLimiterBuilder {
            store,
            custom: HashMap::new(),
            #[cfg(feature = "models")]
            tables: None,
            lease_ttl: Self::DEFAULT_LEASE_TTL,
            max_wait: Self::DEFAULT_MAX_WAIT,
            poll: Self::DEFAULT_POLL,
            prefix: "live".into(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn LeaseStore> {
        &self.inner.store
    }

    /// The limits in force for `model`, and its canonical name.
    ///
    /// # Errors
    /// [`limiter_core::Error::UnknownModel`] (as [`Error::Limiter`]).
    pub fn limits(&self, model: &str) -> Result<(String, LiveLimits)> {
        let m = self.resolve(model)?;
        Ok((m.name.clone(), m.limits))
    }

    pub(crate) fn resolve(&self, model: &str) -> Result<Arc<Model>> {
        if let Some(m) = self.inner.models.lock().get(model) {
            return Ok(m.clone());
        }
        let (name, limits) = self.lookup(model)?;
        let key = format!(
            "{}:{}",
            escape_key_part(&self.inner.prefix),
            escape_key_part(&name)
        );
        let limiter = |key: String, limits: limiter_core::Limits| -> Result<Option<Limiter>> {
            if !limits.any_enabled() {
                return Ok(None);
            }
            Ok(Some(
                Limiter::builder(self.inner.store.clone(), key)
                    .limits(limits)
                    .build()?,
            ))
        };
        let m = Arc::new(Model {
            sessions: limiter(key.clone(), limits.sessions)?,
            tokens: limiter(format!("{key}:tokens"), limits.tokens)?,
            name,
            key,
            limits,
        });
        Ok(self
            .inner
            .models
            .lock()
            .entry(model.to_string())
            .or_insert(m)
            .clone())
    }

    /// The canonical name and limits of `model`: with tables, the tables'
    /// canonical name (so aliases and snapshots share one key), and limits
    /// set on the builder under either name win; without, or for a model
    /// the tables do not know, the builder's entry.
    fn lookup(&self, model: &str) -> Result<(String, LiveLimits)> {
        let custom = &self.inner.custom;
        #[cfg(feature = "models")]
        if let Some(t) = &self.inner.tables {
            match t.registry.lookup(t.provider, t.tier, model) {
                Ok(entry) => {
                    // Set under the canonical name, else under any name of
                    // the model (the first in order, whatever name was asked).
                    let same = |n: &String| {
                        t.registry
                            .lookup(t.provider, t.tier, n)
                            .is_ok_and(|e| e.name == entry.name)
                    };
                    let limits = custom
                        .get(&entry.name)
                        .or_else(|| {
                            let mut names: Vec<&String> =
                                custom.keys().filter(|n| same(n)).collect();
                            names.sort();
                            names.first().and_then(|n| custom.get(*n))
                        })
                        .copied()
                        .unwrap_or_else(|| {
                            LiveLimits::from_model(
                                &entry.limits,
                                entry.concurrent_sessions.map(u64::from),
                            )
                        });
                    return Ok((entry.name, limits));
                }
                Err(limiter_core::Error::UnknownModel { name, known }) => {
                    return match custom.get(model) {
                        Some(l) => Ok((model.to_string(), *l)),
                        None => Err(self.unknown(name, known)),
                    };
                }
                Err(e) => return Err(e.into()),
            }
        }
        match custom.get(model) {
            Some(l) => Ok((model.to_string(), *l)),
            None => Err(self.unknown(model.to_string(), Vec::new())),
        }
    }

    fn unknown(&self, name: String, mut known: Vec<String>) -> Error {
        known.extend(self.inner.custom.keys().cloned());
        known.sort();
        known.dedup();
        limiter_core::Error::UnknownModel { name, known }.into()
    }

    /// Whether a session of `model` could start now, and if not, every
    /// reason why (cooling down for N s, session-start rate reached, daily
    /// sessions reached, concurrent sessions full, token rate exhausted).
    /// Reads the store; changes nothing.
    ///
    /// # Errors
    /// [`limiter_core::Error::UnknownModel`] and store errors (as
    /// [`Error::Limiter`]).
    pub async fn check_availability(&self, model: &str) -> Result<Availability> {
        let status = self.status(model).await?;
        Ok(Availability {
            reasons: status.reasons(),
            status,
        })
    }

    /// The state of `model` in the store: session starts, open sessions and
    /// waiters, tokens, cooldown. Changes nothing.
    ///
    /// # Errors
    /// As [`check_availability`](Self::check_availability).
    pub async fn status(&self, model: &str) -> Result<LiveStatus> {
        let m = self.resolve(model)?;
        let store = &self.inner.store;
        let sessions = match &m.sessions {
            Some(l) => Some(l.status().await?),
            None => None,
        };
        let leases = match m.limits.concurrent_sessions {
            Some(_) => Some(store.lease_status(&m.key).await?),
            None => None,
        };
        let tokens = match &m.tokens {
            Some(l) => Some(l.status().await?),
            None => None,
        };
        let cooldown_until = match &sessions {
            Some(s) => s.cooldown_until,
            None => store.cooldown_end(&m.key).await?,
        };
        let now = [
            sessions.as_ref().map(|s| s.now),
            leases.map(|l| l.now),
            tokens.as_ref().map(|s| s.now),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or_else(|| self.inner.clock.now());
        Ok(LiveStatus {
            model: m.name.clone(),
            sessions,
            leases,
            concurrent_cap: m.limits.concurrent_sessions,
            tokens,
            cooldown_until,
            now,
        })
    }

    /// Starts a session of `model`, waiting up to the builder's maximum
    /// wait: see [`acquire_session_within`](Self::acquire_session_within).
    ///
    /// # Errors
    /// As [`acquire_session_within`](Self::acquire_session_within).
    pub async fn acquire_session(&self, model: &str) -> Result<LiveSession> {
        self.acquire_session_within(model, self.inner.max_wait)
            .await
    }

    /// Starts a session of `model` only if it can start now.
    ///
    /// # Errors
    /// As [`acquire_session_within`](Self::acquire_session_within) with no
    /// wait.
    pub async fn try_acquire_session(&self, model: &str) -> Result<LiveSession> {
        self.acquire_session_within(model, Duration::ZERO).await
    }

    /// Starts a session of `model`: waits out a cooldown, then its turn for
    /// a concurrent-session slot (FIFO across processes), then its turn
    /// under the session-start limits (FIFO), for at most `max_wait` in all.
    /// The slot's lease is renewed from the moment it is granted, so a long
    /// wait for the start does not lose it.
    ///
    /// The returned [`LiveSession`] holds the slot, renewing its lease in
    /// the background; ending or dropping it frees the slot. If this future
    /// is dropped while waiting, its place in the queue, its slot and its
    /// session start are given back; a grant still on its way from the
    /// store when the future is dropped is not known to it, and that slot
    /// frees when its lease expires (the lease time to live).
    ///
    /// # Errors
    /// [`Error::Unavailable`] with the reason when the session could not
    /// start within `max_wait` (nothing is held then);
    /// [`limiter_core::Error::UnknownModel`] and store errors (as
    /// [`Error::Limiter`]).
    pub async fn acquire_session_within(
        &self,
        model: &str,
        max_wait: Duration,
    ) -> Result<LiveSession> {
        let m = self.resolve(model)?;
        let clock = &self.inner.clock;
        let deadline = clock.now().saturating_add(max_wait);
        let refuse = |reason| Error::Unavailable {
            model: m.name.clone(),
            reason,
            max_wait,
        };
        // 1. A cooldown: wait it out, or give up at once.
        if let Some(until) = self.inner.store.cooldown_end(&m.key).await? {
            let now = clock.now();
            if until > deadline {
                return Err(refuse(Unavailable::CoolingDown {
                    remaining: until.duration_since(now),
                }));
            }
            clock.sleep(until.duration_since(now)).await;
        }
        // 2. A concurrent-session slot.
        let lease = match m.limits.concurrent_sessions {
            Some(cap) => Some(self.lease(&m, cap, deadline, max_wait).await?),
            None => None,
        };
        // 3. The session start.
        if let Some(l) = &m.sessions {
            let remaining = deadline.duration_since(clock.now());
            match l.acquire_within(Cost::request(), remaining).await {
                Ok(_) => {}
                Err(limiter_core::Error::WouldWaitTooLong { denied, .. }) => {
                    if let Some(lease) = lease {
                        lease.release().await;
                    }
                    return Err(refuse(
                        self.start_refusal(&m, denied.wait(), deadline).await,
                    ));
                }
                Err(e) => {
                    if let Some(lease) = lease {
                        lease.release().await;
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(LiveSession::start(
            Arc::clone(&self.inner.store),
            Arc::clone(&self.inner.clock),
            self.max_wait(),
            m,
            lease,
        ))
    }

    /// Waits for a concurrent-session slot until `deadline`.
    async fn lease(
        &self,
        m: &Arc<Model>,
        cap: u64,
        deadline: Timestamp,
        max_wait: Duration,
    ) -> Result<LeaseGuard> {
        let (store, clock) = (&self.inner.store, &self.inner.clock);
        // Gives the ticket back if this future is dropped while waiting.
        let mut ticket = LeaseGuard::new(store.clone(), m.key.clone(), None);
        let queue = !max_wait.is_zero();
        loop {
            let mut request = LeaseRequest::new(cap, self.inner.lease_ttl);
            if queue {
                request = request.queue(ticket.id());
            }
            match store.acquire_lease(&m.key, &request).await? {
                LeaseDecision::Granted(l) => {
                    ticket.disarm();
                    // Renewed from now on: the session start may still wait.
                    let mut lease = LeaseGuard::new(store.clone(), m.key.clone(), Some(l.id));
                    lease.renew_every(clock.clone(), self.inner.lease_ttl)?;
                    return Ok(lease);
                }
                LeaseDecision::Full {
                    ticket: t,
                    ahead,
                    held,
                    ..
                } => {
                    ticket.set(t);
                    let now = clock.now();
                    if now >= deadline {
                        ticket.release().await;
                        return Err(Error::Unavailable {
                            model: m.name.clone(),
                            reason: Unavailable::ConcurrentFull {
                                open: held,
                                cap,
                                waiting: ahead,
                            },
                            max_wait,
                        });
                    }
                    clock
                        .sleep(self.inner.poll.min(deadline.duration_since(now)))
                        .await;
                }
                other => {
                    return Err(limiter_core::Error::store(
                        format!("unexpected lease decision {other:?}"),
                        false,
                    )
                    .into())
                }
            }
        }
    }

    /// Why a session start would wait past the deadline.
    async fn start_refusal(&self, m: &Model, wait: Duration, deadline: Timestamp) -> Unavailable {
        let status = match &m.sessions {
            Some(l) => l.status().await.ok(),
            None => None,
        };
        if let Some(s) = &status {
            if let Some(until) = s.cooldown_until.filter(|u| *u > deadline) {
                return Unavailable::CoolingDown {
                    remaining: until.duration_since(s.now),
                };
            }
            // Waiting reservations count as taken.
            let taken = |u: &limiter_core::Usage| u.used.saturating_add(u.queued);
            if let Some(u) = s.get(Dimension::Rpd).filter(|u| taken(u) >= u.limit) {
                return Unavailable::DailySessions {
                    used: taken(&u),
                    limit: u.limit,
                };
            }
        }
        // The per-window or per-second limit: the one used up, else the
        // first on (smoothing spaces starts before the window is full).
        let on: Vec<Dimension> = [Dimension::Rpm, Dimension::Rps]
            .into_iter()
            .filter(|d| m.limits.sessions.get(*d) > 0)
            .collect();
        let usage = |d: Dimension| status.as_ref().and_then(|s| s.get(d));
        let dimension = on
            .iter()
            .copied()
            .find(|d| usage(*d).is_some_and(|u| u.used.saturating_add(u.queued) >= u.limit))
            .or_else(|| on.first().copied())
            .unwrap_or(Dimension::Rpd);
        let limit = m.limits.sessions.effective(dimension);
        Unavailable::SessionRate {
            dimension,
            used: usage(dimension).map_or(limit, |u| u.used.saturating_add(u.queued)),
            limit,
            wait: Some(wait),
        }
    }

    /// Pauses `model` for `duration` from the store's now, for every process
    /// sharing the store (the provider pushed back): sessions wait it out
    /// or are refused, and availability says so.
    ///
    /// # Errors
    /// [`limiter_core::Error::UnknownModel`] and store errors (as
    /// [`Error::Limiter`]).
    pub async fn trigger_cooldown(&self, model: &str, duration: Duration) -> Result<()> {
        let m = self.resolve(model)?;
        Ok(self
            .inner
            .store
            .cool_down(&m.key, limiter_core::CooldownEnd::After(duration))
            .await?)
    }

    /// The end of the cooldown of `model` in force, if any, on the store's
    /// clock.
    ///
    /// # Errors
    /// As [`trigger_cooldown`](Self::trigger_cooldown).
    pub async fn cooldown_end(&self, model: &str) -> Result<Option<Timestamp>> {
        let m = self.resolve(model)?;
        Ok(self.inner.store.cooldown_end(&m.key).await?)
    }

    /// The old name of [`cooldown_end`](Self::cooldown_end).
    ///
    /// # Errors
    /// As [`trigger_cooldown`](Self::trigger_cooldown).
    #[deprecated(since = "0.2.0", note = "renamed `cooldown_end`")]
    pub async fn cooldown(&self, model: &str) -> Result<Option<Timestamp>> {
        self.cooldown_end(model).await
    }

    pub(crate) fn max_wait(&self) -> Duration {
        self.inner.max_wait
    }
}

/// `part` with `%` and `:` percent-encoded, so that the `:`s of a key are
/// only the separators the limiter puts there.
fn escape_key_part(part: &str) -> std::borrow::Cow<'_, str> {
    if !part.contains(['%', ':']) {
        return std::borrow::Cow::Borrowed(part);
    }
    let mut out = String::with_capacity(part.len() + 4);
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escape_key_part;

    #[test]
    fn key_parts_escape_only_the_separator_and_the_escape() {
        assert_eq!(escape_key_part("gemini-2.5-flash"), "gemini-2.5-flash");
        assert_eq!(escape_key_part("x:tokens"), "x%3Atokens");
        assert_eq!(escape_key_part("50%:a"), "50%25%3Aa");
        assert_eq!(escape_key_part("{tag}"), "{tag}");
    }
}
