//! [`FredStore`]: the Redis store on the `fred` crate.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::{Client, Pool};
use fred::interfaces::{ClientLike, LuaInterface};
use fred::types::config::{
    Config, ConnectionConfig, PerformanceConfig, ReconnectPolicy, ServerConfig, TcpConfig,
    UnresponsiveConfig,
};
use fred::types::scripts::Script;
use fred::types::{Builder, ConnectHandle, Value};
use limiter_core::{Clock, Error, Result};

use crate::args::Op;
use crate::core::{common_setters, impl_store, Backend, Connector, Core, Lazy, Parts, TimeSource};
use crate::keys::KeyLayout;

/// The shared store on Redis through the `fred` crate: standalone, Cluster
/// or behind Sentinel, over a small pool of connections that reconnect on
/// their own.
///
/// Every operation is one `EVALSHA` of a script that runs the core state
/// machine on the server, reading the server's clock; a server that lost its
/// scripts (restart, `SCRIPT FLUSH`) is sent the script again. It runs the
/// same scripts as `RedisStore` (feature `redis-rs`),
/// so both may share one server and its quotas.
///
/// When the server goes away, calls fail with a retryable
/// [`Error::Store`] while the connections are re-established in the
/// background (exponential backoff, 50 ms to 500 ms, without end); service
/// resumes as soon as the server is back.
///
/// ```no_run
/// # async fn demo() -> limiter_core::Result<()> {
/// use limiter_core::{Cost, Limiter, Limits};
/// use limiter_redis::FredStore;
///
/// let store = FredStore::connect("redis://127.0.0.1:6380/").await?;
/// let limiter = Limiter::new(store, "gpt-4o", Limits::new().rpm(500).tpm(200_000))?;
/// let permit = limiter.acquire(Cost::split(1_000, 500)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FredStore {
    core: Arc<Core<Lazy<FredBackend>>>,
}

impl_store!(FredStore);

struct FredBackend {
    pool: Pool,
    scripts: Vec<(Op, Script)>,
    /// The tasks driving the connections, when this store made them: ended
    /// (closing the connections) when the last clone of the store is
    /// dropped.
    tasks: Vec<ConnectHandle>,
}

impl fmt::Debug for FredBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pool's Debug shows its size only; fred's `Config` (which holds
        // the password) is never printed.
        f.debug_struct("FredBackend")
            .field("pool", &self.pool)
            .field("owns_connections", &!self.tasks.is_empty())
            .finish_non_exhaustive()
    }
}

