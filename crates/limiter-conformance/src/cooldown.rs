//! Cooldowns shared through the store.

use crate::harness::*;

/// A cooldown set through one limiter pauses the key for every limiter
/// sharing the store; reservations made meanwhile go after it.
pub async fn cooldown_is_shared_and_delays(h: Harness) {
    let limits = Limits::new().rpm(100);
    let a = h.limiter(limits);
    let b = h.limiter(limits);
    assert_eq!(b.cooldown_end().await.unwrap(), None);
    a.cool_down(secs(30)).await.unwrap();
    let until = h.clock.now().saturating_add(secs(30));
    assert_eq!(b.cooldown_end().await.unwrap(), Some(until));
    // An earlier end does not shorten it.
    a.cool_down(secs(5)).await.unwrap();
    assert_eq!(b.cooldown_end().await.unwrap(), Some(until));
    let d = b.try_acquire(Cost::request()).await.unwrap().unwrap_err();
    assert_eq!(d.earliest, until);
    assert_eq!(reserve(&h, &limits, Cost::request()).await.slot, until);
    h.advance(secs(30)).await;
    assert_eq!(b.cooldown_end().await.unwrap(), None);
    assert_eq!(b.status().await.unwrap().cooldown_until, None);
}
