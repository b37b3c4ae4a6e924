//! The store logic shared by both clients: arguments in, replies out.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use limiter_core::lease::check_ttl;
use limiter_core::{
    Clock, CooldownEnd, Cost, Decision, Dimension, ExternalUsage, LeaseDecision, LeaseId,
    LeaseRequest, LeaseStatus, LeaseStore, Limits, LimitsRecord, RecordId, Result, Status, Store,
    SystemClock, Timestamp,
};

use crate::args::{self, Op};
use crate::keys::KeyLayout;

/// How long a key's limits of record are kept after their last write.
const RECORD_KEPT_MS: u64 = 24 * 60 * 60 * 1000;

/// A client that can run the scripts: EVALSHA, loading a script and trying
/// again when the server answers NOSCRIPT.
#[async_trait]
pub(crate) trait Backend: Send + Sync + fmt::Debug + 'static {
    /// Runs `op`'s script; the reply is an array of integers.
    async fn eval(&self, op: Op, keys: &[String], args: Vec<String>) -> Result<Vec<i64>>;

    /// Runs `op`'s script; the reply is a string or nil.
    async fn eval_text(&self, op: Op, keys: &[String], args: Vec<String>)
        -> Result<Option<String>>;
}

/// The start of the message of a TLS failure, for both clients.
#[cfg(feature = "rustls")]
pub(crate) const TLS_FAILED: &str = "Redis: the TLS handshake failed (is the server's \
    certificate signed by the CA given, and does it name the host?)";

/// What a builder's settings make: how to connect, and the store's layout
/// and clock.
pub(crate) type Parts<B> = (Connector<B>, KeyLayout, Option<Arc<dyn Clock>>);

/// How a [`Lazy`] backend connects: a fresh attempt each call.
pub(crate) type Connector<B> = Box<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<B>> + Send>>
        + Send
        + Sync,
>;

/// A backend that may connect on first use, so that building a store needs
/// no server: the first call connects; while the server cannot be reached,
/// calls fail with the connection's error (retryable for an unreachable
/// server) and a later call tries again. At most one attempt runs at a time,
/// and none within [`Lazy::RETRY_PAUSE`] of a failed one: callers in
/// between get the last failure at once. Once connected, a call costs one
/// atomic load more than the backend's own.
pub(crate) struct Lazy<B> {
    cell: tokio::sync::OnceCell<B>,
    connect: Option<Connector<B>>,
    /// When the last attempt failed, with its message and retryability.
    failed: parking_lot::Mutex<Option<(std::time::Instant, String, bool)>>,
}

impl<B> Lazy<B> {
    /// The pause after a failed attempt during which calls fail at once.
    pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(100);

    /// A backend already connected.
    pub(crate) fn ready(backend: B) -> Self {
        Lazy {
            cell: tokio::sync::OnceCell::new_with(Some(backend)),
            connect: None,
            failed: parking_lot::Mutex::new(None),
        }
    }

    /// A backend that connects with `connect` on first use.
    pub(crate) fn pending(connect: Connector<B>) -> Self {
        Lazy {
            cell: tokio::sync::OnceCell::new(),
            connect: Some(connect),
            failed: parking_lot::Mutex::new(None),
        }
    }

    /// The backend, connecting it first if it is not yet.
    async fn get(&self) -> Result<&B> {
        if let Some(b) = self.cell.get() {
            return Ok(b);
        }
        let recent = |failed: &Option<(std::time::Instant, String, bool)>| {
            failed
                .as_ref()
                .filter(|(at, _, _)| at.elapsed() < Self::RETRY_PAUSE)
                .map(|(_, message, retryable)| {
                    limiter_core::Error::store(message.clone(), *retryable)
                })
        };
        if let Some(e) = recent(&self.failed.lock()) {
            return Err(e);
        }
        let Some(connect) = &self.connect else {
            return Err(limiter_core::Error::store(
                "the store has no connection",
                false,
            ));
        };
        self.cell
            .get_or_try_init(|| async {
                // Another caller's attempt may have just failed.
                if let Some(e) = recent(&self.failed.lock()) {
                    return Err(e);
                }
                connect().await.inspect_err(|e| {
                    let message = match e {
                        limiter_core::Error::Store { message, .. } => message.clone(),
                        other => other.to_string(),
                    };
                    *self.failed.lock() =
                        Some((std::time::Instant::now(), message, e.is_retryable()));
                })
            })
            .await
    }
}