impl Drop for FredBackend {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl FredBackend {
    fn new(pool: Pool, tasks: Vec<ConnectHandle>) -> Self {
        let scripts = Op::ALL
            .into_iter()
            .map(|op| (op, Script::from_lua(op.source())))
            .collect();
        FredBackend {
            pool,
            scripts,
            tasks,
        }
    }
}

/// Converts a client error once, at the crate boundary: connection faults,
/// timeouts and a cluster or server that is busy, loading or failing over
/// may succeed when tried again; wrong credentials, script errors and bad
/// replies will not.
pub(crate) fn convert(e: fred::error::Error) -> Error {
    use fred::error::ErrorKind as K;
    // The error code a server reply starts with, if any.
    let code = e.details().split_whitespace().next().unwrap_or("");
    let transient = matches!(
        code,
        "LOADING"
            | "BUSY"
            | "TRYAGAIN"
            | "CLUSTERDOWN"
            | "MASTERDOWN"
            | "READONLY"
            | "MOVED"
            | "ASK"
    );
    // fred's own errors of kind `Unknown` for a connection that is gone or
    // not there yet (its messages in fred 10): a retry after the
    // reconnection may succeed.
    let lost = e.kind() == &K::Unknown
        && matches!(
            e.details(),
            "Failed to route command."
                | "Too many failed write attempts."
                | "Missing response."
                | "Missing expected connection."
                | "Max redirections exceeded"
                | "Max attempts exceeded"
                | "Failed to send command to router."
                | "Client is not initialized."
        );
    // A certificate the client does not trust, or a handshake refused:
    // retrying cannot help.
    #[cfg(feature = "rustls")]
    let tls = e.kind() == &K::Tls || crate::tls::names_tls_failure(e.details());
    let (message, retryable) = match e.kind() {
        #[cfg(feature = "rustls")]
        _ if tls => (format!("{}: {e}", crate::core::TLS_FAILED), false),
        // Server replies never echo the password, nor does fred.
        K::Auth if code == "NOAUTH" => (
            format!("Redis refused the connection without credentials: {e}"),
            false,
        ),
        K::Auth => (
            format!("Redis refused the credentials (user name or password): {e}"),
            false,
        ),
        K::IO
        | K::Timeout
        | K::Canceled
        | K::Cluster
        | K::Routing
        | K::Sentinel
        | K::Backpressure => (format!("Redis: {e}"), true),
        _ => (format!("Redis: {e}"), transient || lost),
    };
    Error::store_from(message, retryable, e)
}

#[async_trait]
impl Backend for FredBackend {
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

impl FredBackend {
    /// Runs `op`'s script (EVALSHA, loading it on NOSCRIPT) and reads its
    /// reply as a `T`.
    async fn invoke<T: fred::types::FromValue + Send>(
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
        let keys: Vec<fred::types::Key> = keys.iter().map(|k| k.as_str().into()).collect();
        // Values share their bytes, so keeping a copy for a NOSCRIPT retry
        // is cheap.
        let args: Vec<Value> = args.into_iter().map(Value::from).collect();
        let first = self
            .pool
            .evalsha::<T, _, _, _>(script.sha1().clone(), keys.clone(), args.clone())
            .await;
        match first {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                let lua = script
                    .lua()
                    .cloned()
                    .ok_or_else(|| Error::store("the script's source is missing", false))?;
                // On a cluster this loads the script on every primary.
                self.pool
                    .script_load_cluster::<(), _>(lua)
                    .await
                    .map_err(convert)?;
                self.pool
                    .evalsha(script.sha1().clone(), keys, args)
                    .await
                    .map_err(convert)
            }
            other => other.map_err(convert),
        }
    }
}

/// Where the servers are.
enum Topology {
    Single(String),
    Cluster(Vec<String>),
    Sentinel {
        service_name: String,
        urls: Vec<String>,
    },
}

/// Builds a [`FredStore`]; see [`FredStore::builder`].
///
/// A connection that leaves a call unanswered for twice the response
/// timeout is closed and made again; [`connect`](Self::connect) gives up
/// after the connection timeout plus the response timeout (for the
/// handshake: `AUTH`, `CLUSTER SLOTS`, ...).
pub struct FredStoreBuilder {
    topology: Option<Topology>,
    layout: KeyLayout,
    clock: Option<Arc<dyn Clock>>,
    response_timeout: Duration,
    connection_timeout: Duration,
    pool_size: usize,
    #[cfg(feature = "rustls")]
    tls: crate::tls::TlsSettings,
}

impl fmt::Debug for FredStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs may hold passwords: show the topology, not the URLs.
        let topology = match &self.topology {
            None => "none".to_string(),
            Some(Topology::Single(_)) => "standalone".to_string(),
            Some(Topology::Cluster(urls)) => format!("cluster of {} seed nodes", urls.len()),
            Some(Topology::Sentinel { service_name, urls }) => {
                format!(
                    "sentinel service {service_name:?} via {} sentinels",
                    urls.len()
                )
            }
        };
        f.debug_struct("FredStoreBuilder")
            .field("topology", &topology)
            .field("layout", &self.layout)
            .field("clock", &self.clock)
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl FredStoreBuilder {
    common_setters!();

    /// The server's URL: `redis://[user:password@]host:port[/db]`.
    ///
    /// fred's other URL forms work too: `redis-cluster://…?node=host:port`
    /// for a cluster, `redis-sentinel://…?sentinelServiceName=name` for a
    /// server behind Sentinel.
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.topology = Some(Topology::Single(url.into()));
        self
    }

