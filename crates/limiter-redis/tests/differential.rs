//! Differential tests: random sequences of operations applied both to the
//! core's state machines (`KeyState`, `LeaseState`) and to Redis (the Lua
//! ports), with the same injected times, must give the same decisions,
//! slots, record and lease ids, positions, errors and status.

#![cfg(feature = "redis-rs")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use limiter_core::{
    Clock, Cost, DayWindow, Decision, Dimension, Error, ExternalUsage, KeyState, LeaseDecision,
    LeaseId, LeaseRequest, LeaseState, LeaseStore, Limits, RecordId, Sleep, TimeZone, Timestamp,
    WindowKind, MAX_LEASE_CAP, MAX_LEASE_TTL,
};
use limiter_redis::RedisStore;
use limiter_test_redis::RedisServer;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[derive(Clone, Debug)]
enum Op {
    Acquire {
        input: u64,
        output: u64,
        images: u64,
        max_wait_ms: Option<u64>,
    },
    Adjust {
        pick: usize,
        input: u64,
        output: u64,
    },
    Refund {
        pick: usize,
    },
    Advance {
        micros: u64,
    },
    Cooldown {
        micros: u64,
    },
    Status,
    Switch,
    /// The provider counts `used` (per per-window dimension) at `back` µs
    /// before now; its window clears `reset` µs after now.
    External {
        used: [Option<u64>; 5],
        back: u64,
        reset: u64,
    },
}

fn external_usage(now: Timestamp, used: &[Option<u64>; 5], back: u64, reset: u64) -> ExternalUsage {
    let dims = [
        Dimension::Rpm,
        Dimension::Tpm,
        Dimension::InputTpm,
        Dimension::OutputTpm,
        Dimension::Ipm,
    ];
    ExternalUsage {
        at: (back > 0).then(|| now.saturating_sub(Duration::from_micros(back))),
        used: dims
            .iter()
            .zip(used)
            .filter_map(|(&d, u)| u.map(|u| (d, u)))
            .collect(),
        reset: Duration::from_micros(reset),
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..500, 0u64..400, 0u64..3, proptest::option::of(0u64..5000))
            .prop_map(|(input, output, images, max_wait_ms)| Op::Acquire { input, output, images, max_wait_ms }),
        2 => (any::<usize>(), 0u64..600, 0u64..500).prop_map(|(pick, input, output)| Op::Adjust { pick, input, output }),
        1 => any::<usize>().prop_map(|pick| Op::Refund { pick }),
        3 => prop_oneof![0u64..2_000_000, 0u64..200_000_000, 0u64..40_000_000_000].prop_map(|micros| Op::Advance { micros }),
        1 => (0u64..3_000_000).prop_map(|micros| Op::Cooldown { micros }),
        1 => Just(Op::Status),
        1 => Just(Op::Switch),
        2 => (
            [
                proptest::option::of(0u64..40),
                proptest::option::of(0u64..5000),
                proptest::option::of(0u64..4000),
                proptest::option::of(0u64..3000),
                proptest::option::of(0u64..6),
            ],
            prop_oneof![Just(0u64), 0u64..3_000_000],
            0u64..30_000_000,
        )
            .prop_map(|(used, back, reset)| Op::External { used, back, reset }),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        (
            0u64..30,
            0u64..4000,
            0u64..3000,
            0u64..2000,
            0u64..6,
            0u64..5,
        ),
        (
            1u64..20,
            0u64..800,
            any::<bool>(),
            any::<bool>(),
            0u64..5,
            0u32..1440,
        ),
        (
            prop_oneof![Just(1.0), Just(2.5), Just(5.0)],
            prop_oneof![Just(1.0), Just(1.5), Just(0.7)],
        ),
    )
        .prop_map(
            |(
                (rpm, tpm, input, output, ipm, rps),
                (window_s, guard_ms, bucket, smooth, day, reset),
                (burn, burst),
            )| {
                let mut l = Limits::new()
                    .rpm(rpm)
                    .tpm(if tpm < 600 { 0 } else { tpm })
                    .input_tpm(if input < 500 { 0 } else { input })
                    .output_tpm(if output < 400 { 0 } else { output })
                    .ipm(ipm)
                    .rps(rps)
                    .window(Duration::from_secs(window_s))
                    .guard(Duration::from_millis(
                        guard_ms.min(window_s * 1000 - 1).min(999),
                    ))
                    .burndown(burn)
                    .burst(burst);
                if bucket {
                    l = l.window_kind(WindowKind::TokenBucket);
                }
                if smooth && (rps > 0 || rpm > 0) {
                    l = l.smoothing(true);
                }
                l = match day {
                    0 => l,
                    1 => l.rpd(3 + u64::from(reset % 20)),
                    2 => l.rpd(5).tpd(3000).day(DayWindow::PACIFIC_MIDNIGHT),
                    3 => l.tpd(2500).day(DayWindow::Calendar {
                        reset_minutes: reset,
                        zone: TimeZone::Fixed {
                            offset_minutes: 330,
                        },
                    }),
                    _ => l.rpd(4).tpd(2000).day(DayWindow::Calendar {
                        reset_minutes: reset,
                        zone: TimeZone::named("Europe/Berlin").unwrap(),
                    }),
                };
                l
            },
        )
}

