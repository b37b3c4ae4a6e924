//! ACL credentials, for both clients, against a server whose only user is
//! `limiter` / `s3cret`: the right ones work; wrong ones give a store error
//! that says Redis refused them, that retrying cannot fix, that never
//! holds a password, and that comes within the connection timeout.

use std::error::Error as _;
use std::future::Future;
use std::time::{Duration, Instant};

use limiter_core::{Cost, Decision, Error, Limits, Store};
use limiter_test_redis::RedisServer;

mod support;
use support::Connect;

const USER: &str = "limiter";
const PASSWORD: &str = "s3cret";
const WRONG: &str = "not-the-pw-9f2c";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Connecting with wrong credentials must fail well within this.
const BOUND: Duration = Duration::from_secs(5);

fn server() -> RedisServer {
    RedisServer::start_with_password(USER, PASSWORD)
}

fn url_with(port: u16, user: &str, password: &str) -> String {
    format!("redis://{user}:{password}@127.0.0.1:{port}/")
}

/// One reservation goes through.
async fn works(store: impl Store) {
    let d = store
        .reserve("auth-check", &Limits::new().rpm(10), &Cost::tokens(1), None)
        .await
        .expect("reserve with the right credentials");
    assert!(matches!(d, Decision::Reserved(_)), "{d:?}");
}

/// `connect` fails within `BOUND` with a non-retryable store error saying
/// the credentials were refused, with no password anywhere in it.
async fn refused<S: std::fmt::Debug>(connect: impl Future<Output = limiter_core::Result<S>>) {
    let started = Instant::now();
    let result = tokio::time::timeout(BOUND, connect)
        .await
        .unwrap_or_else(|_| panic!("connecting with wrong credentials took more than {BOUND:?}"));
    let err = result.expect_err("wrong credentials must not connect");
    assert!(started.elapsed() < BOUND);
    assert_refused(&err);
}

fn assert_refused(err: &Error) {
    match err {
        Error::Store {
            retryable: false,
            message,
            ..
        } => assert!(
            message.contains("refused the credentials"),
            "the message must say the credentials were refused: {message}"
        ),
        other => panic!("expected a non-retryable store error, got {other:?}"),
    }
    assert!(!err.is_retryable());
    let mut texts = vec![err.to_string(), format!("{err:?}")];
    let mut source = err.source();
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    for text in texts {
        assert!(!text.contains(WRONG), "a password leaked: {text}");
        assert!(!text.contains(PASSWORD), "a password leaked: {text}");
    }
}

support::per_client! {
    #[tokio::test]
    async fn right_credentials_work() {
        let server = server();
        let store = CLIENT
            .connect(&Connect::server(server.url()).connection_timeout(CONNECT_TIMEOUT))
            .await
            .expect("connect with the right credentials");
        assert!(!format!("{store:?}").contains(PASSWORD));
        works(store).await;
    }

    #[tokio::test]
    async fn wrong_password_is_refused_promptly_without_leaking_it() {
        let server = server();
        let url = url_with(server.port(), USER, WRONG);
        refused(CLIENT.connect(&Connect::server(url).connection_timeout(CONNECT_TIMEOUT))).await;
    }

    #[tokio::test]
    async fn wrong_user_is_refused() {
        let server = server();
        let url = url_with(server.port(), "nobody", PASSWORD);
        refused(CLIENT.connect(&Connect::server(url).connection_timeout(CONNECT_TIMEOUT))).await;
    }

    #[tokio::test]
    async fn a_lazy_store_says_the_credentials_were_refused_at_its_first_call() {
        let server = server();
        let url = url_with(server.port(), USER, WRONG);
        let store = CLIENT
            .connect_lazy(&Connect::server(url).connection_timeout(CONNECT_TIMEOUT))
            .expect("a lazy store is built without connecting");
        let err = store
            .reserve("auth-check", &Limits::new().rpm(10), &Cost::tokens(1), None)
            .await
            .expect_err("wrong credentials must not connect");
        assert_refused(&err);
        // And again on the next call (after the pause between attempts).
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let err = store
            .reserve("auth-check", &Limits::new().rpm(10), &Cost::tokens(1), None)
            .await
            .expect_err("still refused");
        assert_refused(&err);
    }

    #[tokio::test]
    async fn builder_debug_hides_the_password() {
        let server = server();
        assert!(!CLIENT.builder_debug(&Connect::server(server.url())).contains(PASSWORD));
    }
}