impl<B: fmt::Debug> fmt::Debug for Lazy<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cell.get() {
            Some(b) => b.fmt(f),
            None => f.write_str("Lazy(not connected yet)"),
        }
    }
}

#[async_trait]
impl<B: Backend> Backend for Lazy<B> {
    async fn eval(&self, op: Op, keys: &[String], args: Vec<String>) -> Result<Vec<i64>> {
        self.get().await?.eval(op, keys, args).await
    }

    async fn eval_text(
        &self,
        op: Op,
        keys: &[String],
        args: Vec<String>,
    ) -> Result<Option<String>> {
        self.get().await?.eval_text(op, keys, args).await
    }
}

/// Where "now" comes from.
#[derive(Clone)]
pub(crate) enum TimeSource {
    /// The Redis server's `TIME`, read inside each script.
    Server,
    /// A clock of the caller's (a manual clock in tests), passed to each
    /// script.
    Clock(Arc<dyn Clock>),
}

impl fmt::Debug for TimeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeSource::Server => f.write_str("Server"),
            TimeSource::Clock(c) => write!(f, "Clock({c:?})"),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Core<B> {
    pub(crate) backend: B,
    pub(crate) layout: KeyLayout,
    pub(crate) time: TimeSource,
}

impl<B: Backend> Core<B> {
    fn now(&self) -> Option<Timestamp> {
        match &self.time {
            TimeSource::Server => None,
            TimeSource::Clock(c) => Some(c.now()),
        }
    }

    fn args(&self, limits: &Limits) -> Result<(limiter_core::Plan, Vec<String>)> {
        let plan = limits.plan()?;
        let args = args::admission_args(self.now(), &plan);
        Ok((plan, args))
    }

    /// Runs the cooldown script: sets `end` when given, and reads the end
    /// in force.
    async fn cooldown_call(
        &self,
        key: &str,
        set: Option<CooldownEnd>,
    ) -> Result<Option<Timestamp>> {
        let [state, ..] = self.layout.keys(key);
        let mut args = vec![args::now_arg(self.now())];
        // Keep the key a minute past the cooldown's end.
        let keep = "60000".to_string();
        match set {
            Some(CooldownEnd::At(until)) => {
                args.extend(["set".to_string(), until.as_micros().to_string(), keep]);
            }
            Some(CooldownEnd::After(d)) => {
                let us = u64::try_from(d.as_micros())
                    .unwrap_or(u64::MAX)
                    .min(1 << 52);
                args.extend(["for".to_string(), us.to_string(), keep]);
            }
            None => args.push("get".to_string()),
        }
        let reply = self.backend.eval(Op::Cooldown, &[state], args).await?;
        match reply.as_slice() {
            [0] => Ok(None),
            [t] if *t > 0 => Ok(Some(Timestamp::from_micros(*t as u64))),
            other => Err(limiter_core::Error::store(
                format!("unexpected reply from the cooldown script: {other:?}"),
                false,
            )),
        }
    }

    /// Runs the lease script: `op` and its arguments after "now".
    async fn lease_call(&self, key: &str, op: &str, rest: &[String]) -> Result<Vec<i64>> {
        let mut args = Vec::with_capacity(2 + rest.len());
        args.push(args::lease_now_arg(self.now())?);
        args.push(op.to_string());
        args.extend_from_slice(rest);
        self.backend
            .eval(Op::Lease, &self.layout.lease_keys(key), args)
            .await
    }
}

