//! What is particular to `FredStore`: stores over the application's own
//! fred client or pool, scripts sent again after the server lost them,
//! service resuming after the server comes back, and connecting that never
//! hangs.

#![cfg(feature = "fred")]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use fred::prelude::{Builder, ClientLike, Config, LuaInterface};
use limiter_core::{Cost, Decision, Dimension, Error, Limits, Store};
use limiter_redis::{FredStore, KeyLayout};
use limiter_test_redis::RedisServer;

fn limits() -> Limits {
    Limits::new().rpm(1_000)
}

async fn reserve(store: &impl Store) -> limiter_core::Result<Decision> {
    store
        .reserve("fred-client", &limits(), &Cost::tokens(1), None)
        .await
}

async fn assert_reserves(store: &impl Store) {
    let d = reserve(store).await.expect("reserve");
    assert!(matches!(d, Decision::Reserved(_)), "{d:?}");
}

/// A store over a client the application built and connected works, and
/// so does one over a pool; both see the same state.
#[tokio::test]
async fn stores_over_an_existing_client_or_pool() {
    let server = RedisServer::start();
    let config = Config::from_url(&server.url()).unwrap();

    let client = Builder::from_config(config.clone()).build().unwrap();
    client.init().await.unwrap();
    let one = FredStore::from_client(client.clone(), KeyLayout::new("app"));
    assert_eq!(one.layout().prefix(), "app");
    assert_reserves(&one).await;

    let pool = Builder::from_config(config).build_pool(3).unwrap();
    pool.init().await.unwrap();
    let pooled = FredStore::from_pool(pool.clone(), KeyLayout::new("app"));
    assert_reserves(&pooled).await;
    let status = pooled.status("fred-client", &limits()).await.unwrap();
    assert_eq!(status.get(Dimension::Rpm).unwrap().used, 2);

    drop((one, pooled));
    // The application's client is still its own, and still connected.
    assert!(client.is_connected());
    client.quit().await.unwrap();
    pool.quit().await.unwrap();
}

/// NOSCRIPT: after `SCRIPT FLUSH` the scripts are loaded again and the call
/// succeeds.
#[tokio::test]
async fn scripts_are_sent_again_after_script_flush() {
    let server = RedisServer::start();
    let store = FredStore::connect(&server.url()).await.unwrap();
    assert_reserves(&store).await;

    let admin = Builder::from_config(Config::from_url(&server.url()).unwrap())
        .build()
        .unwrap();
    admin.init().await.unwrap();
    admin.script_flush(false).await.unwrap();

    for _ in 0..8 {
        // Every connection of the pool meets the flushed server.
        assert_reserves(&store).await;
    }
    admin.quit().await.unwrap();
}

/// While the server is down, calls fail fast enough with a retryable store
/// error; once it is back, service resumes without a new store.
#[tokio::test]
async fn service_resumes_after_the_server_comes_back() {
    let mut server = RedisServer::start();
    let store = FredStore::builder()
        .url(server.url())
        .response_timeout(Duration::from_millis(500))
        .connection_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    assert_reserves(&store).await;

    server.stop();
    for _ in 0..3 {
        let started = Instant::now();
        match reserve(&store).await {
            Err(e @ Error::Store { .. }) => assert!(e.is_retryable(), "{e:?}"),
            other => panic!("expected a store error while the server is down: {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match reserve(&store).await {
            Ok(Decision::Reserved(_)) => break,
            Ok(other) => panic!("{other:?}"),
            Err(e) => {
                assert!(e.is_retryable(), "{e:?}");
                assert!(
                    Instant::now() < deadline,
                    "no service 15 s after the server came back: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Every connection of the pool is back.
    for _ in 0..8 {
        assert_reserves(&store).await;
    }
}

/// A server that accepts connections but never answers: `connect` gives up
/// after the connection plus response timeouts, with a retryable error.
#[tokio::test]
async fn connecting_to_a_silent_server_is_bounded() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let result = FredStore::builder()
        .url(format!("redis://127.0.0.1:{port}/"))
        .connection_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(300))
        .connect()
        .await;
    let elapsed = started.elapsed();
    let err = result.expect_err("a silent server must not connect");
    assert!(err.is_retryable(), "{err:?}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

/// Nobody listening: a prompt, retryable error.
#[tokio::test]
async fn connecting_to_nothing_fails_promptly() {
    let port = limiter_test_redis::free_port();
    let started = Instant::now();
    let err = FredStore::builder()
        .url(format!("redis://127.0.0.1:{port}/"))
        .connection_timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect_err("nothing listens there");
    assert!(err.is_retryable(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Bad settings are configuration errors, before any connection.
#[tokio::test]
async fn bad_settings_are_config_errors() {
    for result in [
        FredStore::builder().connect().await,
        FredStore::builder().url("not a url").connect().await,
        FredStore::builder()
            .url("redis://127.0.0.1:1/")
            .pool_size(0)
            .connect()
            .await,
        FredStore::builder()
            .cluster(Vec::<String>::new())
            .connect()
            .await,
    ] {
        assert!(
            matches!(result, Err(Error::InvalidConfig { .. })),
            "{result:?}"
        );
    }
}
