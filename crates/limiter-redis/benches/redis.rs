//! Benchmark of the Redis stores against the performance targets of the
//! design: acquire latency that stays flat as the window fills, and acquire
//! throughput next to what `redis-benchmark` reaches with a trivial script.
//!
//! Run with `cargo bench -p limiter-redis --bench redis` (redis-rs
//! [`RedisStore`](limiter_redis::RedisStore)), adding `--features fred` to
//! measure [`FredStore`](limiter_redis::FredStore) too. It starts its own
//! `redis-server` on a free loopback port and, for each client:
//!
//! - **latency**: for each fill level (0, 1,000, 10,000, 30,000 reservations
//!   already in the window of the measured key, made by the limiter itself,
//!   concurrently), times 2,000 sequential [`Limiter::acquire`] calls that do
//!   not wait, and reports p50, p99 and mean. The calls run in 5 rounds in
//!   which the levels take turns, so that a machine whose speed drifts
//!   (shared cores, other builds) weighs on every level alike;
//! - **throughput**: 1 and 32 tokio tasks sharing one limiter call
//!   [`Limiter::acquire`] for 3 s each, on a multi-thread runtime.
//!
//! The physical limit is `redis-benchmark` running `EVALSHA` of
//! `return 1` on the same server at the same concurrency (1 and 32
//! connections, 50,000 requests); if `redis-benchmark` is not on `PATH`, the
//! table says so.
//!
//! The limits (100 M requests and 10 G tokens per 60 s window) admit every
//! call at once; the limiters refuse to wait (maximum wait zero), so a call
//! that would have waited fails the run instead of skewing it.
//!
//! Around every timed phase it reads `INFO commandstats`: the server's time
//! per `EVALSHA`, the part of it spent in the commands the script called,
//! and the share of the phase the server spent running scripts, which tells
//! whether the server or the client is the bottleneck.
//!
//! It prints one markdown table and writes the same figures as JSON to
//! `target/redis-bench.json`. Run without `--bench` (as `cargo test
//! --all-targets` does), it only checks that everything works, with tiny
//! sizes, and writes nothing.

use std::env;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use limiter_core::{Cost, Dimension, Limiter, Limits, Store};
use limiter_test_redis::RedisServer;
use serde_json::{json, Value};

/// How many requests `redis-benchmark` sends per run.
const BENCH_REQUESTS: u64 = 50_000;
/// The cost of every measured call.
const COST: Cost = Cost::tokens(100);
/// The script `redis-benchmark` runs: the cheapest possible `EVALSHA`.
const TRIVIAL_SCRIPT: &str = "return 1";

/// The sizes of one run.
#[derive(Debug, Clone)]
struct Plan {
    /// Reservations already in the window of the measured key.
    fills: Vec<usize>,
    /// Sequential calls timed per fill level.
    latency_calls: usize,
    /// In how many rounds, the fill levels taking turns.
    latency_rounds: usize,
    /// Untimed calls (on a key of their own) before the latency runs.
    warmup_calls: usize,
    /// Concurrent callers of the throughput runs.
    concurrency: Vec<usize>,
    /// How long each throughput run lasts.
    throughput_for: Duration,
    /// Concurrent tasks that pre-fill a key.
    prefill_tasks: usize,
    /// Whether to run `redis-benchmark` and write the JSON file.
    full: bool,
}

impl Plan {
    fn bench() -> Self {
        Plan {
            fills: vec![0, 1_000, 10_000, 30_000],
            latency_calls: 2_000,
            latency_rounds: 5,
            warmup_calls: 300,
            concurrency: vec![1, 32],
            throughput_for: Duration::from_secs(3),
            prefill_tasks: 64,
            full: true,
        }
    }

    /// A smoke run, for `cargo test --all-targets`.
    fn smoke() -> Self {
        Plan {
            fills: vec![0, 100],
            latency_calls: 20,
            latency_rounds: 2,
            warmup_calls: 5,
            concurrency: vec![1, 4],
            throughput_for: Duration::from_millis(100),
            prefill_tasks: 8,
            full: false,
        }
    }
}

