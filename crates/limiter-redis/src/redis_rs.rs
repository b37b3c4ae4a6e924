//! [`RedisStore`]: the Redis store on the `redis` crate (redis-rs).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use limiter_core::{Clock, Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::AsyncConnectionConfig;

use crate::args::Op;
use crate::core::{common_setters, impl_store, Backend, Connector, Core, Lazy, Parts, TimeSource};
use crate::keys::KeyLayout;

/// The shared store on Redis through the `redis` crate: standalone (with
/// automatic reconnection) or Cluster.
///
/// Every operation is one `EVALSHA` of a script that runs the core state
/// machine on the server, reading the server's clock; a server that lost its
/// scripts (restart, `SCRIPT FLUSH`) is sent the script again.
///
/// ```no_run
/// # async fn demo() -> limiter_core::Result<()> {
/// use limiter_core::{Cost, Limiter, Limits};
/// use limiter_redis::RedisStore;
///
/// let store = RedisStore::connect("redis://127.0.0.1:6380/").await?;
/// let limiter = Limiter::new(store, "gpt-4o", Limits::new().rpm(500).tpm(200_000))?;
/// let permit = limiter.acquire(Cost::split(1_000, 500)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RedisStore {
    core: Arc<Core<Lazy<RedisRsBackend>>>,
}

impl_store!(RedisStore);

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelConn>),
}

/// The primary of a Sentinel-monitored service: asked of the sentinels on
/// first use and again after a connection fault or a `READONLY` reply (the
/// node was demoted), so that the store follows a failover.
struct SentinelConn {
    sentinel: tokio::sync::Mutex<redis::sentinel::SentinelClient>,
    current: parking_lot::Mutex<Option<MultiplexedConnection>>,
    config: AsyncConnectionConfig,
    /// Whether a primary was ever found: after that, sentinels that name
    /// none are failing over, and a retry may help.
    found: std::sync::atomic::AtomicBool,
}

impl SentinelConn {
    fn current(&self) -> Option<MultiplexedConnection> {
        self.current.lock().clone()
    }

    /// The connection to the primary, asking the sentinels for it if there
    /// is none (one caller asks; the others wait for its answer).
    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let mut sentinel = self.sentinel.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let client = sentinel.async_get_client().await?;
        let conn = client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        *self.current.lock() = Some(conn.clone());
        self.found.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(conn)
    }

    /// A failure to find the primary as a store error: retryable once a
    /// primary was found before (the sentinels are promoting another).
    fn resolve_error(&self, e: redis::RedisError) -> Error {
        let failing_over = self.found.load(std::sync::atomic::Ordering::Relaxed)
            && matches!(
                e.kind(),
                redis::ErrorKind::MasterNameNotFoundBySentinel
                    | redis::ErrorKind::NoValidReplicasFoundBySentinel
            );
        if failing_over {
            Error::store_from(
                format!("Redis: the sentinels name no primary now (failing over?): {e}"),
                true,
                e,
            )
        } else {
            convert(e)
        }
    }

    /// Drops the connection after `e` if it says the primary is gone or
    /// moved: the next call asks the sentinels again.
    fn after_error(&self, e: &redis::RedisError) {
        let moved = e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || matches!(
                e.kind(),
                redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
                    | redis::ErrorKind::Server(redis::ServerErrorKind::MasterDown)
            );
        if moved {
            *self.current.lock() = None;
        }
    }
}

struct RedisRsBackend {
    conn: Conn,
    scripts: Vec<(Op, redis::Script)>,
}

impl fmt::Debug for RedisRsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRsBackend")
            .field(
                "topology",
                &match self.conn {
                    Conn::Single(_) => "standalone",
                    Conn::Cluster(_) => "cluster",
                    Conn::Sentinel(_) => "sentinel",
                },
            )
            .finish_non_exhaustive()
    }
}

impl RedisRsBackend {
    fn new(conn: Conn) -> Self {
        let scripts = Op::ALL
            .into_iter()
            .map(|op| (op, redis::Script::new(op.source())))
            .collect();
        RedisRsBackend { conn, scripts }
    }
}

/// Converts a client error once, at the crate boundary: connection faults
/// and timeouts may succeed when tried again; wrong credentials, script
/// errors and bad replies will not.
pub(crate) fn convert(e: redis::RedisError) -> Error {
    use redis::ErrorKind;
    #[cfg(feature = "rustls")]
    if crate::tls::is_tls_failure(&e) {
        return crate::tls::tls_error(e);
    }
    let retryable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
                | ErrorKind::Server(redis::ServerErrorKind::TryAgain)
                | ErrorKind::Server(redis::ServerErrorKind::ClusterDown)
                | ErrorKind::Server(redis::ServerErrorKind::MasterDown)
                | ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
        );
    let message = match e.kind() {
        ErrorKind::AuthenticationFailed => format!("Redis refused the credentials: {e}"),
        _ => format!("Redis: {e}"),
    };
    Error::store_from(message, retryable, e)
}

