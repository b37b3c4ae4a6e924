//! Several OS processes share one limit through one Redis, on the server's
//! clock, with real waiting.
//!
//! The test re-runs its own binary as worker processes (`worker_entry`,
//! selected with `--exact` and switched on by an environment variable).
//! Each worker acquires permits on one key from several tasks at once and,
//! right after each grant, reads the server's `TIME` on a separate plain
//! connection: that stands for the instant the request reaches the
//! provider. The parent then checks, over every permit of every process:
//!
//! - (a) counted by slot over `window + guard`, no window holds more than
//!   any limit (the store's own guarantee, checked exactly over all pairs);
//! - (b) counted by arrival over a plain `window`, no window holds more
//!   than any limit: the guard band covers wake-up lateness and the round
//!   trip of `TIME` (what the provider would see);
//! - (c) in record-id order (the order requests reached the store), slots
//!   never decrease (FIFO across processes);
//! - no permit arrives before its slot, and the limits were really reached
//!   (the test is not vacuous).

#![cfg(feature = "redis-rs")]

mod support;

use std::time::{Duration, Instant};

use limiter_core::{Cost, Limiter, Limits};
use limiter_redis::RedisStore;
use limiter_test_redis::RedisServer;
use support::procs::{
    assert_fifo, max_in_span, permit_lines, server_time_async, start_together, Output, Workers,
};

/// Switches `worker_entry` on.
const WORKER_ENV: &str = "LIMITER_MULTIPROCESS_WORKER";
/// Worker processes.
const WORKERS: usize = 4;
/// Permits per worker.
const PERMITS: usize = 12;
/// Concurrent acquiring tasks per worker.
const TASKS: usize = 3;
/// Requests per window.
const RPM: u64 = 20;
/// Combined tokens per window.
const TPM: u64 = 900;
const WINDOW: Duration = Duration::from_secs(2);
const GUARD: Duration = Duration::from_millis(100);
/// The largest token cost of one request (see `cost_of`).
const MAX_TOKENS: u64 = 99;
/// How long the workers may take, all together.
const DEADLINE: Duration = Duration::from_secs(20);

fn limits() -> Limits {
    Limits::new().rpm(RPM).tpm(TPM).window(WINDOW).guard(GUARD)
}

/// Token costs, different in every worker: each worker's first five
/// requests are small (10..=19), so that the first window is bound by
/// requests (at most 20 × 99 / 4 + … < 900 tokens), the rest large
/// (50..=99), so that later windows are bound by tokens.
fn cost_of(worker: usize, i: usize) -> u64 {
    if i < 5 {
        10 + ((i * 7 + worker * 3) % 10) as u64
    } else {
        50 + ((i * 37 + worker * 53 + 11) % 50) as u64
    }
}

// ---------------------------------------------------------------------------
// The worker process.

/// Runs a worker when `LIMITER_MULTIPROCESS_WORKER` is set; otherwise does
/// nothing (it is then just another test of this binary).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_entry() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let url = env("REDIS_URL");
    let key = env("KEY");
    let worker: usize = env("WORKER").parse().unwrap();
    let n: usize = env("N").parse().unwrap();

    let store = RedisStore::connect(&url).await.expect("connect the store");
    let limiter = Limiter::new(store, key.clone(), limits()).expect("limiter");
    let client = redis::Client::open(url.as_str()).unwrap();
    let time_conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect for TIME");

    // Start together, however late this process came up.
    start_together(&mut time_conn.clone(), &key, WORKERS).await;

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let limiter = limiter.clone();
        let mut conn = time_conn.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..n).step_by(TASKS) {
                let tokens = cost_of(worker, i);
                let permit = limiter
                    .acquire(Cost::tokens(tokens))
                    .await
                    .expect("acquire");
                let arrival = server_time_async(&mut conn).await;
                println!(
                    "PERMIT {} {} {} {} {}",
                    permit.record_id(),
                    permit.slot().as_micros(),
                    arrival,
                    tokens,
                    permit.queue_position()
                );
            }
        }));
    }
    for t in tasks {
        t.await.expect("a worker task panicked");
    }
}

// ---------------------------------------------------------------------------
// The parent side.

/// One permit as a worker reported it.
#[derive(Clone, Copy, Debug)]
struct Granted {
    worker: usize,
    record: u64,
    slot: u64,
    arrival: u64,
    tokens: u64,
    position: u64,
}