#[async_trait]
impl<B: Backend> Store for Core<B> {
    async fn reserve(
        &self,
        key: &str,
        limits: &Limits,
        cost: &Cost,
        max_wait: Option<Duration>,
    ) -> Result<Decision> {
        let (plan, mut args) = self.args(limits)?;
        let a = plan.amounts(cost)?;
        args::check_now(self.now())?;
        args::amounts_args(&a, &mut args);
        args.push(args::max_wait_arg(max_wait));
        let reply = self
            .backend
            .eval(Op::Reserve, &self.layout.keys(key), args)
            .await?;
        args::decode_reserve(&reply)
    }

    async fn adjust(
        &self,
        key: &str,
        limits: &Limits,
        record: RecordId,
        actual: &Cost,
    ) -> Result<()> {
        let (plan, mut args) = self.args(limits)?;
        let a = plan.usage_amounts(actual)?;
        args::check_now(self.now())?;
        args.push(record.0.to_string());
        args::amounts_args(&a, &mut args);
        let reply = self
            .backend
            .eval(Op::Adjust, &self.layout.keys(key), args)
            .await?;
        args::decode_done("adjust", record, &reply)
    }

    async fn refund(&self, key: &str, limits: &Limits, record: RecordId) -> Result<()> {
        let (_, mut args) = self.args(limits)?;
        args::check_now(self.now())?;
        args.push(record.0.to_string());
        let reply = self
            .backend
            .eval(Op::Refund, &self.layout.keys(key), args)
            .await?;
        args::decode_done("refund", record, &reply)
    }

    async fn status(&self, key: &str, limits: &Limits) -> Result<Status> {
        let (_, args) = self.args(limits)?;
        args::check_now(self.now())?;
        let reply = self
            .backend
            .eval(Op::Status, &self.layout.keys(key), args)
            .await?;
        args::decode_status(limits, &reply)
    }

    async fn hold_external(
        &self,
        key: &str,
        limits: &Limits,
        usage: &ExternalUsage,
    ) -> Result<Vec<(Dimension, u64)>> {
        let (_, mut args) = self.args(limits)?;
        args::check_now(self.now())?;
        args::external_args(usage, &mut args);
        let reply = self
            .backend
            .eval(Op::External, &self.layout.keys(key), args)
            .await?;
        args::decode_external(&reply)
    }

    async fn limits_record(&self, key: &str) -> Result<Option<LimitsRecord>> {
        let reply = self
            .backend
            .eval_text(
                Op::Record,
                &[self.layout.record_key(key)],
                vec!["get".into()],
            )
            .await?;
        match reply {
            None => Ok(None),
            Some(json) => serde_json::from_str(&json).map(Some).map_err(|e| {
                limiter_core::Error::store(
                    format!("the limits of record of {key:?} do not parse: {e}"),
                    false,
                )
            }),
        }
    }

    async fn put_limits_record(&self, key: &str, record: &LimitsRecord) -> Result<()> {
        record.configured.validate()?;
        let json = serde_json::to_string(record).map_err(|e| {
            limiter_core::Error::store(format!("cannot write the limits of record: {e}"), false)
        })?;
        // Kept a day past its last write; every process rewrites it when
        // the provider reports a change.
        self.backend
            .eval_text(
                Op::Record,
                &[self.layout.record_key(key)],
                vec!["set".into(), json, RECORD_KEPT_MS.to_string()],
            )
            .await
            .map(|_| ())
    }

    async fn cool_down(&self, key: &str, end: CooldownEnd) -> Result<()> {
        self.cooldown_call(key, Some(end)).await.map(|_| ())
    }

    async fn cooldown_end(&self, key: &str) -> Result<Option<Timestamp>> {
        self.cooldown_call(key, None).await
    }

    fn clock(&self) -> Arc<dyn Clock> {
        match &self.time {
            TimeSource::Server => Arc::new(SystemClock),
            TimeSource::Clock(c) => c.clone(),
        }
    }
}

