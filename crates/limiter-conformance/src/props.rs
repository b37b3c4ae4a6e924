//! Property checks: random sequences of acquire, adjust, refund and time
//! steps, every slot compared with an independent exact model (a plain log
//! of reservations, scanned in full). Each runs many cases on fresh keys
//! of one store; `PROPTEST_CASES` raises the count.

use std::future::Future;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

use crate::harness::*;

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Acquire { input: u64, output: u64 },
    AdjustDown { pick: usize, percent: u64 },
    Refund { pick: usize },
    Advance { micros: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1u64..400, 0u64..300).prop_map(|(input, output)| Op::Acquire { input, output }),
        1 => (any::<usize>(), 0u64..100).prop_map(|(pick, percent)| Op::AdjustDown { pick, percent }),
        1 => any::<usize>().prop_map(|pick| Op::Refund { pick }),
        2 => (0u64..4_000_000).prop_map(|micros| Op::Advance { micros }),
    ]
}

fn limits_strategy() -> impl Strategy<Value = Limits> {
    (
        1u64..6,
        1u64..20,
        400u64..3000,
        0u64..2,
        300u64..2000,
        0u64..2,
        0u64..1000,
    )
        .prop_map(|(window_s, rpm, tpm, split, out, burn, guard)| {
            let mut l = Limits::new()
                .rpm(rpm)
                .tpm(tpm)
                .window(secs(window_s))
                .guard(ms(guard.min(window_s * 1000 - 1)));
            if split == 1 {
                l = l.input_tpm(tpm / 2 + 400).output_tpm(out);
            }
            if burn == 1 {
                l = l.burndown(2.0);
            }
            l
        })
}

#[derive(Clone, Copy, Debug)]
struct Rec {
    id: RecordId,
    slot: u64,
    cost: Cost,
    live: bool,
}

fn amounts(l: &Limits, c: &Cost) -> [u64; 4] {
    let w = c.weighted_tokens(l.burndown).unwrap();
    [1, w, c.input_tokens, c.output_tokens]
}

fn caps(l: &Limits) -> [u64; 4] {
    [
        l.effective(Dimension::Rpm),
        l.effective(Dimension::Tpm),
        l.effective(Dimension::InputTpm),
        l.effective(Dimension::OutputTpm),
    ]
}

/// The exact earliest slot by a full scan of the live log.
fn exact_earliest(l: &Limits, log: &[Rec], now: u64, cost: &Cost) -> u64 {
    let span = (l.window_ms + l.guard_ms) * 1000;
    let caps = caps(l);
    let need = amounts(l, cost);
    let live: Vec<&Rec> = log.iter().filter(|r| r.live).collect();
    let tail = live
        .iter()
        .filter(|r| r.slot > now)
        .map(|r| r.slot)
        .max()
        .unwrap_or(0);
    let from = now.max(tail);
    let mut candidates: Vec<u64> = vec![from];
    candidates.extend(live.iter().map(|r| r.slot + span).filter(|&t| t > from));
    candidates.sort_unstable();
    for s in candidates {
        let mut used = [0u64; 4];
        for r in &live {
            if r.slot + span > s {
                let a = amounts(l, &r.cost);
                for d in 0..4 {
                    used[d] += a[d];
                }
            }
        }
        if (0..4).all(|d| caps[d] == 0 || used[d] + need[d] <= caps[d]) {
            return s;
        }
    }
    unreachable!("an empty window admits any valid request")
}

fn check_windows(l: &Limits, log: &[Rec]) -> Result<(), TestCaseError> {
    let span = (l.window_ms + l.guard_ms) * 1000;
    let caps = caps(l);
    let live: Vec<&Rec> = log.iter().filter(|r| r.live).collect();
    for end in &live {
        let mut used = [0u64; 4];
        for r in &live {
            if r.slot <= end.slot && r.slot + span > end.slot {
                let a = amounts(l, &r.cost);
                for d in 0..4 {
                    used[d] += a[d];
                }
            }
        }
        for d in 0..4 {
            prop_assert!(
                caps[d] == 0 || used[d] <= caps[d],
                "window ending at {} holds {} > {} in dimension {}",
                end.slot,
                used[d],
                caps[d],
                d
            );
        }
    }
    Ok(())
}

fn runner() -> TestRunner {
    // `PROPTEST_CASES` raises the count for a longer hunt.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    TestRunner::new(Config {
        cases,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..Config::default()
    })
}

