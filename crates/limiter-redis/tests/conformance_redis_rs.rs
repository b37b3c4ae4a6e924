//! The whole store conformance suite against `RedisStore` (redis-rs) on a
//! real, freshly started redis-server, with the manual clock passed to the
//! scripts.

#![cfg(feature = "redis-rs")]

mod support;

limiter_core::conformance_suite!(support::redis_rs_on);
