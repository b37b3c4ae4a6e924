//! TLS for both clients (feature `rustls`) against real `redis-server`
//! processes listening with TLS, on certificates made at test time by the
//! OS's `openssl`: a store that trusts the server's CA works over
//! `rediss://`; one that trusts another CA is refused with a clear error
//! that retrying cannot fix; a server that asks for a client certificate
//! takes the store that presents one signed by its CA and refuses the one
//! that does not.

#![cfg(feature = "rustls")]

use std::time::Duration;

use limiter_core::{Cost, Decision, Error, Limits, Store};
use limiter_test_redis::TlsServer;

mod support;
use support::{Client, Connect};

const TIMEOUT: Duration = Duration::from_secs(2);

fn over_tls(server: &TlsServer) -> Connect {
    Connect::server(server.url()).connection_timeout(TIMEOUT)
}

async fn works(store: impl Store) {
    let d = store
        .reserve("tls-check", &Limits::new().rpm(10), &Cost::request(), None)
        .await
        .expect("reserve over TLS");
    assert!(matches!(d, Decision::Reserved(_)), "{d:?}");
}

fn assert_tls_refused(client: Client, err: &Error) {
    match err {
        Error::Store {
            retryable: false,
            message,
            ..
        } => assert!(
            message.contains("TLS"),
            "{client:?}: the message must say TLS failed: {message}"
        ),
        other => panic!("{client:?}: expected a non-retryable store error, got {other:?}"),
    }
}

async fn the_servers_ca_is_trusted(client: Client) {
    let server = tokio::task::spawn_blocking(|| TlsServer::start(false))
        .await
        .unwrap();
    let mut c = over_tls(&server);
    c.tls_root_ca_pem = Some(server.files().ca_pem());
    works(client.connect(&c).await.expect("connect over TLS")).await;
}

async fn another_ca_is_refused_clearly(client: Client) {
    let server = tokio::task::spawn_blocking(|| TlsServer::start(false))
        .await
        .unwrap();
    let mut c = over_tls(&server);
    c.tls_root_ca_pem = Some(server.files().other_ca_pem());
    let err = client
        .connect(&c)
        .await
        .expect_err("a server signed by a CA not trusted must be refused");
    assert_tls_refused(client, &err);
}

async fn a_client_certificate_when_the_server_asks(client: Client) {
    let server = tokio::task::spawn_blocking(|| TlsServer::start(true))
        .await
        .unwrap();
    let mut c = over_tls(&server);
    c.tls_root_ca_pem = Some(server.files().ca_pem());
    let err = client
        .connect(&c)
        .await
        .expect_err("without a client certificate the server refuses");
    assert!(matches!(err, Error::Store { .. }), "{client:?}: {err:?}");
    c.tls_client_identity_pem = Some((
        server.files().client_cert_pem(),
        server.files().client_key_pem(),
    ));
    works(
        client
            .connect(&c)
            .await
            .expect("connect with the client certificate"),
    )
    .await;
}

async fn bad_pem_is_a_config_error(client: Client) {
    let mut c = Connect::server("rediss://127.0.0.1:1/");
    c.tls_root_ca_pem = Some(b"not a certificate".to_vec());
    match client.connect(&c).await {
        Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "tls_root_ca_pem"),
        other => panic!("{client:?}: expected a configuration error, got {other:?}"),
    }
    let mut c = Connect::server("rediss://127.0.0.1:1/");
    c.tls_client_identity_pem = Some((b"no".to_vec(), b"key".to_vec()));
    assert!(
        matches!(client.connect_lazy(&c), Err(Error::InvalidConfig { .. })),
        "{client:?}: a lazy store checks the PEM at once too"
    );
}

support::per_client! {
    #[tokio::test]
    async fn the_servers_ca_is_trusted() {
        super::the_servers_ca_is_trusted(CLIENT).await;
    }

    #[tokio::test]
    async fn another_ca_is_refused_clearly() {
        super::another_ca_is_refused_clearly(CLIENT).await;
    }

    #[tokio::test]
    async fn a_client_certificate_when_the_server_asks() {
        super::a_client_certificate_when_the_server_asks(CLIENT).await;
    }

    #[tokio::test]
    async fn bad_pem_is_a_config_error() {
        super::bad_pem_is_a_config_error(CLIENT).await;
    }
}