/// An unknown record is fine only once its retention has ended; it then
/// keeps counting as it was.
fn forgotten(clock: &ManualClock, l: &Limits, r: &Rec, e: Error) -> Result<(), TestCaseError> {
    let retention = limiter_core::state::RECORD_RETENTION
        .max(l.window_duration() + l.guard_duration())
        .as_micros() as u64;
    match e {
        Error::UnknownRecord(_) if clock.now().as_micros() >= r.slot + retention => Ok(()),
        e => Err(TestCaseError::fail(format!("record {}: {e}", r.id))),
    }
}

fn pick(log: &[Rec], pick: usize) -> Option<usize> {
    let live: Vec<usize> = (0..log.len()).filter(|&i| log[i].live).collect();
    (!live.is_empty()).then(|| live[pick % live.len()])
}

async fn apply(
    store: &Arc<dyn Store>,
    clock: &ManualClock,
    key: &str,
    l: &Limits,
    ops: &[Op],
    mut on_reserve: impl FnMut(&[Rec], u64, &Cost, u64) -> Result<(), TestCaseError>,
) -> Result<Vec<Rec>, TestCaseError> {
    let mut log: Vec<Rec> = Vec::new();
    for op in ops {
        match *op {
            Op::Acquire { input, output } => {
                let cost = Cost::split(input, output);
                let now = clock.now().as_micros();
                match store.reserve(key, l, &cost, None).await {
                    Ok(Decision::Reserved(r)) => {
                        let slot = r.slot.as_micros();
                        // FIFO: no earlier than any live reservation.
                        let last = log
                            .iter()
                            .filter(|r| r.live)
                            .map(|r| r.slot)
                            .max()
                            .unwrap_or(0);
                        prop_assert!(slot >= last, "slot went back: {} < {}", slot, last);
                        prop_assert!(slot >= now);
                        on_reserve(&log, now, &cost, slot)?;
                        log.push(Rec {
                            id: r.record,
                            slot,
                            cost,
                            live: true,
                        });
                    }
                    Ok(other) => prop_assert!(false, "unexpected {:?}", other),
                    Err(Error::ExceedsLimit { .. }) => {}
                    Err(e) => prop_assert!(false, "unexpected error {}", e),
                }
            }
            Op::AdjustDown { pick: p, percent } => {
                if let Some(i) = pick(&log, p) {
                    let c = log[i].cost;
                    let new = Cost::split(
                        c.input_tokens * percent / 100,
                        c.output_tokens * percent / 100,
                    );
                    match store.adjust(key, l, log[i].id, &new).await {
                        Ok(()) => log[i].cost = new,
                        Err(e) => forgotten(clock, l, &log[i], e)?,
                    }
                }
            }
            Op::Refund { pick: p } => {
                if let Some(i) = pick(&log, p) {
                    match store.refund(key, l, log[i].id).await {
                        Ok(()) => log[i].live = false,
                        Err(e) => forgotten(clock, l, &log[i], e)?,
                    }
                }
            }
            Op::Advance { micros } => clock.advance(Duration::from_micros(micros)),
        }
    }
    Ok(log)
}

/// Rolling windows: no window of any limit ever holds more than the limit
/// (with window + guard), slots are FIFO, and each slot is no earlier
/// than an exact log allows and at most one bucket later.
pub fn prop_rolling_holds_limits_fifo_and_precision<M, MF>(make: M)
where
    M: Fn(ManualClock) -> MF,
    MF: Future<Output = Arc<dyn Store>>,
{
    let rt = runtime();
    let clock = ManualClock::new();
    let store = rt.block_on(make(clock.clone()));
    let strategy = (limits_strategy(), proptest::collection::vec(op(), 1..60));
    runner()
        .run(&strategy, |(limits, ops)| {
            let key = unique_key("prop-rolling");
            let g =
                bucket_width(limits.window_duration(), limits.guard_duration()).as_micros() as u64;
            let log = rt.block_on(apply(
                &store,
                &clock,
                &key,
                &limits,
                &ops,
                |log, now, cost, slot| {
                    let exact = exact_earliest(&limits, log, now, cost);
                    prop_assert!(
                        slot >= exact,
                        "slot {} before the exact earliest {}",
                        slot,
                        exact
                    );
                    prop_assert!(
                        slot <= exact + g,
                        "slot {} later than exact {} + bucket {}",
                        slot,
                        exact,
                        g
                    );
                    Ok(())
                },
            ))?;
            check_windows(&limits, &log)
        })
        .unwrap();
}

