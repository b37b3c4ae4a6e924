//! Concurrency leases: at most `cap` holders of a key at once.
//!
//! A lease is a slot under a key's concurrency cap (an open live session,
//! say). It has a time to live: its holder renews it while it is alive, and
//! a lease that is not renewed in time expires and gives its slot back, so
//! the slots of a process that crashed return on their own.
//!
//! Callers that find the cap full may take a **ticket**: a place in a FIFO
//! queue of waiters. A waiter asks again (with its ticket) until it is
//! granted; a ticket is granted only when fewer waiters are ahead of it than
//! there are free slots, so waiters are served in the order they queued.
//! A ticket has the same time to live as a lease: each ask renews it, and
//! the ticket of a waiter that stopped asking (it crashed, or gave up
//! without [releasing](LeaseState::release) it) expires and no longer holds
//! the queue up.
//!
//! [`LeaseState`] is the deterministic state machine every store runs (the
//! in-memory store under its key's lock, the Redis store as a Lua port of
//! it); every operation takes the current time as an argument.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::time::Timestamp;

/// The largest concurrency cap a store accepts.
pub const MAX_LEASE_CAP: u64 = 1 << 32;

/// The longest time to live of a lease or ticket: one day.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The shortest time to live of a lease or ticket: one millisecond.
pub const MIN_LEASE_TTL: Duration = Duration::from_millis(1);

/// The latest instant accepted as "now" (the same bound as reservations).
const MAX_NOW: u64 = Timestamp::HORIZON.as_micros();

/// The id of a lease or of a ticket in the queue for one; unique within its
/// key. Prints and parses as a plain number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseId(pub u64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for LeaseId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        s.trim()
            .parse::<u64>()
            .map(LeaseId)
            .map_err(|e| Error::number("lease", format!("{s:?} is not a lease id: {e}")))
    }
}

/// A request for a lease under a concurrency cap.
///
/// ```
/// use std::time::Duration;
/// use limiter_core::LeaseRequest;
///
/// // Ask once; do not queue.
/// let once = LeaseRequest::new(3, Duration::from_secs(30));
/// // Queue when full (first ask), then ask again with the ticket returned.
/// let queued = once.queue(None);
/// # let _ = queued;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRequest {
    /// How many leases the key may have at once (1 to [`MAX_LEASE_CAP`]).
    pub cap: u64,
    /// How long the lease (or the ticket) lives unless renewed
    /// ([`MIN_LEASE_TTL`] to [`MAX_LEASE_TTL`]).
    pub ttl: Duration,
    /// Queue when the cap is full: take a ticket, or keep the one given in
    /// `ticket`.
    pub queue: bool,
    /// The ticket of an earlier ask, if any.
    pub ticket: Option<LeaseId>,
}

impl LeaseRequest {
    /// A request that does not queue.
    pub const fn new(cap: u64, ttl: Duration) -> Self {
        LeaseRequest {
            cap,
            ttl,
            queue: false,
            ticket: None,
        }
    }

    /// The same request, queueing when full with `ticket` (`None` on the
    /// first ask).
    #[must_use]
    pub const fn queue(mut self, ticket: Option<LeaseId>) -> Self {
        self.queue = true;
        self.ticket = ticket;
        self
    }

    /// Checks the numbers.
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] for a cap or time to live out of range.
    pub fn validate(&self) -> Result<()> {
        if self.cap == 0 || self.cap > MAX_LEASE_CAP {
            return Err(Error::number(
                "cap",
                format!(
                    "a concurrency cap of {} is not between 1 and {MAX_LEASE_CAP}",
                    self.cap
                ),
            ));
        }
        check_ttl(self.ttl)
    }
}

/// Checks a lease's time to live.
///
/// # Errors
/// [`Error::InvalidNumber`] when it is not between [`MIN_LEASE_TTL`] and
/// [`MAX_LEASE_TTL`].
pub fn check_ttl(ttl: Duration) -> Result<()> {
    if ttl < MIN_LEASE_TTL || ttl > MAX_LEASE_TTL {
        return Err(Error::number(
            "ttl",
            format!(
                "a lease time to live of {ttl:?} is not between {MIN_LEASE_TTL:?} and {MAX_LEASE_TTL:?}"
            ),
        ));
    }
    Ok(())
}

