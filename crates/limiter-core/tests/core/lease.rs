//! LeaseState: grants under a cap, FIFO tickets, expiry, renewal, bad input.

use super::prelude::*;
use limiter_conformance::leases::{lease as granted, ticket};

fn at(ms: u64) -> Timestamp {
    Timestamp::from_micros(1_000_000_000 + ms * 1000)
}

fn req(cap: u64) -> LeaseRequest {
    LeaseRequest::new(cap, Duration::from_millis(1000))
}

#[test]
fn cap_holds_and_release_frees() {
    let mut s = LeaseState::new();
    let a = granted(s.acquire(&req(2), at(0)).unwrap());
    let _b = granted(s.acquire(&req(2), at(0)).unwrap());
    let full = s.acquire(&req(2), at(0)).unwrap();
    assert!(matches!(
        full,
        LeaseDecision::Full {
            ticket: None,
            ahead: 0,
            held: 2,
            ..
        }
    ));
    assert!(s.release(a.id, at(1)).unwrap());
    assert!(!s.release(a.id, at(1)).unwrap());
    granted(s.acquire(&req(2), at(1)).unwrap());
}

#[test]
fn unrenewed_leases_expire_and_renewed_ones_do_not() {
    let mut s = LeaseState::new();
    let a = granted(s.acquire(&req(2), at(0)).unwrap());
    let b = granted(s.acquire(&req(2), at(0)).unwrap());
    assert_eq!(a.expires, at(1000));
    assert_eq!(
        s.renew(b.id, Duration::from_millis(1000), at(900)).unwrap(),
        Some(at(1900))
    );
    // At 1000 a is gone, b is not.
    let st = s.status(at(1000)).unwrap();
    assert_eq!((st.held, st.next_expiry), (1, Some(at(1900))));
    assert_eq!(
        s.renew(a.id, Duration::from_millis(1000), at(1000))
            .unwrap(),
        None
    );
    granted(s.acquire(&req(2), at(1000)).unwrap());
}

#[test]
fn waiters_are_served_in_queue_order() {
    let mut s = LeaseState::new();
    let held = granted(s.acquire(&req(1), at(0)).unwrap());
    let (t1, a1) = ticket(s.acquire(&req(1).queue(None), at(1)).unwrap());
    let (t2, a2) = ticket(s.acquire(&req(1).queue(None), at(2)).unwrap());
    assert_eq!((a1, a2), (0, 1));
    s.release(held.id, at(3)).unwrap();
    // A newcomer without a ticket does not jump the queue, nor does t2.
    assert!(matches!(
        s.acquire(&req(1), at(3)).unwrap(),
        LeaseDecision::Full { ahead: 2, .. }
    ));
    assert_eq!(
        ticket(s.acquire(&req(1).queue(Some(t2)), at(3)).unwrap()),
        (t2, 1)
    );
    granted(s.acquire(&req(1).queue(Some(t1)), at(4)).unwrap());
    assert_eq!(s.status(at(4)).unwrap().waiting, 1);
}

#[test]
fn expired_tickets_stop_holding_the_queue() {
    let mut s = LeaseState::new();
    granted(s.acquire(&req(1), at(0)).unwrap());
    let (t1, _) = ticket(s.acquire(&req(1).queue(None), at(0)).unwrap());
    let (t2, _) = ticket(s.acquire(&req(1).queue(None), at(500)).unwrap());
    // t1 never asks again; at 1000 the lease and t1 have expired.
    granted(s.acquire(&req(1).queue(Some(t2)), at(1000)).unwrap());
    // t1 asks late: a new ticket at the back.
    let (t1b, ahead) = ticket(s.acquire(&req(1).queue(Some(t1)), at(1001)).unwrap());
    assert_ne!(t1b, t1);
    assert_eq!(ahead, 0);
}

#[test]
fn several_free_slots_serve_several_waiters() {
    let mut s = LeaseState::new();
    let a = granted(s.acquire(&req(2), at(0)).unwrap());
    let b = granted(s.acquire(&req(2), at(0)).unwrap());
    let (t1, _) = ticket(s.acquire(&req(2).queue(None), at(1)).unwrap());
    let (t2, _) = ticket(s.acquire(&req(2).queue(None), at(1)).unwrap());
    s.release(a.id, at(2)).unwrap();
    s.release(b.id, at(2)).unwrap();
    // Two free slots: the second waiter need not wait for the first.
    granted(s.acquire(&req(2).queue(Some(t2)), at(3)).unwrap());
    granted(s.acquire(&req(2).queue(Some(t1)), at(3)).unwrap());
}

#[test]
fn released_tickets_leave_the_queue() {
    let mut s = LeaseState::new();
    let a = granted(s.acquire(&req(1), at(0)).unwrap());
    let (t1, _) = ticket(s.acquire(&req(1).queue(None), at(0)).unwrap());
    let (t2, _) = ticket(s.acquire(&req(1).queue(None), at(0)).unwrap());
    assert!(s.release(t1, at(1)).unwrap());
    s.release(a.id, at(1)).unwrap();
    granted(s.acquire(&req(1).queue(Some(t2)), at(1)).unwrap());
}

#[test]
fn bad_input_changes_nothing() {
    let mut s = LeaseState::new();
    granted(s.acquire(&req(1), at(0)).unwrap());
    let before = s.clone();
    for bad in [
        LeaseRequest::new(0, Duration::from_secs(1)),
        LeaseRequest::new(MAX_LEASE_CAP + 1, Duration::from_secs(1)),
        LeaseRequest::new(1, Duration::ZERO),
        LeaseRequest::new(1, MAX_LEASE_TTL + Duration::from_secs(1)),
    ] {
        assert!(matches!(
            s.acquire(&bad.queue(None), at(1)),
            Err(Error::InvalidNumber { .. })
        ));
    }
    assert!(matches!(
        s.acquire(&req(1), Timestamp::from_micros(u64::MAX)),
        Err(Error::InvalidNumber { .. })
    ));
    assert!(s.renew(LeaseId(1), Duration::ZERO, at(1)).is_err());
    assert_eq!(s, before);
}

#[test]
fn time_never_goes_back_and_idle_state_is_told() {
    let mut s = LeaseState::new();
    let a = granted(s.acquire(&req(1), at(500)).unwrap());
    assert!(!s.is_idle(at(600)));
    // An earlier "now" is taken as the latest seen.
    let st = s.status(at(0)).unwrap();
    assert_eq!(st.now, at(500));
    assert_eq!(a.expires, at(1500));
    assert!(s.is_idle(at(1500)));
    // A state dropped when idle and made anew never repeats an id.
    let mut fresh = LeaseState::new();
    let b = granted(fresh.acquire(&req(1), at(1500)).unwrap());
    assert!(b.id > a.id);
    assert_eq!("42".parse::<LeaseId>().unwrap(), LeaseId(42));
    assert!("x".parse::<LeaseId>().is_err());
}
