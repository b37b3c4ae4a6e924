//! Processes whose clocks disagree share one limit through one Redis.
//!
//! Each worker process (this test binary run again, see `worker_entry`)
//! lives on a host whose clock is off by its own offset. In production the
//! `RedisStore` reads the server's `TIME` inside its scripts; its only
//! local clock is the `SystemClock` it hands the `Limiter` for sleeping.
//! A host whose clock is off is modelled by `skewed_host`: the server-time
//! store as it is, whose `clock()` is that host's skewed system clock, so
//! every local reading the limiter makes is off, as it would be on that
//! host. The worker also keeps its own bookkeeping on that clock.
//!
//! - `skewed_processes_share_one_limit_on_server_time`: four processes at
//!   -3 s, 0, +2 s and +5 s contend for one limit: limits hold by slot and
//!   by arrival (the server's `TIME` right after each grant), slots follow
//!   record ids (FIFO), and no worker's wait is moved by its skew.
//! - `server_time_holds_when_a_late_host_fills_the_window`: a host 2 s
//!   behind fills the window, then a host 1 s ahead asks: it waits for the
//!   window, as every host would.
//! - `trusting_client_clocks_lets_skewed_hosts_exceed_the_limit`: the
//!   negative control, the same sequence on a store that takes "now" from
//!   each client's clock (`RedisStoreBuilder::clock`): the store's own
//!   books balance, yet twice the limit reaches the provider in one window.
//! - two regressions of places where the limiter once read the local clock
//!   in server-time mode (cooldowns, `Permit::waited`).

#![cfg(feature = "redis-rs")]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use limiter_core::{Clock, Cost, Limiter, Limits, Sleep, SystemClock, Timestamp};
use limiter_redis::RedisStore;
use limiter_test_redis::RedisServer;
use support::procs::{
    assert_fifo, max_in_span, permit_lines, server_time_async, start_together, Workers,
};
use support::Wrapped;

/// Switches `worker_entry` on.
const WORKER_ENV: &str = "LIMITER_SKEW_WORKER";
const WINDOW: Duration = Duration::from_secs(2);
const GUARD: Duration = Duration::from_millis(100);
/// Limits of the contention test: both bind (see `cost_of`).
const RPM: u64 = 20;
const TPM: u64 = 900;
const MAX_TOKENS: u64 = 99;
/// How long a group of workers may take.
const DEADLINE: Duration = Duration::from_secs(20);

/// The limits of a profile: `mixed` (requests and tokens) or `rpm`
/// (requests only).
fn limits(profile: &str) -> Limits {
    let l = Limits::new().rpm(RPM).window(WINDOW).guard(GUARD);
    match profile {
        "mixed" => l.tpm(TPM),
        "rpm" => l,
        other => panic!("unknown profile {other}"),
    }
}

/// Token costs: small for a worker's first five requests (the first window
/// is bound by requests), large after (later ones are bound by tokens).
fn cost_of(profile: &str, worker: usize, i: usize) -> u64 {
    match profile {
        "rpm" => 0,
        _ if i < 5 => 10 + ((i * 7 + worker * 3) % 10) as u64,
        _ => 50 + ((i * 37 + worker * 53 + 11) % 50) as u64,
    }
}

// ---------------------------------------------------------------------------
// Skewed clocks and hosts.

/// The system clock of a host that is `offset_us` off (ahead when
/// positive). Sleeping is real: durations do not depend on the offset.
#[derive(Debug, Clone, Copy)]
struct SkewedClock {
    offset_us: i64,
}

impl Clock for SkewedClock {
    fn now(&self) -> Timestamp {
        let real = SystemClock.now().as_micros();
        Timestamp::from_micros(real.saturating_add_signed(self.offset_us))
    }
    fn sleep(&self, duration: Duration) -> Sleep {
        SystemClock.sleep(duration)
    }
}

/// A server-time store used from a host whose clock is skewed: every call
/// goes to the store as it is (`cool_down` included); only the local clock
/// (what `clock()` gives the limiter, `SystemClock` on a real host) is off.
fn skewed_host(store: RedisStore, clock: SkewedClock) -> Wrapped<()> {
    Wrapped {
        store: Arc::new(store),
        guard: (),
        clock: Some(Arc::new(clock)),
    }
}