fn same<T: PartialEq + std::fmt::Debug>(
    what: &str,
    core: T,
    redis: T,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        &core,
        &redis,
        "{} differs: core {:?}, redis {:?}",
        what,
        core,
        redis
    );
    Ok(())
}

/// Errors are compared by kind (the messages of store errors differ).
fn kind(e: &Error) -> String {
    match e {
        Error::UnknownRecord(r) => format!("unknown {r}"),
        Error::ExceedsLimit {
            dimension,
            requested,
            max,
        } => format!("exceeds {dimension} {requested} {max}"),
        Error::InvalidNumber { field, .. } => format!("number {field}"),
        other => format!("other {other}"),
    }
}

/// A server, a runtime, a store on `clock` and a runner of `PROPTEST_CASES`
/// cases (`default_cases` without it).
struct Rig {
    server: RedisServer,
    rt: tokio::runtime::Runtime,
    store: Arc<dyn LeaseStore>,
    runner: TestRunner,
}

fn rig(clock: impl limiter_core::Clock, default_cases: u32) -> Rig {
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store: Arc<dyn LeaseStore> = Arc::new(
        rt.block_on(
            RedisStore::builder()
                .url(server.url())
                .clock(clock)
                .connect(),
        )
        .unwrap(),
    );
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    Rig {
        server,
        rt,
        store,
        runner,
    }
}

/// Applies `ops` to a fresh key of `store` and to a `KeyState` from
/// `start`, with `first` limits until a `Switch` to `second`, and compares
/// every answer.
#[allow(clippy::too_many_arguments)]
async fn admission_case(
    store: &dyn LeaseStore,
    clock: &StepClock,
    key: &str,
    start: u64,
    first: Limits,
    second: Limits,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    clock.set(start);
    let mut state = KeyState::new();
    let mut limits = first;
    let mut ids: Vec<RecordId> = Vec::new();
    for op in ops {
        let now = clock.now();
        match *op {
            Op::Acquire {
                input,
                output,
                images,
                max_wait_ms,
            } => {
                let cost = Cost::split(input, output).with_images(images);
                let wait = max_wait_ms.map(Duration::from_millis);
                let c = state.reserve(&limits, &cost, now, wait);
                let r = store.reserve(key, &limits, &cost, wait).await;
                match (c, r) {
                    (Ok(c), Ok(r)) => {
                        same("decision", c, r)?;
                        if let Decision::Reserved(res) = c {
                            ids.push(res.record);
                        }
                    }
                    (Err(c), Err(r)) => same("error", kind(&c), kind(&r))?,
                    (c, r) => prop_assert!(false, "core {:?} vs redis {:?}", c, r),
                }
            }
            Op::Adjust {
                pick,
                input,
                output,
            } if !ids.is_empty() => {
                let id = ids[pick % ids.len()];
                let cost = Cost::split(input, output);
                let c = state.adjust(&limits, id, &cost, now).map_err(|e| kind(&e));
                let r = store
                    .adjust(key, &limits, id, &cost)
                    .await
                    .map_err(|e| kind(&e));
                same("adjust", c, r)?;
            }
            Op::Refund { pick } if !ids.is_empty() => {
                let id = ids[pick % ids.len()];
                let c = state.refund(&limits, id, now).map_err(|e| kind(&e));
                let r = store.refund(key, &limits, id).await.map_err(|e| kind(&e));
                same("refund", c, r)?;
            }
            Op::Advance { micros } => clock.set(now.as_micros().saturating_add(micros)),
            Op::Cooldown { micros } => {
                let until = now.saturating_add(Duration::from_micros(micros));
                state.set_cooldown(until);
                store
                    .cool_down(key, limiter_core::CooldownEnd::At(until))
                    .await
                    .unwrap();
                same(
                    "cooldown",
                    state.cooldown(now),
                    store.cooldown_end(key).await.unwrap(),
                )?;
            }
            Op::Status => {
                let c = state.status(&limits, now).map_err(|e| kind(&e));
                let r = store.status(key, &limits).await.map_err(|e| kind(&e));
                same("status", c, r)?;
            }
            Op::Switch => limits = second,
            Op::External {
                ref used,
                back,
                reset,
            } => {
                let usage = external_usage(now, used, back, reset);
                let c = state
                    .hold_external(&limits, &usage, now)
                    .map_err(|e| kind(&e));
                let r = store
                    .hold_external(key, &limits, &usage)
                    .await
                    .map_err(|e| kind(&e));
                same("external", c, r)?;
            }
            _ => {}
        }
    }
    let now = clock.now();
    same(
        "final status",
        state.status(&limits, now).map_err(|e| kind(&e)),
        store.status(key, &limits).await.map_err(|e| kind(&e)),
    )
}

