//! The whole store conformance suite against both clients on a real
//! 3-master Redis Cluster shared by every check of this binary, with the
//! manual clock passed to the scripts.

mod support;

/// `RedisStore` (redis-rs) on a cluster.
#[cfg(feature = "redis-rs")]
mod redis_rs {
    limiter_conformance::conformance_suite!(super::support::redis_rs_cluster_on);
}

/// `FredStore` (fred) on a cluster.
#[cfg(feature = "fred")]
mod fred {
    limiter_conformance::conformance_suite!(super::support::fred_cluster_on);
}