/// A lease held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Its id, for renewing and releasing it.
    pub id: LeaseId,
    /// When it expires unless renewed.
    pub expires: Timestamp,
    /// The store's time when it decided.
    pub now: Timestamp,
}

/// The store's answer to a [`LeaseRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LeaseDecision {
    /// Granted (and the ticket, if any, used up).
    Granted(Lease),
    /// Not granted: the cap is full, or earlier waiters come first.
    Full {
        /// The caller's place in the queue when it asked to queue: a new
        /// ticket on the first ask, or when its old ticket had expired;
        /// `None` when it did not ask to queue (nothing was changed).
        ticket: Option<LeaseId>,
        /// How many waiters are ahead of the caller (all of them, for a
        /// caller that did not queue).
        ahead: u64,
        /// Leases held.
        held: u64,
        /// When the first held lease expires unless renewed.
        next_expiry: Option<Timestamp>,
        /// The store's time when it decided.
        now: Timestamp,
    },
}

/// A snapshot of one key's leases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseStatus {
    /// Leases held (not expired).
    pub held: u64,
    /// Waiters queued (tickets not expired).
    pub waiting: u64,
    /// When the first held lease expires unless renewed.
    pub next_expiry: Option<Timestamp>,
    /// The store's time of the snapshot.
    pub now: Timestamp,
}

/// Entries by id with their deadlines, and the same ordered by deadline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Timed {
    by_id: BTreeMap<u64, u64>,
    by_deadline: BTreeSet<(u64, u64)>,
}

impl Timed {
    fn insert(&mut self, id: u64, deadline: u64) {
        if let Some(old) = self.by_id.insert(id, deadline) {
            self.by_deadline.remove(&(old, id));
        }
        self.by_deadline.insert((deadline, id));
    }

    fn remove(&mut self, id: u64) -> bool {
        match self.by_id.remove(&id) {
            Some(d) => {
                self.by_deadline.remove(&(d, id));
                true
            }
            None => false,
        }
    }

    /// Drops every entry whose deadline is at or before `now`.
    fn expire(&mut self, now: u64) {
        while let Some(&(d, id)) = self.by_deadline.first() {
            if d > now {
                break;
            }
            self.by_deadline.pop_first();
            self.by_id.remove(&id);
        }
    }

    fn len(&self) -> u64 {
        self.by_id.len() as u64
    }

    fn first_deadline(&self) -> Option<u64> {
        self.by_deadline.first().map(|&(d, _)| d)
    }
}

/// The leases and waiters of one key; see the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// use limiter_core::{LeaseDecision, LeaseRequest, LeaseState, Timestamp};
///
/// let mut s = LeaseState::new();
/// let t0 = Timestamp::from_secs(1_000);
/// let req = LeaseRequest::new(1, Duration::from_secs(10));
/// let LeaseDecision::Granted(lease) = s.acquire(&req, t0).unwrap() else { panic!() };
/// // Full: a second holder must wait...
/// assert!(matches!(s.acquire(&req, t0).unwrap(), LeaseDecision::Full { .. }));
/// // ...until the first releases, or its lease expires unrenewed.
/// let later = t0.saturating_add(Duration::from_secs(10));
/// assert!(matches!(s.acquire(&req, later).unwrap(), LeaseDecision::Granted(_)));
/// # let _ = lease;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseState {
    /// The last id handed out (leases and tickets share the sequence; ids
    /// follow the clock in µs, so they are unique even across a state that
    /// was dropped when idle).
    last_id: u64,
    /// The latest "now" seen: time never goes back for a key.
    last_now: u64,
    leases: Timed,
    waiters: Timed,
}

impl LeaseState {
    /// No lease, no waiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// `now`, checked, never before one already seen; expired leases and
    /// tickets dropped.
    fn advance(&mut self, now: Timestamp) -> Result<u64> {
        let us = now.as_micros();
        if us > MAX_NOW {
            return Err(Error::now_beyond_horizon(now));
        }
        let us = us.max(self.last_now);
        self.last_now = us;
        self.leases.expire(us);
        self.waiters.expire(us);
        Ok(us)
    }

