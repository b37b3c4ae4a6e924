//! The whole store conformance suite against `FredStore` (fred) on a real,
//! freshly started redis-server, with the manual clock passed to the
//! scripts.

#![cfg(feature = "fred")]

mod support;

limiter_core::conformance_suite!(support::fred_on);
