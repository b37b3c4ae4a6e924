//! KeyState, the FIFO admission state machine: slots, windows, days, settling.

use super::prelude::*;

const T0: u64 = 1_767_225_600_000_000;
const DAY_US: u64 = 86_400_000_000;

fn at(us: u64) -> Timestamp {
    Timestamp::from_micros(T0 + us)
}

fn reserved(d: Decision) -> Reservation {
    match d {
        Decision::Reserved(r) => r,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

#[test]
fn rolling_window_admits_up_to_the_limit_then_queues() {
    let limits = Limits::new()
        .rpm(3)
        .window(Duration::from_secs(10))
        .guard(Duration::ZERO);
    let mut s = KeyState::new();
    for _ in 0..3 {
        let r = reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
        assert_eq!(r.slot, at(0));
        assert_eq!(r.position, 0);
    }
    let r = reserved(
        s.reserve(&limits, &Cost::request(), at(1000), None)
            .unwrap(),
    );
    // Bucket width 10 s / 128 = 78_125 µs: the first bucket ends there.
    assert_eq!(r.slot, at(10_000_000 + 78_125));
    assert_eq!(r.position, 1);
}

#[test]
fn denied_changes_nothing() {
    let limits = Limits::new().rpm(1).window(Duration::from_secs(10));
    let mut s = KeyState::new();
    reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
    let before = s.clone();
    let d = s
        .reserve(
            &limits,
            &Cost::request(),
            at(0),
            Some(Duration::from_secs(1)),
        )
        .unwrap();
    assert!(matches!(d, Decision::Denied(_)));
    assert_eq!(s, before);
}

#[test]
fn token_bucket_refills_continuously() {
    let limits = Limits::new()
        .tpm(1000)
        .window(Duration::from_secs(10))
        .guard(Duration::from_secs(1))
        .window_kind(WindowKind::TokenBucket);
    let mut s = KeyState::new();
    // The bucket holds 900 (the guard band's refill is kept back).
    let r = reserved(s.reserve(&limits, &Cost::tokens(900), at(0), None).unwrap());
    assert_eq!(r.slot, at(0));
    // 100 tokens refill in one second.
    let r = reserved(s.reserve(&limits, &Cost::tokens(100), at(0), None).unwrap());
    assert_eq!(r.slot, at(1_000_000));
}

#[test]
fn refunding_drained_consumption_does_not_overfill_a_bucket() {
    let limits = Limits::new()
        .tpm(1000)
        .window(Duration::from_secs(10))
        .guard(Duration::ZERO)
        .window_kind(WindowKind::TokenBucket);
    let mut s = KeyState::new();
    let a = reserved(
        s.reserve(&limits, &Cost::tokens(1000), at(0), None)
            .unwrap(),
    );
    // 100 s later the bucket is full again; B takes 500.
    reserved(
        s.reserve(&limits, &Cost::tokens(500), at(100_000_000), None)
            .unwrap(),
    );
    s.refund(&limits, a.record, at(100_000_000)).unwrap();
    // Only 500 remain: a request of 600 must wait.
    let r = reserved(
        s.reserve(&limits, &Cost::tokens(600), at(100_000_000), None)
            .unwrap(),
    );
    assert!(r.slot > at(100_000_000));
}

#[test]
fn calendar_day_resets_at_local_midnight() {
    let limits = Limits::new()
        .rpd(2)
        .guard(Duration::ZERO)
        .day(DayWindow::Calendar {
            reset_minutes: 0,
            zone: TimeZone::Utc,
        });
    let mut s = KeyState::new();
    // T0 is midnight UTC.
    reserved(s.reserve(&limits, &Cost::request(), at(5), None).unwrap());
    reserved(s.reserve(&limits, &Cost::request(), at(6), None).unwrap());
    let r = reserved(s.reserve(&limits, &Cost::request(), at(7), None).unwrap());
    assert_eq!(r.slot, at(DAY_US));
}

#[test]
fn calendar_day_guard_counts_late_slots_for_both_days() {
    let limits = Limits::new()
        .rpd(2)
        .guard(Duration::from_millis(100))
        .day(DayWindow::Calendar {
            reset_minutes: 0,
            zone: TimeZone::Utc,
        });
    let mut s = KeyState::new();
    let late = DAY_US - 50_000; // 50 ms before midnight
    reserved(
        s.reserve(&limits, &Cost::request(), at(late), None)
            .unwrap(),
    );
    reserved(
        s.reserve(&limits, &Cost::request(), at(DAY_US), None)
            .unwrap(),
    );
    // The next day already counts both.
    let r = reserved(
        s.reserve(&limits, &Cost::request(), at(DAY_US + 1), None)
            .unwrap(),
    );
    assert_eq!(r.slot, at(2 * DAY_US));
}

#[test]
fn smoothing_spaces_slots() {
    let limits = Limits::new().rps(10).smoothing(true).guard(Duration::ZERO);
    let mut s = KeyState::new();
    let a = reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
    let b = reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
    assert_eq!(b.slot.as_micros() - a.slot.as_micros(), 100_000);
}

#[test]
fn cooldown_delays_slots() {
    let limits = Limits::new().rpm(100);
    let mut s = KeyState::new();
    s.set_cooldown(at(5_000_000));
    let r = reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
    assert_eq!(r.slot, at(5_000_000));
    assert_eq!(s.cooldown(at(0)), Some(at(5_000_000)));
    assert_eq!(s.cooldown(at(5_000_000)), None);
}

#[test]
fn state_is_forgotten_only_when_idle() {
    let limits = Limits::new().rpm(10).window(Duration::from_secs(1));
    let mut s = KeyState::new();
    reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
    assert!(!s.is_idle(&limits, at(1_000)));
    let later = at(RECORD_RETENTION.as_micros() as u64 + 1);
    s.status(&limits, later).unwrap();
    assert!(s.is_idle(&limits, later));
    assert_eq!(s.records(), 0);
}

// Regressions found in review: each sequence once over-admitted or
// panicked.

#[test]
fn refunding_a_waiter_queued_into_tomorrow_keeps_todays_count() {
    let limits = Limits::new()
        .rpd(2)
        .guard(Duration::ZERO)
        .day(DayWindow::Calendar {
            reset_minutes: 0,
            zone: TimeZone::Utc,
        });
    let mut s = KeyState::new();
    reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
    reserved(s.reserve(&limits, &Cost::request(), at(1), None).unwrap());
    let c = reserved(s.reserve(&limits, &Cost::request(), at(2), None).unwrap());
    assert_eq!(c.slot, at(DAY_US));
    s.refund(&limits, c.record, at(3)).unwrap();
    let r = reserved(s.reserve(&limits, &Cost::request(), at(4), None).unwrap());
    assert_eq!(r.slot, at(DAY_US));
}

#[test]
fn refunding_a_record_counted_before_a_limit_was_on_takes_nothing_from_others() {
    let mut s = KeyState::new();
    let r = reserved(
        s.reserve(&Limits::new(), &Cost::tokens(500), at(0), None)
            .unwrap(),
    );
    let limits = Limits::new()
        .tpm(1000)
        .window(Duration::from_secs(10))
        .guard(Duration::ZERO);
    reserved(
        s.reserve(&limits, &Cost::tokens(1000), at(0), None)
            .unwrap(),
    );
    s.refund(&limits, r.record, at(0)).unwrap();
    let next = reserved(s.reserve(&limits, &Cost::tokens(500), at(1), None).unwrap());
    assert!(next.slot >= at(10_000_000));
}

#[test]
fn adjust_up_after_the_window_changed_still_counts() {
    let l60 = Limits::new()
        .tpm(1000)
        .window(Duration::from_secs(60))
        .guard(Duration::ZERO);
    let l10 = l60.window(Duration::from_secs(10));
    let mut s = KeyState::new();
    let r = reserved(s.reserve(&l60, &Cost::tokens(1), at(0), None).unwrap());
    s.adjust(&l10, r.record, &Cost::tokens(1000), at(1_000_000))
        .unwrap();
    let next = reserved(
        s.reserve(&l10, &Cost::tokens(999), at(1_000_000), None)
            .unwrap(),
    );
    assert!(next.slot >= at(10_000_000));
}

#[test]
fn record_ids_are_not_reused_after_a_state_is_forgotten() {
    let limits = Limits::new().tpm(1000).window(Duration::from_secs(10));
    let mut s = KeyState::new();
    let old = reserved(s.reserve(&limits, &Cost::tokens(10), at(0), None).unwrap());
    let later = at(20 * 60 * 1_000_000);
    assert!(s.is_idle(&limits, later));
    let mut fresh = KeyState::new();
    let new = reserved(
        fresh
            .reserve(&limits, &Cost::tokens(1000), later, None)
            .unwrap(),
    );
    assert_ne!(old.record, new.record);
    assert!(matches!(
        fresh.adjust(&limits, old.record, &Cost::tokens(10), later),
        Err(Error::UnknownRecord(_))
    ));
}

#[test]
fn token_bucket_credit_after_a_rebase_does_not_refill_drained_tokens() {
    let limits = Limits::new()
        .tpm(1000)
        .window(Duration::from_secs(10))
        .guard(Duration::ZERO)
        .window_kind(WindowKind::TokenBucket);
    let mut s = KeyState::new();
    let p = reserved(s.reserve(&limits, &Cost::tokens(100), at(0), None).unwrap());
    let l = reserved(s.reserve(&limits, &Cost::tokens(500), at(0), None).unwrap());
    s.adjust(&limits, p.record, &Cost::tokens(600), at(20_000_000))
        .unwrap();
    s.refund(&limits, l.record, at(20_000_000)).unwrap();
    let r = reserved(
        s.reserve(&limits, &Cost::tokens(1000), at(20_000_000), None)
            .unwrap(),
    );
    assert!(r.slot >= at(25_000_000), "{:?}", r.slot);
}

#[test]
fn huge_but_valid_amounts_neither_wrap_nor_panic() {
    let limits = Limits::new()
        .tpm(1000)
        .window(Duration::from_secs(60))
        .guard(Duration::ZERO)
        .window_kind(WindowKind::TokenBucket);
    let mut s = KeyState::new();
    let a = reserved(
        s.reserve(&limits, &Cost::tokens(1000), at(0), None)
            .unwrap(),
    );
    s.adjust(&limits, a.record, &Cost::tokens(MAX_AMOUNT), at(0))
        .unwrap();
    let r = reserved(
        s.reserve(&limits, &Cost::tokens(1000), at(0), None)
            .unwrap(),
    );
    assert!(r.slot >= at(60_000_000));
    // A dimension that is off still sums without overflow.
    let limits = Limits::new().rpm(20_000);
    let mut s = KeyState::new();
    for _ in 0..20_000 {
        reserved(
            s.reserve(&limits, &Cost::tokens(MAX_AMOUNT), at(0), None)
                .unwrap(),
        );
    }
}

#[test]
fn absurd_times_and_waits_are_handled() {
    let limits = Limits::new().rpm(1);
    let mut s = KeyState::new();
    assert!(matches!(
        s.reserve(
            &limits,
            &Cost::request(),
            Timestamp::from_micros(u64::MAX - 1000),
            None
        ),
        Err(Error::InvalidNumber { field: "now", .. })
    ));
    reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
    let huge = Duration::from_secs(1 << 58);
    assert!(matches!(
        s.reserve(&limits, &Cost::request(), at(0), Some(huge))
            .unwrap(),
        Decision::Reserved(_)
    ));
}

#[test]
fn time_never_goes_back_for_a_key() {
    let limits = Limits::new().rpm(1).window(Duration::from_secs(10));
    let mut s = KeyState::new();
    let a = reserved(
        s.reserve(&limits, &Cost::request(), at(5_000_000), None)
            .unwrap(),
    );
    // A caller whose clock reading is older reaches the state later.
    let b = reserved(
        s.reserve(&limits, &Cost::request(), at(1_000_000), None)
            .unwrap(),
    );
    assert!(b.slot > a.slot);
    assert_eq!(b.now, at(5_000_000));
}