/// Runs `cases` (start, first limits, second limits, operations) against a
/// fresh Redis store on a settable clock and the core, one key per case
/// under `prefix`; `default_cases` without `PROPTEST_CASES`.
fn run_admission(
    prefix: &str,
    default_cases: u32,
    cases: impl Strategy<Value = (u64, Limits, Limits, Vec<Op>)>,
) {
    let clock = StepClock::default();
    let Rig {
        server: _server,
        rt,
        store,
        mut runner,
    } = rig(clock.clone(), default_cases);
    let n = AtomicU64::new(0);
    runner
        .run(&cases, |(start, first, second, ops)| {
            let key = format!("{prefix}:{}", n.fetch_add(1, Ordering::Relaxed));
            rt.block_on(admission_case(
                &*store, &clock, &key, start, first, second, &ops,
            ))
        })
        .unwrap();
}

#[test]
fn redis_scripts_decide_exactly_as_the_core_state_machine() {
    let cases = (limits(), limits(), proptest::collection::vec(op(), 1..80))
        .prop_map(|(first, second, ops)| (JAN_2026_US, first, second, ops));
    run_admission("diff", 64, cases);
}

/// 2026-01-01T00:00:00Z in µs.
const JAN_2026_US: u64 = 1_767_225_600_000_000;

/// A number of at most `bits` bits, spread evenly over the bit lengths (as
/// many below 2^10 as between 2^40 and 2^50), and now and then 2^bits
/// itself.
fn log_uniform(bits: u32) -> impl Strategy<Value = u64> {
    prop_oneof![
        12 => (0..=bits).prop_flat_map(|b| {
            if b == 0 {
                Just(0u64).boxed()
            } else {
                ((1u64 << (b - 1))..(1u64 << b)).boxed()
            }
        }),
        1 => Just(1u64 << bits),
    ]
}

/// A limit over its whole valid range (off half of the time).
fn any_limit() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 1 => log_uniform(50).prop_map(|v| v.max(1))]
}

/// Zones with every kind of rule: none, fixed, US daylight saving written
/// out, and named ones with half-hour and 45-minute offsets, half-hour
/// changes (Lord Howe), negative daylight saving (Dublin), changes that
/// come and go (Casablanca), a dropped day (Apia, 2011) and the date line.
/// Named zones the differential draws from.
const NAMES: [&str; 12] = [
    "America/Los_Angeles",
    "America/New_York",
    "Europe/Berlin",
    "Europe/Dublin",
    "Asia/Tokyo",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Africa/Casablanca",
    "Pacific/Apia",
    "Pacific/Chatham",
    "America/Sao_Paulo",
];

fn any_zone() -> impl Strategy<Value = TimeZone> {
    prop_oneof![
        1 => Just(TimeZone::Utc),
        1 => (-18 * 60..=18 * 60).prop_map(|offset_minutes| TimeZone::Fixed { offset_minutes }),
        1 => (-12 * 60..=14 * 60).prop_map(|standard_offset_minutes| TimeZone::UsDaylight {
            standard_offset_minutes
        }),
        4 => (0..NAMES.len()).prop_map(|i| TimeZone::named(NAMES[i]).unwrap()),
    ]
}

