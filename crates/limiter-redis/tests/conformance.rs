//! The whole store conformance suite against both Redis clients on one
//! real redis-server, shared by every check of this binary (each check
//! uses keys of its own), with the manual clock passed to the scripts.

mod support;

support::per_client! {
    limiter_conformance::conformance_suite!(|clock| CLIENT.on_shared_server(clock));
}
