//! The store conformance suite of **llm-limiter**: one set of behavioural
//! checks that every [`Store`](limiter_core::Store) must pass, with a
//! [`ManualClock`](limiter_core::ManualClock) where time matters.
//!
//! A store crate stamps the whole suite out as tests with one macro call,
//! giving a factory that builds a store on the manual clock it is handed
//! (this is `limiter-memory`'s `tests/conformance.rs`):
//!
//! ```text
//! limiter_conformance::conformance_suite!(|clock: limiter_core::ManualClock| async move {
//!     std::sync::Arc::new(limiter_memory::MemoryStore::with_clock(clock))
//!         as std::sync::Arc<dyn limiter_core::Store>
//! });
//! ```
//!
//! The factory is called once per check (and once per property check, whose
//! cases each use a fresh key): it may hand out stores over one shared
//! server, since every check works on keys of its own.
//!
//! The checks are grouped by topic, one module each, and the tests the macro
//! writes are named `topic::check`:
//!
//! | module | pins |
//! |---|---|
//! | [`admission`] | work conserving, never over-admitting, FIFO, waiting, contention |
//! | [`input`] | bad input is a typed error that changes nothing |
//! | [`settle`](mod@settle) | adjust, refund, cancelled waiters, metering presets |
//! | [`dimensions`] | split input/output, burndown, images, per-second limits, smoothing |
//! | [`windows`] | token buckets, calendar days in a time zone, rolling days |
//! | [`cooldown`] | cooldowns shared through the store |
//! | [`status`] | usage, queue and cooldown of a key |
//! | [`calibration`] | external usage held until the reset, token buckets set to the provider's level, limits of record shared by every limiter |
//! | [`leases`] | concurrency leases: cap, expiry, FIFO tickets |
//! | [`props`] | property checks against an exact model |
//!
//! Each check states the behaviour it pins in its doc line. [`FaultyStore`]
//! wraps any store and fails on demand, for tests of fault handling.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod faulty;
mod harness;

pub mod admission;
pub mod calibration;
pub mod cooldown;
pub mod dimensions;
pub mod input;
pub mod leases;
pub mod props;
pub mod settle;
pub mod status;
pub mod windows;

pub use faulty::{Fault, FaultyStore};
pub use harness::{bucket_width, eventually, run_check, settle, Harness, LeaseHarness};
#[doc(hidden)]
pub use harness::{into_lease_store, into_store};

/// Stamps out every check of the suite as a `#[test]` over a store factory:
/// an expression of type `Fn(ManualClock) -> impl Future<Output = S>`, where
/// `S` is a [`LeaseStore`](limiter_core::LeaseStore) (`Arc<dyn LeaseStore>`,
/// say), called once per test (and per property check).
///
/// `conformance_suite!(admission_only: make)` stamps out all but the
/// [`leases`] checks, for a store that is only a
/// [`Store`](limiter_core::Store).
///
/// The tests are written into modules named after the topics
/// (`admission::fifo_small_never_overtakes_large`, ...), next to functions
/// `conformance_store` (and `conformance_lease_store`) that call the
/// factory.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        async fn conformance_lease_store(
            clock: $crate::__private::ManualClock,
        ) -> ::std::sync::Arc<dyn $crate::__private::LeaseStore> {
            $crate::into_lease_store(($make)(clock).await)
        }
        $crate::conformance_suite!(admission_only: $make);
        $crate::conformance_suite!(@checks leases, conformance_lease_store:
            leases_cap_holds_and_release_frees,
            leases_expire_unless_renewed,
            lease_waiters_are_fifo,
            lease_bad_input_changes_nothing,
            leases_contention_and_independence,
        );
    };
    (admission_only: $make:expr) => {
        async fn conformance_store(
            clock: $crate::__private::ManualClock,
        ) -> ::std::sync::Arc<dyn $crate::__private::Store> {
            $crate::into_store(($make)(clock).await)
        }
        $crate::conformance_suite!(@checks admission, conformance_store:
            admits_at_once_when_room,
            rolling_window_never_over_admits,
            guard_band_extends_the_window,
            fifo_small_never_overtakes_large,
            slots_never_decrease,
            waiters_wake_in_fifo_order,
            try_acquire_reserves_nothing_when_denied,
            max_wait_rejects_without_reserving,
            keys_are_independent,
            contention_admits_exact_count,
            limits_can_change_at_run_time,
        );
        $crate::conformance_suite!(@checks input, conformance_store:
            oversized_request_is_rejected,
            bad_input_changes_nothing,
        );
        $crate::conformance_suite!(@checks settle, conformance_store:
            adjust_down_frees_capacity,
            adjust_up_takes_capacity,
            settling_input_and_output_separately_keeps_both,
            adjust_by_record_id_from_another_limiter,
            refund_gives_back,
            dropped_waiter_gives_back,
            metering_presets_hold_what_the_provider_counts,
        );
        $crate::conformance_suite!(@checks dimensions, conformance_store:
            split_input_output_limits,
            burndown_weights_output,
            images_per_window,
            requests_per_second,
            smoothing_spaces_requests,
        );
        $crate::conformance_suite!(@checks windows, conformance_store:
            token_bucket_refills,
            calendar_day_resets_at_pacific_midnight,
            calendar_day_in_a_named_zone,
            rolling_day_limit,
        );
        $crate::conformance_suite!(@checks calibration, conformance_store:
            external_usage_is_held_until_the_reset,
            a_dated_report_counts_ours_as_of_when_it_went,
            a_token_bucket_is_set_to_the_providers_level,
            limits_of_record_round_trip,
            calibrated_limits_reach_every_limiter,
            observed_remaining_holds_external_usage,
            a_permit_dates_its_report_when_the_request_went,
        );
        $crate::conformance_suite!(@checks cooldown, conformance_store: cooldown_is_shared_and_delays);
        $crate::conformance_suite!(@checks status, conformance_store:
            status_reports_usage_and_queue,
            status_separates_queued_in_every_kind_of_limit,
        );
        mod props {
            #[test]
            fn prop_rolling_holds_limits_fifo_and_precision() {
                $crate::props::prop_rolling_holds_limits_fifo_and_precision(super::conformance_store);
            }
            #[test]
            fn prop_token_bucket_holds() {
                $crate::props::prop_token_bucket_holds(super::conformance_store);
            }
            #[test]
            fn prop_calendar_day_holds() {
                $crate::props::prop_calendar_day_holds(super::conformance_store);
            }
        }
    };
    (@checks $topic:ident, $store:ident: $($name:ident),* $(,)?) => {
        mod $topic {
            $(
                #[test]
                fn $name() {
                    $crate::run_check(
                        stringify!($name),
                        super::$store,
                        $crate::$topic::$name,
                    );
                }
            )*
        }
    };
}

#[doc(hidden)]
pub mod __private {
    pub use limiter_core::{LeaseStore, ManualClock, Store};
}
