//! An open live session: its concurrent-session lease and its tokens.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use limiter_core::{Clock, Cost, Decision, LeaseId, LeaseStore, RecordId, Store, Timestamp};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::model::Model;
use crate::{Error, Result};

/// A lease or a ticket for one, given back when dropped (on a spawned task,
/// when a tokio runtime is at hand; otherwise it expires by its time to
/// live). A held lease may be renewed in the background from the moment it
/// is granted ([`renew_every`](Self::renew_every)) until the guard is
/// released or dropped.
pub(crate) struct LeaseGuard {
    store: Arc<dyn LeaseStore>,
    key: String,
    id: Option<LeaseId>,
    renewer: Option<JoinHandle<()>>,
    lost: Arc<AtomicBool>,
}

impl LeaseGuard {
    pub(crate) fn new(store: Arc<dyn LeaseStore>, key: String, id: Option<LeaseId>) -> Self {
        LeaseGuard {
            store,
            key,
            id,
            renewer: None,
            lost: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(crate) fn id(&self) -> Option<LeaseId> {
        self.id
    }

    pub(crate) fn set(&mut self, id: Option<LeaseId>) {
        self.id = id;
    }

    /// Keeps the lease: the guard no longer gives it back.
    pub(crate) fn disarm(&mut self) -> Option<LeaseId> {
        self.id.take()
    }

    /// Renews the held lease every third of `ttl` on a task of the runtime
    /// at hand, setting the lost flag when a renewal finds it gone.
    ///
    /// # Errors
    /// [`limiter_core::Error::Runtime`] when there is no Tokio runtime
    /// to run the renewals on.
    pub(crate) fn renew_every(&mut self, clock: Arc<dyn Clock>, ttl: Duration) -> Result<()> {
        let Some(id) = self.id else { return Ok(()) };
        let rt =
            tokio::runtime::Handle::try_current().map_err(|_| limiter_core::Error::Runtime {
                reason: "a live session renews its lease on a Tokio runtime, and none is running"
                    .into(),
            })?;
        let (store, key, lost) = (self.store.clone(), self.key.clone(), self.lost.clone());
        self.renewer = Some(rt.spawn(async move {
            loop {
                clock.sleep(ttl / 3).await;
                match store.renew_lease(&key, id, ttl).await {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        tracing::warn!(key, lease = %id,
                            "a live session's lease expired before its renewal; its slot may be taken");
                        lost.store(true, Ordering::Release);
                        return;
                    }
                    // Tried again at the next tick; the lease lives until its ttl.
                    Err(e) => tracing::warn!(key, lease = %id, error = %e,
                        "could not renew a live session's lease"),
                }
            }
        }));
        Ok(())
    }

    /// Set once a renewal found the lease gone.
    pub(crate) fn lost(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    /// Stops renewing and gives the lease back now; a failure is logged
    /// (the lease then expires by its time to live).
    pub(crate) async fn release(mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if let Some(id) = self.id.take() {
            release(&*self.store, &self.key, id).await;
        }
    }
}

async fn release(store: &dyn LeaseStore, key: &str, id: LeaseId) {
    if let Err(e) = store.release_lease(key, id).await {
        tracing::warn!(key, lease = %id, error = %e,
            "could not release a live-session lease; it expires by its time to live");
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        let Some(id) = self.id.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let (store, key) = (self.store.clone(), std::mem::take(&mut self.key));
                rt.spawn(async move { release(&*store, &key, id).await });
            }
            Err(_) => tracing::debug!(key = %self.key, lease = %id,
                "no runtime to release a live-session lease; it expires by its time to live"),
        }
    }
}

/// Tokens reserved by the latest [`LiveSession::wait_for`], and how much of
/// them recorded usage has taken.
#[derive(Debug)]
struct Credit {
    record: RecordId,
    reserved: Cost,
    used: Cost,
}

#[derive(Debug, Default)]
struct Tokens {
    /// Everything recorded in this session.
    used: Cost,
    /// Only the latest reservation takes usage: usage is counted at the
    /// reservation's slot, and attributing it to an older (earlier) slot
    /// would let it leave the window before the provider's count does.
    credit: Option<Credit>,
}