#[async_trait]
impl<B: Backend> LeaseStore for Core<B> {
    async fn acquire_lease(&self, key: &str, request: &LeaseRequest) -> Result<LeaseDecision> {
        request.validate()?;
        let rest = [
            request.cap.to_string(),
            args::ttl_arg(request.ttl),
            u8::from(request.queue).to_string(),
            request.ticket.map_or_else(String::new, |t| t.0.to_string()),
        ];
        let reply = self.lease_call(key, "acquire", &rest).await?;
        args::decode_lease_acquire(&reply)
    }

    async fn renew_lease(
        &self,
        key: &str,
        lease: LeaseId,
        ttl: Duration,
    ) -> Result<Option<Timestamp>> {
        check_ttl(ttl)?;
        let rest = [lease.0.to_string(), args::ttl_arg(ttl)];
        let reply = self.lease_call(key, "renew", &rest).await?;
        args::decode_lease_renew(&reply)
    }

    async fn release_lease(&self, key: &str, lease: LeaseId) -> Result<bool> {
        let reply = self
            .lease_call(key, "release", &[lease.0.to_string()])
            .await?;
        args::decode_lease_release(&reply)
    }

    async fn lease_status(&self, key: &str) -> Result<LeaseStatus> {
        let reply = self.lease_call(key, "status", &[]).await?;
        args::decode_lease_status(&reply)
    }
}

/// Implements `Store` and `LeaseStore` for a public store type holding
/// `core: Core<B>`.
macro_rules! impl_store {
    ($ty:ty) => {
        limiter_core::delegate_store!(impl[] Store for $ty, to |s| &s.core);
        limiter_core::delegate_store!(impl[] LeaseStore for $ty, to |s| &s.core);
    };
}
pub(crate) use impl_store;

/// The setters both store builders share (fields `layout`, `clock`,
/// `response_timeout`, `connection_timeout`).
macro_rules! common_setters {
    () => {
        /// The key prefix (default `llm-limiter`), to keep several
        /// deployments apart on one server.
        #[must_use]
        pub fn prefix(mut self, prefix: &str) -> Self {
            self.layout = $crate::keys::KeyLayout::new(prefix);
            self
        }

        /// Reads "now" from `clock` instead of the server's `TIME` (for
        /// tests with a manual clock; in production every process must
        /// share the server's clock).
        #[must_use]
        pub fn clock(mut self, clock: impl limiter_core::Clock) -> Self {
            self.clock = Some(std::sync::Arc::new(clock));
            self
        }

        /// How long one call may wait for its reply (default 2 s); a call
        /// that times out is a retryable store error.
        #[must_use]
        pub fn response_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.response_timeout = timeout;
            self
        }

        /// How long one connection attempt may take (default 2 s).
        #[must_use]
        pub fn connection_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.connection_timeout = timeout;
            self
        }

        /// Trusts the CAs in `pem` (PEM certificates) for the server's
        /// certificate, instead of the system's roots. TLS itself is turned
        /// on by the `rediss://` scheme of the URL.
        #[cfg(feature = "rustls")]
        #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
        #[must_use]
        pub fn tls_root_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
            self.tls.root_ca_pem = Some(pem.into());
            self
        }

        /// Presents this client certificate (`cert_chain_pem`, PEM) with its
        /// private key (`key_pem`, PEM) to a server that asks for one
        /// (`tls-auth-clients yes`).
        #[cfg(feature = "rustls")]
        #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
        #[must_use]
        pub fn tls_client_identity_pem(
            mut self,
            cert_chain_pem: impl Into<Vec<u8>>,
            key_pem: impl Into<Vec<u8>>,
        ) -> Self {
            self.tls.client_identity_pem = Some((cert_chain_pem.into(), key_pem.into()));
            self
        }
    };
}
pub(crate) use common_setters;