#[async_trait]
impl Backend for RedisRsBackend {
    async fn eval(&self, op: Op, keys: &[String], args: Vec<String>) -> Result<Vec<i64>> {
        self.invoke(op, keys, args).await
    }

    async fn eval_text(
        &self,
        op: Op,
        keys: &[String],
        args: Vec<String>,
    ) -> Result<Option<String>> {
        self.invoke(op, keys, args).await
    }
}

impl RedisRsBackend {
    /// Runs `op`'s script (EVALSHA, loading it on NOSCRIPT) and reads its
    /// reply as a `T`.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        op: Op,
        keys: &[String],
        args: Vec<String>,
    ) -> Result<T> {
        let script = self
            .scripts
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, s)| s)
            .ok_or_else(|| Error::store("no script for the operation", false))?;
        let mut call = script.prepare_invoke();
        for k in keys {
            call.key(k);
        }
        for a in args {
            call.arg(a);
        }
        let reply: redis::RedisResult<T> = match self.conn.clone() {
            Conn::Single(mut c) => call.invoke_async(&mut c).await,
            Conn::Cluster(mut c) => call.invoke_async(&mut c).await,
            Conn::Sentinel(s) => {
                let mut c = s.connection().await.map_err(|e| s.resolve_error(e))?;
                let reply = call.invoke_async(&mut c).await;
                if let Err(e) = &reply {
                    s.after_error(e);
                }
                reply
            }
        };
        reply.map_err(convert)
    }
}

/// Builds a [`RedisStore`]; see [`RedisStore::builder`].
pub struct RedisStoreBuilder {
    urls: Vec<String>,
    cluster: bool,
    /// The service name, for the sentinels in `urls`.
    sentinel: Option<String>,
    layout: KeyLayout,
    clock: Option<Arc<dyn Clock>>,
    response_timeout: Duration,
    connection_timeout: Duration,
    #[cfg(feature = "rustls")]
    tls: crate::tls::TlsSettings,
}

