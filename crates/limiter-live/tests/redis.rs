//! The live limiter's checks on Redis, through both clients, on one
//! `redis-server` shared by every check of this binary (each check's store
//! has a key prefix of its own), with the manual clock's time passed to the
//! scripts.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use limiter_core::{LeaseStore, ManualClock};
use limiter_redis::{FredStore, RedisStore};
use limiter_test_redis::RedisServer;

/// The shared server's URL and a key prefix no other check uses.
async fn server() -> (String, String) {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let url = tokio::task::spawn_blocking(|| RedisServer::shared().url())
        .await
        .unwrap();
    (url, format!("live-{}", SEQ.fetch_add(1, Ordering::Relaxed)))
}

/// The live suite once per client: a module with a factory building the
/// client's store on the shared server, under a prefix of its own.
macro_rules! per_client {
    ($($module:ident: $store:ty),* $(,)?) => {$(
        mod $module {
            use super::*;

            async fn store(clock: ManualClock) -> (Arc<dyn LeaseStore>, common::Guard) {
                let (url, prefix) = server().await;
                let store = <$store>::builder()
                    .url(url)
                    .prefix(&prefix)
                    .clock(clock)
                    .connect()
                    .await
                    .expect("connect to the test server");
                (Arc::new(store), Box::new(()))
            }

            live_suite!(store);
        }
    )*};
}

per_client!(redis_rs: RedisStore, fred: FredStore);
