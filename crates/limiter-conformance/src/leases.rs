//! Concurrency leases: cap, expiry, FIFO tickets, bad input, contention.

use crate::harness::*;

/// The lease of a decision that granted one.
///
/// # Panics
/// When `d` did not grant a lease.
pub fn lease(d: LeaseDecision) -> Lease {
    match d {
        LeaseDecision::Granted(l) => l,
        other => panic!("expected a lease, got {other:?}"),
    }
}

/// The ticket, and how many wait ahead of it, of a decision that queued.
///
/// # Panics
/// When `d` gave no ticket.
pub fn ticket(d: LeaseDecision) -> (LeaseId, u64) {
    match d {
        LeaseDecision::Full {
            ticket: Some(t),
            ahead,
            ..
        } => (t, ahead),
        other => panic!("expected a ticket, got {other:?}"),
    }
}

async fn leases_held(h: &LeaseHarness) -> (u64, u64) {
    let s = h.store.lease_status(&h.key).await.unwrap();
    (s.held, s.waiting)
}

/// Leases: at most `cap` at once; a full cap refuses without changing
/// anything; a release frees a slot at once; a second release says it
/// held nothing.
pub async fn leases_cap_holds_and_release_frees(h: LeaseHarness) {
    let req = LeaseRequest::new(2, secs(30));
    let a = lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
    assert_eq!(a.expires, h.clock.now().saturating_add(secs(30)));
    let b = lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
    assert_ne!(a.id, b.id);
    match h.store.acquire_lease(&h.key, &req).await.unwrap() {
        LeaseDecision::Full {
            ticket: None,
            ahead: 0,
            held: 2,
            next_expiry,
            ..
        } => assert_eq!(next_expiry, Some(a.expires)),
        other => panic!("expected full, got {other:?}"),
    }
    assert_eq!(leases_held(&h).await, (2, 0));
    assert!(h.store.release_lease(&h.key, a.id).await.unwrap());
    assert!(!h.store.release_lease(&h.key, a.id).await.unwrap());
    assert_eq!(leases_held(&h).await, (1, 0));
    lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
    // A cap lowered below what is held refuses until enough leave.
    let one = LeaseRequest::new(1, secs(30));
    assert!(matches!(
        h.store.acquire_lease(&h.key, &one).await.unwrap(),
        LeaseDecision::Full { held: 2, .. }
    ));
}

/// Leases expire unless renewed (a crashed holder's slot comes back);
/// a renewed one lives on; an expired one cannot be renewed.
pub async fn leases_expire_unless_renewed(h: LeaseHarness) {
    let req = LeaseRequest::new(2, secs(10));
    let a = lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
    let b = lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
    h.advance(secs(9)).await;
    let renewed = h.store.renew_lease(&h.key, b.id, secs(10)).await.unwrap();
    assert_eq!(renewed, Some(h.clock.now().saturating_add(secs(10))));
    h.advance(ms(999)).await;
    assert_eq!(leases_held(&h).await, (2, 0));
    h.advance(ms(1)).await;
    assert_eq!(leases_held(&h).await, (1, 0));
    assert_eq!(
        h.store.renew_lease(&h.key, a.id, secs(10)).await.unwrap(),
        None
    );
    assert!(!h.store.release_lease(&h.key, a.id).await.unwrap());
    let c = lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
    assert!(c.id != a.id && c.id != b.id, "ids are not reused");
    // Renewing something never granted says so.
    assert_eq!(
        h.store
            .renew_lease(&h.key, LeaseId(9_999_999), secs(1))
            .await
            .unwrap(),
        None
    );
}

