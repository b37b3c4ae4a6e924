//! The live limiter's checks on Redis, through both clients, each on a
//! fresh `redis-server` on a free loopback port, with the manual clock's
//! time passed to the scripts.

mod common;

use std::sync::Arc;

use limiter_core::{ManualClock, Store};
use limiter_redis::{FredStore, RedisStore};
use limiter_test_redis::RedisServer;

async fn server() -> RedisServer {
    tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap()
}

mod redis_rs {
    use super::*;

    async fn redis_rs(clock: ManualClock) -> (Arc<dyn Store>, common::Guard) {
        let server = server().await;
        let store = RedisStore::builder()
            .url(server.url())
            .clock(clock)
            .connect()
            .await
            .expect("connect to the test server");
        (Arc::new(store), Box::new(server))
    }

    live_suite!(redis_rs);
}

mod fred {
    use super::*;

    async fn fred(clock: ManualClock) -> (Arc<dyn Store>, common::Guard) {
        let server = server().await;
        let store = FredStore::builder()
            .url(server.url())
            .clock(clock)
            .connect()
            .await
            .expect("connect to the test server");
        (Arc::new(store), Box::new(server))
    }

    live_suite!(fred);
}
