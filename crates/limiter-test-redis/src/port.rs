//! Free loopback ports.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, OnceLock};

/// The default Redis port, which is never handed out.
const REDIS_DEFAULT_PORT: u16 = 6379;

/// Redis Cluster's bus listens on the data port plus this offset.
pub(crate) const CLUSTER_BUS_OFFSET: u16 = 10_000;

/// How many candidate ports to try before giving up.
const ATTEMPTS: usize = 1_000;

/// Ports handed out by this process: never handed out twice, so that tests
/// running in parallel do not race for one port (a stopped server keeps its
/// port for a restart).
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(Default::default)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding 127.0.0.1:0 and dropping the listener, so
/// another process may still take it before it is used: the servers of this
/// crate retry on another port when that happens. Within this process a port
/// is handed out at most once, and 6379 never.
///
/// # Panics
///
/// Panics when no free port can be found.
pub fn free_port() -> u16 {
    pick(|_| true)
}

/// A free port `p` whose cluster bus port `p + 10000` is free too.
///
/// # Panics
///
/// Panics when no such port can be found.
pub(crate) fn free_cluster_port() -> u16 {
    pick(|port| {
        port.checked_add(CLUSTER_BUS_OFFSET)
            .is_some_and(|bus| bus != REDIS_DEFAULT_PORT && is_free(bus))
    })
}

fn pick(accept: impl Fn(u16) -> bool) -> u16 {
    for _ in 0..ATTEMPTS {
        let port = match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) {
            Ok(listener) => match listener.local_addr() {
                Ok(addr) => addr.port(),
                Err(_) => continue,
            },
            Err(err) => panic!("cannot bind a TCP listener on 127.0.0.1:0: {err}"),
        };
        if port == REDIS_DEFAULT_PORT || !accept(port) {
            continue;
        }
        let mut ports = handed_out().lock().unwrap_or_else(|e| e.into_inner());
        if ports.insert(port) {
            return port;
        }
    }
    panic!("no free TCP port found on 127.0.0.1 after {ATTEMPTS} attempts");
}

fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_and_not_6379() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
        assert!(!ports.contains(&REDIS_DEFAULT_PORT));
        assert!(ports.iter().any(|&port| is_free(port)));
    }

    #[test]
    fn cluster_ports_leave_room_for_the_bus() {
        let port = free_cluster_port();
        assert!(port <= u16::MAX - CLUSTER_BUS_OFFSET);
        assert_ne!(port, REDIS_DEFAULT_PORT);
    }
}
