//! Both stores behind Redis Sentinel: a real sentinel (`redis-server
//! --sentinel`) monitoring a real primary and its replica; the store finds
//! the primary through the sentinel and runs the scripts there, and when
//! the primary is killed and the sentinel promotes the replica, the same
//! store follows it.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use limiter_core::{Cost, Decision, Limits, Store};
use limiter_test_redis::{free_port, redis_server_path, RedisServer};

mod support;
use support::{Client, Connect};

/// A sentinel process, killed and its directory removed on drop.
struct Sentinel {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sentinel {
    fn start(service: &str, primary_port: u16) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "limiter-redis-sentinel-{}-{port}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("sentinel.conf");
        fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {}\n\
                 sentinel monitor {service} 127.0.0.1 {primary_port} 1\n\
                 sentinel down-after-milliseconds {service} 500\n\
                 sentinel failover-timeout {service} 3000\n",
                dir.display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("sentinel.log")).unwrap();
        let child = Command::new(redis_server_path())
            .arg(&conf)
            .arg("--sentinel")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let sentinel = Sentinel { child, port, dir };
        sentinel.wait_for_primary(service);
        sentinel
    }

    /// Waits until the sentinel names the primary of `service`.
    fn wait_for_primary(&self, service: &str) {
        self.wait_until(10, "the sentinel names the primary", || {
            self.primary_port(service).is_some()
        });
    }

    /// The port of the primary the sentinel names for `service`.
    fn primary_port(&self, service: &str) -> Option<u16> {
        let reply = command(self.port, &["SENTINEL", "get-master-addr-by-name", service])?;
        // *2 $9 127.0.0.1 $N PORT
        let text = String::from_utf8_lossy(&reply);
        let lines: Vec<&str> = text.split("\r\n").collect();
        (lines.first() == Some(&"*2")).then(|| lines.get(4)?.parse().ok())?
    }

    /// How many replicas of `service` the sentinel knows.
    fn replicas(&self, service: &str) -> usize {
        command(self.port, &["SENTINEL", "replicas", service])
            .and_then(|r| {
                let text = String::from_utf8_lossy(&r).into_owned();
                text.strip_prefix('*')?.split("\r\n").next()?.parse().ok()
            })
            .unwrap_or(0)
    }

    fn wait_until(&self, secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "not within {secs} s: {what}: {}",
                fs::read_to_string(self.dir.join("sentinel.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Sends one command to 127.0.0.1:`port` and returns the first reply read.
fn command(port: u16, args: &[&str]) -> Option<Vec<u8>> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    conn.write_all(out.as_bytes()).ok()?;
    let mut reply = vec![0u8; 64 * 1024];
    let n = conn.read(&mut reply).ok()?;
    reply.truncate(n);
    Some(reply)
}

const SERVICE: &str = "limiter-primary";

async fn finds_the_primary_and_follows_a_failover(client: Client) {
    let mut primary = RedisServer::start();
    let replica = RedisServer::start_replica_of(primary.port());
    let (primary_port, replica_port) = (primary.port(), replica.port());
    let sentinel = tokio::task::spawn_blocking(move || {
        let s = Sentinel::start(SERVICE, primary_port);
        let synced = || {
            command(replica_port, &["INFO", "replication"])
                .is_some_and(|r| String::from_utf8_lossy(&r).contains("master_link_status:up"))
        };
        s.wait_until(20, "the replica is in sync", synced);
        s.wait_until(20, "the sentinel knows the replica", || {
            s.replicas(SERVICE) > 0
        });
        s
    })
    .await
    .unwrap();

    let mut c = Connect::server(sentinel.url()).connection_timeout(Duration::from_millis(500));
    c.response_timeout = Some(Duration::from_millis(500));
    c.sentinel = Some(SERVICE.to_owned());
    let store = client
        .connect(&c)
        .await
        .expect("connect through the sentinel");
    let limits = Limits::new().rpm(100);
    for _ in 0..2 {
        let d = store
            .reserve("sentinel", &limits, &Cost::request(), None)
            .await
            .unwrap();
        assert!(matches!(d, Decision::Reserved(_)), "{d:?}");
    }
    let status = store.status("sentinel", &limits).await.unwrap();
    assert_eq!(status.usage[0].used, 2, "{status:?}");

    // The primary dies; the sentinel promotes the replica.
    tokio::task::block_in_place(|| primary.stop());
    let killed = Instant::now();
    let mut failures = 0;
    loop {
        match store
            .reserve("sentinel", &limits, &Cost::request(), None)
            .await
        {
            Ok(d) => {
                assert!(matches!(d, Decision::Reserved(_)), "{d:?}");
                break;
            }
            Err(e) => {
                assert!(
                    e.is_retryable(),
                    "{client:?}: not retryable during the failover: {e}"
                );
                failures += 1;
            }
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "{client:?}: the store never reached the new primary"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = killed.elapsed();
    assert_eq!(
        tokio::task::spawn_blocking(move || sentinel.primary_port(SERVICE))
            .await
            .unwrap(),
        Some(replica_port),
        "the sentinel promoted the replica"
    );
    // The reservations made before the failover were replicated; the new
    // one is on the new primary.
    let direct = client
        .connect(&Connect::server(replica.url()))
        .await
        .unwrap();
    let status = direct.status("sentinel", &limits).await.unwrap();
    assert_eq!(status.usage[0].used, 3, "{status:?}");
    println!(
        "{client:?}: on the new primary {took:.2?} after the kill ({failures} failed calls first)"
    );
}

support::per_client! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finds_the_primary_and_follows_a_failover() {
        super::finds_the_primary_and_follows_a_failover(CLIENT).await;
    }
}