/// Limits over the whole valid range: every limit up to 2^50, windows from
/// a millisecond to a day, any guard band, token buckets, rolling and
/// calendar days in any zone, bursts and burndowns from small to large.
fn any_limits() -> impl Strategy<Value = Limits> {
    (
        [
            any_limit(),
            any_limit(),
            any_limit(),
            any_limit(),
            any_limit(),
            any_limit(),
        ],
        (
            prop_oneof![log_uniform(27), Just(86_400_000u64)],
            0.0f64..1.0,
            any::<bool>(),
            any::<bool>(),
        ),
        (
            0u8..3,
            any_limit(),
            any_limit(),
            prop_oneof![0u32..1440, Just(0), Just(60), Just(120), Just(150)],
            any_zone(),
        ),
        (
            prop_oneof![Just(0.0), Just(1.0), Just(5.0), Just(1000.0)],
            prop_oneof![Just(1.0), Just(0.5), Just(3.0), Just(1000.0)],
        ),
    )
        .prop_map(
            |(
                [rpm, tpm, input, output, ipm, rps],
                (window_ms, guard_share, bucket, smooth),
                (day, rpd, tpd, reset, zone),
                (burn, burst),
            )| {
                let window_ms = window_ms.clamp(1, 86_400_000);
                let mut max_guard = (window_ms - 1).min(60_000);
                if rps > 0 {
                    max_guard = max_guard.min(999);
                }
                let guard_ms = (max_guard as f64 * guard_share) as u64;
                let mut l = Limits::new()
                    .rpm(rpm)
                    .tpm(tpm)
                    .input_tpm(input)
                    .output_tpm(output)
                    .ipm(ipm)
                    .rps(rps)
                    .window(Duration::from_millis(window_ms))
                    .guard(Duration::from_millis(guard_ms))
                    .burndown(burn)
                    .burst(burst);
                if bucket {
                    l = l.window_kind(WindowKind::TokenBucket);
                }
                if smooth && (rps > 0 || rpm > 0) {
                    l = l.smoothing(true);
                }
                match day {
                    0 => l,
                    1 => l.rpd(rpd).tpd(tpd),
                    _ => l.rpd(rpd).tpd(tpd).day(DayWindow::Calendar {
                        reset_minutes: reset,
                        zone,
                    }),
                }
            },
        )
}

/// Operations with amounts over their whole range (up to 2^50), waits and
/// advances from a microsecond to days, cooldowns past the horizon.
fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (log_uniform(50), log_uniform(50), log_uniform(50), proptest::option::of(log_uniform(30)))
            .prop_map(|(input, output, images, max_wait_ms)| Op::Acquire { input, output, images, max_wait_ms }),
        3 => (any::<usize>(), log_uniform(50), log_uniform(50))
            .prop_map(|(pick, input, output)| Op::Adjust { pick, input, output }),
        1 => any::<usize>().prop_map(|pick| Op::Refund { pick }),
        3 => log_uniform(38).prop_map(|micros| Op::Advance { micros }),
        1 => prop_oneof![log_uniform(40), Just(u64::MAX)].prop_map(|micros| Op::Cooldown { micros }),
        1 => Just(Op::Status),
        1 => Just(Op::Switch),
        2 => (
            [
                proptest::option::of(log_uniform(50)),
                proptest::option::of(log_uniform(50)),
                proptest::option::of(log_uniform(50)),
                proptest::option::of(log_uniform(50)),
                proptest::option::of(log_uniform(50)),
            ],
            prop_oneof![Just(0u64), log_uniform(38)],
            log_uniform(40),
        )
            .prop_map(|(used, back, reset)| Op::External { used, back, reset }),
    ]
}

#[test]
fn redis_scripts_decide_as_the_core_over_the_whole_valid_range() {
    let horizon = Timestamp::HORIZON.as_micros();
    // Every change of offset of the named zones in 2026.
    let changes: Vec<u64> = NAMES
        .iter()
        .flat_map(|n| {
            let year = 366 * 86_400_000_000;
            let (_, c) = TimeZone::named(n)
                .unwrap()
                .offset_changes(JAN_2026_US as i64, (JAN_2026_US + year) as i64);
            c.into_iter().map(|(at, _)| at as u64)
        })
        .collect();
    // In 2026 (now and then shortly before a change of offset), shortly
    // before the horizon (slots and buckets reach past it), or just past it
    // (refused).
    let start = prop_oneof![
        2 => log_uniform(40).prop_map(|d| JAN_2026_US + d),
        2 => (0u64..366 * 86_400_000_000).prop_map(|d| JAN_2026_US + d),
        // Up to a day and a half before a change of offset.
        3 => (proptest::sample::select(changes), log_uniform(37)).prop_map(|(at, d)| at - d),
        2 => log_uniform(38).prop_map(move |d| horizon - d),
        1 => (1u64..1_000).prop_map(move |d| horizon + d),
    ];
    let cases = (
        start,
        any_limits(),
        any_limits(),
        proptest::collection::vec(any_op(), 1..60),
    );
    run_admission("range", 128, cases);
}

