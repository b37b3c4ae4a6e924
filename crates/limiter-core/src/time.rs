//! Time: [`Timestamp`], the [`Clock`] trait, the system clock and the manual clock.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// An instant as whole microseconds since the Unix epoch (UTC).
///
/// Microseconds keep every instant exact in a Lua number (a double holds
/// integers up to 2^53, about 285 years of microseconds), so the Redis
/// scripts and the in-process state machine compute the same slots. The
/// stores handle instants up to [`Timestamp::HORIZON`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// The last instant the stores handle: 2^52 µs after the epoch
    /// (2112-09-17T23:53:47Z). A "now" past it is refused, cooldowns end at
    /// it at the latest, and a reservation whose earliest slot would be
    /// later is refused ([`Error::InvalidNumber`](crate::Error::InvalidNumber)
    /// with field `"slot"`). Below it, every instant, and the sum of any two,
    /// is an integer a double holds exactly, which is what keeps the Redis
    /// scripts' arithmetic exact.
    pub const HORIZON: Timestamp = Timestamp(1 << 52);

    /// An instant `micros` microseconds after the Unix epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Timestamp(micros)
    }

    /// An instant `secs` seconds after the Unix epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The current wall-clock time of this machine.
    pub fn now_system() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
    }

    /// `self + d`, saturating at the largest instant.
    pub fn saturating_add(self, d: Duration) -> Self {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(us))
    }

    /// `self - d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Self {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_sub(us))
    }

    /// The time from `earlier` to `self`, zero when `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Timestamp({}.{:06})",
            self.0 / 1_000_000,
            self.0 % 1_000_000
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// A boxed future returned by [`Clock::sleep`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of "now" and a way to wait.
///
/// The limiter never reads the machine's clock directly: a store tells the
/// time it decided at, and the limiter waits through the store's clock. Tests
/// inject a [`ManualClock`] so that waiting is exact and instant.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// A future that completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> Sleep;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
    fn sleep(&self, duration: Duration) -> Sleep {
        (**self).sleep(duration)
    }
}

/// The machine's wall clock; sleeping uses tokio's timer.
///
/// Sleeping needs a tokio runtime with the time driver enabled.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now_system()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that moves only when told to, for deterministic tests.
///
/// Clones share one time. [`ManualClock::advance`] moves the time forward
/// and wakes, in deadline order, every sleeper whose deadline has come.
///
/// ```
/// use std::time::Duration;
/// use limiter_core::{Clock, ManualClock, Timestamp};
///
/// let clock = ManualClock::at(Timestamp::from_secs(100));
/// let other = clock.clone();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(other.now(), Timestamp::from_micros(101_500_000));
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualInner>>,
}

#[derive(Default)]
struct ManualInner {
    now: u64,
    seq: u64,
    sleepers: BinaryHeap<Reverse<(u64, u64)>>,
    wakers: std::collections::HashMap<u64, Waker>,
}

impl ManualInner {
    /// Drops the earliest deadlines whose sleeps are gone, so that the
    /// heap's top is a live sleeper (amortised O(log n): each entry is
    /// popped once).
    fn prune(&mut self) {
        while let Some(Reverse((_, id))) = self.sleepers.peek().copied() {
            if self.wakers.contains_key(&id) {
                break;
            }
            self.sleepers.pop();
        }
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("ManualClock")
            .field("now", &Timestamp(inner.now))
            .field("sleepers", &inner.sleepers.len())
            .finish()
    }
}

impl ManualClock {
    /// A manual clock at 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self::at(Timestamp::from_secs(1_767_225_600))
    }

    /// A manual clock at `start`.
    pub fn at(start: Timestamp) -> Self {
        let clock = ManualClock::default();
        clock.inner.lock().now = start.0;
        clock
    }

    /// Moves the time forward by `by` and wakes the sleepers that are due.
    pub fn advance(&self, by: Duration) {
        let target = self.now().saturating_add(by);
        self.advance_to(target);
    }

    /// Moves the time to `to` (never backwards) and wakes the sleepers due.
    pub fn advance_to(&self, to: Timestamp) {
        let mut due = Vec::new();
        {
            let mut inner = self.inner.lock();
            if to.0 > inner.now {
                inner.now = to.0;
            }
            let now = inner.now;
            while let Some(Reverse((deadline, id))) = inner.sleepers.peek().copied() {
                if deadline > now {
                    break;
                }
                inner.sleepers.pop();
                if let Some(w) = inner.wakers.remove(&id) {
                    due.push(w);
                }
            }
        }
        for w in due {
            w.wake();
        }
    }

    /// The earliest deadline of a pending sleeper, if any: one whose sleep
    /// is still waiting (a sleep dropped before its deadline no longer
    /// counts).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let mut inner = self.inner.lock();
        inner.prune();
        inner.sleepers.peek().map(|Reverse((d, _))| Timestamp(*d))
    }

    /// How many sleepers are waiting.
    pub fn sleepers(&self) -> usize {
        self.inner.lock().wakers.len()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.inner.lock().now)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let deadline = self.now().saturating_add(duration).0;
        Box::pin(ManualSleep {
            clock: self.inner.clone(),
            deadline,
            id: None,
        })
    }
}

struct ManualSleep {
    clock: Arc<Mutex<ManualInner>>,
    deadline: u64,
    id: Option<u64>,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let clock = self.clock.clone();
        let mut inner = clock.lock();
        if inner.now >= self.deadline {
            if let Some(id) = self.id.take() {
                inner.wakers.remove(&id);
            }
            return Poll::Ready(());
        }
        match self.id {
            Some(id) => {
                inner.wakers.insert(id, cx.waker().clone());
            }
            None => {
                inner.seq += 1;
                let id = inner.seq;
                inner.sleepers.push(Reverse((self.deadline, id)));
                inner.wakers.insert(id, cx.waker().clone());
                drop(inner);
                self.id = Some(id);
            }
        }
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let mut inner = self.clock.lock();
            inner.wakers.remove(&id);
            inner.prune();
        }
    }
}