/// Limits that admit everything the run asks for at once.
fn limits() -> Limits {
    Limits::new()
        .rpm(100_000_000)
        .tpm(10_000_000_000)
        .window(Duration::from_secs(60))
}

/// A client under test.
#[derive(Debug, Clone, Copy)]
enum Client {
    #[cfg(feature = "redis-rs")]
    RedisRs,
    #[cfg(feature = "fred")]
    Fred,
}

impl Client {
    const ALL: &'static [Client] = &[
        #[cfg(feature = "redis-rs")]
        Client::RedisRs,
        #[cfg(feature = "fred")]
        Client::Fred,
    ];

    fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "redis-rs")]
            Client::RedisRs => "redis-rs",
            #[cfg(feature = "fred")]
            Client::Fred => "fred",
        }
    }

    /// A store with the client's default settings.
    async fn connect(self, url: &str) -> Arc<dyn Store> {
        match self {
            #[cfg(feature = "redis-rs")]
            Client::RedisRs => Arc::new(
                limiter_redis::RedisStore::connect(url)
                    .await
                    .expect("redis-rs: connect"),
            ),
            #[cfg(feature = "fred")]
            Client::Fred => Arc::new(
                limiter_redis::FredStore::connect(url)
                    .await
                    .expect("fred: connect"),
            ),
        }
    }
}

/// Percentiles of a set of call durations, in µs.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    calls: usize,
    p50: f64,
    p99: f64,
    mean: f64,
}

impl Summary {
    fn of(mut samples: Vec<Duration>) -> Self {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        // Nearest rank.
        let rank = |p: f64| {
            let i = (p * samples.len() as f64).ceil() as usize;
            us(samples[i.clamp(1, samples.len()) - 1])
        };
        let total: Duration = samples.iter().sum();
        Summary {
            calls: samples.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            mean: us(total) / samples.len() as f64,
        }
    }

    fn json(&self) -> Value {
        json!({
            "calls": self.calls,
            "p50_us": round1(self.p50),
            "p99_us": round1(self.p99),
            "mean_us": round1(self.mean),
        })
    }
}

/// What the server reports of the `EVALSHA` calls of one run
/// (`INFO commandstats`).
#[derive(Debug, Clone, Copy, Default)]
struct ServerTime {
    calls: u64,
    /// Time the server spent in these calls, µs.
    usec: f64,
    /// Of which in the commands the scripts called (`redis.call`); the rest
    /// is Lua and the bridge to it.
    inner_usec: f64,
}

impl ServerTime {
    fn per_call(&self, usec: f64) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            usec / self.calls as f64
        }
    }

    /// Mean time the server spent in one call, µs.
    fn usec_per_call(&self) -> f64 {
        self.per_call(self.usec)
    }

    /// Mean time one call spent in the commands it called, µs.
    fn inner_usec_per_call(&self) -> f64 {
        self.per_call(self.inner_usec)
    }

    /// The share of `secs` the server spent running these calls.
    fn busy(&self, secs: f64) -> f64 {
        self.usec / 1e6 / secs
    }

    fn add(&mut self, other: ServerTime) {
        self.calls += other.calls;
        self.usec += other.usec;
        self.inner_usec += other.inner_usec;
    }

    fn json(&self, secs: f64) -> Value {
        json!({
            "evalsha_calls": self.calls,
            "usec_per_call": round3(self.usec_per_call()),
            "inner_commands_usec_per_call": round3(self.inner_usec_per_call()),
            "busy_fraction": round3(self.busy(secs)),
        })
    }
}

/// One fill level of one client.
#[derive(Debug)]
struct LatencyRun {
    fill: usize,
    /// What the key's request count was before the timed calls.
    used_before: u64,
    prefill_secs: f64,
    latency: Summary,
    secs: f64,
    server: ServerTime,
}

/// One throughput run of one client.
#[derive(Debug)]
struct ThroughputRun {
    callers: usize,
    calls: u64,
    secs: f64,
    latency: Summary,
    server: ServerTime,
}