struct Shared {
    /// The limiter's store.
    store: Arc<dyn LeaseStore>,
    /// The limiter's maximum wait, for back-pressure.
    max_wait: Duration,
    model: Arc<Model>,
    lease: Mutex<Option<LeaseGuard>>,
    lease_id: Option<LeaseId>,
    lost: Arc<AtomicBool>,
    tokens: Mutex<Tokens>,
    started: Timestamp,
}

/// An open live session, from
/// [`LiveLimiter::acquire_session`](crate::LiveLimiter::acquire_session).
///
/// While it lives it holds one concurrent-session slot (when the model has
/// a cap), renewing its lease in the background every third of the lease
/// time to live. [`end`](Self::end) it, or drop it, to free the slot.
///
/// Tokens: [`record_token_usage`](Self::record_token_usage) counts what the
/// stream reports as it goes; [`wait_for_tokens`](Self::wait_for_tokens) is
/// the back-pressure call, which waits its FIFO turn until the token limits
/// have room for what the session is about to send and reserves it, so that
/// the tokens later recorded are taken from that reservation first.
pub struct LiveSession {
    shared: Arc<Shared>,
}

impl fmt::Debug for LiveSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveSession")
            .field("model", &self.shared.model.name)
            .field("lease", &self.shared.lease_id)
            .field("lost", &self.is_lease_lost())
            .field("started", &self.shared.started)
            .field("tokens", &self.shared.tokens.lock().used)
            .finish()
    }
}

impl LiveSession {
    pub(crate) fn start(
        store: Arc<dyn LeaseStore>,
        clock: Arc<dyn Clock>,
        max_wait: Duration,
        model: Arc<Model>,
        lease: Option<LeaseGuard>,
    ) -> Self {
        let lease_id = lease.as_ref().and_then(LeaseGuard::id);
        let lost = lease
            .as_ref()
            .map_or_else(|| Arc::new(AtomicBool::new(false)), LeaseGuard::lost);
        let started = clock.now();
        LiveSession {
            shared: Arc::new(Shared {
                lease: Mutex::new(lease),
                lease_id,
                lost,
                tokens: Mutex::new(Tokens::default()),
                started,
                store,
                max_wait,
                model,
            }),
        }
    }

    /// The model's canonical name.
    pub fn model(&self) -> &str {
        &self.shared.model.name
    }

    /// The concurrent-session lease held, if the model has a cap.
    pub fn lease(&self) -> Option<LeaseId> {
        self.shared.lease_id
    }

    /// When the session started (on the store's clock).
    pub fn started_at(&self) -> Timestamp {
        self.shared.started
    }

    /// Whether the lease was lost: a renewal found it expired (this process
    /// stalled for longer than the lease time to live, or the store lost
    /// it), so its slot may be someone else's now. The session's provider
    /// connection is still the caller's to close.
    pub fn is_lease_lost(&self) -> bool {
        self.shared.lost.load(Ordering::Acquire)
    }

    /// Every token recorded in this session so far (input plus output).
    pub fn tokens_used(&self) -> u64 {
        self.shared.tokens.lock().used.total_tokens()
    }

    /// Every token recorded in this session so far, as input and output.
    pub fn usage(&self) -> Cost {
        self.shared.tokens.lock().used
    }

    /// Counts `tokens` the stream has used (the provider's usage report),
    /// as combined (input) tokens. See [`record_usage`](Self::record_usage).
    ///
    /// # Errors
    /// As [`record_usage`](Self::record_usage).
    pub async fn record_token_usage(&self, tokens: u64) -> Result<()> {
        self.record_usage(Cost::tokens(tokens)).await
    }

