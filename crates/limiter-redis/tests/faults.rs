//! Redis dies under load and comes back on the same port.
//!
//! For each client and each degradation policy of [`ResilientStore`]
//! around its store (server time, real waiting, short timeouts), with load
//! from several tasks running throughout:
//!
//! - healthy: calls go to Redis;
//! - outage (`RedisServer::stop`, SIGKILL): fail open admits at once with
//!   fail-open ids that adjust and refund accept as no-ops; fail closed
//!   returns a retryable `Error::Store` after the retries, within a bound;
//!   the fallback admits this process's share (half) of the limit locally,
//!   and no more;
//! - after `RedisServer::restart` (an empty server: no state, no scripts):
//!   calls reach Redis again through the same store objects, which
//!   `is_primary_down()` and a reservation seen by a fresh client's
//!   `status()` show.
//!
//! No call panics or hangs: every phase and every call of the load runs
//! under a timeout. A plain store (no wrapper) is checked too: a quick
//! retryable error during the outage, service again after it; and a server
//! that hangs (SIGSTOP) rather than dies is an outage like any other.
//! Each test prints how long after the restart calls reached Redis again.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use limiter_core::LeaseStore;
use limiter_core::{
    Cost, Decision, Degradation, Dimension, Error, Limiter, Limits, RecordOrigin, ResilientStore,
    RetryPolicy, Store,
};
use limiter_memory::MemoryStore;
use limiter_test_redis::RedisServer;

mod support;
use support::{Client, Connect};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// The store's response and connection timeouts.
const IO_TIMEOUT: Duration = Duration::from_millis(300);
/// How long one call of a plain store may take while Redis is down: the
/// connection manager waits for its reconnection (two retries, backoff of
/// at most 500 ms, each attempt within the connection timeout).
const PLAIN_DOWN_BOUND: Duration = Duration::from_secs(2);
/// The same through the resilient store, whose three attempts (two
/// retries, 50 + 100 ms apart) each take at most that.
const DOWN_CALL_BOUND: Duration = Duration::from_secs(4);
/// The circuit breaker's pause.
const PROBE: Duration = Duration::from_millis(200);
/// A bound on every phase: a phase that takes longer hangs.
const PHASE: Duration = Duration::from_secs(15);

fn retry() -> RetryPolicy {
    RetryPolicy::new()
        .max_retries(2)
        .base_delay(Duration::from_millis(50))
        .max_delay(Duration::from_millis(200))
}

async fn fast_store(client: Client, url: &str) -> Arc<dyn LeaseStore> {
    client
        .connect(
            &Connect::server(url)
                .response_timeout(IO_TIMEOUT)
                .connection_timeout(IO_TIMEOUT),
        )
        .await
        .expect("connect to the test server")
}

async fn start() -> RedisServer {
    tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap()
}

/// Stops or restarts the server without stalling the runtime's other tasks
/// (the load keeps running).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

// ---------------------------------------------------------------------------
// Load.

const HEALTHY: usize = 0;
const OUTAGE: usize = 1;
const RECOVERED: usize = 2;

/// What the load saw, by the phase in which each call started.
#[derive(Debug, Default)]
struct Tally {
    primary: [u32; 3],
    degraded: [u32; 3],
    store_errors: [u32; 3],
    other_errors: Vec<String>,
    hung: u32,
}

/// The load's counters, shared with the test while it runs.
#[derive(Debug, Default)]
struct Counters {
    primary: [AtomicU32; 3],
    degraded: [AtomicU32; 3],
    store_errors: [AtomicU32; 3],
    hung: AtomicU32,
    other_errors: Mutex<Vec<String>>,
}

impl Counters {
    /// Load calls started in the outage that ended degraded or in error.
    fn met_outage(&self) -> u32 {
        self.degraded[OUTAGE].load(Ordering::SeqCst)
            + self.store_errors[OUTAGE].load(Ordering::SeqCst)
    }

    fn tally(&self) -> Tally {
        let get = |a: &[AtomicU32; 3]| a.each_ref().map(|x| x.load(Ordering::SeqCst));
        Tally {
            primary: get(&self.primary),
            degraded: get(&self.degraded),
            store_errors: get(&self.store_errors),
            other_errors: self.other_errors.lock().unwrap().clone(),
            hung: self.hung.load(Ordering::SeqCst),
        }
    }
}

