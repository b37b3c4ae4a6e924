//! Shared by the Redis tests: stores that keep their server alive.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use limiter_core::{Clock, LeaseStore, ManualClock};
#[cfg(feature = "redis-rs")]
use limiter_redis::RedisStore;
use limiter_test_redis::{RedisCluster, RedisServer};

pub mod procs;

/// A store and what must outlive it (its server), forwarding every call to
/// the store; `clock()` gives `clock` when set (a host whose local clock is
/// off), else the store's own.
#[derive(Debug)]
pub struct Wrapped<G: std::fmt::Debug + Send + Sync + 'static> {
    pub store: Arc<dyn LeaseStore>,
    pub guard: G,
    pub clock: Option<Arc<dyn Clock>>,
}

impl<G: std::fmt::Debug + Send + Sync + 'static> Wrapped<G> {
    /// `store` kept with `guard`, on the store's own clock.
    pub fn holding(store: impl LeaseStore, guard: G) -> Self {
        Wrapped {
            store: Arc::new(store),
            guard,
            clock: None,
        }
    }
}

limiter_core::delegate_store!(
    impl[G: std::fmt::Debug + Send + Sync + 'static] Store for Wrapped<G>, to |s| &s.store,
    clock |s| match &s.clock {
        Some(clock) => Arc::clone(clock),
        None => s.store.clock(),
    }
);
limiter_core::delegate_store!(
    impl[G: std::fmt::Debug + Send + Sync + 'static] LeaseStore for Wrapped<G>, to |s| &s.store
);

/// Which client a store is built on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// `RedisStore`, on redis-rs.
    #[cfg(feature = "redis-rs")]
    RedisRs,
    /// `FredStore`, on fred.
    #[cfg(feature = "fred")]
    Fred,
}

/// How a test store connects: everything but the client.
#[derive(Clone, Debug, Default)]
pub struct Connect {
    /// A standalone server's URL, or a cluster's nodes when `cluster`.
    pub urls: Vec<String>,
    /// Whether `urls` are the nodes of a cluster.
    pub cluster: bool,
    /// The service name when `urls` are sentinels.
    pub sentinel: Option<String>,
    /// The clock passed to the scripts (the server's `TIME` when `None`).
    pub clock: Option<ManualClock>,
    /// The builder's connection timeout (its default when `None`).
    pub connection_timeout: Option<std::time::Duration>,
    /// The builder's response timeout (its default when `None`).
    pub response_timeout: Option<std::time::Duration>,
    /// A key prefix (the builder's default when `None`).
    pub prefix: Option<String>,
    /// A CA to trust (PEM), for `rediss://`.
    pub tls_root_ca_pem: Option<Vec<u8>>,
    /// A client certificate chain and key (PEM), for `rediss://`.
    pub tls_client_identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl Connect {
    /// To a standalone server at `url`.
    pub fn server(url: impl Into<String>) -> Self {
        Connect {
            urls: vec![url.into()],
            ..Connect::default()
        }
    }

    /// To a cluster with these nodes.
    pub fn cluster(urls: Vec<String>) -> Self {
        Connect {
            urls,
            cluster: true,
            ..Connect::default()
        }
    }

    /// With the scripts on `clock`.
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// With this connection timeout.
    pub fn connection_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.connection_timeout = Some(timeout);
        self
    }

    /// With this response timeout.
    pub fn response_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.response_timeout = Some(timeout);
        self
    }
}

/// Applies a `Connect` to either builder (their setters share names).
macro_rules! configure {
    ($builder:expr, $c:expr) => {{
        let c = $c;
        let mut b = $builder;
        b = if let Some(service) = &c.sentinel {
            b.sentinel(service.clone(), c.urls.clone())
        } else if c.cluster {
            b.cluster(c.urls.clone())
        } else {
            b.url(c.urls[0].clone())
        };
        if let Some(clock) = &c.clock {
            b = b.clock(clock.clone());
        }
        if let Some(t) = c.connection_timeout {
            b = b.connection_timeout(t);
        }
        if let Some(t) = c.response_timeout {
            b = b.response_timeout(t);
        }
        if let Some(p) = &c.prefix {
            b = b.prefix(p);
        }
        #[cfg(feature = "rustls")]
        {
            if let Some(ca) = &c.tls_root_ca_pem {
                b = b.tls_root_ca_pem(ca.clone());
            }
            if let Some((cert, key)) = &c.tls_client_identity_pem {
                b = b.tls_client_identity_pem(cert.clone(), key.clone());
            }
        }
        b
    }};
}

impl Client {
    /// Connects a store of this client.
    pub async fn connect(self, c: &Connect) -> limiter_core::Result<Arc<dyn LeaseStore>> {
        Ok(match self {
            #[cfg(feature = "redis-rs")]
            Client::RedisRs => Arc::new(configure!(RedisStore::builder(), c).connect().await?),
            #[cfg(feature = "fred")]
            Client::Fred => Arc::new(
                configure!(limiter_redis::FredStore::builder(), c)
                    .connect()
                    .await?,
            ),
        })
    }

    /// A store of this client that connects on first use
    /// (`connect_lazy`): built without a server.
    pub fn connect_lazy(self, c: &Connect) -> limiter_core::Result<Arc<dyn LeaseStore>> {
        Ok(match self {
            #[cfg(feature = "redis-rs")]
            Client::RedisRs => Arc::new(configure!(RedisStore::builder(), c).connect_lazy()?),
            #[cfg(feature = "fred")]
            Client::Fred => {
                Arc::new(configure!(limiter_redis::FredStore::builder(), c).connect_lazy()?)
            }
        })
    }

    /// The `Debug` text of a builder set up with `c`.
    pub fn builder_debug(self, c: &Connect) -> String {
        match self {
            #[cfg(feature = "redis-rs")]
            Client::RedisRs => format!("{:?}", configure!(RedisStore::builder(), c)),
            #[cfg(feature = "fred")]
            Client::Fred => format!("{:?}", configure!(limiter_redis::FredStore::builder(), c)),
        }
    }

    /// A store of this client on this test binary's shared server, on the
    /// manual clock.
    pub async fn on_shared_server(self, clock: ManualClock) -> Arc<dyn LeaseStore> {
        let url = tokio::task::spawn_blocking(|| RedisServer::shared().url())
            .await
            .unwrap();
        self.connect(&Connect::server(url).clock(clock))
            .await
            .expect("connect to the test server")
    }

    /// A store of this client on this test binary's shared 3-master
    /// cluster, on the manual clock.
    pub async fn on_shared_cluster(self, clock: ManualClock) -> Arc<dyn LeaseStore> {
        let urls = tokio::task::spawn_blocking(|| RedisCluster::shared().urls())
            .await
            .unwrap();
        self.connect(&Connect::cluster(urls).clock(clock))
            .await
            .expect("connect to the test cluster")
    }
}

/// Stamps `items` out once per client compiled in: in a module `redis_rs`
/// and a module `fred`, each seeing the parent's names and a constant
/// `CLIENT` naming its client.
#[allow(unused_macros)]
macro_rules! per_client {
    ($($item:item)*) => {
        #[cfg(feature = "redis-rs")]
        mod redis_rs {
            #[allow(unused_imports)]
            use super::*;
            const CLIENT: $crate::support::Client = $crate::support::Client::RedisRs;
            $($item)*
        }
        #[cfg(feature = "fred")]
        mod fred {
            #[allow(unused_imports)]
            use super::*;
            const CLIENT: $crate::support::Client = $crate::support::Client::Fred;
            $($item)*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use per_client;
