//! The limits beyond requests and tokens: split input/output, burndown, images, per-second limits and smoothing.

use crate::harness::*;

/// Split mode: input and output limits bind independently.
pub async fn split_input_output_limits(h: Harness) {
    let l = h.limiter(Limits::new().input_tpm(1000).output_tpm(100));
    l.acquire(Cost::split(900, 50)).await.unwrap();
    // Output has room, input does not.
    assert!(l.try_acquire(Cost::split(200, 10)).await.unwrap().is_err());
    // Input has room, output does not.
    assert!(l.try_acquire(Cost::split(10, 60)).await.unwrap().is_err());
    l.try_acquire(Cost::split(100, 50)).await.unwrap().unwrap();
    let s = l.status().await.unwrap();
    assert_eq!(s.get(Dimension::InputTpm).unwrap().used, 1000);
    assert_eq!(s.get(Dimension::OutputTpm).unwrap().used, 100);
}

/// Burndown: output tokens count `burndown` times in combined limits only.
pub async fn burndown_weights_output(h: Harness) {
    let l = h.limiter(Limits::new().tpm(10_000).output_tpm(5000).burndown(5.0));
    l.acquire(Cost::split(3000, 1000)).await.unwrap();
    let s = l.status().await.unwrap();
    assert_eq!(s.get(Dimension::Tpm).unwrap().used, 8000);
    assert_eq!(s.get(Dimension::OutputTpm).unwrap().used, 1000);
    assert!(l.try_acquire(Cost::split(0, 401)).await.unwrap().is_err());
    l.try_acquire(Cost::split(0, 400)).await.unwrap().unwrap();
}

/// Images per window limit image requests.
pub async fn images_per_window(h: Harness) {
    let l = h.limiter(Limits::new().ipm(5));
    l.acquire(Cost::images(4)).await.unwrap();
    assert!(l.try_acquire(Cost::images(2)).await.unwrap().is_err());
    l.try_acquire(Cost::images(1)).await.unwrap().unwrap();
    // Requests without images pass.
    l.try_acquire(Cost::tokens(10)).await.unwrap().unwrap();
}

/// Requests per second: a rolling one-second window.
pub async fn requests_per_second(h: Harness) {
    let limits = Limits::new().rps(2).guard(ms(10));
    let t0 = h.clock.now();
    reserve(&h, &limits, Cost::request()).await;
    reserve(&h, &limits, Cost::request()).await;
    let r = reserve(&h, &limits, Cost::request()).await;
    let exact = t0.saturating_add(ms(1010));
    assert!(r.slot >= exact && r.slot <= exact.saturating_add(bucket_width(secs(1), ms(10))));
}

/// Smoothing: consecutive slots at least 1/rps apart.
pub async fn smoothing_spaces_requests(h: Harness) {
    let limits = Limits::new().rps(4).smoothing(true).guard(Duration::ZERO);
    let mut slots = Vec::new();
    for _ in 0..4 {
        slots.push(reserve(&h, &limits, Cost::request()).await.slot);
    }
    for w in slots.windows(2) {
        assert_eq!(w[1].duration_since(w[0]), ms(250));
    }
}