/// A limiter on a host `offset_ms` off: `server` mode is the product
/// (server time, skewed local clock); `client` mode is the naive design
/// that passes the skewed client clock to the scripts.
async fn skewed_limiter(
    url: &str,
    mode: &str,
    offset_ms: i64,
    key: &str,
    limits: Limits,
) -> Limiter {
    let clock = SkewedClock {
        offset_us: offset_ms * 1000,
    };
    match mode {
        "server" => {
            let store = RedisStore::connect(url).await.expect("connect the store");
            Limiter::new(skewed_host(store, clock), key, limits).expect("limiter")
        }
        "client" => {
            let store = RedisStore::builder()
                .url(url)
                .clock(clock)
                .connect()
                .await
                .expect("connect the store");
            Limiter::new(store, key, limits).expect("limiter")
        }
        other => panic!("unknown mode {other}"),
    }
}

// ---------------------------------------------------------------------------
// The worker process.

/// Runs a worker when `LIMITER_SKEW_WORKER` is set; otherwise does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_entry() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let url = env("REDIS_URL");
    let key = env("KEY");
    let mode = env("MODE");
    let profile = env("PROFILE");
    let worker: usize = env("WORKER").parse().unwrap();
    let n: usize = env("N").parse().unwrap();
    let tasks: usize = env("TASKS").parse().unwrap();
    let skew_ms: i64 = env("SKEW_MS").parse().unwrap();
    // How many workers start together (0: start at once).
    let parties: usize = env("PARTIES").parse().unwrap();

    let limiter = skewed_limiter(&url, &mode, skew_ms, &key, limits(&profile)).await;
    // This host's own clock, for its bookkeeping.
    let local = SkewedClock {
        offset_us: skew_ms * 1000,
    };
    let time_conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("connect for TIME");
    if parties > 0 {
        start_together(&mut time_conn.clone(), &key, parties).await;
    }

    let mut handles = Vec::new();
    for t in 0..tasks {
        let limiter = limiter.clone();
        let profile = profile.clone();
        let mut conn = time_conn.clone();
        handles.push(tokio::spawn(async move {
            for i in (t..n).step_by(tasks) {
                let tokens = cost_of(&profile, worker, i);
                let permit = limiter
                    .acquire(Cost::tokens(tokens))
                    .await
                    .expect("acquire");
                let logged = local.now().as_micros();
                let arrival = server_time_async(&mut conn).await;
                println!(
                    "PERMIT {} {} {} {} {} {}",
                    permit.record_id(),
                    permit.slot().as_micros(),
                    arrival,
                    tokens,
                    permit.queue_position(),
                    logged
                );
            }
        }));
    }
    for h in handles {
        h.await.expect("a worker task panicked");
    }
}

// ---------------------------------------------------------------------------
// The parent side.

/// One worker to run.
struct Spec {
    mode: &'static str,
    profile: &'static str,
    skew_ms: i64,
    n: usize,
    tasks: usize,
    /// Whether the workers of one `run` start together.
    together: bool,
}

/// One permit as a worker reported it.
#[derive(Clone, Copy, Debug)]
struct Granted {
    worker: usize,
    skew_ms: i64,
    record: u64,
    slot: u64,
    arrival: u64,
    tokens: u64,
    position: u64,
    /// The worker's skewed local clock at the grant.
    logged: u64,
}

/// Runs `specs` as concurrent worker processes (numbered from `first`) and
/// returns every permit they report; panics if one fails or they outlast
/// `DEADLINE` (the others are killed).
fn run(url: &str, key: &str, first: usize, specs: &[Spec]) -> Vec<Granted> {
    let envs = specs.iter().enumerate().map(|(i, s)| {
        let env = vec![
            ("REDIS_URL", url.to_string()),
            ("KEY", key.to_string()),
            ("MODE", s.mode.to_string()),
            ("PROFILE", s.profile.to_string()),
            ("WORKER", (first + i).to_string()),
            ("N", s.n.to_string()),
            ("TASKS", s.tasks.to_string()),
            ("SKEW_MS", s.skew_ms.to_string()),
            (
                "PARTIES",
                if s.together { specs.len() } else { 0 }.to_string(),
            ),
        ];
        (first + i, env)
    });
    let outputs = Workers::spawn(WORKER_ENV, envs).wait(DEADLINE);
    let mut all = Vec::new();
    for (i, out) in outputs.iter().enumerate() {
        for f in permit_lines(&out.stdout, 6) {
            all.push(Granted {
                worker: out.worker,
                skew_ms: specs[i].skew_ms,
                record: f[0],
                slot: f[1],
                arrival: f[2],
                tokens: f[3],
                position: f[4],
                logged: f[5],
            });
        }
    }
    assert_eq!(
        all.len(),
        specs.iter().map(|s| s.n).sum::<usize>(),
        "every permit reported"
    );
    all
}