/// Token buckets: in any span of slots, the admitted amount never exceeds
/// the bucket (less the guard band's refill) plus the refill over the
/// span; slots are FIFO.
pub fn prop_token_bucket_holds<M, MF>(make: M)
where
    M: Fn(ManualClock) -> MF,
    MF: Future<Output = Arc<dyn Store>>,
{
    let rt = runtime();
    let clock = ManualClock::new();
    let store = rt.block_on(make(clock.clone()));
    let strategy = (limits_strategy(), proptest::collection::vec(op(), 1..60));
    runner()
        .run(&strategy, |(limits, ops)| {
            let limits = limits.window_kind(WindowKind::TokenBucket);
            let key = unique_key("prop-bucket");
            let log = rt.block_on(apply(&store, &clock, &key, &limits, &ops, |_, _, _, _| {
                Ok(())
            }))?;
            let w = u128::from(limits.window_ms * 1000);
            let tau = w - u128::from(limits.guard_ms * 1000);
            let caps = caps(&limits);
            let mut live: Vec<&Rec> = log.iter().filter(|r| r.live).collect();
            live.sort_by_key(|r| r.slot);
            for i in 0..live.len() {
                let mut sum = [0u128; 4];
                for j in i..live.len() {
                    let a = amounts(&limits, &live[j].cost);
                    let span = u128::from(live[j].slot - live[i].slot);
                    for d in 0..4 {
                        sum[d] += u128::from(a[d]);
                        let cap = u128::from(caps[d]);
                        prop_assert!(
                            cap == 0 || sum[d] * w <= cap * (tau + span),
                            "dimension {}: {} admitted over {} µs, bucket {} per {} µs",
                            d,
                            sum[d],
                            span,
                            cap,
                            w
                        );
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Calendar days: for every local day, the reservations slotted in it,
/// plus those slotted within the guard band before it, stay within the
/// daily limits; slots are FIFO.
pub fn prop_calendar_day_holds<M, MF>(make: M)
where
    M: Fn(ManualClock) -> MF,
    MF: Future<Output = Arc<dyn Store>>,
{
    let rt = runtime();
    let clock = ManualClock::new();
    let store = rt.block_on(make(clock.clone()));
    let ops = proptest::collection::vec(
        prop_oneof![
            4 => (1u64..400, 0u64..300).prop_map(|(input, output)| Op::Acquire { input, output }),
            1 => (any::<usize>(), 0u64..100).prop_map(|(pick, percent)| Op::AdjustDown { pick, percent }),
            1 => any::<usize>().prop_map(|pick| Op::Refund { pick }),
            2 => (0u64..30_000_000_000).prop_map(|micros| Op::Advance { micros }),
        ],
        1..60,
    );
    let strategy = (1u64..8, 0u64..3000, 0u32..1440, 0u64..60_000, ops);
    runner()
        .run(&strategy, |(rpd, tpd, reset, guard, ops)| {
            let day = DayWindow::Calendar {
                reset_minutes: reset,
                zone: TimeZone::US_PACIFIC,
            };
            let limits = Limits::new()
                .rpd(rpd)
                .tpd(if tpd < 700 { 0 } else { tpd })
                .guard(ms(guard))
                .day(day);
            let key = unique_key("prop-calendar");
            let log = rt.block_on(apply(&store, &clock, &key, &limits, &ops, |_, _, _, _| {
                Ok(())
            }))?;
            let zone = TimeZone::US_PACIFIC;
            let mut per_day: std::collections::BTreeMap<i64, [u64; 2]> = Default::default();
            for r in log.iter().filter(|r| r.live) {
                let d = limiter_core::calendar::day_index(&zone, reset, r.slot as i64);
                let late =
                    limiter_core::calendar::day_index(&zone, reset, (r.slot + guard * 1000) as i64)
                        > d;
                let a = [1, r.cost.weighted_tokens(limits.burndown).unwrap()];
                for day in [Some(d), late.then_some(d + 1)].into_iter().flatten() {
                    let e = per_day.entry(day).or_default();
                    e[0] += a[0];
                    e[1] += a[1];
                }
            }
            for (d, used) in per_day {
                prop_assert!(
                    used[0] <= limits.rpd,
                    "day {}: {} requests > {}",
                    d,
                    used[0],
                    limits.rpd
                );
                prop_assert!(
                    limits.tpd == 0 || used[1] <= limits.tpd,
                    "day {}: {} tokens > {}",
                    d,
                    used[1],
                    limits.tpd
                );
            }
            Ok(())
        })
        .unwrap();
}