/// Tasks acquiring in a loop on their own key until stopped; each call is
/// bounded by a timeout.
struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    counters: Arc<Counters>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(store: &ResilientStore, tasks: usize) -> Load {
        let limiter = Limiter::new(
            store.clone(),
            "load",
            Limits::new().rpm(200).window(Duration::from_secs(2)),
        )
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicUsize::new(HEALTHY));
        let counters = Arc::new(Counters::default());
        let tasks = (0..tasks)
            .map(|_| {
                let (limiter, stop, phase, c) = (
                    limiter.clone(),
                    stop.clone(),
                    phase.clone(),
                    counters.clone(),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let p = phase.load(Ordering::SeqCst);
                        let call = limiter.acquire(Cost::tokens(10));
                        let counter = match timeout(Duration::from_secs(5), call).await {
                            Err(_) => Some(&c.hung),
                            Ok(Ok(permit)) => match ResilientStore::origin(permit.record_id()) {
                                RecordOrigin::Primary => Some(&c.primary[p]),
                                _ => Some(&c.degraded[p]),
                            },
                            Ok(Err(Error::Store {
                                retryable: true, ..
                            })) => Some(&c.store_errors[p]),
                            Ok(Err(e)) => {
                                c.other_errors.lock().unwrap().push(e.to_string());
                                None
                            }
                        };
                        if let Some(counter) = counter {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            })
            .collect();
        Load {
            stop,
            phase,
            counters,
            tasks,
        }
    }

    fn enter(&self, phase: usize) {
        self.phase.store(phase, Ordering::SeqCst);
    }

    /// Stops the load; every task must end (no hang, no panic).
    async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            timeout(Duration::from_secs(10), task)
                .await
                .expect("a load task did not stop")
                .expect("a load task panicked");
        }
        self.counters.tally()
    }
}

// ---------------------------------------------------------------------------
// One outage, for every policy.

/// The limits of the key the checks use: a long window, so nothing frees
/// during the test.
fn check_limits() -> Limits {
    Limits::new().rpm(10).window(Duration::from_secs(60))
}

