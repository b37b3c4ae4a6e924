//! One server and one cluster per test process, shared by its tests.
//!
//! A `static` is never dropped, so the servers behind these cannot be killed
//! by `Drop` like those of [`RedisServer::start`]. Each is watched instead by
//! a small `sh` loop started with it, which kills the servers and removes
//! their directories once the test process is gone, however it ended.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::cluster::RedisCluster;
use crate::server::RedisServer;

static SERVER: OnceLock<RedisServer> = OnceLock::new();
static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();

impl RedisServer {
    /// The standalone server shared by every caller in this process: started
    /// (without authentication) on the first call, and killed, with its
    /// directory removed, when the process exits. Tests that share it must
    /// use keys of their own and must not stop it.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), and when the watcher cannot be started.
    pub fn shared() -> &'static RedisServer {
        SERVER.get_or_init(|| {
            let server = RedisServer::start();
            reap_at_exit(&[&server], &[]);
            server
        })
    }
}

impl RedisCluster {
    /// The 3-master cluster shared by every caller in this process, started
    /// on the first call and killed, with its directories removed, when the
    /// process exits. Tests that share it must use keys of their own.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), and when the watcher cannot be started.
    pub fn shared() -> &'static RedisCluster {
        CLUSTER.get_or_init(|| {
            let cluster = RedisCluster::start(3);
            let nodes: Vec<&RedisServer> = cluster.nodes().iter().collect();
            reap_at_exit(&nodes, &[cluster.dir()]);
            cluster
        })
    }
}

/// Starts a watcher that, once this process has exited, kills `servers`
/// (SIGKILL) and removes their directories and `dirs`.
///
/// The watcher is not waited for: it must outlive this process, and init
/// reaps it once it is done.
#[allow(clippy::zombie_processes)]
fn reap_at_exit(servers: &[&RedisServer], dirs: &[&Path]) {
    let pids: Vec<String> = servers
        .iter()
        .filter_map(|s| s.pid())
        .map(|p| p.to_string())
        .collect();
    let mut paths: Vec<&Path> = servers.iter().map(|s| s.dir()).collect();
    paths.extend_from_slice(dirs);
    // $0 is the test process; then the pids, "--", the directories.
    let script = r#"
        parent=$0; pids=""
        while [ "$1" != "--" ]; do pids="$pids $1"; shift; done; shift
        while kill -0 "$parent" 2>/dev/null; do sleep 0.2; done
        kill -9 $pids 2>/dev/null
        rm -rf -- "$@"
    "#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(std::process::id().to_string())
        .args(&pids)
        .arg("--")
        .args(paths)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start the watcher of a shared redis-server: {err}"));
}