fn parse(outputs: &[Output]) -> Vec<Granted> {
    let mut all = Vec::new();
    for out in outputs {
        for f in permit_lines(&out.stdout, 5) {
            all.push(Granted {
                worker: out.worker,
                record: f[0],
                slot: f[1],
                arrival: f[2],
                tokens: f[3],
                position: f[4],
            });
        }
    }
    all
}

/// Checks (a), (b), (c) and that the limits were reached; returns a
/// one-line summary.
fn check(all: &[Granted], expected: usize) -> String {
    assert_eq!(all.len(), expected, "every permit reported");
    let mut ids: Vec<u64> = all.iter().map(|g| g.record).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "record ids are unique");

    let by_slot = |f: fn(&Granted) -> u64| -> Vec<(u64, u64)> {
        all.iter().map(|g| (g.slot, f(g))).collect()
    };
    let by_arrival = |f: fn(&Granted) -> u64| -> Vec<(u64, u64)> {
        all.iter().map(|g| (g.arrival, f(g))).collect()
    };
    let requests = |_: &Granted| 1;
    let tokens = |g: &Granted| g.tokens;

    // (a) By slot, over window + guard.
    let (req_slot, at) = max_in_span(&by_slot(requests), WINDOW + GUARD);
    assert!(
        req_slot <= RPM,
        "{req_slot} requests with slots in the window+guard from {at}, limit {RPM}"
    );
    let (tok_slot, at) = max_in_span(&by_slot(tokens), WINDOW + GUARD);
    assert!(
        tok_slot <= TPM,
        "{tok_slot} tokens with slots in the window+guard from {at}, limit {TPM}"
    );

    // No caller goes before its slot.
    for g in all {
        assert!(
            g.arrival >= g.slot,
            "a permit arrived {} us before its slot: {g:?}",
            g.slot - g.arrival
        );
    }

    // (b) By arrival (the provider's view), over the window alone.
    let (req_arr, at) = max_in_span(&by_arrival(requests), WINDOW);
    assert!(
        req_arr <= RPM,
        "{req_arr} requests arrived in the window from {at}, limit {RPM}"
    );
    let (tok_arr, at) = max_in_span(&by_arrival(tokens), WINDOW);
    assert!(
        tok_arr <= TPM,
        "{tok_arr} tokens arrived in the window from {at}, limit {TPM}"
    );

    // (c) FIFO: in the order requests reached the store, slots never
    // decrease.
    assert_fifo(all, |g| g.record, |g| g.slot);

    // Not vacuous: both limits were reached, callers waited, and the run
    // spanned more than one window.
    assert_eq!(req_slot, RPM, "the request limit was never reached");
    assert!(
        tok_slot > TPM - MAX_TOKENS,
        "the token limit was never reached ({tok_slot} tokens)"
    );
    let waited = all.iter().filter(|g| g.position > 0).count();
    assert!(waited > 0, "no caller had to wait");
    let first = all.iter().map(|g| g.slot).min().unwrap();
    let last = all.iter().map(|g| g.slot).max().unwrap();
    assert!(
        last - first >= (WINDOW + GUARD).as_micros() as u64,
        "the run did not outlast one window"
    );
    let mut late: Vec<u64> = all.iter().map(|g| g.arrival - g.slot).collect();
    late.sort_unstable();
    let workers: std::collections::BTreeSet<usize> = all.iter().map(|g| g.worker).collect();
    format!(
        "{} permits from {} processes over {:.2} s; max per window: by slot {req_slot} req / \
         {tok_slot} tok, by arrival {req_arr} req / {tok_arr} tok; {waited} waited; arrival - slot: \
         median {} us, max {} us",
        all.len(),
        workers.len(),
        (last - first) as f64 / 1e6,
        late[late.len() / 2],
        late[late.len() - 1],
    )
}

#[test]
fn processes_share_one_limit_on_server_time() {
    let started = Instant::now();
    let server = RedisServer::start();
    let url = server.url();
    let envs: Vec<Vec<(&'static str, String)>> = (0..WORKERS)
        .map(|w| {
            vec![
                ("REDIS_URL", url.clone()),
                ("KEY", "multiprocess".to_string()),
                ("WORKER", w.to_string()),
                ("N", PERMITS.to_string()),
            ]
        })
        .collect();
    let outputs = Workers::spawn(WORKER_ENV, envs.into_iter().enumerate()).wait(DEADLINE);
    let all = parse(&outputs);
    let summary = check(&all, WORKERS * PERMITS);
    println!("{summary}; test took {:.2?}", started.elapsed());
}