/// A clock for the lease differential that may also step back (time must
/// still never go back for a key).
#[derive(Clone, Debug, Default)]
struct StepClock(Arc<AtomicU64>);

impl StepClock {
    fn set(&self, us: u64) {
        self.0.store(us, Ordering::SeqCst);
    }
}

impl Clock for StepClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.load(Ordering::SeqCst))
    }
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Which id a lease operation names.
#[derive(Clone, Debug)]
enum Pick {
    None,
    /// One of the tickets handed out so far (live, used or expired).
    Ticket(usize),
    /// One of the leases granted so far (held, released or expired).
    Lease(usize),
    /// An id no store made.
    Bogus(u64),
}

#[derive(Clone, Debug)]
enum LeaseOp {
    Acquire {
        cap: u64,
        ttl_us: u64,
        queue: bool,
        ticket: Pick,
    },
    Renew {
        id: Pick,
        ttl_us: u64,
    },
    Release {
        id: Pick,
    },
    Status,
    Advance {
        micros: u64,
    },
    Back {
        micros: u64,
    },
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        2 => Just(Pick::None),
        5 => any::<usize>().prop_map(Pick::Ticket),
        3 => any::<usize>().prop_map(Pick::Lease),
        1 => prop_oneof![0u64..4, Just(u64::MAX), Just(1 << 53), any::<u64>()].prop_map(Pick::Bogus),
    ]
}

fn lease_ttl() -> impl Strategy<Value = u64> {
    let day = MAX_LEASE_TTL.as_micros() as u64;
    prop_oneof![
        12 => 1_000u64..3_000_000,
        1 => Just(1_000u64),
        1 => Just(day),
        // Out of range: refused before reaching a store.
        1 => prop_oneof![0u64..1_000, Just(day + 1)],
    ]
}

fn lease_op() -> impl Strategy<Value = LeaseOp> {
    prop_oneof![
        8 => (
            prop_oneof![12 => 1u64..5, 1 => Just(0u64), 1 => Just(MAX_LEASE_CAP), 1 => Just(MAX_LEASE_CAP + 1)],
            lease_ttl(),
            any::<bool>(),
            pick(),
        )
            .prop_map(|(cap, ttl_us, queue, ticket)| LeaseOp::Acquire { cap, ttl_us, queue, ticket }),
        2 => (pick(), lease_ttl()).prop_map(|(id, ttl_us)| LeaseOp::Renew { id, ttl_us }),
        2 => pick().prop_map(|id| LeaseOp::Release { id }),
        1 => Just(LeaseOp::Status),
        4 => prop_oneof![0u64..5_000, 0u64..1_500_000, 0u64..4_000_000].prop_map(|micros| LeaseOp::Advance { micros }),
        1 => (0u64..2_000_000).prop_map(|micros| LeaseOp::Back { micros }),
    ]
}

