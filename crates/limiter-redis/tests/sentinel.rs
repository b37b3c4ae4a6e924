//! `FredStore` behind Redis Sentinel: a real sentinel (`redis-server
//! --sentinel`) monitoring a real primary; the store finds the primary
//! through the sentinel and runs the scripts there.

#![cfg(feature = "fred")]

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use limiter_core::{Cost, Decision, Limits, Store};
use limiter_redis::FredStore;
use limiter_test_redis::{free_port, redis_server_path, RedisServer};

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
                 sentinel monitor {service} 127.0.0.1 {primary_port} 1\n",
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
        let deadline = Instant::now() + Duration::from_secs(10);
        let command = format!(
            "*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n${}\r\n{service}\r\n",
            service.len()
        );
        loop {
            if let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)) {
                conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let mut reply = [0u8; 256];
                if conn.write_all(command.as_bytes()).is_ok() {
                    if let Ok(n) = conn.read(&mut reply) {
                        if reply[..n].starts_with(b"*2") {
                            return;
                        }
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "the sentinel did not name the primary within 10 s: {}",
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

#[tokio::test]
async fn the_store_finds_the_primary_through_a_sentinel() {
    let primary = RedisServer::start();
    let sentinel = tokio::task::spawn_blocking({
        let port = primary.port();
        move || Sentinel::start("limiter-primary", port)
    })
    .await
    .unwrap();

    let store = FredStore::builder()
        .sentinel("limiter-primary", [sentinel.url()])
        .connect()
        .await
        .expect("connect through the sentinel");
    let limits = Limits::new().rpm(2);
    for _ in 0..2 {
        let d = store
            .reserve("sentinel", &limits, &Cost::request(), None)
            .await
            .unwrap();
        assert!(matches!(d, Decision::Reserved(_)), "{d:?}");
    }
    let status = store.status("sentinel", &limits).await.unwrap();
    assert_eq!(status.usage[0].used, 2, "{status:?}");
}