/// The most requests and tokens in one span: by slot over window + guard,
/// and by arrival over the window.
struct Peaks {
    req_slot: u64,
    tok_slot: u64,
    req_arrival: u64,
    tok_arrival: u64,
}

fn peaks(all: &[Granted]) -> Peaks {
    let pts = |t: fn(&Granted) -> u64, a: fn(&Granted) -> u64| -> Vec<(u64, u64)> {
        all.iter().map(|g| (t(g), a(g))).collect()
    };
    let slot = |g: &Granted| g.slot;
    let arrival = |g: &Granted| g.arrival;
    let one = |_: &Granted| 1;
    let tokens = |g: &Granted| g.tokens;
    Peaks {
        req_slot: max_in_span(&pts(slot, one), WINDOW + GUARD).0,
        tok_slot: max_in_span(&pts(slot, tokens), WINDOW + GUARD).0,
        req_arrival: max_in_span(&pts(arrival, one), WINDOW).0,
        tok_arrival: max_in_span(&pts(arrival, tokens), WINDOW).0,
    }
}

/// With server time, no skew leaks into the timeline: every permit goes at
/// or after its slot and less than a second after it (a skew would move it
/// by whole seconds), while the host's own log is off by its skew.
fn assert_no_skew_leaks(all: &[Granted]) -> u64 {
    let mut max_late = 0;
    for g in all {
        assert!(g.arrival >= g.slot, "went before its slot: {g:?}");
        let late = g.arrival - g.slot;
        assert!(late < 1_000_000, "went {late} us after its slot: {g:?}");
        max_late = max_late.max(late);
        let seen = g.logged as i64 - g.arrival as i64;
        assert!(
            (seen - g.skew_ms * 1000).abs() < 500_000,
            "the worker's clock is not off by {} ms: {g:?}",
            g.skew_ms
        );
    }
    max_late
}

#[test]
fn skewed_processes_share_one_limit_on_server_time() {
    let started = Instant::now();
    let server = RedisServer::start();
    let url = server.url();
    let specs: Vec<Spec> = [-3000, 0, 2000, 5000]
        .into_iter()
        .map(|skew_ms| Spec {
            mode: "server",
            profile: "mixed",
            skew_ms,
            n: 12,
            tasks: 3,
            together: true,
        })
        .collect();
    let all = run(&url, "skew", 0, &specs);

    let p = peaks(&all);
    assert!(p.req_slot <= RPM, "{} requests by slot", p.req_slot);
    assert!(p.tok_slot <= TPM, "{} tokens by slot", p.tok_slot);
    assert!(
        p.req_arrival <= RPM,
        "{} requests by arrival",
        p.req_arrival
    );
    assert!(p.tok_arrival <= TPM, "{} tokens by arrival", p.tok_arrival);
    assert_fifo(&all, |g| g.record, |g| g.slot);
    let max_late = assert_no_skew_leaks(&all);
    // Not vacuous: both limits bound and callers waited.
    assert_eq!(p.req_slot, RPM, "the request limit was never reached");
    assert!(
        p.tok_slot > TPM - MAX_TOKENS,
        "the token limit was never reached"
    );
    let waited = all.iter().filter(|g| g.position > 0).count();
    assert!(waited > 0, "no caller had to wait");
    // Every skewed host got permits in the contended part of the run.
    let first = all.iter().map(|g| g.slot).min().unwrap();
    for skew in [-3000, 0, 2000, 5000] {
        let mine: Vec<&Granted> = all.iter().filter(|g| g.skew_ms == skew).collect();
        assert!(
            mine.iter()
                .any(|g| g.slot - first < WINDOW.as_micros() as u64),
            "the host at {skew} ms got nothing in the first window"
        );
    }
    let last = all.iter().map(|g| g.slot).max().unwrap();
    println!(
        "{} permits from hosts at -3/0/+2/+5 s over {:.2} s; peaks by slot {} req / {} tok, by \
         arrival {} req / {} tok; {waited} waited; max arrival - slot {max_late} us; test took \
         {:.2?}",
        all.len(),
        (last - first) as f64 / 1e6,
        p.req_slot,
        p.tok_slot,
        p.req_arrival,
        p.tok_arrival,
        started.elapsed()
    );
}

/// A host 2 s behind takes a window's worth at once; then a host 1 s ahead
/// asks for as much. Returns every permit.
fn behind_then_ahead(mode: &'static str) -> Vec<Granted> {
    let server = RedisServer::start();
    let url = server.url();
    let spec = |skew_ms| Spec {
        mode,
        profile: "rpm",
        skew_ms,
        n: RPM as usize,
        tasks: 4,
        together: false,
    };
    let mut all = run(&url, "sequence", 0, &[spec(-2000)]);
    all.extend(run(&url, "sequence", 1, &[spec(1000)]));
    all
}

