//! Behaviour of `MemoryStore` beyond the conformance suite: real threads,
//! many keys, forgetting idle keys, and the blocking wrapper.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use limiter_core::{
    BlockingLimiter, Clock, Cost, Decision, Error, Limiter, Limits, ManualClock, Store,
};
use limiter_memory::MemoryStore;

/// Many OS threads hammer one key: exactly the limit is admitted now, and
/// every further request is denied, never over-admitted.
#[test]
fn threads_on_one_key_admit_exactly_the_limit() {
    let clock = ManualClock::new();
    let store = MemoryStore::with_clock(clock);
    let limits = Limits::new().rpm(1000).tpm(50_000);
    let admitted = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (store, admitted, tokens) = (store.clone(), admitted.clone(), tokens.clone());
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    for i in 0..400u64 {
                        let cost = Cost::tokens(10 + (t * 31 + i * 7) % 90);
                        match store
                            .reserve("hot", &limits, &cost, Some(Duration::ZERO))
                            .await
                        {
                            Ok(Decision::Reserved(_)) => {
                                admitted.fetch_add(1, Ordering::Relaxed);
                                tokens.fetch_add(cost.input_tokens, Ordering::Relaxed);
                            }
                            Ok(_) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                });
            });
        }
    });
    let (n, tok) = (
        admitted.load(Ordering::Relaxed),
        tokens.load(Ordering::Relaxed),
    );
    assert!(n <= 1000 && tok <= 50_000, "{n} requests, {tok} tokens");
    // Work conserving: the window is full in the binding dimension.
    assert!(
        n == 1000 || tok > 50_000 - 100,
        "{n} requests, {tok} tokens"
    );
}

/// Threads on many keys: each key keeps its own exact count.
#[test]
fn threads_on_many_keys_keep_separate_counts() {
    let store = MemoryStore::with_clock(ManualClock::new());
    let limits = Limits::new().rpm(50);
    std::thread::scope(|s| {
        for t in 0..4 {
            let store = store.clone();
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    for i in 0..2000 {
                        let key = format!("model-{}", (i + t) % 20);
                        store
                            .reserve(&key, &limits, &Cost::request(), Some(Duration::ZERO))
                            .await
                            .unwrap();
                    }
                });
            });
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for k in 0..20 {
        let s = rt
            .block_on(store.status(&format!("model-{k}"), &limits))
            .unwrap();
        assert_eq!(s.usage[0].used, 50, "model-{k}");
    }
}

/// Memory is bounded by what still counts: keys nothing counts in any more
/// are forgotten; keys in use are not.
#[tokio::test]
async fn idle_keys_are_swept() {
    let clock = ManualClock::new();
    let store = MemoryStore::with_clock(clock.clone());
    let limits = Limits::new().rpm(10).window(Duration::from_secs(1));
    for k in 0..100 {
        store
            .reserve(&format!("k{k}"), &limits, &Cost::request(), None)
            .await
            .unwrap();
    }
    assert_eq!(store.len(), 100);
    store.sweep();
    assert_eq!(store.len(), 100, "reservations still held");
    clock.advance(Duration::from_secs(16 * 60));
    store
        .reserve("live", &limits, &Cost::request(), None)
        .await
        .unwrap();
    store.sweep();
    assert_eq!(store.len(), 1);
    // A cooldown keeps a key alive until it ends.
    store
        .cool_down(
            "cool",
            limiter_core::CooldownEnd::At(clock.now().saturating_add(Duration::from_secs(60))),
        )
        .await
        .unwrap();
    store.sweep();
    assert_eq!(store.len(), 2);
}

/// The sweep runs by itself as calls go on.
#[tokio::test]
async fn sweeping_happens_without_being_asked() {
    let clock = ManualClock::new();
    let store = MemoryStore::with_clock(clock.clone());
    let limits = Limits::new().rpm(1_000_000).window(Duration::from_secs(1));
    for k in 0..1000 {
        store
            .reserve(&format!("k{k}"), &limits, &Cost::request(), None)
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(16 * 60));
    for _ in 0..10_000 {
        store
            .reserve("busy", &limits, &Cost::request(), None)
            .await
            .unwrap();
    }
    assert!(store.len() < 10, "{} keys held", store.len());
}

/// The blocking wrapper works from plain threads and refuses to block an
/// async runtime.
#[test]
fn blocking_limiter_from_sync_code() {
    let store = MemoryStore::with_clock(ManualClock::new());
    let limiter = Limiter::new(store, "sync", Limits::new().rpm(2).tpm(1000)).unwrap();
    let blocking = BlockingLimiter::new(limiter.clone()).unwrap();
    let p = blocking.acquire(Cost::split(100, 400)).unwrap();
    assert_eq!(p.queue_position(), 0);
    blocking.adjust(&p, Cost::split(100, 50)).unwrap();
    assert_eq!(blocking.status().unwrap().usage[1].used, 150);
    let q = blocking
        .acquire_within(Cost::tokens(10), Duration::ZERO)
        .unwrap();
    assert!(blocking.try_acquire(Cost::request()).unwrap().is_err());
    blocking.refund(q).unwrap();
    assert!(blocking.try_acquire(Cost::request()).unwrap().is_ok());

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(matches!(
            blocking.acquire(Cost::request()),
            Err(Error::Runtime { .. })
        ));
    });
}

/// The system clock drives real waiting: a second request on a 1-per-200 ms
/// window waits about that long (no manual clock).
#[tokio::test]
async fn real_waiting_on_the_system_clock() {
    let limiter = Limiter::new(
        MemoryStore::new(),
        "real",
        Limits::new()
            .rpm(1)
            .window(Duration::from_millis(200))
            .guard(Duration::from_millis(10)),
    )
    .unwrap();
    limiter.acquire(Cost::request()).await.unwrap();
    let p = limiter.acquire(Cost::request()).await.unwrap();
    assert!(p.waited() >= Duration::from_millis(200), "{:?}", p.waited());
    assert_eq!(p.queue_position(), 1);
}