/// URLs may hold passwords: `Debug` shows how many there are, not them.
impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("urls", &self.urls.len())
            .field("cluster", &self.cluster)
            .field("sentinel", &self.sentinel)
            .field("layout", &self.layout)
            .field("clock", &self.clock)
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    common_setters!();

    /// The server's URL: `redis://[user:password@]host:port[/db]`.
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.urls = vec![url.into()];
        self.cluster = false;
        self
    }

    /// The seed nodes of a Redis Cluster.
    #[must_use]
    pub fn cluster<I: IntoIterator<Item = S>, S: Into<String>>(mut self, urls: I) -> Self {
        self.urls = urls.into_iter().map(Into::into).collect();
        self.cluster = true;
        self.sentinel = None;
        self
    }

    /// The primary of `service_name` as the sentinels at `urls`
    /// (`redis://host:port`) name it. The store asks them on its first call
    /// and again whenever the primary stops answering or answers as a
    /// replica (`READONLY`), so it follows a failover; calls made while the
    /// sentinels promote a replica fail with a retryable store error.
    #[must_use]
    pub fn sentinel<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        service_name: impl Into<String>,
        urls: I,
    ) -> Self {
        self.urls = urls.into_iter().map(Into::into).collect();
        self.cluster = false;
        self.sentinel = Some(service_name.into());
        self
    }

    /// Connects, and returns the store once it is connected.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a missing or malformed URL;
    /// [`Error::Store`] when the server cannot be reached (retryable) or
    /// refuses the credentials (not retryable).
    pub async fn connect(self) -> Result<RedisStore> {
        let (connect, layout, clock) = self.connector()?;
        let backend = connect().await?;
        Ok(RedisStore::from_backend(
            Lazy::ready(backend),
            layout,
            clock,
        ))
    }

    /// Returns the store at once, without a server: it connects on its
    /// first call. While Redis cannot be reached, calls fail with a
    /// retryable [`Error::Store`] (so a [`ResilientStore`] around it fails
    /// open, fails closed or falls back as configured) and a later call
    /// tries again (one attempt at a time, none within 100 ms of a failed
    /// one); once Redis answers, the store works, without a restart of the
    /// process. Wrong credentials show in the first call's error.
    ///
    /// [`ResilientStore`]: limiter_core::ResilientStore
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a missing or malformed URL.
    pub fn connect_lazy(self) -> Result<RedisStore> {
        let (connect, layout, clock) = self.connector()?;
        Ok(RedisStore::from_backend(
            Lazy::pending(connect),
            layout,
            clock,
        ))
    }

    /// Checks the settings and makes the function that connects.
    fn connector(self) -> Result<Parts<RedisRsBackend>> {
        if self.urls.is_empty() {
            return Err(Error::InvalidConfig {
                field: "url".into(),
                reason: "no Redis URL given".into(),
            });
        }
        #[cfg(feature = "rustls")]
        self.tls.validate()?;
        #[cfg(feature = "rustls")]
        let certs =
            self.tls.is_set().then(|| redis::TlsCertificates {
                client_tls: self.tls.client_identity_pem.clone().map(
                    |(client_cert, client_key)| redis::ClientTlsConfig {
                        client_cert,
                        client_key,
                    },
                ),
                root_cert: self.tls.root_ca_pem.clone(),
            });
        let connect: Connector<RedisRsBackend> = if let Some(service) = self.sentinel.clone() {
            if service.is_empty() {
                return Err(Error::InvalidConfig {
                    field: "sentinel".into(),
                    reason: "empty service name".into(),
                });
            }
            let urls = self.urls.clone();
            // Checked now, so that a bad URL is a configuration error.
            redis::sentinel::SentinelClient::build(
                urls.clone(),
                service.clone(),
                None,
                redis::sentinel::SentinelServerType::Master,
            )
            .map_err(invalid_url)?;
            let config = AsyncConnectionConfig::new()
                .set_response_timeout(Some(self.response_timeout))
                .set_connection_timeout(Some(self.connection_timeout));
            Box::new(move || {
                let (urls, service, config) = (urls.clone(), service.clone(), config.clone());
                Box::pin(async move {
                    let sentinel = redis::sentinel::SentinelClient::build(
                        urls,
                        service,
                        None,
                        redis::sentinel::SentinelServerType::Master,
                    )
                    .map_err(invalid_url)?;
                    let conn = SentinelConn {
                        sentinel: tokio::sync::Mutex::new(sentinel),
                        current: parking_lot::Mutex::new(None),
                        config,
                        found: std::sync::atomic::AtomicBool::new(false),
                    };
                    // Find the primary now, as the other topologies connect.
                    conn.connection().await.map_err(convert)?;
                    Ok(RedisRsBackend::new(Conn::Sentinel(Arc::new(conn))))
                })
            })
        } else if self.cluster {
            #[allow(unused_mut)]
            let mut builder = redis::cluster::ClusterClientBuilder::new(self.urls.clone())
                .response_timeout(self.response_timeout)
                .connection_timeout(self.connection_timeout);
            #[cfg(feature = "rustls")]
            if let Some(certs) = certs {
                builder = builder.certs(certs);
            }
            let client = builder.build().map_err(invalid_url)?;
            Box::new(move || {
                let client = client.clone();
                Box::pin(async move {
                    let conn = client.get_async_connection().await.map_err(convert)?;
                    Ok(RedisRsBackend::new(Conn::Cluster(conn)))
                })
            })
        } else {
            let url = self.urls[0].as_str();
            #[cfg(feature = "rustls")]
            let client = match certs {
                Some(certs) => redis::Client::build_with_tls(url, certs),
                None => redis::Client::open(url),
            }
            .map_err(invalid_url)?;
            #[cfg(not(feature = "rustls"))]
            let client = redis::Client::open(url).map_err(invalid_url)?;
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(self.response_timeout))
                .set_connection_timeout(Some(self.connection_timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            Box::new(move || {
                let (client, config) = (client.clone(), config.clone());
                Box::pin(async move {
                    let conn = ConnectionManager::new_with_config(client, config)
                        .await
                        .map_err(convert)?;
                    Ok(RedisRsBackend::new(Conn::Single(conn)))
                })
            })
        };
        Ok((connect, self.layout, self.clock))
    }
}

/// The URL may hold a password: name the fault, not the URL.
fn invalid_url(e: redis::RedisError) -> Error {
    Error::InvalidConfig {
        field: "url".into(),
        reason: format!("not a usable Redis URL: {:?}", e.kind()),
    }
}

impl RedisStore {
    /// Connects to a standalone server at `url`, with the default settings.
    ///
    /// # Errors
    /// As [`RedisStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder().url(url).connect().await
    }

    /// A builder: URL or cluster nodes, prefix, clock, timeouts.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder {
            urls: Vec::new(),
            cluster: false,
            sentinel: None,
            layout: KeyLayout::default(),
            clock: None,
            response_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(2),
            #[cfg(feature = "rustls")]
            tls: crate::tls::TlsSettings::default(),
        }
    }

    /// A store over a connection manager the application already has.
    pub fn from_connection_manager(conn: ConnectionManager, layout: KeyLayout) -> Self {
        Self::from_backend(
            Lazy::ready(RedisRsBackend::new(Conn::Single(conn))),
            layout,
            None,
        )
    }

    /// A store over a cluster connection the application already has.
    pub fn from_cluster_connection(conn: ClusterConnection, layout: KeyLayout) -> Self {
        Self::from_backend(
            Lazy::ready(RedisRsBackend::new(Conn::Cluster(conn))),
            layout,
            None,
        )
    }

    fn from_backend(
        backend: Lazy<RedisRsBackend>,
        layout: KeyLayout,
        clock: Option<Arc<dyn Clock>>,
    ) -> Self {
        RedisStore {
            core: Arc::new(Core {
                backend,
                layout,
                time: clock.map_or(TimeSource::Server, TimeSource::Clock),
            }),
        }
    }

    /// The key layout in use.
    pub fn layout(&self) -> &KeyLayout {
        &self.core.layout
    }
}