/// Runs healthy → outage → recovered with load, calling `during` in the
/// outage; returns what the load saw.
async fn outage<F, Fut>(client: Client, degradation: Degradation, during: F) -> Tally
where
    F: FnOnce(ResilientStore, Limiter, limiter_core::Permit) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    let mut server = start().await;
    let url = server.url();
    let mut builder = ResilientStore::builder(fast_store(client, &url).await)
        .retry(retry())
        .degradation(degradation)
        .probe_interval(PROBE);
    if matches!(degradation, Degradation::Fallback { .. }) {
        builder = builder.fallback(MemoryStore::new());
    }
    let store = builder.build().unwrap();
    let check = Limiter::new(store.clone(), "check", check_limits()).unwrap();
    let load = Load::start(&store, 4);

    // Healthy: the load and a check permit go to Redis.
    let before = timeout(PHASE, async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let p = check.acquire(Cost::request()).await.unwrap();
        assert_eq!(ResilientStore::origin(p.record_id()), RecordOrigin::Primary);
        assert!(!store.is_primary_down());
        p
    })
    .await
    .expect("the healthy phase hung");

    // Outage.
    blocking(|| server.stop());
    load.enter(OUTAGE);
    timeout(PHASE, async {
        during(store.clone(), check.clone(), before).await;
        assert!(store.is_primary_down(), "the outage went unnoticed");
        // Keep Redis down until the load has met the outage too (its calls
        // may still be retrying).
        while load.counters.met_outage() < 8 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the outage phase hung");

    // Recovery: the same objects reach Redis again.
    blocking(|| server.restart());
    let restarted = Instant::now();
    let after_limits = Limits::new().rpm(1000);
    let after = Limiter::new(store.clone(), "after", after_limits).unwrap();
    let (in_redis, attempts) = timeout(PHASE, async {
        let mut in_redis = 0;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match after.acquire(Cost::request()).await {
                Ok(p) if ResilientStore::origin(p.record_id()) == RecordOrigin::Primary => {
                    in_redis += 1;
                    if !store.is_primary_down() {
                        return (in_redis, attempts);
                    }
                }
                Ok(_) | Err(Error::Store { .. }) => {}
                Err(e) => panic!("unexpected error after the restart: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("calls never reached Redis again after the restart");
    let recovery = restarted.elapsed();
    load.enter(RECOVERED);
    // A fresh client sees the reservations made after the restart, and so
    // does the resilient store (its status comes from Redis again).
    let fresh = fast_store(client, &url).await;
    let seen = fresh.status("after", &after_limits).await.unwrap();
    assert_eq!(
        seen.get(Dimension::Rpm).unwrap().used,
        in_redis,
        "reservations in Redis after the restart"
    );
    let through = after.status().await.unwrap();
    assert_eq!(through.get(Dimension::Rpm).unwrap().used, in_redis);
    // Let the load reach Redis too. Its tasks may still be sleeping until
    // slots the fallback gave them in the outage (up to a window later), so
    // wait for the first call started after recovery rather than a fixed
    // time; the bound turns a load that never comes back into a failure.
    let _ = timeout(PHASE, async {
        while load.counters.primary[RECOVERED].load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    let tally = load.finish().await;
    assert_eq!(tally.hung, 0, "load calls hung: {tally:?}");
    assert!(
        tally.other_errors.is_empty(),
        "load calls failed: {tally:?}"
    );
    assert!(
        tally.primary[HEALTHY] > 0,
        "no load before the outage: {tally:?}"
    );
    assert!(
        tally.primary[RECOVERED] > 0,
        "the load did not reach Redis after the restart: {tally:?}"
    );
    assert!(!store.is_primary_down());
    println!(
        "{client:?} {degradation:?}: back in Redis {recovery:.2?} after the restart ({attempts} attempts); \
         load {tally:?}; test took {:.2?}",
        started.elapsed()
    );
    tally
}

async fn fail_open_admits_at_once_during_an_outage_and_recovers(client: Client) {
    let tally = outage(
        client,
        Degradation::FailOpen,
        |store, check, before| async move {
            // The first call meets the outage: retries, then fails open.
            let t = Instant::now();
            let first = check.acquire(Cost::request()).await.unwrap();
            let first_took = t.elapsed();
            assert!(first_took < DOWN_CALL_BOUND, "took {first_took:?}");
            assert_eq!(
                ResilientStore::origin(first.record_id()),
                RecordOrigin::FailOpen
            );
            // Then calls are admitted at once, beyond the limit (10 per window)
            // since nothing counts them.
            let t = Instant::now();
            let mut permits = Vec::new();
            for _ in 0..30 {
                let p = check.acquire(Cost::request()).await.unwrap();
                assert_eq!(
                    ResilientStore::origin(p.record_id()),
                    RecordOrigin::FailOpen
                );
                assert_eq!(p.queue_position(), 0);
                permits.push(p);
            }
            let many_took = t.elapsed();
            assert!(many_took < DOWN_CALL_BOUND, "30 calls took {many_took:?}");
            // Fail-open ids: adjust and refund accept them and do nothing.
            first.adjust(Cost::tokens(5)).await.unwrap();
            first.refund().await.unwrap();
            permits.pop().unwrap().refund().await.unwrap();
            // A reservation Redis made before the outage: its settlement is
            // dropped, not an error.
            before.adjust(Cost::tokens(3)).await.unwrap();
            // Status and cooldowns answer too (an empty key).
            let status = store.status("check", &check_limits()).await.unwrap();
            assert_eq!(status.get(Dimension::Rpm).unwrap().used, 0);
            assert_eq!(check.cooldown_end().await.unwrap(), None);
            println!("fail open: first call {first_took:?}, then 30 calls in {many_took:?}");
        },
    )
    .await;
    assert!(
        tally.degraded[OUTAGE] > 0,
        "the load never failed open: {tally:?}"
    );
    assert_eq!(
        tally.store_errors.iter().sum::<u32>(),
        0,
        "fail open returned errors: {tally:?}"
    );
}

async fn fail_closed_returns_store_errors_during_an_outage_and_recovers(client: Client) {
    let tally = outage(
        client,
        Degradation::FailClosed,
        |store, check, before| async move {
            let expect_store_error = |what: &str, r: Result<(), Error>| match r {
                Err(Error::Store {
                    retryable: true, ..
                }) => {}
                other => panic!("{what}: expected a retryable store error, got {other:?}"),
            };
            // The first call: retries, then the error.
            let t = Instant::now();
            let r = check.acquire(Cost::request()).await.map(drop);
            let first_took = t.elapsed();
            expect_store_error("acquire", r);
            assert!(first_took < DOWN_CALL_BOUND, "took {first_took:?}");
            // Later calls fail as fast or faster (the breaker).
            let t = Instant::now();
            for _ in 0..10 {
                expect_store_error("acquire", check.acquire(Cost::request()).await.map(drop));
            }
            let many_took = t.elapsed();
            assert!(many_took < DOWN_CALL_BOUND, "10 calls took {many_took:?}");
            expect_store_error("adjust", before.adjust(Cost::tokens(3)).await);
            expect_store_error(
                "status",
                store.status("check", &check_limits()).await.map(drop),
            );
            // Bad input is still a typed error, not a store error.
            assert!(matches!(
                check.acquire(Cost::images(1).with_images(u64::MAX)).await,
                Err(Error::InvalidNumber { .. })
            ));
            println!("fail closed: first error after {first_took:?}, then 10 in {many_took:?}");
        },
    )
    .await;
    assert!(
        tally.store_errors[OUTAGE] > 0,
        "the load never met the outage: {tally:?}"
    );
    assert_eq!(
        tally.degraded.iter().sum::<u32>(),
        0,
        "fail closed admitted without Redis: {tally:?}"
    );
}

async fn fallback_limits_to_the_local_share_during_an_outage_and_recovers(client: Client) {
    let tally = outage(
        client,
        Degradation::Fallback { share: 0.5 },
        |store, check, before| async move {
            // Half of 10 per window, locally: five at once, then a wait.
            let t = Instant::now();
            let mut permits = Vec::new();
            for i in 0..5 {
                let p = check
                    .try_acquire(Cost::request())
                    .await
                    .unwrap()
                    .unwrap_or_else(|w| panic!("fallback permit {i} refused: {w}"));
                assert_eq!(
                    ResilientStore::origin(p.record_id()),
                    RecordOrigin::Fallback
                );
                permits.push(p);
            }
            let five_took = t.elapsed();
            assert!(five_took < DOWN_CALL_BOUND, "took {five_took:?}");
            let sixth = check.try_acquire(Cost::request()).await.unwrap();
            assert!(sixth.is_err(), "a sixth permit in the fallback: {sixth:?}");
            // The local state answers status.
            let status = store.status("check", &check_limits()).await.unwrap();
            let rpm = status.get(Dimension::Rpm).unwrap();
            assert_eq!((rpm.used, rpm.limit), (5, 5));
            // A fallback reservation settles in the fallback: a refund
            // frees its place.
            permits.pop().unwrap().refund().await.unwrap();
            permits[0].adjust(Cost::tokens(4)).await.unwrap();
            let again = check.try_acquire(Cost::request()).await.unwrap();
            assert!(again.is_ok(), "the refund freed nothing: {again:?}");
            // A Redis reservation from before the outage: settlement dropped.
            before.adjust(Cost::tokens(3)).await.unwrap();
            println!("fallback: five local permits in {five_took:?}, the sixth refused");
        },
    )
    .await;
    assert!(
        tally.degraded[OUTAGE] > 0,
        "the load never used the fallback: {tally:?}"
    );
    assert_eq!(
        tally.store_errors.iter().sum::<u32>(),
        0,
        "the fallback returned errors: {tally:?}"
    );
}

// ---------------------------------------------------------------------------
// A plain store.

async fn plain_store_errors_quickly_while_down_and_works_after_restart(client: Client) {
    let started = Instant::now();
    let mut server = start().await;
    let store = fast_store(client, &server.url()).await;
    let limits = Limits::new().rpm(100);
    let reserved = |d: Decision| match d {
        Decision::Reserved(r) => r,
        other => panic!("not reserved: {other:?}"),
    };
    store
        .reserve("plain", &limits, &Cost::request(), None)
        .await
        .map(reserved)
        .unwrap();

    blocking(|| server.stop());
    let mut took = Vec::new();
    for _ in 0..4 {
        let t = Instant::now();
        let r = timeout(
            PHASE,
            store.reserve("plain", &limits, &Cost::request(), None),
        )
        .await
        .expect("a call hung while Redis was down");
        took.push(t.elapsed());
        match r {
            Err(e @ Error::Store { .. }) => assert!(e.is_retryable(), "{e}"),
            other => panic!("expected a store error, got {other:?}"),
        }
        assert!(t.elapsed() < PLAIN_DOWN_BOUND, "took {:?}", t.elapsed());
    }
    let status = timeout(PHASE, store.status("plain", &limits))
        .await
        .expect("status hung");
    assert!(matches!(
        status,
        Err(Error::Store {
            retryable: true,
            ..
        })
    ));

    blocking(|| server.restart());
    let restarted = Instant::now();
    // The same store reconnects and loads its scripts into the empty server.
    let (r, failures) = timeout(PHASE, async {
        let mut failures = 0;
        loop {
            match store
                .reserve("plain", &limits, &Cost::request(), None)
                .await
            {
                Ok(d) => return (reserved(d), failures),
                Err(e) if e.is_retryable() => failures += 1,
                Err(e) => panic!("not retryable after the restart: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the store never worked again after the restart");
    let recovery = restarted.elapsed();
    assert_eq!(r.position, 0);
    // The restarted server started empty: only this reservation counts.
    let status = store.status("plain", &limits).await.unwrap();
    assert_eq!(status.get(Dimension::Rpm).unwrap().used, 1);
    store.refund("plain", &limits, r.record).await.unwrap();
    assert_eq!(
        store
            .status("plain", &limits)
            .await
            .unwrap()
            .get(Dimension::Rpm)
            .unwrap()
            .used,
        0
    );
    println!(
        "{client:?} plain store: errors while down after {took:?}; working again {recovery:.2?} after the \
         restart ({failures} failed calls first); test took {:.2?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// A server that hangs.

/// Sends `signal` (`STOP`, `CONT`) to the server's process.
fn signal(server: &RedisServer, signal: &str) {
    let pid = server.pid().expect("the server runs").to_string();
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// A server that stops answering (SIGSTOP: the process hangs, its socket
/// stays open) is an outage like a dead one: a plain store's errors are
/// retryable (fred's "Failed to route command." once was not), through a
/// fail-open store every call gets a permit, and once the server answers
/// again calls go to it.
async fn a_hung_server_degrades_like_a_dead_one(client: Client) {
    let server = start().await;
    let store = ResilientStore::builder(fast_store(client, &server.url()).await)
        .retry(retry())
        .degradation(Degradation::FailOpen)
        .probe_interval(PROBE)
        .build()
        .unwrap();
    let limiter = Limiter::new(store.clone(), "hung", Limits::new().rpm(100_000)).unwrap();
    limiter.acquire(Cost::request()).await.unwrap();
    // A plain store beside it: its errors must say a retry may help.
    let plain = fast_store(client, &server.url()).await;
    let limits = Limits::new().rpm(100_000);
    signal(&server, "STOP");
    let hung = Instant::now();
    let (mut failed_open, mut errors) = (0, Vec::new());
    while hung.elapsed() < Duration::from_millis(2_500) {
        match timeout(
            PHASE,
            plain.reserve("plain-hung", &limits, &Cost::request(), None),
        )
        .await
        {
            Ok(Err(e)) if !e.is_retryable() => errors.push(format!("plain: {e}")),
            Ok(_) => {}
            Err(_) => panic!("a plain call hung with the server"),
        }
        match timeout(PHASE, limiter.acquire(Cost::request())).await {
            Ok(Ok(p)) => {
                if ResilientStore::origin(p.record_id()) == RecordOrigin::FailOpen {
                    failed_open += 1;
                }
            }
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(_) => panic!("a call hung with the server"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(&server, "CONT");
    let resumed = Instant::now();
    assert!(errors.is_empty(), "{client:?}: calls failed: {errors:?}");
    assert!(failed_open > 0, "{client:?}: the hang went unnoticed");
    let back = timeout(PHASE, async {
        loop {
            let p = limiter.acquire(Cost::request()).await.unwrap();
            if ResilientStore::origin(p.record_id()) == RecordOrigin::Primary {
                return resumed.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("calls never reached Redis again after SIGCONT");
    println!(
        "{client:?} hung server: {failed_open} fail-open permits, no errors; back in Redis \
         {back:.2?} after SIGCONT"
    );
}

// ---------------------------------------------------------------------------
// Starting while Redis is down.

/// A process that starts while Redis is down: its lazy store is built
/// without a server, the resilient store around it applies `degradation`
/// to the calls made meanwhile, and once Redis starts the same objects
/// reach it, with no restart of the process.
async fn start_during_an_outage(client: Client, degradation: Degradation) {
    let mut server = start().await;
    blocking(|| server.stop());
    let connect = Connect::server(server.url())
        .response_timeout(IO_TIMEOUT)
        .connection_timeout(IO_TIMEOUT);
    let built = Instant::now();
    let lazy = client
        .connect_lazy(&connect)
        .expect("build without a server");
    assert!(
        built.elapsed() < Duration::from_millis(100),
        "building waited"
    );
    let mut builder = ResilientStore::builder(lazy)
        .retry(retry())
        .degradation(degradation)
        .probe_interval(PROBE);
    if matches!(degradation, Degradation::Fallback { .. }) {
        builder = builder.fallback(MemoryStore::new());
    }
    let store = builder.build().unwrap();
    let limiter = Limiter::new(store.clone(), "cold", Limits::new().rpm(1_000)).unwrap();
    for _ in 0..3 {
        let r = timeout(PHASE, limiter.acquire(Cost::request()))
            .await
            .expect("a call hung while Redis was down");
        match (degradation, r) {
            (Degradation::FailOpen, Ok(p)) => {
                assert_eq!(
                    ResilientStore::origin(p.record_id()),
                    RecordOrigin::FailOpen
                )
            }
            (Degradation::Fallback { .. }, Ok(p)) => {
                assert_eq!(
                    ResilientStore::origin(p.record_id()),
                    RecordOrigin::Fallback
                )
            }
            (Degradation::FailClosed, Err(e)) => assert!(e.is_retryable(), "{e}"),
            (d, other) => panic!("{client:?} {d:?} while Redis was down: {other:?}"),
        }
    }
    assert!(store.is_primary_down());
    blocking(|| server.restart());
    let started = Instant::now();
    let back = timeout(PHASE, async {
        loop {
            if let Ok(p) = limiter.acquire(Cost::request()).await {
                if ResilientStore::origin(p.record_id()) == RecordOrigin::Primary {
                    return started.elapsed();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("calls never reached Redis after it started");
    let fresh = fast_store(client, &server.url()).await;
    let seen = fresh
        .status("cold", &Limits::new().rpm(1_000))
        .await
        .unwrap();
    assert_eq!(seen.get(Dimension::Rpm).unwrap().used, 1);
    println!(
        "{client:?} {degradation:?} started without Redis: in Redis {back:.2?} after it started"
    );
}

support::per_client! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fail_open_admits_at_once_during_an_outage_and_recovers() {
        super::fail_open_admits_at_once_during_an_outage_and_recovers(CLIENT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fail_closed_returns_store_errors_during_an_outage_and_recovers() {
        super::fail_closed_returns_store_errors_during_an_outage_and_recovers(CLIENT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fallback_limits_to_the_local_share_during_an_outage_and_recovers() {
        super::fallback_limits_to_the_local_share_during_an_outage_and_recovers(CLIENT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn plain_store_errors_quickly_while_down_and_works_after_restart() {
        super::plain_store_errors_quickly_while_down_and_works_after_restart(CLIENT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_hung_server_degrades_like_a_dead_one() {
        super::a_hung_server_degrades_like_a_dead_one(CLIENT).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn starting_while_redis_is_down_fails_open_then_reaches_it() {
        super::start_during_an_outage(CLIENT, Degradation::FailOpen).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn starting_while_redis_is_down_fails_closed_then_reaches_it() {
        super::start_during_an_outage(CLIENT, Degradation::FailClosed).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn starting_while_redis_is_down_falls_back_then_reaches_it() {
        super::start_during_an_outage(CLIENT, Degradation::Fallback { share: 0.5 }).await;
    }
}
