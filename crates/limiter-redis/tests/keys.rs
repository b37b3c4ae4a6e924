//! Every Redis key a limiter writes has a TTL (abandoned state vanishes),
//! and all of one limiter's keys share one hash tag.

#![cfg(feature = "redis-rs")]

use std::time::Duration;

use limiter_core::{
    CooldownEnd, Cost, DayWindow, LeaseDecision, LeaseRequest, LeaseStore, Limits, Store,
};
use limiter_redis::{KeyLayout, RedisStore};
use limiter_test_redis::RedisServer;

async fn ttls(conn: &mut redis::aio::MultiplexedConnection, keys: &[String]) -> Vec<i64> {
    let mut out = Vec::new();
    for k in keys {
        out.push(redis::cmd("PTTL").arg(k).query_async(conn).await.unwrap());
    }
    out
}

#[tokio::test]
async fn every_key_has_a_ttl_and_one_hash_slot() {
    let server = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys = KeyLayout::default().keys("model{x}");
    // First only the per-window limit: the state, queue and window buckets.
    let limits = Limits::new().rpm(1).window(Duration::from_secs(10));
    store
        .reserve("model{x}", &limits, &Cost::request(), None)
        .await
        .unwrap();
    store
        .reserve("model{x}", &limits, &Cost::request(), None)
        .await
        .unwrap();
    let t = ttls(&mut conn, &keys).await;
    assert!(t[0] > 0 && t[1] > 0 && t[2] > 0, "{t:?}");
    // Later calls create the other keys, whose TTL must be set too even
    // when the deadline itself does not move.
    let more = limits.rps(5).rpd(100);
    store
        .reserve("model{x}", &more, &Cost::request(), None)
        .await
        .unwrap();
    let more = more.day(DayWindow::Rolling);
    store
        .reserve("model{x}", &more, &Cost::request(), None)
        .await
        .unwrap();
    let t = ttls(&mut conn, &keys).await;
    for (k, ttl) in keys.iter().zip(&t) {
        // -2: the key does not exist (nothing in it); -1 would be a leak.
        assert!(*ttl > 0 || *ttl == -2, "{k}: {ttl}");
    }
    assert!(t[3] > 0 && t[4] > 0, "rps and day buckets exist: {t:?}");
    // A cooldown past the deadline keeps the state that long.
    store
        .cool_down(
            "model{x}",
            CooldownEnd::After(Duration::from_secs(48 * 3600)),
        )
        .await
        .unwrap();
    let t: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(t > 48 * 3600 * 1000, "{t}");
    // One hash tag for all (the Cluster suite runs the scripts for real).
    let tag = &keys[0][..keys[0].find('}').unwrap() + 1];
    assert_eq!(tag, "{llm-limiter:model%7Bx%7D}");
    assert!(keys.iter().all(|k| k.starts_with(tag)), "{keys:?}");
}

#[tokio::test]
async fn lease_keys_have_ttls_and_share_the_hash_tag() {
    let server = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys = KeyLayout::default().lease_keys("model{x}");
    let tag = "{llm-limiter:model%7Bx%7D}";
    assert!(keys.iter().all(|k| k.starts_with(tag)), "{keys:?}");
    // A status of an unknown key keeps only its clock (for a while).
    store.lease_status("model{x}").await.unwrap();
    let t = ttls(&mut conn, &keys).await;
    assert_eq!(t[..3], [-2, -2, -2], "{t:?}");
    assert!(t[3] > 0, "{t:?}");
    // A lease and a ticket: every key lives at least until its deadline,
    // the clock a day longer.
    let req = LeaseRequest::new(1, Duration::from_secs(30));
    let LeaseDecision::Granted(lease) = store.acquire_lease("model{x}", &req).await.unwrap() else {
        panic!("the first lease is granted");
    };
    let LeaseDecision::Full {
        ticket: Some(ticket),
        ..
    } = store
        .acquire_lease("model{x}", &req.queue(None))
        .await
        .unwrap()
    else {
        panic!("the second waits");
    };
    let t = ttls(&mut conn, &keys).await;
    for ttl in &t[..3] {
        assert!(*ttl >= 30_000 && *ttl <= 120_000, "{t:?}");
    }
    assert!(t[3] > 24 * 3600 * 1000, "{t:?}");
    // A renewal with a longer time to live moves the TTL.
    let hour = Duration::from_secs(3600);
    assert!(store
        .renew_lease("model{x}", lease.id, hour)
        .await
        .unwrap()
        .is_some());
    let t = ttls(&mut conn, &keys).await;
    assert!(t[0] >= 3_600_000, "{t:?}");
    assert!(t[3] > 25 * 3600 * 1000, "{t:?}");
    // Released, the lease keys go (empty sorted sets are not kept).
    assert!(store.release_lease("model{x}", lease.id).await.unwrap());
    assert!(store.release_lease("model{x}", ticket).await.unwrap());
    let t = ttls(&mut conn, &keys).await;
    assert_eq!(t[..3], [-2, -2, -2], "{t:?}");
    assert!(t[3] > 0, "{t:?}");
    // Nothing leaks without a TTL, under the reservation keys either.
    let all: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    for k in &all {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{k}: {ttl}");
    }
}
