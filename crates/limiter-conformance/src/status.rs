//! Status: usage, queue and cooldown of a key.

use crate::harness::*;

/// Status reports usage of every enabled limit and the queue.
pub async fn status_reports_usage_and_queue(h: Harness) {
    let limits = Limits::new().rpm(2).tpm(1000).window(secs(10));
    let l = h.limiter(limits);
    let s = l.status().await.unwrap();
    assert_eq!(s.usage.len(), 2);
    assert_eq!(s.queue_depth, 0);
    l.acquire(Cost::tokens(300)).await.unwrap();
    l.acquire(Cost::tokens(300)).await.unwrap();
    let r = reserve(&h, &limits, Cost::tokens(10)).await;
    let s = l.status().await.unwrap();
    assert_eq!(s.get(Dimension::Rpm).unwrap().used, 3);
    assert_eq!(s.get(Dimension::Tpm).unwrap().used, 610);
    assert_eq!(s.get(Dimension::Tpm).unwrap().limit, 1000);
    assert_eq!(s.queue_depth, 1);
    assert_eq!(s.queue_tail, Some(r.slot));
    assert_eq!(s.now, h.clock.now());
}
