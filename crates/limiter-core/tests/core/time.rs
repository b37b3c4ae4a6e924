//! Clocks: the manual clock and its sleepers.

use super::prelude::*;

#[tokio::test]
async fn manual_sleep_wakes_only_when_advanced() {
    let clock = ManualClock::new();
    let c2 = clock.clone();
    let task = tokio::spawn(async move { c2.sleep(Duration::from_secs(5)).await });
    tokio::task::yield_now().await;
    while clock.sleepers() == 0 {
        tokio::task::yield_now().await;
    }
    clock.advance(Duration::from_secs(4));
    tokio::task::yield_now().await;
    assert!(!task.is_finished());
    clock.advance(Duration::from_secs(1));
    task.await.unwrap();
    assert_eq!(clock.sleepers(), 0);
}

#[test]
fn timestamp_arithmetic_saturates() {
    let t = Timestamp::from_secs(10);
    assert_eq!(t.saturating_sub(Duration::from_secs(20)), Timestamp::EPOCH);
    assert_eq!(t.duration_since(Timestamp::from_secs(11)), Duration::ZERO);
    assert_eq!(format!("{t}"), "10.000000");
}

/// A sleep dropped before its deadline is forgotten: `next_deadline` and
/// `sleepers` tell only of the sleeps still waiting.
#[test]
fn next_deadline_forgets_dropped_sleepers() {
    use std::task::{Context, Waker};

    let clock = ManualClock::new();
    let t0 = clock.now();
    let mut cx = Context::from_waker(Waker::noop());
    let mut early = clock.sleep(Duration::from_secs(5));
    let mut late = clock.sleep(Duration::from_secs(10));
    assert!(early.as_mut().poll(&mut cx).is_pending());
    assert!(late.as_mut().poll(&mut cx).is_pending());
    assert_eq!(
        clock.next_deadline(),
        Some(t0.saturating_add(Duration::from_secs(5)))
    );
    drop(early);
    assert_eq!(
        clock.next_deadline(),
        Some(t0.saturating_add(Duration::from_secs(10)))
    );
    assert_eq!(clock.sleepers(), 1);
    drop(late);
    assert_eq!(clock.next_deadline(), None);
    assert_eq!(clock.sleepers(), 0);
    // A sleep that woke is gone too.
    let mut woke = clock.sleep(Duration::from_secs(1));
    assert!(woke.as_mut().poll(&mut cx).is_pending());
    clock.advance(Duration::from_secs(1));
    assert!(woke.as_mut().poll(&mut cx).is_ready());
    assert_eq!(clock.next_deadline(), None);
}
