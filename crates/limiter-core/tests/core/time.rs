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
