//! Differential tests: random sequences of operations applied both to the
//! core's state machines (`KeyState`, `LeaseState`) and to Redis (the Lua
//! ports), with the same injected times, must give the same decisions,
//! slots, record and lease ids, positions, errors and status.

#![cfg(feature = "redis-rs")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use limiter_core::{
    Clock, Cost, DayWindow, Decision, Error, KeyState, LeaseDecision, LeaseId, LeaseRequest,
    LeaseState, LeaseStore, Limits, ManualClock, RecordId, Sleep, Store, TimeZone, Timestamp,
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
            0u64..4,
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
                    _ => l.tpd(2500).day(DayWindow::Calendar {
                        reset_minutes: reset,
                        zone: TimeZone::Fixed {
                            offset_minutes: 330,
                        },
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

#[test]
fn redis_scripts_decide_exactly_as_the_core_state_machine() {
    let clock = ManualClock::new();
    let Rig {
        server: _server,
        rt,
        store,
        mut runner,
    } = rig(clock.clone(), 64);
    let n = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(
            &(limits(), limits(), proptest::collection::vec(op(), 1..80)),
            |(first, second, ops)| {
                let key = format!(
                    "diff:{}",
                    n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                );
                let mut state = KeyState::new();
                let mut limits = first;
                let mut ids: Vec<RecordId> = Vec::new();
                rt.block_on(async {
                    for op in &ops {
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
                                let r = store.reserve(&key, &limits, &cost, wait).await;
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
                                    .adjust(&key, &limits, id, &cost)
                                    .await
                                    .map_err(|e| kind(&e));
                                same("adjust", c, r)?;
                            }
                            Op::Refund { pick } if !ids.is_empty() => {
                                let id = ids[pick % ids.len()];
                                let c = state.refund(&limits, id, now).map_err(|e| kind(&e));
                                let r = store.refund(&key, &limits, id).await.map_err(|e| kind(&e));
                                same("refund", c, r)?;
                            }
                            Op::Advance { micros } => clock.advance(Duration::from_micros(micros)),
                            Op::Cooldown { micros } => {
                                let until = now.saturating_add(Duration::from_micros(micros));
                                state.set_cooldown(until);
                                store
                                    .cool_down(&key, limiter_core::CooldownEnd::At(until))
                                    .await
                                    .unwrap();
                                same(
                                    "cooldown",
                                    state.cooldown(now),
                                    store.cooldown_end(&key).await.unwrap(),
                                )?;
                            }
                            Op::Status => {
                                let c = state.status(&limits, now).unwrap();
                                let r = store.status(&key, &limits).await.unwrap();
                                same("status", c, r)?;
                            }
                            Op::Switch => limits = second,
                            _ => {}
                        }
                    }
                    let now = clock.now();
                    same(
                        "final status",
                        state.status(&limits, now).unwrap(),
                        store.status(&key, &limits).await.unwrap(),
                    )
                })
            },
        )
        .unwrap();
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
