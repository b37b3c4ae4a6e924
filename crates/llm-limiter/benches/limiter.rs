//! Benchmarks of admission, against `governor` in the same run (see the
//! performance targets in the design).
//!
//! - `core/state_reserve_no_wait`: the state machine alone
//!   ([`KeyState::reserve`]), the time advancing a fixed step per call;
//!   `core/state_reserve_calendar_day` the same with a daily limit counted
//!   in calendar days of America/Los_Angeles (Gemini's).
//! - `<store>/acquire_no_wait`: [`Limiter::acquire`] that never waits, on
//!   the store's system clock, from a current-thread tokio runtime.
//! - `<store>/acquire_window_0` and `<store>/acquire_window_30000`: the same
//!   acquire on a manual clock, on a key whose window is empty or already
//!   holds 30,000 reservations spread over most of the window (so that most
//!   of its buckets hold something): the cost must not grow with the window.
//! - `governor/check_rpm`: `governor`'s check of one RPM quota that never
//!   denies, the reference the design compares with.
//!
//! Every sample starts from a fresh store and a new key, so that what the
//! measured calls reserve (kept for adjusting and refunding) stays bounded
//! by the sample's size and does not pile up over the run. The store
//! benchmarks are generic: each backend in [`BACKENDS`] runs the same code.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion};
use governor::{Quota, RateLimiter};
use llm_limiter::{
    Cost, DayWindow, Decision, Dimension, KeyState, Limiter, Limits, ManualClock, MemoryStore,
    Store, Timestamp, MAX_AMOUNT,
};
use tokio::runtime::Runtime;

/// A store under test.
struct Backend {
    /// The benchmark group's name.
    name: &'static str,
    /// A fresh store on its own (system or server) clock.
    system: fn() -> Arc<dyn Store>,
    /// A fresh store on `clock`. A backend whose time cannot be set (a
    /// server's clock) ignores it; its pre-filled reservations then spread
    /// over the real time the pre-fill takes.
    manual: fn(ManualClock) -> Arc<dyn Store>,
}

/// Every store the benchmarks run on: a new backend is one more line.
const BACKENDS: &[Backend] = &[Backend {
    name: "memory",
    system: || Arc::new(MemoryStore::new()),
    manual: |clock| Arc::new(MemoryStore::with_clock(clock)),
}];

/// The cost of every benchmarked request.
const COST: Cost = Cost::tokens(100);

/// Limits so high that no request in a run ever waits.
const NO_WAIT_LIMITS: Limits = Limits::new()
    .rpm(MAX_AMOUNT / 2)
    .tpm(MAX_AMOUNT / 2)
    .window(Duration::from_secs(60));

/// [`NO_WAIT_LIMITS`] with a daily limit in calendar days of Los Angeles.
const CALENDAR_LIMITS: Limits = NO_WAIT_LIMITS
    .rpd(MAX_AMOUNT / 2)
    .day(DayWindow::PACIFIC_MIDNIGHT);

/// Reservations already in the window of the full-window benchmark.
const PREFILL: u64 = 30_000;

/// Clock step between pre-filled reservations: 30,000 of them span 57 s of
/// the 60 s window, over about 120 of its 128 buckets.
const PREFILL_STEP: Duration = Duration::from_micros(1_900);

/// Time step between calls of the state machine benchmark.
const STATE_STEP: Duration = Duration::from_micros(1);

/// A key no sample has used, so that every sample starts from an empty
/// state on any backend (a shared server keeps old keys).
fn fresh_key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("bench-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn limiter(store: Arc<dyn Store>) -> Limiter {
    Limiter::builder_shared(store, fresh_key())
        .limits(NO_WAIT_LIMITS)
        .build()
        .expect("valid limits")
}

/// Times `iters` acquires, checking afterwards that none had to wait.
async fn time_acquires(limiter: &Limiter, iters: u64) -> Duration {
    let mut queued = 0;
    let start = Instant::now();
    for _ in 0..iters {
        let permit = limiter.acquire(black_box(COST)).await.expect("acquire");
        queued |= permit.queue_position();
        black_box(&permit);
    }
    let elapsed = start.elapsed();
    assert_eq!(queued, 0, "an acquire had to wait");
    elapsed
}

/// A limiter on a fresh store on a manual clock whose window holds
/// `records` reservations, `PREFILL_STEP` apart, all still counting.
async fn prefilled(backend: &Backend, records: u64) -> Limiter {
    let clock = ManualClock::new();
    let limiter = limiter((backend.manual)(clock.clone()));
    for _ in 0..records {
        limiter.acquire(COST).await.expect("pre-fill");
        clock.advance(PREFILL_STEP);
    }
    let status = limiter.status().await.expect("status");
    let rpm = status.get(Dimension::Rpm).expect("rpm is on");
    assert_eq!(rpm.used, records, "every pre-filled reservation counts");
    limiter
}

/// The store benchmarks, for one backend.
fn bench_store(c: &mut Criterion, rt: &Runtime, backend: &Backend) {
    let mut group = c.benchmark_group(backend.name);
    group.bench_function("acquire_no_wait", |b| {
        b.to_async(rt).iter_custom(|iters| async move {
            let limiter = limiter((backend.system)());
            time_acquires(&limiter, iters).await
        });
    });
    for records in [0, PREFILL] {
        group.bench_function(format!("acquire_window_{records}"), |b| {
            b.to_async(rt).iter_custom(|iters| async move {
                let limiter = prefilled(backend, records).await;
                time_acquires(&limiter, iters).await
            });
        });
    }
    group.finish();
}

/// The state machine alone, no store, no clock, no async.
fn bench_state(c: &mut Criterion) {
    let mut group = c.benchmark_group("core");
    for (name, limits) in [
        ("state_reserve_no_wait", NO_WAIT_LIMITS),
        ("state_reserve_calendar_day", CALENDAR_LIMITS),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut state = KeyState::new();
                let mut now = Timestamp::from_secs(1_767_225_600);
                let mut queued = 0;
                let start = Instant::now();
                for _ in 0..iters {
                    now = now.saturating_add(STATE_STEP);
                    let decision = state
                        .reserve(&limits, black_box(&COST), now, None)
                        .expect("reserve");
                    match decision {
                        Decision::Reserved(r) => queued |= r.position,
                        _ => queued |= 1,
                    }
                    black_box(&decision);
                }
                let elapsed = start.elapsed();
                assert_eq!(queued, 0, "a reservation had to wait");
                elapsed
            });
        });
    }
    group.finish();
}

/// `governor`'s direct rate limiter, one RPM quota that never denies.
fn bench_governor(c: &mut Criterion) {
    let mut group = c.benchmark_group("governor");
    group.bench_function("check_rpm", |b| {
        b.iter_custom(|iters| {
            let limiter = RateLimiter::direct(Quota::per_minute(NonZeroU32::MAX));
            let mut denied = 0u64;
            let start = Instant::now();
            for _ in 0..iters {
                let decision = limiter.check();
                denied += u64::from(decision.is_err());
                black_box(&decision);
            }
            let elapsed = start.elapsed();
            assert_eq!(denied, 0, "governor denied a check");
            elapsed
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    bench_state(c);
    for backend in BACKENDS {
        bench_store(c, &rt, backend);
    }
    bench_governor(c);
}

/// Criterion's entry point; the function its macro makes has no docs.
mod entry {
    #![allow(missing_docs)]

    use super::{benches, Criterion, Duration};

    criterion::criterion_group! {
        name = limiter_benches;
        config = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        targets = benches
    }
}

criterion_main!(entry::limiter_benches);
