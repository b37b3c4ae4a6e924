//! The whole store conformance suite against both clients on a real
//! 3-master Redis Cluster shared by every check of this binary, with the
//! manual clock passed to the scripts.

mod support;

support::per_client! {
    limiter_conformance::conformance_suite!(|clock| CLIENT.on_shared_cluster(clock));
}
