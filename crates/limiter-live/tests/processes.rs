//! Several OS processes share live-session limits through one Redis (the
//! server's clock, real waiting): the concurrent cap holds across them,
//! their token usage is summed, a cooldown set by one blocks the others,
//! and the slot of a process killed while holding it comes back after the
//! lease time to live.
//!
//! Workers are this test binary run again (its `worker_entry` test,
//! switched on by `LIVE_WORKER`); they are killed by their pid if a check
//! fails.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use limiter_core::Dimension;
use limiter_live::{Error, LiveLimiter, LiveLimits, Unavailable};
use limiter_redis::RedisStore;
use limiter_test_redis::RedisServer;

const CAP: u64 = 2;
const LEASE_TTL: Duration = Duration::from_secs(2);
const TOKENS_PER_SESSION: u64 = 10;

fn limits() -> LiveLimits {
    LiveLimits::new()
        .concurrent_sessions(CAP)
        .sessions_per_minute(1_000)
        .tokens_per_minute(1_000_000)
}

async fn live(url: &str) -> LiveLimiter {
    let store = RedisStore::connect(url).await.expect("connect");
    LiveLimiter::builder(store)
        .model("m", limits())
        .lease_ttl(LEASE_TTL)
        .poll_interval(Duration::from_millis(20))
        .max_wait(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// Children killed and reaped on drop.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(mode: &str, url: &str, extra: &[(&str, String)]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker_entry", "--nocapture", "--test-threads=1"])
        .env("LIVE_WORKER", mode)
        .env("LIVE_URL", url)
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a worker")
}

/// Waits for a child to exit successfully within `bound`; its stdout.
fn finish(child: &mut Child, bound: Duration) -> String {
    let until = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            assert!(status.success(), "worker failed: {status}\n{out}\n{err}");
            return out;
        }
        assert!(Instant::now() < until, "a worker ran past {bound:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The worker side.
#[test]
fn worker_entry() {
    let Ok(mode) = std::env::var("LIVE_WORKER") else {
        return;
    };
    let url = std::env::var("LIVE_URL").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let live = live(&url).await;
        match mode.as_str() {
            // Sessions one after another for a while; each line: start, end.
            "churn" => {
                let run_for =
                    Duration::from_millis(std::env::var("LIVE_RUN_MS").unwrap().parse().unwrap());
                let started = Instant::now();
                let mut n = 0u64;
                while started.elapsed() < run_for {
                    let s = live.acquire_session("m").await.unwrap();
                    let start = micros();
                    s.record_token_usage(TOKENS_PER_SESSION).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(30 + (n * 17) % 50)).await;
                    let end = micros();
                    s.end().await.unwrap();
                    println!("SESSION {start} {end}");
                    n += 1;
                }
            }
            // Takes a session and holds it until killed.
            "hold" => {
                let s = live.acquire_session("m").await.unwrap();
                println!("HELD {}", s.lease().unwrap());
                tokio::time::sleep(Duration::from_secs(120)).await;
            }
            // Says whether a session could start.
            "check" => {
                let a = live.check_availability("m").await.unwrap();
                println!("A {a}");
                match live.try_acquire_session("m").await {
                    Err(Error::Unavailable { reason, .. }) => println!("R {reason}"),
                    Ok(_) => println!("R started"),
                    Err(e) => panic!("{e}"),
                }
            }
            other => panic!("unknown mode {other}"),
        }
    });
}

#[test]
fn cap_holds_across_processes_and_tokens_are_summed() {
    let server = RedisServer::start();
    let url = server.url();
    let workers = 4;
    let mut children = Children(
        (0..workers)
            .map(|_| spawn("churn", &url, &[("LIVE_RUN_MS", "3000".into())]))
            .collect(),
    );
    let mut intervals: Vec<(u128, u128, usize)> = Vec::new();
    for (w, c) in children.0.iter_mut().enumerate() {
        let out = finish(c, Duration::from_secs(60));
        let mine: Vec<_> = out
            .lines()
            // The harness may print "test worker_entry ... " before the
            // first line.
            .filter_map(|l| l.split_once("SESSION ").map(|(_, rest)| rest))
            .map(|l| {
                let mut it = l.split(' ').map(|x| x.parse::<u128>().unwrap());
                (it.next().unwrap(), it.next().unwrap(), w)
            })
            .collect();
        assert!(!mine.is_empty(), "worker {w} never had a session");
        intervals.extend(mine);
    }
    // Sweep: +1 at each start, -1 at each end (ends first at a tie).
    let mut events: Vec<(u128, i64)> = intervals
        .iter()
        .flat_map(|&(s, e, _)| [(s, 1), (e, -1)])
        .collect();
    events.sort();
    let (mut open, mut peak) = (0i64, 0i64);
    for (_, d) in events {
        open += d;
        peak = peak.max(open);
    }
    println!(
        "{} sessions from {workers} processes, peak {peak} open at once (cap {CAP})",
        intervals.len()
    );
    assert!(peak <= CAP as i64, "{peak} sessions open at once");
    assert_eq!(peak, CAP as i64, "the cap was never reached: no contention");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let live = live(&url).await;
        let st = live.status("m").await.unwrap();
        assert_eq!(st.open_sessions(), 0);
        let used = st.tokens.unwrap().get(Dimension::Tpm).unwrap().used;
        assert_eq!(used, TOKENS_PER_SESSION * intervals.len() as u64);
        let starts = st.sessions.unwrap().get(Dimension::Rpm).unwrap().used;
        assert_eq!(starts, intervals.len() as u64);
    });
}

#[test]
fn a_killed_process_slots_return_after_the_lease_and_cooldowns_reach_all() {
    let server = RedisServer::start();
    let url = server.url();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let live = rt.block_on(live(&url));
    // Two processes take both slots and are killed (SIGKILL) holding them.
    let mut holders = Children(vec![spawn("hold", &url, &[]), spawn("hold", &url, &[])]);
    for c in &mut holders.0 {
        let mut out = BufReader::new(c.stdout.as_mut().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            assert_ne!(out.read_line(&mut line).unwrap(), 0, "no HELD line: {seen}");
            if line.contains("HELD ") {
                break;
            }
            seen.push_str(&line);
        }
    }
    // Renewals keep them: still both held well past the lease time to live.
    std::thread::sleep(LEASE_TTL + Duration::from_millis(500));
    rt.block_on(async {
        assert_eq!(live.status("m").await.unwrap().open_sessions(), 2);
        assert!(matches!(
            live.try_acquire_session("m").await,
            Err(Error::Unavailable {
                reason: Unavailable::ConcurrentFull {
                    open: 2,
                    cap: 2,
                    ..
                },
                ..
            })
        ));
    });
    let killed = Instant::now();
    drop(holders);
    let (session, returned) = rt.block_on(async {
        let s = live
            .acquire_session_within("m", LEASE_TTL * 3)
            .await
            .expect("a slot after the lease time to live");
        (s, killed.elapsed())
    });
    println!("a killed holder's slot came back {returned:?} after the kill (lease {LEASE_TTL:?})");
    assert!(
        returned <= LEASE_TTL + Duration::from_secs(1),
        "{returned:?}"
    );
    // A cooldown set here reaches another process.
    rt.block_on(async {
        live.trigger_cooldown("m", Duration::from_secs(30))
            .await
            .unwrap();
    });
    let out = finish(&mut spawn("check", &url, &[]), Duration::from_secs(30));
    assert!(
        out.contains("A m: not available: cooling down for "),
        "{out}"
    );
    assert!(out.contains("R cooling down for"), "{out}");
    rt.block_on(session.end()).unwrap();
    drop(server);
}