/// Lease waiters are served in the order they queued: a newcomer
/// without a ticket and a later ticket both wait for the first; a
/// waiter that stops asking no longer holds the queue once its ticket
/// expires; a ticket released leaves the queue at once.
pub async fn lease_waiters_are_fifo(h: LeaseHarness) {
    let ttl = secs(10);
    let req = LeaseRequest::new(1, ttl);
    let held = lease(h.store.acquire_lease(&h.key, &req).await.unwrap());
    let (t1, a1) = ticket(
        h.store
            .acquire_lease(&h.key, &req.queue(None))
            .await
            .unwrap(),
    );
    let (t2, a2) = ticket(
        h.store
            .acquire_lease(&h.key, &req.queue(None))
            .await
            .unwrap(),
    );
    let (t3, a3) = ticket(
        h.store
            .acquire_lease(&h.key, &req.queue(None))
            .await
            .unwrap(),
    );
    assert_eq!((a1, a2, a3), (0, 1, 2));
    assert_eq!(leases_held(&h).await, (1, 3));
    assert!(h.store.release_lease(&h.key, held.id).await.unwrap());
    // t2 asks first: t1 is ahead of it.
    assert_eq!(
        ticket(
            h.store
                .acquire_lease(&h.key, &req.queue(Some(t2)))
                .await
                .unwrap()
        ),
        (t2, 1)
    );
    assert!(matches!(
        h.store.acquire_lease(&h.key, &req).await.unwrap(),
        LeaseDecision::Full {
            ticket: None,
            ahead: 3,
            ..
        }
    ));
    let first = lease(
        h.store
            .acquire_lease(&h.key, &req.queue(Some(t1)))
            .await
            .unwrap(),
    );
    assert_eq!(leases_held(&h).await, (1, 2));
    // t3 leaves; t2 keeps asking; the holder goes.
    assert!(h.store.release_lease(&h.key, t3).await.unwrap());
    h.advance(secs(5)).await;
    ticket(
        h.store
            .acquire_lease(&h.key, &req.queue(Some(t2)))
            .await
            .unwrap(),
    );
    assert!(h.store.release_lease(&h.key, first.id).await.unwrap());
    lease(
        h.store
            .acquire_lease(&h.key, &req.queue(Some(t2)))
            .await
            .unwrap(),
    );
    // A waiter that stops asking: its ticket expires after the ttl.
    let (t4, _) = ticket(
        h.store
            .acquire_lease(&h.key, &req.queue(None))
            .await
            .unwrap(),
    );
    h.advance(secs(3)).await;
    let (t5, a5) = ticket(
        h.store
            .acquire_lease(&h.key, &req.queue(None))
            .await
            .unwrap(),
    );
    assert_eq!(a5, 1);
    h.advance(secs(7)).await; // t2's lease and t4's ticket expire
    let l5 = lease(
        h.store
            .acquire_lease(&h.key, &req.queue(Some(t5)))
            .await
            .unwrap(),
    );
    // t4 comes back late: a new ticket, at the back.
    let (t4b, ahead) = ticket(
        h.store
            .acquire_lease(&h.key, &req.queue(Some(t4)))
            .await
            .unwrap(),
    );
    assert_ne!(t4b, t4);
    assert_eq!(ahead, 0);
    assert!(h.store.release_lease(&h.key, l5.id).await.unwrap());
}

/// Bad lease input (cap 0 or too large, a time to live of zero or over
/// a day) is a typed error and changes nothing.
pub async fn lease_bad_input_changes_nothing(h: LeaseHarness) {
    let ok = LeaseRequest::new(1, secs(10));
    let a = lease(h.store.acquire_lease(&h.key, &ok).await.unwrap());
    for bad in [
        LeaseRequest::new(0, secs(10)),
        LeaseRequest::new(limiter_core::MAX_LEASE_CAP + 1, secs(10)),
        LeaseRequest::new(1, Duration::ZERO),
        LeaseRequest::new(1, limiter_core::MAX_LEASE_TTL + secs(1)),
    ] {
        for req in [bad, bad.queue(None)] {
            let r = h.store.acquire_lease(&h.key, &req).await;
            assert!(
                matches!(r, Err(Error::InvalidNumber { .. })),
                "{req:?}: {r:?}"
            );
        }
    }
    let r = h.store.renew_lease(&h.key, a.id, Duration::ZERO).await;
    assert!(matches!(r, Err(Error::InvalidNumber { .. })), "{r:?}");
    let r = h
        .store
        .renew_lease(&h.key, a.id, limiter_core::MAX_LEASE_TTL + secs(1))
        .await;
    assert!(matches!(r, Err(Error::InvalidNumber { .. })), "{r:?}");
    assert_eq!(leases_held(&h).await, (1, 0));
    let s = h.store.lease_status(&h.key).await.unwrap();
    assert_eq!(s.next_expiry, Some(a.expires));
}

/// Under contention from many tasks, exactly `cap` leases are granted;
/// leases live apart from the key's reservations and from other keys.
pub async fn leases_contention_and_independence(h: LeaseHarness) {
    let cap = 7;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (store, key) = (h.store.clone(), h.key.clone());
        tasks.push(tokio::spawn(async move {
            store
                .acquire_lease(&key, &LeaseRequest::new(cap, secs(60)))
                .await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        if let LeaseDecision::Granted(l) = t.await.unwrap().unwrap() {
            assert!(ids.insert(l.id));
        }
    }
    assert_eq!(ids.len() as u64, cap);
    // Reservations on the same key are not affected, nor other keys.
    let l = h.limiter(Limits::new().rpm(1));
    assert!(l.try_acquire(Cost::request()).await.unwrap().is_ok());
    let other = format!("{}:other", h.key);
    lease(
        h.store
            .acquire_lease(&other, &LeaseRequest::new(1, secs(60)))
            .await
            .unwrap(),
    );
    assert_eq!(leases_held(&h).await, (cap, 0));
    let s = h.store.status(&h.key, &Limits::new().rpm(1)).await.unwrap();
    assert_eq!(s.get(Dimension::Rpm).unwrap().used, 1);
}