#[test]
fn server_time_holds_when_a_late_host_fills_the_window() {
    let started = Instant::now();
    let all = behind_then_ahead("server");
    let p = peaks(&all);
    assert!(p.req_slot <= RPM, "{} requests by slot", p.req_slot);
    assert!(
        p.req_arrival <= RPM,
        "{} requests by arrival",
        p.req_arrival
    );
    assert_fifo(&all, |g| g.record, |g| g.slot);
    let max_late = assert_no_skew_leaks(&all);
    // The host ahead waited for the window: its first permit came a window
    // plus the guard after the first host's.
    let behind = all.iter().filter(|g| g.worker == 0).map(|g| g.slot).min();
    let ahead = all.iter().filter(|g| g.worker == 1).map(|g| g.slot).min();
    let gap = ahead.unwrap() - behind.unwrap();
    assert!(
        gap >= (WINDOW + GUARD).as_micros() as u64,
        "the host ahead went {gap} us after the host behind"
    );
    println!(
        "server time: peaks {} by slot, {} by arrival (limit {RPM}); gap {gap} us; max arrival - \
         slot {max_late} us; took {:.2?}",
        p.req_slot,
        p.req_arrival,
        started.elapsed()
    );
}

/// The negative control: with "now" taken from each client's clock, the
/// store's books balance in its own (mixed-up) timeline, but the provider
/// sees both hosts' requests in one window.
#[test]
fn trusting_client_clocks_lets_skewed_hosts_exceed_the_limit() {
    let started = Instant::now();
    let all = behind_then_ahead("client");
    let p = peaks(&all);
    // The store kept its own books (in a timeline mixed from the clients'
    // clocks; FIFO is not checked here: even the tasks of one client reach
    // the store with their clock readings out of order)...
    assert!(p.req_slot <= RPM, "{} requests by slot", p.req_slot);
    // ...yet the host ahead went at once, within the window the host behind
    // had just filled: the provider sees up to twice the limit.
    assert!(
        p.req_arrival > RPM,
        "expected more than {RPM} arrivals in one window with client clocks, got {}",
        p.req_arrival
    );
    println!(
        "client clocks: peaks {} by slot, {} by arrival (limit {RPM}); took {:.2?}",
        p.req_slot,
        p.req_arrival,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Local clock readings left in server-time mode (reproductions).

/// A host 3 s behind reports a 429 with a 2 s retry delay: every process
/// pauses for 2 s of server time (the end is computed on the server, not
/// as the local clock plus the delay, which had already passed there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooldown_from_a_skewed_host_lasts_its_duration_on_the_server() {
    let server = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let url = server.url();
    let limits = Limits::new().rpm(100);
    let behind = skewed_limiter(&url, "server", -3000, "cool", limits).await;
    let other = skewed_limiter(&url, "server", 0, "cool", limits).await;
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let before = server_time_async(&mut conn).await;
    behind.cool_down(Duration::from_secs(2)).await.unwrap();
    let until = other.cooldown_end().await.unwrap();
    assert!(
        until.is_some_and(|u| u.as_micros() >= before + 1_900_000),
        "a 2 s cooldown from a host 3 s behind, set at server time {before}, ends at {until:?}"
    );
    // And another process is paused by it.
    let permit = other.try_acquire(Cost::request()).await.unwrap();
    assert!(permit.is_err(), "admitted during the cooldown: {permit:?}");
}

/// `Permit::waited` is measured on one clock (the local one, around the
/// sleep): on a host 5 s ahead a wait of a fraction of a second must not
/// read as 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waited_is_measured_on_one_clock() {
    let server = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let limits = Limits::new()
        .rpm(1)
        .window(Duration::from_millis(300))
        .guard(Duration::from_millis(50));
    let ahead = skewed_limiter(&server.url(), "server", 5000, "waited", limits).await;
    ahead.acquire(Cost::request()).await.unwrap();
    let started = Instant::now();
    let permit = ahead.acquire(Cost::request()).await.unwrap();
    let real = started.elapsed();
    assert!(
        permit.queue_position() > 0,
        "the second request did not wait"
    );
    assert!(
        permit.waited() <= real + Duration::from_millis(50),
        "waited() says {:?}, the wait took {real:?}",
        permit.waited()
    );
}
