//! The unit tests of `limiter-core`'s modules, through its public API, one
//! module each (the store-level behaviour is the conformance suite's, in
//! `limiter-conformance`, run here on `ResilientStore` by
//! `conformance_resilient.rs`).

mod tiny;

mod core {
    pub(crate) mod prelude {
        pub(crate) use std::sync::atomic::Ordering;
        pub(crate) use std::time::Duration;

        pub(crate) use limiter_core::calendar::*;
        pub(crate) use limiter_core::state::*;
        pub(crate) use limiter_core::*;
    }

    mod calendar;
    mod lease;
    mod limits;
    mod policy;
    mod resilient;
    mod state;
    mod time;
}
