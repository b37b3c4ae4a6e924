//! [`delegate_store!`](crate::delegate_store): one macro for every store
//! that passes its calls on to another.

/// Implements [`Store`](crate::Store) or [`LeaseStore`](crate::LeaseStore)
/// for a type by passing every call on to another store: a reference, a
/// box, a wrapper holding an inner store, a public type over a private
/// core.
///
/// ```text
/// delegate_store!(impl[GENERICS] Store for TYPE, to |s| INNER
///     [, before |s, op| HOOK] [, clock |s| CLOCK]);
/// delegate_store!(impl[GENERICS] LeaseStore for TYPE, to |s| INNER [, before |s, op| HOOK]);
/// ```
///
/// - `to |s| INNER`: the store to call, from `s: &Self` (an expression of a
///   type that implements the trait, or a reference to one).
/// - `before |s, op| HOOK`: runs first in every call but `clock`, with `op`
///   the method's name (`"reserve"`, `"acquire_lease"`, ...); it may return
///   early with `?` (a fault-injecting wrapper fails calls there).
/// - `clock |s| CLOCK`: the clock to report, instead of the inner store's.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// use limiter_core::{delegate_store, LeaseStore, Store};
///
/// /// Counts the calls that reach a store.
/// #[derive(Debug)]
/// struct Counted {
///     inner: Arc<dyn LeaseStore>,
///     calls: AtomicU64,
/// }
///
/// delegate_store!(impl[] Store for Counted, to |s| &s.inner,
///     before |s, _op| s.calls.fetch_add(1, Ordering::Relaxed));
/// delegate_store!(impl[] LeaseStore for Counted, to |s| &s.inner,
///     before |s, _op| s.calls.fetch_add(1, Ordering::Relaxed));
/// ```
#[macro_export]
macro_rules! delegate_store {
    (impl[$($g:tt)*] Store for $ty:ty, to |$s:ident| $to:expr
        $(, before |$bs:ident, $op:ident| $before:expr)?
        $(, clock |$cs:ident| $clock:expr)? $(,)?) => {
        #[$crate::__private::async_trait]
        impl<$($g)*> $crate::Store for $ty {
            async fn reserve(
                &self,
                key: &str,
                limits: &$crate::Limits,
                cost: &$crate::Cost,
                max_wait: ::std::option::Option<::std::time::Duration>,
            ) -> $crate::Result<$crate::Decision> {
                $( let $bs = self; let $op = "reserve"; let _ = $before; )?
                let $s = self;
                $crate::Store::reserve($to, key, limits, cost, max_wait).await
            }
            async fn adjust(
                &self,
                key: &str,
                limits: &$crate::Limits,
                record: $crate::RecordId,
                actual: &$crate::Cost,
            ) -> $crate::Result<()> {
                $( let $bs = self; let $op = "adjust"; let _ = $before; )?
                let $s = self;
                $crate::Store::adjust($to, key, limits, record, actual).await
            }
            async fn refund(
                &self,
                key: &str,
                limits: &$crate::Limits,
                record: $crate::RecordId,
            ) -> $crate::Result<()> {
                $( let $bs = self; let $op = "refund"; let _ = $before; )?
                let $s = self;
                $crate::Store::refund($to, key, limits, record).await
            }
            async fn cool_down(&self, key: &str, end: $crate::CooldownEnd) -> $crate::Result<()> {
                $( let $bs = self; let $op = "cool_down"; let _ = $before; )?
                let $s = self;
                $crate::Store::cool_down($to, key, end).await
            }
            async fn cooldown_end(
                &self,
                key: &str,
            ) -> $crate::Result<::std::option::Option<$crate::Timestamp>> {
                $( let $bs = self; let $op = "cooldown_end"; let _ = $before; )?
                let $s = self;
                $crate::Store::cooldown_end($to, key).await
            }
            async fn status(
                &self,
                key: &str,
                limits: &$crate::Limits,
            ) -> $crate::Result<$crate::Status> {
                $( let $bs = self; let $op = "status"; let _ = $before; )?
                let $s = self;
                $crate::Store::status($to, key, limits).await
            }

            async fn hold_external(
                &self,
                key: &str,
                limits: &$crate::Limits,
                usage: &$crate::ExternalUsage,
            ) -> $crate::Result<::std::vec::Vec<($crate::Dimension, u64)>> {
                $( let $bs = self; let $op = "hold_external"; let _ = $before; )?
                let $s = self;
                $crate::Store::hold_external($to, key, limits, usage).await
            }

            async fn limits_record(
                &self,
                key: &str,
            ) -> $crate::Result<::std::option::Option<$crate::LimitsRecord>> {
                $( let $bs = self; let $op = "limits_record"; let _ = $before; )?
                let $s = self;
                $crate::Store::limits_record($to, key).await
            }

            async fn put_limits_record(
                &self,
                key: &str,
                record: &$crate::LimitsRecord,
            ) -> $crate::Result<()> {
                $( let $bs = self; let $op = "put_limits_record"; let _ = $before; )?
                let $s = self;
                $crate::Store::put_limits_record($to, key, record).await
            }
            fn clock(&self) -> ::std::sync::Arc<dyn $crate::Clock> {
                $crate::delegate_store!(@clock self, |$s| $to $(, |$cs| $clock)?)
            }
        }
    };
    (impl[$($g:tt)*] LeaseStore for $ty:ty, to |$s:ident| $to:expr
        $(, before |$bs:ident, $op:ident| $before:expr)? $(,)?) => {
        #[$crate::__private::async_trait]
        impl<$($g)*> $crate::LeaseStore for $ty {
            async fn acquire_lease(
                &self,
                key: &str,
                request: &$crate::LeaseRequest,
            ) -> $crate::Result<$crate::LeaseDecision> {
                $( let $bs = self; let $op = "acquire_lease"; let _ = $before; )?
                let $s = self;
                $crate::LeaseStore::acquire_lease($to, key, request).await
            }
            async fn renew_lease(
                &self,
                key: &str,
                lease: $crate::LeaseId,
                ttl: ::std::time::Duration,
            ) -> $crate::Result<::std::option::Option<$crate::Timestamp>> {
                $( let $bs = self; let $op = "renew_lease"; let _ = $before; )?
                let $s = self;
                $crate::LeaseStore::renew_lease($to, key, lease, ttl).await
            }
            async fn release_lease(
                &self,
                key: &str,
                lease: $crate::LeaseId,
            ) -> $crate::Result<bool> {
                $( let $bs = self; let $op = "release_lease"; let _ = $before; )?
                let $s = self;
                $crate::LeaseStore::release_lease($to, key, lease).await
            }
            async fn lease_status(&self, key: &str) -> $crate::Result<$crate::LeaseStatus> {
                $( let $bs = self; let $op = "lease_status"; let _ = $before; )?
                let $s = self;
                $crate::LeaseStore::lease_status($to, key).await
            }
        }
    };
    (@clock $self_:ident, |$s:ident| $to:expr) => {{
        let $s = $self_;
        $crate::Store::clock($to)
    }};
    (@clock $self_:ident, |$s:ident| $to:expr, |$cs:ident| $clock:expr) => {{
        let $cs = $self_;
        $clock
    }};
}