    /// Counts usage the stream reported against the model's token limits,
    /// for every process sharing the store. It is taken first from what
    /// the latest [`wait_for`](Self::wait_for) reserved; the rest is counted at
    /// once (after any reservation already waiting its turn), even beyond
    /// the limit: the provider has already served it, and later callers
    /// wait for it to leave the window.
    ///
    /// # Errors
    /// [`limiter_core::Error::InvalidNumber`] for numbers out of range
    /// (nothing counted); store errors (as [`Error::Limiter`]).
    pub async fn record_usage(&self, usage: Cost) -> Result<()> {
        let m = &self.shared.model;
        m.limits.tokens.plan()?.usage_amounts(&usage)?;
        // Taken from the latest reservation, then counted in the store; a
        // store failure undoes both, so the call changes nothing then.
        let (taken, record) = {
            let mut t = self.shared.tokens.lock();
            t.used = add(t.used, usage);
            match t.credit.as_mut() {
                Some(c) => {
                    let taken = Cost {
                        input_tokens: (c.reserved.input_tokens - c.used.input_tokens)
                            .min(usage.input_tokens),
                        output_tokens: (c.reserved.output_tokens - c.used.output_tokens)
                            .min(usage.output_tokens),
                        images: 0,
                    };
                    c.used = add(c.used, taken);
                    (taken, Some(c.record))
                }
                None => (Cost::default(), None),
            }
        };
        let rest = Cost {
            input_tokens: usage.input_tokens - taken.input_tokens,
            output_tokens: usage.output_tokens - taken.output_tokens,
            images: 0,
        };
        let Some(l) = &m.tokens else { return Ok(()) };
        if rest.total_tokens() == 0 {
            return Ok(());
        }
        let counted = count_now(l, &rest).await;
        if counted.is_err() {
            let mut t = self.shared.tokens.lock();
            t.used = sub(t.used, usage);
            if let Some(c) = t.credit.as_mut().filter(|c| Some(c.record) == record) {
                c.used = sub(c.used, taken);
            }
        }
        counted
    }

    /// Back-pressure: waits (FIFO among every session and process sharing
    /// the store, up to the limiter's maximum wait) until the token limits
    /// have room for `tokens` more combined (input) tokens, and reserves
    /// them for this session; returns how long it waited. See
    /// [`wait_for`](Self::wait_for).
    ///
    /// # Errors
    /// As [`wait_for`](Self::wait_for).
    pub async fn wait_for_tokens(&self, tokens: u64) -> Result<Duration> {
        self.wait_for(Cost::tokens(tokens)).await
    }

