//! The whole store conformance suite against both Redis clients on one
//! real redis-server, shared by every check of this binary (each check
//! uses keys of its own), with the manual clock passed to the scripts.

mod support;

/// `RedisStore` (redis-rs).
#[cfg(feature = "redis-rs")]
mod redis_rs {
    limiter_conformance::conformance_suite!(super::support::redis_rs_on);
}

/// `FredStore` (fred).
#[cfg(feature = "fred")]
mod fred {
    limiter_conformance::conformance_suite!(super::support::fred_on);
}