    /// The seed nodes of a Redis Cluster, each `redis://[user:password@]host:port`;
    /// the credentials of the first are used on every node.
    #[must_use]
    pub fn cluster<I: IntoIterator<Item = S>, S: Into<String>>(mut self, urls: I) -> Self {
        self.topology = Some(Topology::Cluster(
            urls.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// A server behind Redis Sentinel: the primary of `service_name`, as
    /// the sentinels at `urls` (each `redis://[user:password@]host[:port][/db]`,
    /// port 26379 by default) report it, followed through failovers.
    ///
    /// The credentials and database of the first URL are used on the
    /// sentinels and on the primary alike (if something in the build turns
    /// on fred's `sentinel-auth` feature, the sentinels take theirs from
    /// the URL's `sentinelUsername` and `sentinelPassword` query
    /// parameters instead).
    #[must_use]
    pub fn sentinel<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        service_name: impl Into<String>,
        urls: I,
    ) -> Self {
        self.topology = Some(Topology::Sentinel {
            service_name: service_name.into(),
            urls: urls.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// How many connections (fred clients) calls are spread over (default
    /// 4). fred sends no command on a connection while a script runs there,
    /// so this bounds how many operations are in flight at once.
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    fn config(&self) -> Result<Config> {
        let config = match &self.topology {
            None => {
                return Err(Error::InvalidConfig {
                    field: "url".into(),
                    reason: "no Redis URL given".into(),
                })
            }
            Some(Topology::Single(url)) => Config::from_url(url).map_err(invalid_url)?,
            Some(Topology::Cluster(urls)) => {
                let (first, rest) = split_first(urls)?;
                let mut config = Config::from_url_clustered(first).map_err(invalid_url)?;
                let more = rest
                    .iter()
                    .map(|u| Config::from_url_centralized(u).map(|c| c.server.hosts()))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(invalid_url)?;
                if let ServerConfig::Clustered { hosts, .. } = &mut config.server {
                    hosts.extend(more.into_iter().flatten());
                }
                config
            }
            Some(Topology::Sentinel { service_name, urls }) => {
                let (first, rest) = split_first(urls)?;
                if service_name.is_empty() {
                    return Err(Error::InvalidConfig {
                        field: "sentinel".into(),
                        reason: "empty service name".into(),
                    });
                }
                let parse = |u: &str| Config::from_url_sentinel(&with_service(u, service_name));
                let mut config = parse(first).map_err(invalid_url)?;
                let more = rest
                    .iter()
                    .map(|u| parse(u).map(|c| c.server.hosts()))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(invalid_url)?;
                if let ServerConfig::Sentinel { hosts, .. } = &mut config.server {
                    hosts.extend(more.into_iter().flatten());
                }
                config
            }
        };
        #[cfg(feature = "rustls")]
        let config = {
            let mut config = config;
            self.tls.validate()?;
            if self.tls.is_set() {
                config.tls = Some(self.tls.rustls_config()?.into());
            }
            config
        };
        Ok(config)
    }

    /// Connects every connection of the pool, and returns the store once
    /// they are connected.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a missing or malformed URL or a pool
    /// size of 0; [`Error::Store`] when the server cannot be reached within
    /// the timeouts (retryable) or refuses the credentials (not retryable).
    pub async fn connect(self) -> Result<FredStore> {
        let (connect, layout, clock) = self.connector()?;
        let backend = connect().await?;
        Ok(FredStore::from_backend(Lazy::ready(backend), layout, clock))
    }

    /// Returns the store at once, without a server: it connects its pool on
    /// its first call. While Redis cannot be reached, calls fail with a
    /// retryable [`Error::Store`] (so a [`ResilientStore`] around it fails
    /// open, fails closed or falls back as configured) and a later call
    /// tries again (one attempt at a time, none within 100 ms of a failed
    /// one); once Redis answers, the store works, without a restart of the
    /// process. Wrong credentials show in the first call's error.
    ///
    /// [`ResilientStore`]: limiter_core::ResilientStore
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a missing or malformed URL or a pool
    /// size of 0.
    pub fn connect_lazy(self) -> Result<FredStore> {
        let (connect, layout, clock) = self.connector()?;
        Ok(FredStore::from_backend(
            Lazy::pending(connect),
            layout,
            clock,
        ))
    }

    /// Checks the settings and makes the function that connects a pool.
    fn connector(self) -> Result<Parts<FredBackend>> {
        let config = self.config()?;
        if self.pool_size == 0 {
            return Err(Error::InvalidConfig {
                field: "pool_size".into(),
                reason: "a pool needs at least one connection".into(),
            });
        }
        let connection = ConnectionConfig {
            connection_timeout: self.connection_timeout,
            internal_command_timeout: self.response_timeout,
            // One write per call: a script whose connection broke is not
            // sent again behind the caller's back (it may have run); the
            // caller's retry policy decides.
            max_command_attempts: 1,
            // A connection that leaves a call unanswered twice as long as
            // its timeout is closed and made again (a half-open connection
            // would otherwise time out every call for minutes).
            unresponsive: UnresponsiveConfig {
                max_timeout: Some(self.response_timeout * 2),
                interval: (self.response_timeout / 4).max(Duration::from_millis(10)),
            },
            tcp: TcpConfig {
                nodelay: Some(true),
                ..TcpConfig::default()
            },
            ..ConnectionConfig::default()
        };
        let performance = PerformanceConfig {
            default_command_timeout: self.response_timeout,
            ..PerformanceConfig::default()
        };
        // Reconnect for ever, 50 ms to 500 ms apart: a restarted server is
        // back in use within about half a second (with 2 s between tries,
        // recovery took 1.6-2.3 s).
        let policy = ReconnectPolicy::new_exponential(0, 50, 500, 2);

        let bound = self.connection_timeout + self.response_timeout;
        let pool_size = self.pool_size;
        let connect: Connector<FredBackend> = Box::new(move || {
            let (config, connection, performance, policy) = (
                config.clone(),
                connection.clone(),
                performance.clone(),
                policy.clone(),
            );
            Box::pin(async move {
                let pool = Builder::from_config(config)
                    .set_connection_config(connection)
                    .set_performance_config(performance)
                    .set_policy(policy)
                    .build_pool(pool_size)
                    .map_err(invalid_url)?;
                let mut init = tokio::spawn(init_all(pool.clone()));
                let tasks = match tokio::time::timeout(bound, &mut init).await {
                    Ok(Ok(Ok(tasks))) => tasks,
                    Ok(Ok(Err(e))) => return Err(convert(e)),
                    Ok(Err(e)) => {
                        return Err(Error::store_from("Redis: connecting failed", true, e))
                    }
                    Err(_) => {
                        // Close whatever connects after all.
                        tokio::spawn(async move {
                            if let Ok(Ok(tasks)) = init.await {
                                tasks.iter().for_each(ConnectHandle::abort);
                            }
                        });
                        return Err(Error::store(
                            format!("Redis: no connection within {bound:?}"),
                            true,
                        ));
                    }
                };
                Ok(FredBackend::new(pool, tasks))
            })
        });
        Ok((connect, self.layout, self.clock))
    }
}

/// Connects every client of `pool` at once; on a failure, closes those that
/// did connect.
async fn init_all(pool: Pool) -> std::result::Result<Vec<ConnectHandle>, fred::error::Error> {
    let inits: Vec<_> = pool
        .clients()
        .iter()
        .cloned()
        .map(|client| tokio::spawn(async move { client.init().await }))
        .collect();
    let mut tasks = Vec::with_capacity(inits.len());
    let mut failure = None;
    for init in inits {
        match init.await {
            Ok(Ok(task)) => tasks.push(task),
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(e.into());
            }
        }
    }
    match failure {
        None => Ok(tasks),
        Some(e) => {
            tasks.iter().for_each(ConnectHandle::abort);
            Err(e)
        }
    }
}

fn split_first(urls: &[String]) -> Result<(&String, &[String])> {
    urls.split_first().ok_or_else(|| Error::InvalidConfig {
        field: "url".into(),
        reason: "no Redis URL given".into(),
    })
}

/// `url` with the `sentinelServiceName` query parameter fred reads.
fn with_service(url: &str, service_name: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut out = format!("{url}{sep}sentinelServiceName=");
    for b in service_name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn invalid_url(e: fred::error::Error) -> Error {
    // The URL may hold a password: name the fault, not the URL (fred's
    // details never repeat the credentials).
    Error::InvalidConfig {
        field: "url".into(),
        reason: format!("not a usable Redis URL: {}", e.details()),
    }
}

impl FredStore {
    /// Connects to a standalone server at `url`, with the default settings.
    ///
    /// # Errors
    /// As [`FredStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder().url(url).connect().await
    }

    /// A builder: URL, cluster nodes or sentinels, prefix, clock, timeouts,
    /// pool size.
    pub fn builder() -> FredStoreBuilder {
        FredStoreBuilder {
            topology: None,
            layout: KeyLayout::default(),
            clock: None,
            response_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(2),
            pool_size: 4,
            #[cfg(feature = "rustls")]
            tls: crate::tls::TlsSettings::default(),
        }
    }

    /// A store over a fred client the application already has (standalone,
    /// cluster or sentinel), connected with [`init`](ClientLike::init); its
    /// timeouts and reconnect policy stay the application's.
    pub fn from_client(client: Client, layout: KeyLayout) -> Self {
        let pool = Pool::from_clients(vec![client]).expect("a pool of one client is not empty");
        Self::from_backend(
            Lazy::ready(FredBackend::new(pool, Vec::new())),
            layout,
            None,
        )
    }

    /// A store over a fred pool the application already has, connected with
    /// [`init`](ClientLike::init).
    pub fn from_pool(pool: Pool, layout: KeyLayout) -> Self {
        Self::from_backend(
            Lazy::ready(FredBackend::new(pool, Vec::new())),
            layout,
            None,
        )
    }

    fn from_backend(
        backend: Lazy<FredBackend>,
        layout: KeyLayout,
        clock: Option<Arc<dyn Clock>>,
    ) -> Self {
        FredStore {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(e: &Error) -> (bool, String) {
        match e {
            Error::Store {
                retryable, message, ..
            } => (*retryable, message.clone()),
            other => panic!("not a store error: {other:?}"),
        }
    }

    #[test]
    fn errors_say_whether_a_retry_may_help() {
        use fred::error::{Error as E, ErrorKind as K};
        let (retry, msg) = kind(&convert(E::new(
            K::Auth,
            "WRONGPASS invalid username-password pair or user is disabled.",
        )));
        assert!(!retry);
        assert!(msg.contains("refused the credentials"), "{msg}");
        for e in [
            E::new(K::IO, "connection reset"),
            E::new(K::Timeout, "Request timed out."),
            E::new(K::Canceled, "Connection closed unexpectedly."),
            E::new(K::Cluster, "CLUSTERDOWN The cluster is down"),
            E::new(K::Unknown, "LOADING Redis is loading the dataset in memory"),
            E::new(K::Unknown, "BUSY Redis is busy running a script."),
            E::new(K::Unknown, "MASTERDOWN Link with MASTER is down"),
            // What fred 10 raises while the server is stopped (SIGSTOP) or
            // the connection is being made again.
            E::new(K::Unknown, "Failed to route command."),
            E::new(K::Unknown, "Too many failed write attempts."),
            E::new(K::Unknown, "Missing response."),
            E::new(K::Unknown, "Client is not initialized."),
        ] {
            assert!(kind(&convert(e.clone())).0, "{e}");
        }
        for e in [
            E::new(K::Unknown, "NOSCRIPT No matching script."),
            E::new(K::Unknown, "Unsigned integer too large."),
            E::new(K::Unknown, "ERR Error running script (call to f_x): oops"),
            E::new(K::Parse, "Could not convert to integer."),
            E::new(K::Protocol, "Invalid frame."),
            E::new(K::Config, "Invalid or missing host."),
        ] {
            assert!(!kind(&convert(e.clone())).0, "{e}");
        }
    }

    #[test]
    fn service_names_are_encoded_into_the_query() {
        assert_eq!(
            with_service("redis://h:26379", "my master"),
            "redis://h:26379?sentinelServiceName=my%20master"
        );
        assert_eq!(
            with_service("redis://h/?node=g:1", "m&x"),
            "redis://h/?node=g:1&sentinelServiceName=m%26x"
        );
    }

    #[test]
    fn sentinel_and_cluster_urls_are_merged() {
        let b = FredStore::builder().sentinel(
            "mymaster",
            ["redis://u:pw@10.0.0.1/2", "redis://10.0.0.2:26380"],
        );
        let c = b.config().unwrap();
        assert_eq!(c.database, Some(2));
        assert_eq!(c.password.as_deref(), Some("pw"));
        match c.server {
            ServerConfig::Sentinel {
                hosts,
                service_name,
                ..
            } => {
                assert_eq!(service_name, "mymaster");
                let hosts: Vec<_> = hosts.iter().map(|h| (h.host.to_string(), h.port)).collect();
                assert!(hosts.contains(&("10.0.0.1".into(), 26379)), "{hosts:?}");
                assert!(hosts.contains(&("10.0.0.2".into(), 26380)), "{hosts:?}");
            }
            other => panic!("{other:?}"),
        }
        let c = FredStore::builder()
            .cluster(["redis://127.0.0.1:7000/", "redis://127.0.0.1:7001/"])
            .config()
            .unwrap();
        assert_eq!(c.server.hosts().len(), 2);
        assert!(c.server.is_clustered());
    }

    #[test]
    fn debug_and_config_errors_hide_the_password() {
        let b = FredStore::builder().url("redis://user:hunter2@localhost:6379/");
        assert!(!format!("{b:?}").contains("hunter2"));
        let e = FredStore::builder()
            .url("redis://user:hunter2@:notaport/")
            .config()
            .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(matches!(
            FredStore::builder().config(),
            Err(Error::InvalidConfig { .. })
        ));
    }
}