    /// Back-pressure: waits its FIFO turn, up to the limiter's maximum
    /// wait, until the token limits have room for `estimate`, and reserves
    /// it. Usage recorded afterwards is taken from this reservation first
    /// (usage beyond it is counted as it comes); what is left unused is
    /// given back at the next `wait_for` (its turn is over) or when the
    /// session ends.
    ///
    /// # Errors
    /// [`Error::Unavailable`] (token rate exhausted) when the wait would be
    /// longer than the maximum (nothing reserved);
    /// [`limiter_core::Error::ExceedsLimit`] for more than the limits admit
    /// at all, [`limiter_core::Error::InvalidNumber`], store errors (as
    /// [`Error::Limiter`]).
    pub async fn wait_for(&self, estimate: Cost) -> Result<Duration> {
        let m = &self.shared.model;
        let Some(l) = &m.tokens else {
            return Ok(Duration::ZERO);
        };
        let max_wait = self.shared.max_wait;
        let permit = match l.acquire_within(estimate, max_wait).await {
            Ok(p) => p,
            Err(limiter_core::Error::WouldWaitTooLong { denied, max_wait }) => {
                let status = l.status().await?;
                let u = status
                    .usage
                    .iter()
                    .copied()
                    .max_by_key(|u| u.used.saturating_mul(1000) / u.limit.max(1));
                return Err(match u {
                    Some(u) => Error::Unavailable {
                        model: m.name.clone(),
                        reason: crate::Unavailable::TokenRate {
                            dimension: u.dimension,
                            used: u.used,
                            limit: u.limit,
                        },
                        max_wait,
                    },
                    None => limiter_core::Error::WouldWaitTooLong { denied, max_wait }.into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let older = self.shared.tokens.lock().credit.replace(Credit {
            record: permit.record_id(),
            reserved: estimate,
            used: Cost::default(),
        });
        // The turn of the older reservation is over: give back what it did
        // not use.
        if let Some(c) = older.filter(|c| c.used != c.reserved) {
            settle(l, &c).await;
        }
        Ok(permit.waited())
    }

    /// Pauses this session's model for every process (the provider pushed
    /// back); see
    /// [`LiveLimiter::trigger_cooldown`](crate::LiveLimiter::trigger_cooldown).
    ///
    /// # Errors
    /// Store errors (as [`Error::Limiter`]).
    pub async fn trigger_cooldown(&self, duration: Duration) -> Result<()> {
        let m = &self.shared.model;
        Ok(self
            .shared
            .store
            .cool_down(&m.key, limiter_core::CooldownEnd::After(duration))
            .await?)
    }

    /// Ends the session: gives back the tokens reserved and not used and
    /// frees the concurrent-session slot, now. Dropping the session does
    /// the same on a spawned task.
    ///
    /// # Errors
    /// Store errors (as [`Error::Limiter`]) from settling the reservations;
    /// the slot is freed in any case (or expires by its time to live).
    pub async fn end(self) -> Result<()> {
        finish(&self.shared).await
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        // Ended: nothing left. Otherwise the lease guard's own drop stops
        // the renewals and releases the lease, and the unused tokens of the
        // last reservation are given back on a task.
        let lease = self.shared.lease.lock().take();
        drop(lease);
        if self.shared.tokens.lock().credit.is_some() {
            spawn_finish(self.shared.clone());
        }
    }
}

fn spawn_finish(shared: Arc<Shared>) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async move {
                if let Err(e) = finish(&shared).await {
                    tracing::warn!(model = %shared.model.name, error = %e,
                        "could not settle a live session's token reservations");
                }
            });
        }
        // The lease expires by its time to live; reservations count as made.
        Err(_) => tracing::debug!(model = %shared.model.name,
            "no runtime to end a live session; its lease expires by its time to live"),
    }
}

/// Settles the unused reservations and releases the lease.
async fn finish(shared: &Shared) -> Result<()> {
    let credit = shared.tokens.lock().credit.take();
    let lease = shared.lease.lock().take();
    let mut result = Ok(());
    if let (Some(l), Some(c)) = (&shared.model.tokens, credit) {
        if c.used != c.reserved {
            result = l.adjust(c.record, c.used).await.map_err(Error::from);
        }
    }
    if let Some(lease) = lease {
        lease.release().await;
    }
    result
}

/// Gives back the unused part of a reservation whose turn is over; a
/// failure only means the unused tokens stay counted until they leave the
/// window.
async fn settle(l: &limiter_core::Limiter, c: &Credit) {
    if let Err(e) = l.adjust(c.record, c.used).await {
        tracing::debug!(key = l.key(), record = %c.record, error = %e,
            "could not give back unused live-session tokens");
    }
}

/// Counts `usage` at once (after any reservation already waiting): a
/// reservation of nothing, settled with the usage.
async fn count_now(l: &limiter_core::Limiter, usage: &Cost) -> Result<()> {
    let (store, limits) = (l.store(), l.limits());
    match store
        .reserve(l.key(), &limits, &Cost::default(), None)
        .await?
    {
        Decision::Reserved(r) => Ok(store.adjust(l.key(), &limits, r.record, usage).await?),
        other => Err(limiter_core::Error::store(
            format!("the store refused a reservation of nothing: {other:?}"),
            false,
        )
        .into()),
    }
}

fn sub(a: Cost, b: Cost) -> Cost {
    Cost {
        input_tokens: a.input_tokens.saturating_sub(b.input_tokens),
        output_tokens: a.output_tokens.saturating_sub(b.output_tokens),
        images: a.images.saturating_sub(b.images),
    }
}

fn add(a: Cost, b: Cost) -> Cost {
    Cost {
        input_tokens: a.input_tokens.saturating_add(b.input_tokens),
        output_tokens: a.output_tokens.saturating_add(b.output_tokens),
        images: a.images.saturating_add(b.images),
    }
}
