//! A Redis Cluster of `redis-server` processes.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::log;
use crate::path::redis_cli_path;
use crate::server::RedisServer;

/// How long `redis-cli --cluster create` may take.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the nodes have to report `cluster_state:ok` after creation.
const OK_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two polls.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The output of `redis-cli --cluster create`, in the cluster's directory.
const CREATE_LOG: &str = "cluster-create.log";

/// A Redis Cluster of masters without replicas, each a `redis-server` on a
/// free port of 127.0.0.1; every node is killed on drop.
///
/// The 16384 slots are spread over the masters by `redis-cli --cluster
/// create`, so keys that must be on one node need a common hash tag
/// (`{tag}key`).
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// Holds the output of `redis-cli --cluster create`.
    dir: TempDir,
}

impl RedisCluster {
    /// Starts `masters` cluster nodes (`--cluster-enabled yes`, node timeout
    /// 5 s), joins them with `redis-cli --cluster create`, and waits until
    /// every node reports `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// Panics when `masters` is less than 3 (Redis Cluster's minimum), when
    /// `redis-server` or `redis-cli` is not on `PATH`, when a node does not
    /// start, when `redis-cli --cluster create` fails or takes more than
    /// 30 s, or when the cluster is not ok within 30 s; the message holds
    /// the end of the logs.
    pub fn start(masters: usize) -> Self {
        assert!(
            masters >= 3,
            "a Redis Cluster needs at least 3 masters, got {masters}"
        );
        let cli = redis_cli_path();
        let nodes = (0..masters)
            .map(|_| RedisServer::start_cluster_node())
            .collect();
        let dir = tempfile::Builder::new()
            .prefix("limiter-test-redis-cluster-")
            .tempdir()
            .unwrap_or_else(|err| panic!("cannot create a temp dir for the cluster: {err}"));
        let cluster = Self { nodes, dir };
        cluster.create(&cli);
        cluster.wait_until_ok(&cli);
        cluster
    }

    /// The nodes.
    pub(crate) fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The directory of `redis-cli --cluster create`'s output.
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The ports of the nodes, on 127.0.0.1.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// `redis://127.0.0.1:PORT/` for every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Runs `redis-cli --cluster create` over all nodes.
    fn create(&self, cli: &std::path::Path) {
        let log_path = self.dir.path().join(CREATE_LOG);
        let log = log::open_append(&log_path)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", log_path.display()));
        let stderr = log
            .try_clone()
            .unwrap_or_else(|err| panic!("cannot clone a file handle: {err}"));
        let mut child = Command::new(cli)
            .arg("--cluster")
            .arg("create")
            .args(self.ports().iter().map(|port| format!("127.0.0.1:{port}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", cli.display()));

        let deadline = Instant::now() + CREATE_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return,
                Ok(Some(status)) => {
                    self.fail(&format!("redis-cli --cluster create failed ({status})"))
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
                result => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.fail(&match result {
                        Err(err) => format!("cannot wait for redis-cli --cluster create: {err}"),
                        _ => format!(
                            "redis-cli --cluster create did not finish within {} s",
                            CREATE_TIMEOUT.as_secs()
                        ),
                    });
                }
            }
        }
    }

    /// Polls `redis-cli CLUSTER INFO` until every node is ok.
    fn wait_until_ok(&self, cli: &std::path::Path) {
        let deadline = Instant::now() + OK_TIMEOUT;
        loop {
            let states: Vec<(u16, String)> = self
                .ports()
                .into_iter()
                .map(|port| (port, cluster_state(cli, port)))
                .collect();
            if states.iter().all(|(_, state)| state == "ok") {
                return;
            }
            if Instant::now() >= deadline {
                let states: Vec<String> = states
                    .iter()
                    .map(|(port, state)| format!("127.0.0.1:{port}: {state}"))
                    .collect();
                self.fail(&format!(
                    "the cluster is not ok within {} s: {}",
                    OK_TIMEOUT.as_secs(),
                    states.join(", ")
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn fail(&self, what: &str) -> ! {
        let mut message = format!("{what}\n{}", log::tail(&self.dir.path().join(CREATE_LOG)));
        for node in &self.nodes {
            message.push('\n');
            message.push_str(&log::tail(&node.log_path()));
        }
        panic!("{message}")
    }
}

/// The `cluster_state` that `redis-cli CLUSTER INFO` reports for the node
/// on `port`, or what went wrong.
fn cluster_state(cli: &std::path::Path, port: u16) -> String {
    let output = Command::new(cli)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "CLUSTER",
            "INFO",
        ])
        .stdin(Stdio::null())
        .output();
    match output {
        Err(err) => format!("cannot run redis-cli: {err}"),
        Ok(output) => {
            let stdout = String::from_utf8_lossy(&output.stdout);
            stdout
                .lines()
                .find_map(|line| line.strip_prefix("cluster_state:"))
                .map(|state| state.trim().to_owned())
                .unwrap_or_else(|| {
                    format!(
                        "no cluster_state ({}): {}{}",
                        output.status,
                        stdout.trim(),
                        String::from_utf8_lossy(&output.stderr).trim()
                    )
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{Conn, Reply};

    fn command(port: u16, args: &[&str]) -> Reply {
        Conn::connect(port)
            .and_then(|mut conn| conn.command(args))
            .unwrap_or_else(|err| panic!("{args:?} on port {port}: {err}"))
    }

    /// Three masters reach `cluster_state:ok`, share the slots, and a key
    /// is served by exactly one of them (the others redirect with MOVED);
    /// dropping the cluster kills every node.
    #[test]
    fn three_masters_reach_ok_and_are_killed_on_drop() {
        let cluster = RedisCluster::start(3);
        let ports = cluster.ports();
        assert_eq!(ports.len(), 3);
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
        assert!(!ports.contains(&6379));
        assert_eq!(
            cluster.urls(),
            ports
                .iter()
                .map(|port| format!("redis://127.0.0.1:{port}/"))
                .collect::<Vec<_>>()
        );

        for &port in &ports {
            let Reply::Bulk(Some(info)) = command(port, &["CLUSTER", "INFO"]) else {
                panic!("CLUSTER INFO on {port} is not a bulk string");
            };
            assert!(info.contains("cluster_state:ok"), "{port}: {info}");
            assert!(
                info.contains("cluster_slots_assigned:16384"),
                "{port}: {info}"
            );
            assert!(info.contains("cluster_known_nodes:3"), "{port}: {info}");
            assert!(info.contains("cluster_size:3"), "{port}: {info}");
        }

        let replies: Vec<Reply> = ports
            .iter()
            .map(|&port| command(port, &["SET", "{limiter}key", "v"]))
            .collect();
        let served = replies
            .iter()
            .filter(|reply| **reply == Reply::Simple("OK".into()))
            .count();
        let moved = replies
            .iter()
            .filter(|reply| matches!(reply, Reply::Error(e) if e.starts_with("MOVED")))
            .count();
        assert_eq!((served, moved), (1, 2), "{replies:?}");

        drop(cluster);
        for port in ports {
            assert!(Conn::connect(port).is_err(), "{port} alive after drop");
        }
    }

    #[test]
    #[should_panic(expected = "at least 3 masters")]
    fn fewer_than_three_masters_is_refused() {
        let _ = RedisCluster::start(2);
    }
}