impl ThroughputRun {
    fn per_sec(&self) -> f64 {
        self.calls as f64 / self.secs
    }
}

/// One `redis-benchmark` run.
#[derive(Debug, Clone, Copy)]
struct BenchRun {
    requests_per_s: f64,
    secs: f64,
    server: ServerTime,
}

/// Everything measured for one client.
#[derive(Debug)]
struct ClientRuns {
    client: Client,
    latency: Vec<LatencyRun>,
    throughput: Vec<ThroughputRun>,
}

/// One `redis-benchmark` run, or why there is none.
type Physical = Result<BenchRun, String>;

fn limiter(store: &Arc<dyn Store>, key: &str) -> Limiter {
    Limiter::builder_shared(Arc::clone(store), key)
        .limits(limits())
        .max_wait(Duration::ZERO)
        .build()
        .expect("valid limits")
}

/// One acquire that must not wait, timed.
async fn timed_acquire(limiter: &Limiter) -> Duration {
    let start = Instant::now();
    let permit = limiter
        .acquire(COST)
        .await
        .unwrap_or_else(|e| panic!("acquire on {:?}: {e}", limiter.key()));
    let took = start.elapsed();
    assert_eq!(permit.waited(), Duration::ZERO, "an acquire waited");
    took
}

/// Makes `count` reservations on `limiter`, from `tasks` tasks at once.
async fn prefill(limiter: &Limiter, count: usize, tasks: usize) {
    let tasks = tasks.min(count).max(1);
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let limiter = limiter.clone();
            let share = count / tasks + usize::from(t < count % tasks);
            tokio::spawn(async move {
                for _ in 0..share {
                    limiter
                        .acquire(COST)
                        .await
                        .unwrap_or_else(|e| panic!("pre-fill: {e}"));
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("pre-fill task");
    }
}

async fn requests_in_window(limiter: &Limiter) -> u64 {
    limiter
        .status()
        .await
        .expect("status")
        .get(Dimension::Rpm)
        .map_or(0, |u| u.used)
}

/// Pre-fills one key per fill level, then times the sequential calls of
/// every level in rounds, the levels taking turns, so that a machine whose
/// speed drifts (shared cores) weighs on every level alike.
async fn measure_latency(
    admin: &mut Admin,
    store: &Arc<dyn Store>,
    tag: &str,
    plan: &Plan,
) -> Vec<LatencyRun> {
    let mut levels = Vec::new();
    for &fill in &plan.fills {
        let limiter = limiter(store, &format!("bench-{tag}-latency-{fill}"));
        let start = Instant::now();
        prefill(&limiter, fill, plan.prefill_tasks).await;
        let prefill_secs = start.elapsed().as_secs_f64();
        let used_before = requests_in_window(&limiter).await;
        assert_eq!(
            used_before, fill as u64,
            "the window does not hold the pre-filled reservations"
        );
        levels.push((
            limiter,
            LatencyRun {
                fill,
                used_before,
                prefill_secs,
                latency: Summary::default(),
                secs: 0.0,
                server: ServerTime::default(),
            },
            Vec::with_capacity(plan.latency_calls),
        ));
    }
    let rounds = plan.latency_rounds.clamp(1, plan.latency_calls.max(1));
    for round in 0..rounds {
        let calls = plan.latency_calls / rounds + usize::from(round < plan.latency_calls % rounds);
        for (limiter, run, samples) in &mut levels {
            admin.reset_stats().expect("CONFIG RESETSTAT");
            let start = Instant::now();
            for _ in 0..calls {
                samples.push(timed_acquire(limiter).await);
            }
            run.secs += start.elapsed().as_secs_f64();
            run.server
                .add(admin.evalsha_stats().expect("INFO commandstats"));
        }
    }
    levels
        .into_iter()
        .map(|(_, mut run, samples)| {
            run.latency = Summary::of(samples);
            run
        })
        .collect()
}

async fn measure_throughput(
    admin: &mut Admin,
    store: &Arc<dyn Store>,
    tag: &str,
    callers: usize,
    plan: &Plan,
) -> ThroughputRun {
    let limiter = limiter(store, &format!("bench-{tag}-throughput-{callers}"));
    admin.reset_stats().expect("CONFIG RESETSTAT");
    let start = Instant::now();
    let deadline = start + plan.throughput_for;
    let handles: Vec<_> = (0..callers)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while Instant::now() < deadline {
                    samples.push(timed_acquire(&limiter).await);
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for h in handles {
        samples.extend(h.await.expect("caller task"));
    }
    let secs = start.elapsed().as_secs_f64();
    ThroughputRun {
        callers,
        calls: samples.len() as u64,
        secs,
        latency: Summary::of(samples),
        server: admin.evalsha_stats().expect("INFO commandstats"),
    }
}

async fn run_client(client: Client, url: &str, admin: &mut Admin, plan: &Plan) -> ClientRuns {
    let store = client.connect(url).await;
    let tag = client.name();
    // Connections up, script loaded, code paths warm.
    let warm = limiter(&store, &format!("bench-{tag}-warmup"));
    for _ in 0..plan.warmup_calls {
        timed_acquire(&warm).await;
    }
    let latency = measure_latency(admin, &store, tag, plan).await;
    let mut throughput = Vec::new();
    for &callers in &plan.concurrency {
        throughput.push(measure_throughput(admin, &store, tag, callers, plan).await);
    }
    ClientRuns {
        client,
        latency,
        throughput,
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A plain blocking connection for the few administrative commands of the
/// run (`SCRIPT LOAD`, `CONFIG RESETSTAT`, `INFO commandstats`), outside the
/// timed calls.
struct Admin {
    conn: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Admin {
    fn connect(port: u16) -> io::Result<Self> {
        let conn = TcpStream::connect(("127.0.0.1", port))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let reader = BufReader::new(conn.try_clone()?);
        Ok(Admin { conn, reader })
    }

    /// Sends one command; returns a simple, integer or bulk reply as text.
    fn call(&mut self, args: &[&str]) -> io::Result<String> {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            let _ = write!(out, "${}\r\n{a}\r\n", a.len());
        }
        self.conn.write_all(out.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let line = line.trim_end();
        match line.split_at_checked(1) {
            Some(("+" | ":", rest)) => Ok(rest.to_string()),
            Some(("$", len)) => {
                let len: usize = len
                    .parse()
                    .map_err(|_| io::Error::other(format!("bad bulk length {len:?}")))?;
                let mut buf = vec![0; len + 2];
                self.reader.read_exact(&mut buf)?;
                buf.truncate(len);
                String::from_utf8(buf).map_err(io::Error::other)
            }
            _ => Err(io::Error::other(format!("Redis answered {line:?}"))),
        }
    }

    /// Clears the server's per-command statistics.
    fn reset_stats(&mut self) -> io::Result<()> {
        self.call(&["CONFIG", "RESETSTAT"]).map(drop)
    }

    /// `EVALSHA` calls since the last reset and the server's mean time in
    /// each, in all and in the commands scripts called (every command but
    /// `EVALSHA` itself and the administrative ones of this connection).
    fn evalsha_stats(&mut self) -> io::Result<ServerTime> {
        let info = self.call(&["INFO", "commandstats"])?;
        let mut evalsha = (0.0, 0.0);
        let mut inner_usec = 0.0;
        for line in info.lines() {
            let Some((name, fields)) = line
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let field = |key: &str| {
                fields
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            match name {
                "evalsha" => evalsha = (field("calls"), field("usec")),
                "info" | "ping" => {}
                _ if name.starts_with("config") || name.starts_with("script") => {}
                _ => inner_usec += field("usec"),
            }
        }
        let (calls, usec) = evalsha;
        Ok(ServerTime {
            calls: calls as u64,
            usec,
            inner_usec,
        })
    }

    /// Loads the trivial script, checks that `EVALSHA` of it answers 1, and
    /// returns its SHA1.
    fn load_trivial_script(&mut self) -> io::Result<String> {
        let sha = self.call(&["SCRIPT", "LOAD", TRIVIAL_SCRIPT])?;
        if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(io::Error::other(format!("SCRIPT LOAD answered {sha:?}")));
        }
        let one = self.call(&["EVALSHA", &sha, "0"])?;
        if one != "1" {
            return Err(io::Error::other(format!("EVALSHA answered {one:?}")));
        }
        Ok(sha)
    }
}

/// The requests per second of the last `redis-benchmark -q` result line.
fn parse_requests_per_second(output: &str) -> Option<f64> {
    output
        .split(['\r', '\n'])
        .rev()
        .filter_map(|l| l.split_once(" requests per second"))
        .find_map(|(before, _)| before.split_whitespace().next_back()?.parse().ok())
}

/// Runs `redis-benchmark` of `EVALSHA sha 0` at each concurrency.
fn physical_limit(admin: &mut Admin, port: u16, concurrency: &[usize]) -> Vec<Physical> {
    let all_fail = |why: String| concurrency.iter().map(|_| Err(why.clone())).collect();
    let Some(bin) = find_on_path("redis-benchmark") else {
        return all_fail("redis-benchmark not found on PATH".into());
    };
    let sha = match admin.load_trivial_script() {
        Ok(sha) => sha,
        Err(e) => return all_fail(format!("could not load the trivial script: {e}")),
    };
    concurrency
        .iter()
        .map(|&c| {
            let (port, c, n) = (port.to_string(), c.to_string(), BENCH_REQUESTS.to_string());
            let args = [
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-c",
                &c,
                "-n",
                &n,
                "-q",
                "EVALSHA",
                &sha,
                "0",
            ];
            admin
                .reset_stats()
                .map_err(|e| format!("CONFIG RESETSTAT: {e}"))?;
            let start = Instant::now();
            let out = Command::new(&bin)
                .args(args)
                .output()
                .map_err(|e| format!("redis-benchmark did not run: {e}"))?;
            let secs = start.elapsed().as_secs_f64();
            let server = admin
                .evalsha_stats()
                .map_err(|e| format!("INFO commandstats: {e}"))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            match parse_requests_per_second(&stdout) {
                Some(requests_per_s) if out.status.success() => Ok(BenchRun {
                    requests_per_s,
                    secs,
                    server,
                }),
                _ => Err(format!(
                    "redis-benchmark failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
            }
        })
        .collect()
}

fn nproc() -> String {
    Command::new("nproc")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(|n| n.to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn redis_version() -> String {
    find_on_path("redis-server")
        .and_then(|bin| Command::new(bin).arg("--version").output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `12345.6` as `12,346`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// p50 at the highest fill over p50 at the lowest.
fn flatness(runs: &ClientRuns) -> Option<f64> {
    let first = runs.latency.first()?;
    let last = runs.latency.last()?;
    (runs.latency.len() > 1).then(|| last.latency.p50 / first.latency.p50)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// One row of the table: a label, one cell per client, the
/// `redis-benchmark` cell.
fn row(t: &mut String, label: &str, cells: impl IntoIterator<Item = String>, physical: &str) {
    let _ = write!(t, "| {label} |");
    for c in cells {
        let _ = write!(t, " {c} |");
    }
    let _ = writeln!(t, " {physical} |");
}

fn table(plan: &Plan, runs: &[ClientRuns], physical: &[Physical], context: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{context}\n");
    row(
        &mut t,
        "figure",
        runs.iter().map(|r| format!("`{}`", r.client.name())),
        &format!("redis-benchmark, `EVALSHA` of `{TRIVIAL_SCRIPT}`"),
    );
    let _ = writeln!(t, "|---|{}---:|", "---:|".repeat(runs.len()));
    for (i, fill) in plan.fills.iter().enumerate() {
        row(
            &mut t,
            &format!(
                "acquire latency, {} already in window: p50 / p99 / mean µs (server µs per call)",
                thousands(*fill as f64)
            ),
            runs.iter().map(|r| {
                let l = &r.latency[i];
                let s = &l.latency;
                format!(
                    "{:.0} / {:.0} / {:.0} ({:.0})",
                    s.p50,
                    s.p99,
                    s.mean,
                    l.server.usec_per_call()
                )
            }),
            "—",
        );
    }
    if plan.fills.len() > 1 {
        row(
            &mut t,
            &format!(
                "p50 at {} / p50 at {} in window",
                thousands(plan.fills[plan.fills.len() - 1] as f64),
                thousands(plan.fills[0] as f64)
            ),
            runs.iter()
                .map(|r| format!("{:.2}×", flatness(r).unwrap_or(f64::NAN))),
            "—",
        );
    }
    for (i, &callers) in plan.concurrency.iter().enumerate() {
        row(
            &mut t,
            &format!(
                "throughput, {callers} concurrent caller{} (calls/s)",
                plural(callers)
            ),
            runs.iter()
                .map(|r| format!("**{}**", thousands(r.throughput[i].per_sec()))),
            &match physical.get(i) {
                Some(Ok(b)) => format!("**{}**", thousands(b.requests_per_s)),
                Some(Err(why)) => format!("not measured: {why}"),
                None => "not measured".into(),
            },
        );
    }
    for (i, &callers) in plan.concurrency.iter().enumerate() {
        row(
            &mut t,
            &format!(
                "throughput / redis-benchmark, {callers} caller{}",
                plural(callers)
            ),
            runs.iter().map(|r| match physical.get(i) {
                Some(Ok(b)) => format!(
                    "{:.1} %",
                    100.0 * r.throughput[i].per_sec() / b.requests_per_s
                ),
                _ => "—".into(),
            }),
            if matches!(physical.get(i), Some(Ok(_))) {
                "100 %"
            } else {
                "—"
            },
        );
    }
    for (i, &callers) in plan.concurrency.iter().enumerate() {
        row(
            &mut t,
            &format!("latency, {callers} caller{}: p50 / p99 µs", plural(callers)),
            runs.iter().map(|r| {
                let s = &r.throughput[i].latency;
                format!("{:.0} / {:.0}", s.p50, s.p99)
            }),
            "—",
        );
    }
    for (i, &callers) in plan.concurrency.iter().enumerate() {
        row(
            &mut t,
            &format!(
                "server, {callers} caller{}: µs per `EVALSHA`, of which in `redis.call`s (share of the run Redis spent in scripts)",
                plural(callers)
            ),
            runs.iter().map(|r| {
                let th = &r.throughput[i];
                format!(
                    "{:.0}, {:.0} ({:.0} %)",
                    th.server.usec_per_call(),
                    th.server.inner_usec_per_call(),
                    100.0 * th.server.busy(th.secs)
                )
            }),
            &match physical.get(i) {
                Some(Ok(b)) => format!(
                    "{:.1}, {:.1} ({:.0} %)",
                    b.server.usec_per_call(),
                    b.server.inner_usec_per_call(),
                    100.0 * b.server.busy(b.secs)
                ),
                _ => "—".into(),
            },
        );
    }
    t
}

fn to_json(plan: &Plan, runs: &[ClientRuns], physical: &[Physical], port: u16) -> Value {
    let clients: serde_json::Map<String, Value> = runs
        .iter()
        .map(|r| {
            let latency: Vec<Value> = r
                .latency
                .iter()
                .map(|l| {
                    let mut v = l.latency.json();
                    v["fill"] = json!(l.fill);
                    v["requests_in_window_before"] = json!(l.used_before);
                    v["prefill_secs"] = json!(round3(l.prefill_secs));
                    v["server"] = l.server.json(l.secs);
                    v
                })
                .collect();
            let throughput: Vec<Value> = r
                .throughput
                .iter()
                .zip(physical)
                .map(|(t, p)| {
                    json!({
                        "callers": t.callers,
                        "calls": t.calls,
                        "secs": round3(t.secs),
                        "calls_per_s": round1(t.per_sec()),
                        "latency": t.latency.json(),
                        "server": t.server.json(t.secs),
                        "ratio_to_redis_benchmark":
                            p.as_ref().ok().map(|b| round3(t.per_sec() / b.requests_per_s)),
                    })
                })
                .collect();
            let value = json!({
                "latency": latency,
                "p50_ratio_max_fill_to_min_fill": flatness(r).map(round3),
                "throughput": throughput,
            });
            (r.client.name().to_string(), value)
        })
        .collect();
    let physical: Vec<Value> = plan
        .concurrency
        .iter()
        .zip(physical)
        .map(|(c, p)| match p {
            Ok(b) => json!({
                "callers": c,
                "requests_per_s": round1(b.requests_per_s),
                "secs": round3(b.secs),
                "server": b.server.json(b.secs),
            }),
            Err(why) => json!({ "callers": c, "error": why }),
        })
        .collect();
    let l = limits();
    json!({
        "nproc": nproc(),
        "redis_server": redis_version(),
        "port": port,
        "cost_tokens": COST.total_tokens(),
        "limits": { "rpm": l.rpm, "tpm": l.tpm, "window_ms": l.window_ms },
        "latency_calls": plan.latency_calls,
        "latency_rounds": plan.latency_rounds,
        "throughput_secs": plan.throughput_for.as_secs_f64(),
        "redis_benchmark_requests": BENCH_REQUESTS,
        "redis_benchmark_script": TRIVIAL_SCRIPT,
        "clients": clients,
        "redis_benchmark": physical,
    })
}

/// `target/` of the workspace (or `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // The bench runs as target/<profile>/deps/redis-<hash>.
    if let Ok(exe) = env::current_exe() {
        if let Some(target) = exe
            .ancestors()
            .find(|p| p.file_name().is_some_and(|n| n == "deps"))
            .and_then(Path::parent)
            .and_then(Path::parent)
        {
            return target.to_path_buf();
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

fn main() {
    let full = env::args().any(|a| a == "--bench");
    let plan = if full { Plan::bench() } else { Plan::smoke() };
    if Client::ALL.is_empty() {
        println!("no Redis client enabled (features `redis-rs`, `fred`): nothing to measure");
        return;
    }
    let server = RedisServer::start();
    let url = server.url();
    let mut admin = Admin::connect(server.port()).expect("admin connection");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let runs: Vec<ClientRuns> = Client::ALL
        .iter()
        .map(|&client| {
            eprintln!("measuring {} ...", client.name());
            runtime.block_on(run_client(client, &url, &mut admin, &plan))
        })
        .collect();
    drop(runtime);
    let physical = if plan.full {
        eprintln!("running redis-benchmark ...");
        physical_limit(&mut admin, server.port(), &plan.concurrency)
    } else {
        plan.concurrency
            .iter()
            .map(|_| Err("skipped (not run with --bench)".to_string()))
            .collect()
    };
    let workers = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut context = format!(
        "## llm-limiter: Redis store benchmark\n\nnproc: {}; {}, own process on 127.0.0.1:{}; \
         tokio multi-thread runtime ({workers} workers); cost {} tokens per acquire; \
         latency: {} sequential calls per fill level, in {} rounds; throughput: {:?} per run",
        nproc(),
        redis_version(),
        server.port(),
        COST.total_tokens(),
        plan.latency_calls,
        plan.latency_rounds,
        plan.throughput_for,
    );
    if !cfg!(feature = "fred") {
        context.push_str("; fred not measured (add `--features fred`)");
    }
    let table = table(&plan, &runs, &physical, &context);
    println!("{table}");
    eprintln!("took {:.1} s", started.elapsed().as_secs_f64());
    if plan.full {
        let path = target_dir().join("redis-bench.json");
        let json = to_json(&plan, &runs, &physical, server.port());
        let text = serde_json::to_string_pretty(&json).expect("JSON");
        match std::fs::write(&path, text + "\n") {
            Ok(()) => println!("JSON: {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
    drop(server);
}