    /// A new id: the time in µs, or one more than the last when that is
    /// later, so ids are not reused even after an idle state was dropped.
    fn next_id(&mut self, now: u64) -> u64 {
        self.last_id = (self.last_id + 1).max(now);
        self.last_id
    }

    /// Grants a lease when the cap allows it and no earlier waiter comes
    /// first; otherwise queues the caller when it asked to (a ticket, new or
    /// renewed) or changes nothing.
    ///
    /// A ticket that is unknown (expired, or already used) is replaced by a
    /// new one at the back of the queue.
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] for a cap, time to live or time out of
    /// range (nothing changed).
    pub fn acquire(&mut self, request: &LeaseRequest, now: Timestamp) -> Result<LeaseDecision> {
        request.validate()?;
        let now = self.advance(now)?;
        let ttl = request.ttl.as_micros() as u64;
        let ticket = request
            .ticket
            .map(|t| t.0)
            .filter(|t| self.waiters.by_id.contains_key(t));
        let ahead = match ticket {
            Some(t) => self.waiters.by_id.range(..t).count() as u64,
            None => self.waiters.len(),
        };
        let held = self.leases.len();
        if ahead < request.cap.saturating_sub(held) {
            if let Some(t) = ticket {
                self.waiters.remove(t);
            }
            let id = self.next_id(now);
            let expires = now + ttl;
            self.leases.insert(id, expires);
            return Ok(LeaseDecision::Granted(Lease {
                id: LeaseId(id),
                expires: Timestamp::from_micros(expires),
                now: Timestamp::from_micros(now),
            }));
        }
        let ticket = if request.queue {
            let t = match ticket {
                Some(t) => t,
                None => self.next_id(now),
            };
            self.waiters.insert(t, now + ttl);
            Some(LeaseId(t))
        } else {
            None
        };
        Ok(LeaseDecision::Full {
            ticket,
            ahead,
            held,
            next_expiry: self.leases.first_deadline().map(Timestamp::from_micros),
            now: Timestamp::from_micros(now),
        })
    }

    /// Extends a held lease to `now + ttl`; `None` when it is no longer
    /// held (released, or expired before this renewal: its slot may have
    /// gone to someone else).
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] for a time to live or time out of range.
    pub fn renew(
        &mut self,
        lease: LeaseId,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        check_ttl(ttl)?;
        let now = self.advance(now)?;
        if !self.leases.by_id.contains_key(&lease.0) {
            return Ok(None);
        }
        let expires = now + ttl.as_micros() as u64;
        self.leases.insert(lease.0, expires);
        Ok(Some(Timestamp::from_micros(expires)))
    }

    /// Gives a lease back, or leaves the queue with a ticket; whether it was
    /// held.
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] for a time out of range.
    pub fn release(&mut self, id: LeaseId, now: Timestamp) -> Result<bool> {
        self.advance(now)?;
        Ok(self.leases.remove(id.0) || self.waiters.remove(id.0))
    }

    /// Leases held and waiters queued at `now`.
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] for a time out of range.
    pub fn status(&mut self, now: Timestamp) -> Result<LeaseStatus> {
        let now = self.advance(now)?;
        Ok(LeaseStatus {
            held: self.leases.len(),
            waiting: self.waiters.len(),
            next_expiry: self.leases.first_deadline().map(Timestamp::from_micros),
            now: Timestamp::from_micros(now),
        })
    }

    /// Whether nothing is held or queued at `now`: the state may be dropped
    /// (new ids still never repeat old ones, being taken from the clock).
    pub fn is_idle(&self, now: Timestamp) -> bool {
        let now = now.as_micros();
        // Ids handed out faster than one per µs run ahead of the clock; a
        // state made anew before the clock catches up could repeat them.
        self.last_id <= now
            && self
                .leases
                .by_deadline
                .last()
                .is_none_or(|&(d, _)| d <= now)
            && self
                .waiters
                .by_deadline
                .last()
                .is_none_or(|&(d, _)| d <= now)
    }
}