#[test]
fn redis_lease_script_decides_exactly_as_the_core_lease_state() {
    let clock = StepClock::default();
    let Rig {
        server: _server,
        rt,
        store,
        mut runner,
    } = rig(clock.clone(), 96);
    let n = AtomicU64::new(0);
    // Near the epoch (ids from the counter) or in 2026 (ids from the clock).
    let start = prop_oneof![0u64..3, 1_767_225_600_000_000u64..1_767_225_601_000_000];
    runner
        .run(
            &(start, proptest::collection::vec(lease_op(), 1..100)),
            |(start, ops)| {
                let key = format!("lease:{}", n.fetch_add(1, Ordering::Relaxed));
                clock.set(start);
                let mut state = LeaseState::new();
                let mut tickets: Vec<LeaseId> = Vec::new();
                let mut leases: Vec<LeaseId> = Vec::new();
                let resolve = |p: &Pick, tickets: &[LeaseId], leases: &[LeaseId]| match *p {
                    Pick::Ticket(i) if !tickets.is_empty() => Some(tickets[i % tickets.len()]),
                    Pick::Lease(i) if !leases.is_empty() => Some(leases[i % leases.len()]),
                    Pick::Bogus(id) => Some(LeaseId(id)),
                    _ => None,
                };
                rt.block_on(async {
                    for op in &ops {
                        let now = clock.now();
                        match op {
                            LeaseOp::Acquire {
                                cap,
                                ttl_us,
                                queue,
                                ticket,
                            } => {
                                let request = LeaseRequest {
                                    cap: *cap,
                                    ttl: Duration::from_micros(*ttl_us),
                                    queue: *queue,
                                    ticket: resolve(ticket, &tickets, &leases),
                                };
                                let c = state.acquire(&request, now);
                                let r = store.acquire_lease(&key, &request).await;
                                match (c, r) {
                                    (Ok(c), Ok(r)) => {
                                        same("lease decision", c, r)?;
                                        match c {
                                            LeaseDecision::Granted(l) => leases.push(l.id),
                                            LeaseDecision::Full {
                                                ticket: Some(t), ..
                                            } => tickets.push(t),
                                            _ => {}
                                        }
                                    }
                                    (Err(c), Err(r)) => same("error", kind(&c), kind(&r))?,
                                    (c, r) => prop_assert!(false, "core {:?} vs redis {:?}", c, r),
                                }
                            }
                            LeaseOp::Renew { id, ttl_us } => {
                                let id = resolve(id, &tickets, &leases).unwrap_or(LeaseId(0));
                                let ttl = Duration::from_micros(*ttl_us);
                                let c = state.renew(id, ttl, now).map_err(|e| kind(&e));
                                let r =
                                    store.renew_lease(&key, id, ttl).await.map_err(|e| kind(&e));
                                same("renew", c, r)?;
                            }
                            LeaseOp::Release { id } => {
                                let id = resolve(id, &tickets, &leases).unwrap_or(LeaseId(0));
                                let c = state.release(id, now).map_err(|e| kind(&e));
                                let r = store.release_lease(&key, id).await.map_err(|e| kind(&e));
                                same("release", c, r)?;
                            }
                            LeaseOp::Status => {
                                same(
                                    "lease status",
                                    state.status(now).unwrap(),
                                    store.lease_status(&key).await.unwrap(),
                                )?;
                            }
                            LeaseOp::Advance { micros } => {
                                clock.set(now.as_micros().saturating_add(*micros));
                            }
                            LeaseOp::Back { micros } => {
                                clock.set(now.as_micros().saturating_sub(*micros));
                            }
                        }
                    }
                    same(
                        "final lease status",
                        state.status(clock.now()).unwrap(),
                        store.lease_status(&key).await.unwrap(),
                    )
                })
            },
        )
        .unwrap();
}

/// Around every change of offset in 2026 of every named zone, with the
/// daily reset at, in and after the changed hour: the days' starts the
/// scripts find (the slots of one request a day) are the core's.
#[test]
fn calendar_days_around_every_change_of_offset_agree() {
    let clock = StepClock::default();
    let Rig {
        server: _server,
        rt,
        store,
        ..
    } = rig(clock.clone(), 1);
    let year = 366 * 86_400_000_000i64;
    let hour = 3_600_000_000i64;
    let mut checked = 0;
    rt.block_on(async {
        for (z, name) in NAMES.iter().enumerate() {
            let zone = TimeZone::named(name).unwrap();
            let (mut before, changes) =
                zone.offset_changes(JAN_2026_US as i64, JAN_2026_US as i64 + year);
            for (c, &(at, after)) in changes.iter().enumerate() {
                // The local minute of day the change happens at, read with
                // the offset before it.
                let minute = ((at + before).rem_euclid(86_400_000_000) / 60_000_000) as u32;
                for reset in [
                    0,
                    minute,
                    (minute + 15) % 1440,
                    (minute + 30) % 1440,
                    (minute + 60) % 1440,
                ] {
                    let limits = Limits::new().rpd(1).day(DayWindow::Calendar {
                        reset_minutes: reset,
                        zone,
                    });
                    let key = format!("change:{z}:{c}:{reset}");
                    let start = (at - 30 * hour) as u64;
                    clock.set(start);
                    let mut state = KeyState::new();
                    for _ in 0..4 {
                        let now = clock.now();
                        let core = state.reserve(&limits, &Cost::request(), now, None).unwrap();
                        let redis = store
                            .reserve(&key, &limits, &Cost::request(), None)
                            .await
                            .unwrap();
                        assert_eq!(core, redis, "{name}, reset {reset}, change at {at}");
                        checked += 1;
                    }
                }
                before = after;
            }
        }
    });
    assert!(checked >= 300, "{checked}");
}
