//! The simulation: many workers share one strict provider quota through the
//! limiter, and a summary tells how close to the quota they got without a
//! single 429.
//!
//! The simulated provider knows nothing of the limiter. It meters the time
//! each call *arrives* (after a random network delay) in an exact log, and
//! answers 429 to any call that would put more than a limit into any window
//! of `--window` seconds; it then answers after a random latency, with
//! OpenAI-style `x-ratelimit-*` headers (its limits, what remains, when its
//! window is clear). The same workload is then run without the limiter for
//! contrast.
//!
//! `--provider-quota F` gives the provider F times the limits the limiter
//! is configured with (an account on another tier than configured), and
//! `--external-load F` adds a client outside the fleet that uses a fraction
//! F of the provider's quota: the workers feed the headers back
//! (`Permit::observe`), so the limiter adopts the real limits and leaves
//! room for the outside client.
//!
//! `--metering reserved` (the default) charges `max_tokens` at arrival as
//! OpenAI does; `--metering actual` charges the output the call produced,
//! drawn by `--output-dist` (`uniform` in [max/4, max], or `realistic`:
//! lognormal with its median at 20 % of `max_tokens`, capped there). The
//! workers use the limiter's preset for that metering (`AtArrival`,
//! `AsUsed`) and settle every answered call; the JSON summary names both.
//!
//! With `--store redis` the limiter's state and the provider's log both live
//! in one Redis (the provider's clock is then the server's), and
//! `--processes N` runs the workers in N operating-system processes.
//!
//! ```text
//! cargo run --release -p examples --bin simulate
//! cargo run --release -p examples --bin simulate -- --workers 64 --rpm 120 --json
//! cargo run --release -p examples --bin simulate -- --store redis --redis-url redis://127.0.0.1:6390/ --processes 4
//! ```

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use llm_limiter::{
    report_from_headers, Cost, Dimension, Error, Limiter, Limits, MemoryStore, RedisStore, Store,
    Timestamp,
};
use parking_lot::Mutex;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Where the limiter keeps its state.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum StoreKind {
    /// In this process.
    Memory,
    /// In Redis (`--redis-url`), shared by every process.
    Redis,
}

/// What the provider charges for output tokens.
#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum Metering {
    /// `max_tokens` is charged up front at arrival (OpenAI's rule); the
    /// limiter meters `AtArrival`, so the workers' settlements change
    /// nothing.
    Reserved,
    /// The output actually produced is charged at arrival; the limiter
    /// meters `AsUsed`: the workers reserve `max_tokens` and settle the
    /// real count after the response.
    Actual,
}

/// How many output tokens a call produces, of its `max_tokens`.
#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum OutputDist {
    /// Uniform in [max_tokens / 4, max_tokens] (mean 62.5 %).
    Uniform,
    /// Skewed as real completions are: lognormal with its median at 20 %
    /// of `max_tokens` (sigma 1, so about 5 % reach the cap), capped at
    /// `max_tokens`.
    Realistic,
}

impl OutputDist {
    fn draw(self, rng: &mut StdRng, max_tokens: u64) -> u64 {
        match self {
            OutputDist::Uniform => rng.gen_range(max_tokens / 4..=max_tokens),
            OutputDist::Realistic => {
                // Box-Muller: a standard normal from two uniforms.
                let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
                let u2: f64 = rng.gen_range(0.0..1.0);
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let x = 0.2 * max_tokens as f64 * z.exp();
                (x.round() as u64).clamp(1.min(max_tokens), max_tokens)
            }
        }
    }

    /// The mean share of `max_tokens` produced.
    fn mean_share(self) -> f64 {
        match self {
            OutputDist::Uniform => 5.0 / 8.0,
            // E[min(0.2 e^Z, 1)] for a standard normal Z.
            OutputDist::Realistic => 0.2 * realistic_capped_mean(),
        }
    }
}

/// E[min(e^Z, 5)] for a standard normal Z: the mean of the realistic
/// distribution in units of its median.
fn realistic_capped_mean() -> f64 {
    // e^(1/2) * Phi(ln 5 - 1) + 5 * (1 - Phi(ln 5)), by the normal CDF.
    let phi = |x: f64| 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
    let c = 5f64.ln();
    0.5f64.exp() * phi(c - 1.0) + 5.0 * (1.0 - phi(c))
}

/// The error function (Abramowitz and Stegun 7.1.26; error below 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    y.copysign(x)
}

/// Simulates workers sharing one provider quota through llm-limiter.
#[derive(Parser, Debug, Clone)]
#[command(version, about, args_override_self = true)]
struct Args {
    /// Store for the limiter.
    #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
    store: StoreKind,
    /// Redis URL for `--store redis` (the provider's log lives there too).
    #[arg(long)]
    redis_url: Option<String>,
    /// Operating-system processes sharing the workers (needs `--store
    /// redis`).
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// Concurrent workers in all.
    #[arg(long, default_value_t = 32)]
    workers: usize,
    /// Seconds each run lasts (the limited run, then the unlimited one).
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// The provider's window in seconds (60 is the real minute; shorter
    /// windows make the simulation quick).
    #[arg(long, default_value_t = 5.0)]
    window: f64,
    /// Requests per window (0 = off).
    #[arg(long, default_value_t = 100)]
    rpm: u64,
    /// Combined tokens per window (0 = off).
    #[arg(long, default_value_t = 80_000)]
    tpm: u64,
    /// Input tokens per window (0 = off).
    #[arg(long, default_value_t = 0)]
    input_tpm: u64,
    /// Output tokens per window (0 = off).
    #[arg(long, default_value_t = 0)]
    output_tpm: u64,
    /// Smallest and largest prompt, in tokens.
    #[arg(long, num_args = 2, default_values_t = [200, 1500])]
    input_tokens: Vec<u64>,
    /// Smallest and largest `max_tokens` of a call.
    #[arg(long, num_args = 2, default_values_t = [100, 800])]
    max_tokens: Vec<u64>,
    /// What the provider charges for output.
    #[arg(long, value_enum, default_value_t = Metering::Reserved)]
    metering: Metering,
    /// How many output tokens a call produces.
    #[arg(long, value_enum, default_value_t = OutputDist::Uniform)]
    output_dist: OutputDist,
    /// Network delay to the provider: smallest and largest, in ms.
    #[arg(long, num_args = 2, default_values_t = [2, 30])]
    net_delay_ms: Vec<u64>,
    /// Provider's response latency: smallest and largest, in ms.
    #[arg(long, num_args = 2, default_values_t = [200, 1200])]
    latency_ms: Vec<u64>,
    /// The limiter's guard band in ms: it must cover the spread of network
    /// delay plus wake-up lateness (and, with Redis, the round trip).
    #[arg(long, default_value_t = 60)]
    guard_ms: u64,
    /// The provider's real limits as a multiple of the configured ones.
    #[arg(long, default_value_t = 1.0)]
    provider_quota: f64,
    /// A client outside the fleet uses this fraction of the provider's
    /// quota (0 = none).
    #[arg(long, default_value_t = 0.0)]
    external_load: f64,
    /// Do not feed the provider's headers back to the limiter.
    #[arg(long)]
    no_calibration: bool,
    /// Skip the run without the limiter.
    #[arg(long)]
    no_baseline: bool,
    /// Seed of the random workload.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the summary as one JSON object on stdout (and no progress).
    #[arg(long)]
    json: bool,
    /// Internal: run as one of the worker processes of a run.
    #[arg(long, hide = true)]
    child: Option<String>,
    /// Internal: a child's first worker number.
    #[arg(long, hide = true, default_value_t = 0)]
    first_worker: usize,
    /// Internal: the child runs without the limiter.
    #[arg(long, hide = true)]
    unlimited: bool,
    /// Internal: the run's start, µs since the epoch.
    #[arg(long, hide = true, default_value_t = 0)]
    start_us: u64,
}

/// The simulated provider: an exact log of arrivals per limit.
enum Provider {
    Local(LocalProvider),
    Redis(RedisProvider),
}

/// Which limits the provider enforces and the amounts a call counts.
#[derive(Clone)]
struct Meter {
    window_us: u64,
    limits: Vec<(Dimension, u64)>,
}

impl Meter {
    /// The provider's meter: `limits` times `quota`.
    fn new(window: Duration, limits: &Limits, quota: f64) -> Self {
        let limits = [
            Dimension::Rpm,
            Dimension::Tpm,
            Dimension::InputTpm,
            Dimension::OutputTpm,
        ]
        .into_iter()
        .map(|d| (d, (limits.get(d) as f64 * quota).round() as u64))
        .filter(|(_, l)| *l > 0)
        .collect();
        Meter {
            window_us: window.as_micros() as u64,
            limits,
        }
    }

    /// The response's `x-ratelimit-*` headers, from the totals after the
    /// call: limits and what remains of requests and combined tokens, the
    /// window as the time until it is clear.
    fn headers(&self, totals: &[u64]) -> Vec<(String, String)> {
        let reset = format!("{}ms", self.window_us / 1000);
        let mut out = Vec::new();
        for ((d, limit), used) in self.limits.iter().zip(totals) {
            let what = match d {
                Dimension::Rpm => "requests",
                Dimension::Tpm => "tokens",
                _ => continue,
            };
            out.push((format!("x-ratelimit-limit-{what}"), limit.to_string()));
            out.push((
                format!("x-ratelimit-remaining-{what}"),
                limit.saturating_sub(*used).to_string(),
            ));
            out.push((format!("x-ratelimit-reset-{what}"), reset.clone()));
        }
        out
    }

    fn amounts(&self, input: u64, output: u64) -> Vec<u64> {
        self.limits
            .iter()
            .map(|(d, _)| match d {
                Dimension::Rpm => 1,
                Dimension::Tpm => input + output,
                Dimension::InputTpm => input,
                _ => output,
            })
            .collect()
    }
}

/// The provider in this process, on this machine's clock.
struct LocalProvider {
    meter: Meter,
    state: Mutex<LocalLog>,
}

#[derive(Default)]
struct LocalLog {
    log: VecDeque<(u64, Vec<u64>)>,
    totals: Vec<u64>,
    accepted: Vec<Arrival>,
    rejected: Vec<(u64, bool)>,
}

/// An accepted call: when, its amounts, and whether the outside client
/// sent it.
type Arrival = (u64, Vec<u64>, bool);

/// The provider's answer to one call.
struct Answer {
    ok: bool,
    headers: Vec<(String, String)>,
}

/// The provider in Redis, on the server's clock: one script call per
/// arrival, over its own keys (a sorted set of arrivals and their amounts).
struct RedisProvider {
    meter: Meter,
    conn: redis::aio::MultiplexedConnection,
    run: String,
}

const PROVIDER_LUA: &str = r#"
-- A strict provider: an exact log of arrival times; 429 when any window
-- of ARGV[1] µs ending now (both ends in) would exceed a limit.
-- KEYS: log (zset seq->t), amounts (hash seq->csv), totals (hash),
--       accepted (list "t,src,a1,a2,.."), rejected (list "t,src")
-- ARGV: window, k, limits (k), amounts (k), source (0 fleet, 1 outside)
-- -> {ok, total1..totalk} (the totals after the call)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local w = tonumber(ARGV[1])
local k = tonumber(ARGV[2])
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.0f', now - w))
for _, seq in ipairs(old) do
  local a = redis.call('HGET', KEYS[2], seq)
  local i = 0
  for v in string.gmatch(a, '[^,]+') do
    i = i + 1
    redis.call('HINCRBY', KEYS[3], i, -tonumber(v))
  end
  redis.call('HDEL', KEYS[2], seq)
  redis.call('ZREM', KEYS[1], seq)
end
local src = ARGV[3 + 2 * k]
local function totals(ok)
  local out = { ok }
  for i = 1, k do out[i + 1] = tonumber(redis.call('HGET', KEYS[3], i)) or 0 end
  return out
end
for i = 1, k do
  local lim = tonumber(ARGV[2 + i])
  local amt = tonumber(ARGV[2 + k + i])
  local tot = tonumber(redis.call('HGET', KEYS[3], i)) or 0
  if tot + amt > lim then
    redis.call('RPUSH', KEYS[5], string.format('%.0f', now) .. ',' .. src)
    redis.call('PEXPIRE', KEYS[5], 3600000)
    return totals(0)
  end
end
local parts = {}
for i = 1, k do
  local amt = tonumber(ARGV[2 + k + i])
  redis.call('HINCRBY', KEYS[3], i, amt)
  parts[i] = ARGV[2 + k + i]
end
local seq = redis.call('INCR', KEYS[3] .. ':seq')
redis.call('ZADD', KEYS[1], string.format('%.0f', now), seq)
redis.call('HSET', KEYS[2], seq, table.concat(parts, ','))
redis.call('RPUSH', KEYS[4], string.format('%.0f', now) .. ',' .. src .. ',' .. table.concat(parts, ','))
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], 3600000) end
redis.call('PEXPIRE', KEYS[3] .. ':seq', 3600000)
return totals(1)
"#;

impl RedisProvider {
    fn keys(&self) -> Vec<String> {
        ["log", "amt", "tot", "acc", "rej"]
            .iter()
            .map(|k| format!("{{sim:{}}}:{k}", self.run))
            .collect()
    }

    async fn arrive(&self, input: u64, output: u64, outside: bool) -> Result<Answer, String> {
        let script = redis::Script::new(PROVIDER_LUA);
        let mut call = script.prepare_invoke();
        for k in self.keys() {
            call.key(k);
        }
        call.arg(self.meter.window_us).arg(self.meter.limits.len());
        for (_, l) in &self.meter.limits {
            call.arg(*l);
        }
        for a in self.meter.amounts(input, output) {
            call.arg(a);
        }
        call.arg(u8::from(outside));
        let mut conn = self.conn.clone();
        let reply: Vec<u64> = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let Some((ok, totals)) = reply.split_first() else {
            return Err("empty reply from the provider".into());
        };
        Ok(Answer {
            ok: *ok == 1,
            headers: self.meter.headers(totals),
        })
    }

    async fn log(&self) -> Result<(Vec<Arrival>, Vec<(u64, bool)>), String> {
        let keys = self.keys();
        let mut conn = self.conn.clone();
        let acc: Vec<String> = redis::cmd("LRANGE")
            .arg(&keys[3])
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let rej: Vec<String> = redis::cmd("LRANGE")
            .arg(&keys[4])
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let log = acc
            .iter()
            .filter_map(|line| {
                let mut v = line.split(',').map(|x| x.parse::<u64>().ok());
                let t = v.next()??;
                let outside = v.next()?? == 1;
                Some((t, v.collect::<Option<Vec<u64>>>()?, outside))
            })
            .collect();
        let rejected = rej
            .iter()
            .filter_map(|line| {
                let (t, src) = line.split_once(',')?;
                Some((t.parse().ok()?, src == "1"))
            })
            .collect();
        Ok((log, rejected))
    }
}

impl Provider {
    fn meter(&self) -> &Meter {
        match self {
            Provider::Local(p) => &p.meter,
            Provider::Redis(p) => &p.meter,
        }
    }

    /// A call arrives now (from the outside client when `outside`):
    /// accepted, or 429; with the response's headers.
    async fn arrive(&self, input: u64, charged_output: u64, outside: bool) -> Answer {
        match self {
            Provider::Local(p) => p.arrive(input, charged_output, outside),
            Provider::Redis(p) => match p.arrive(input, charged_output, outside).await {
                Ok(answer) => answer,
                Err(e) => {
                    eprintln!("provider unreachable: {e}");
                    Answer {
                        ok: false,
                        headers: Vec::new(),
                    }
                }
            },
        }
    }

    async fn log(&self) -> (Vec<Arrival>, Vec<(u64, bool)>) {
        match self {
            Provider::Local(p) => {
                let s = p.state.lock();
                (s.accepted.clone(), s.rejected.clone())
            }
            Provider::Redis(p) => p.log().await.unwrap_or_else(|e| {
                eprintln!("cannot read the provider's log: {e}");
                std::process::exit(1);
            }),
        }
    }
}

impl LocalProvider {
    fn arrive(&self, input: u64, charged_output: u64, outside: bool) -> Answer {
        let now = Timestamp::now_system().as_micros();
        let a = self.meter.amounts(input, charged_output);
        let mut s = self.state.lock();
        if s.totals.is_empty() {
            s.totals = vec![0; a.len()];
        }
        while let Some((t, old)) = s.log.front() {
            if *t + self.meter.window_us >= now {
                break;
            }
            let old = old.clone();
            s.log.pop_front();
            for (tot, v) in s.totals.iter_mut().zip(old) {
                *tot -= v;
            }
        }
        let fits = self
            .meter
            .limits
            .iter()
            .zip(&s.totals)
            .zip(&a)
            .all(|(((_, l), t), v)| t + v <= *l);
        if !fits {
            s.rejected.push((now, outside));
            return Answer {
                ok: false,
                headers: self.meter.headers(&s.totals),
            };
        }
        for (tot, v) in s.totals.iter_mut().zip(&a) {
            *tot += v;
        }
        s.log.push_back((now, a.clone()));
        s.accepted.push((now, a, outside));
        Answer {
            ok: true,
            headers: self.meter.headers(&s.totals),
        }
    }
}

#[derive(Debug, Serialize)]
struct LimitUse {
    limit: &'static str,
    /// The provider's limit per window.
    per_window: u64,
    /// What the fleet used of what the outside client left of it.
    utilisation: f64,
}

#[derive(Debug, Serialize)]
struct RunSummary {
    calls: u64,
    rejected_429: u64,
    /// The fleet's 429s from one window after the start on.
    rejected_429_after_first_window: u64,
    /// Calls of the client outside the fleet, and its 429s.
    outside_calls: u64,
    outside_rejected_429: u64,
    utilisation: f64,
    binding_limit: Option<&'static str>,
    limits: Vec<LimitUse>,
    wait_p50_ms: f64,
    wait_p99_ms: f64,
    wait_max_ms: f64,
    cancelled_at_end: u64,
}

#[derive(Debug, Serialize)]
struct Summary {
    store: String,
    processes: usize,
    workers: usize,
    duration_s: f64,
    window_s: f64,
    guard_ms: u64,
    metering: Metering,
    output_dist: OutputDist,
    /// The limiter's metering preset for this provider.
    preset: String,
    provider_quota: f64,
    external_load: f64,
    calibration: bool,
    calls: u64,
    rejected_429: u64,
    utilisation: f64,
    binding_limit: Option<&'static str>,
    wait_p50_ms: f64,
    wait_p99_ms: f64,
    limited: RunSummary,
    without_limiter: Option<RunSummary>,
}

/// What a child process reports to its parent (one JSON line).
#[derive(Debug, Serialize, Deserialize, Default)]
struct ChildReport {
    calls: u64,
    cancelled: u64,
    waits_ms: Vec<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn uniform(rng: &mut StdRng, range: &[u64]) -> u64 {
    let (lo, hi) = (range[0].min(range[1]), range[0].max(range[1]));
    rng.gen_range(lo..=hi)
}

struct Shared {
    args: Args,
    provider: Provider,
    calls: AtomicU64,
    outside_calls: AtomicU64,
    cancelled: AtomicU64,
    waits_ms: Mutex<Vec<f64>>,
}

/// One worker: acquire, send (network delay), wait for the response, settle.
async fn worker(
    id: usize,
    shared: Arc<Shared>,
    limiter: Option<Limiter>,
    deadline: tokio::time::Instant,
) {
    let args = &shared.args;
    let mut rng = StdRng::seed_from_u64(args.seed.wrapping_mul(1000).wrapping_add(id as u64));
    loop {
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        let input = uniform(&mut rng, &args.input_tokens);
        let max_tokens = uniform(&mut rng, &args.max_tokens);
        let actual_output = args.output_dist.draw(&mut rng, max_tokens);
        let net = Duration::from_millis(uniform(&mut rng, &args.net_delay_ms));
        let latency = Duration::from_millis(uniform(&mut rng, &args.latency_ms));
        let permit = match &limiter {
            Some(l) => {
                let acquire = l.acquire(Cost::split(input, max_tokens));
                match tokio::time::timeout_at(deadline, acquire).await {
                    // Cancelled at the end of the run: the waiter's
                    // reservation is given back when the future drops.
                    Err(_) => {
                        shared.cancelled.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Ok(Err(e @ Error::ExceedsLimit { .. })) => {
                        eprintln!("worker {id}: {e}");
                        return;
                    }
                    Ok(Err(e)) => {
                        eprintln!("worker {id}: limiter error: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    Ok(Ok(p)) => {
                        shared
                            .waits_ms
                            .lock()
                            .push(p.waited().as_secs_f64() * 1000.0);
                        Some(p)
                    }
                }
            }
            None => None,
        };
        // What the README recommends: mark the send, so that the
        // provider's report is read as of it.
        if let Some(p) = &permit {
            p.mark_sent();
        }
        tokio::time::sleep(net).await;
        let charged = match args.metering {
            Metering::Reserved => max_tokens,
            Metering::Actual => actual_output,
        };
        let answer = shared.provider.arrive(input, charged, false).await;
        let ok = answer.ok;
        shared.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(if ok { latency } else { net }).await;
        // What the README recommends: feed the response's headers back.
        if let (Some(p), false) = (&permit, args.no_calibration) {
            let headers = answer.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            let report = report_from_headers(headers, Timestamp::now_system());
            if let Err(e) = p.observe(&report).await {
                eprintln!("worker {id}: observe failed: {e}");
            }
        }
        // What the README recommends: settle every answered call with its
        // usage; the key's metering preset decides what that changes.
        if let (Some(p), true) = (&permit, ok) {
            if let Err(e) = p.adjust(Cost::split(input, actual_output)).await {
                eprintln!("worker {id}: adjust failed: {e}");
            }
        }
        if !ok && limiter.is_none() {
            // Without a limiter a client backs off a little after a 429.
            tokio::time::sleep(Duration::from_millis(rng.gen_range(50..250))).await;
        }
    }
}

/// The tokio instant of a system time in µs since the epoch.
fn instant_at(us: u64) -> tokio::time::Instant {
    let now = Timestamp::now_system().as_micros();
    let t = tokio::time::Instant::now();
    if us >= now {
        t + Duration::from_micros(us - now)
    } else {
        t.checked_sub(Duration::from_micros(now - us)).unwrap_or(t)
    }
}

/// The client outside the fleet: calls at a steady rate that uses
/// `--external-load` of the provider's binding limit, with the workers'
/// sizes, without a limiter (its 429s are its own). It is already running
/// when the fleet starts: it starts one window before the run, at
/// `start_us` less the window, and stops with the run.
async fn outside_client(provider: &Provider, args: &Args, start_us: u64) -> u64 {
    if args.external_load <= 0.0 {
        return 0;
    }
    let window_us = (args.window * 1e6) as u64;
    let begin = instant_at(start_us.saturating_sub(window_us));
    let deadline = instant_at(start_us + (args.duration * 1e6) as u64);
    tokio::time::sleep_until(begin).await;
    let mean = |r: &[u64]| (r[0] + r[1]) as f64 / 2.0;
    let input = mean(&args.input_tokens);
    let output = match args.metering {
        Metering::Reserved => mean(&args.max_tokens),
        Metering::Actual => mean(&args.max_tokens) * args.output_dist.mean_share(),
    };
    let meter = provider.meter();
    // Calls per window each limit allows; the least binds.
    let calls = meter
        .limits
        .iter()
        .map(|(d, l)| {
            let per_call = match d {
                Dimension::Rpm => 1.0,
                Dimension::Tpm => input + output,
                Dimension::InputTpm => input,
                _ => output,
            };
            *l as f64 / per_call
        })
        .fold(f64::INFINITY, f64::min);
    let per_window = calls * args.external_load;
    if !(per_window.is_finite() && per_window > 0.0) {
        return 0;
    }
    let every = Duration::from_secs_f64(args.window / per_window);
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed);
    let mut sent = 0;
    let mut next = begin;
    while next < deadline {
        tokio::time::sleep_until(next).await;
        let input = uniform(&mut rng, &args.input_tokens);
        let max_tokens = uniform(&mut rng, &args.max_tokens);
        let charged = match args.metering {
            Metering::Reserved => max_tokens,
            Metering::Actual => args.output_dist.draw(&mut rng, max_tokens),
        };
        provider.arrive(input, charged, true).await;
        sent += 1;
        next += every;
    }
    sent
}

fn limits_of(args: &Args) -> Limits {
    Limits::new()
        .rpm(args.rpm)
        .tpm(args.tpm)
        .input_tpm(args.input_tpm)
        .output_tpm(args.output_tpm)
        .window(Duration::from_secs_f64(args.window))
        .guard(Duration::from_millis(args.guard_ms))
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2);
}

async fn redis_conn(args: &Args) -> redis::aio::MultiplexedConnection {
    let url = args.redis_url.as_deref().unwrap_or_default();
    let client = redis::Client::open(url).unwrap_or_else(|e| fail(format!("--redis-url: {e}")));
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| fail(format!("cannot reach Redis at --redis-url: {e}")))
}

async fn provider(args: &Args, run: &str) -> Provider {
    let meter = Meter::new(
        Duration::from_secs_f64(args.window),
        &limits_of(args),
        args.provider_quota,
    );
    match args.store {
        StoreKind::Memory => Provider::Local(LocalProvider {
            meter,
            state: Mutex::new(LocalLog::default()),
        }),
        StoreKind::Redis => Provider::Redis(RedisProvider {
            meter,
            conn: redis_conn(args).await,
            run: run.to_string(),
        }),
    }
}

/// The preset that says how this provider meters (README, "Metering").
fn preset_of(metering: Metering) -> llm_limiter::Metering {
    match metering {
        Metering::Reserved => llm_limiter::Metering::AtArrival,
        Metering::Actual => llm_limiter::Metering::AsUsed,
    }
}

async fn limiter(args: &Args, run: &str) -> Limiter {
    let store: Arc<dyn Store> = match args.store {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::Redis => {
            let url = args.redis_url.as_deref().unwrap_or_default();
            Arc::new(
                RedisStore::connect(url)
                    .await
                    .unwrap_or_else(|e| fail(format!("cannot connect the limiter: {e}"))),
            )
        }
    };
    Limiter::builder_shared(store, format!("sim-model:{run}"))
        .limits(limits_of(args))
        .metering(preset_of(args.metering))
        .build()
        .unwrap_or_else(|e| fail(format!("invalid limits: {e}")))
}

/// Runs `workers` workers in this process from `start_us` for the run's
/// duration.
async fn run_here(
    args: &Args,
    run: &str,
    limited: bool,
    first: usize,
    workers: usize,
    start_us: u64,
    label: &str,
) -> (Arc<Shared>, Option<ProgressBar>) {
    let shared = Arc::new(Shared {
        args: args.clone(),
        provider: provider(args, run).await,
        calls: AtomicU64::new(0),
        outside_calls: AtomicU64::new(0),
        cancelled: AtomicU64::new(0),
        waits_ms: Mutex::new(Vec::new()),
    });
    let limiter = if limited {
        Some(limiter(args, run).await)
    } else {
        None
    };
    // The outside client runs beside the workers of a single process (with
    // several processes, the parent runs it), from a window before them.
    let outside = (args.child.is_none()).then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let sent = outside_client(&shared.provider, &shared.args, start_us).await;
            shared.outside_calls.fetch_add(sent, Ordering::Relaxed);
        })
    });
    // Start together with the other processes.
    let now = Timestamp::now_system().as_micros();
    if start_us > now {
        tokio::time::sleep(Duration::from_micros(start_us - now)).await;
    }
    let duration = Duration::from_secs_f64(args.duration);
    let deadline = tokio::time::Instant::now() + duration;
    let bar = (!args.json && args.child.is_none()).then(|| {
        let bar = ProgressBar::new(1000);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>16} [{bar:30}] {elapsed:>3} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar
    });
    let tasks: Vec<_> = (first..first + workers)
        .map(|i| tokio::spawn(worker(i, shared.clone(), limiter.clone(), deadline)))
        .collect();
    let t0 = tokio::time::Instant::now();
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(bar) = &bar {
            let frac = t0.elapsed().as_secs_f64() / duration.as_secs_f64();
            bar.set_position((frac.min(1.0) * 1000.0) as u64);
            bar.set_message(format!("calls {:>6}", shared.calls.load(Ordering::Relaxed)));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    if let Some(t) = outside {
        let _ = t.await;
    }
    if let Some(bar) = &bar {
        bar.finish();
    }
    (shared, bar)
}

/// Runs the workers in `processes` child processes and gathers their
/// reports.
async fn run_children(args: &Args, run: &str, limited: bool, start_us: u64) -> ChildReport {
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
    let per = args.workers.div_ceil(args.processes);
    let mut children = Vec::new();
    for p in 0..args.processes {
        let first = p * per;
        let n = per.min(args.workers.saturating_sub(first));
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args(std::env::args().skip(1))
            .args(["--child", run, "--json", "--no-baseline"])
            .args(["--workers", &n.to_string()])
            .args(["--first-worker", &first.to_string()])
            .args(["--start-us", &start_us.to_string()])
            .args(["--processes", "1"])
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if !limited {
            cmd.arg("--unlimited");
        }
        children.push(
            cmd.spawn()
                .unwrap_or_else(|e| fail(format!("cannot start a worker process: {e}"))),
        );
    }
    let mut total = ChildReport::default();
    for c in children {
        let out = c
            .wait_with_output()
            .await
            .unwrap_or_else(|e| fail(format!("worker process: {e}")));
        if !out.status.success() {
            fail(format!("a worker process failed: {}", out.status));
        }
        let r: ChildReport = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| fail(format!("bad report from a worker process: {e}")));
        total.calls += r.calls;
        total.cancelled += r.cancelled;
        total.waits_ms.extend(r.waits_ms);
    }
    total
}

async fn run(args: &Args, limited: bool, label: &str) -> RunSummary {
    let run = format!(
        "{}-{}",
        std::process::id(),
        Timestamp::now_system().as_micros()
    );
    // Time to start every process; and with an outside client, a window
    // more, for it to be running when the fleet starts.
    let mut start_us = Timestamp::now_system().as_micros() + 1_500_000;
    if args.external_load > 0.0 {
        start_us += (args.window * 1e6) as u64;
    }
    let provider_view;
    let report = if args.processes > 1 {
        if !args.json {
            eprintln!(
                "{label}: {} processes, {} workers ...",
                args.processes, args.workers
            );
        }
        provider_view = provider(args, &run).await;
        let outside = outside_client(&provider_view, args, start_us);
        let (r, _) = tokio::join!(run_children(args, &run, limited, start_us), outside);
        r
    } else {
        let (shared, _) = run_here(args, &run, limited, 0, args.workers, start_us, label).await;
        let r = ChildReport {
            calls: shared.calls.load(Ordering::Relaxed),
            cancelled: shared.cancelled.load(Ordering::Relaxed),
            waits_ms: shared.waits_ms.lock().clone(),
        };
        let Ok(shared) = Arc::try_unwrap(shared) else {
            fail("workers still hold the provider");
        };
        provider_view = shared.provider;
        r
    };
    let end_us = start_us + Duration::from_secs_f64(args.duration).as_micros() as u64;
    summarise(&provider_view, report, start_us, end_us).await
}

async fn summarise(
    provider: &Provider,
    report: ChildReport,
    start_us: u64,
    end_us: u64,
) -> RunSummary {
    let meter = provider.meter();
    let (accepted, rejected) = provider.log().await;
    // Steady state: from one window after the start (the first window's
    // burst is free capacity any client gets) to the end.
    let from = start_us + meter.window_us;
    let span = end_us.saturating_sub(from).max(1) as f64;
    let mut uses = Vec::new();
    for (i, (d, l)) in meter.limits.iter().enumerate() {
        let in_span = |outside: bool| -> u64 {
            accepted
                .iter()
                .filter(|(t, _, o)| *t >= from && *t < end_us && *o == outside)
                .map(|(_, a, _)| a[i])
                .sum()
        };
        // The provider's capacity over the span, less what the outside
        // client took of it.
        let capacity = *l as f64 * span / meter.window_us as f64 - in_span(true) as f64;
        uses.push(LimitUse {
            limit: d.name(),
            per_window: *l,
            utilisation: in_span(false) as f64 / capacity.max(1.0),
        });
    }
    let fleet_rejected = rejected.iter().filter(|(_, o)| !*o).count() as u64;
    let late_rejected = rejected.iter().filter(|(t, o)| !*o && *t >= from).count() as u64;
    let outside_rejected = rejected.iter().filter(|(_, o)| *o).count() as u64;
    let outside_calls = accepted.iter().filter(|(_, _, o)| *o).count() as u64 + outside_rejected;
    let binding = uses
        .iter()
        .max_by(|a, b| a.utilisation.total_cmp(&b.utilisation));
    let mut waits = report.waits_ms;
    waits.sort_by(f64::total_cmp);
    RunSummary {
        calls: report.calls,
        rejected_429: fleet_rejected,
        rejected_429_after_first_window: late_rejected,
        outside_calls,
        outside_rejected_429: outside_rejected,
        utilisation: binding.map_or(0.0, |b| b.utilisation),
        binding_limit: binding.map(|b| b.limit),
        wait_p50_ms: percentile(&waits, 0.5),
        wait_p99_ms: percentile(&waits, 0.99),
        wait_max_ms: waits.last().copied().unwrap_or(0.0),
        limits: uses,
        cancelled_at_end: report.cancelled,
    }
}

fn check_args(args: &Args) -> Result<(), String> {
    if args.workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= 86_400.0) {
        return Err("--duration must be a number of seconds in (0, 86400]".into());
    }
    if !(args.window.is_finite() && args.window >= 0.1 && args.window <= 86_400.0) {
        return Err("--window must be a number of seconds in [0.1, 86400]".into());
    }
    if args.rpm == 0 && args.tpm == 0 && args.input_tpm == 0 && args.output_tpm == 0 {
        return Err("at least one of --rpm, --tpm, --input-tpm, --output-tpm must be on".into());
    }
    if args.store == StoreKind::Redis && args.redis_url.is_none() {
        return Err("--store redis needs --redis-url".into());
    }
    if args.processes == 0 || args.processes > 64 {
        return Err("--processes must be in 1..=64".into());
    }
    if args.processes > 1 && args.store != StoreKind::Redis {
        return Err("--processes above 1 needs --store redis (processes share Redis)".into());
    }
    if args.processes > args.workers {
        return Err("--processes must not exceed --workers".into());
    }
    if !(args.provider_quota.is_finite()
        && args.provider_quota > 0.0
        && args.provider_quota <= 100.0)
    {
        return Err("--provider-quota must be a factor in (0, 100]".into());
    }
    if !(args.external_load.is_finite() && (0.0..1.0).contains(&args.external_load)) {
        return Err("--external-load must be a fraction in [0, 1)".into());
    }
    Ok(())
}

fn print_run(name: &str, r: &RunSummary) {
    println!("{name}");
    println!("  calls sent         {:>10}", r.calls);
    println!(
        "  429 answers        {:>10}  ({} after the first window)",
        r.rejected_429, r.rejected_429_after_first_window
    );
    if r.outside_calls > 0 {
        println!(
            "  outside client     {:>10}  calls, {} answered 429",
            r.outside_calls, r.outside_rejected_429
        );
    }
    for u in &r.limits {
        println!(
            "  {:<18} {:>9.1}%  of {} per window{}",
            format!("{} used", u.limit),
            u.utilisation * 100.0,
            u.per_window,
            if Some(u.limit) == r.binding_limit {
                "  (binding)"
            } else {
                ""
            }
        );
    }
    println!(
        "  wait p50/p99/max   {:>7.0} / {:.0} / {:.0} ms",
        r.wait_p50_ms, r.wait_p99_ms, r.wait_max_ms
    );
}

/// A child process: run its share of the workers and report on stdout.
async fn child_main(args: &Args, run: &str) {
    let (shared, _) = run_here(
        args,
        run,
        !args.unlimited,
        args.first_worker,
        args.workers,
        args.start_us,
        "",
    )
    .await;
    let report = ChildReport {
        calls: shared.calls.load(Ordering::Relaxed),
        cancelled: shared.cancelled.load(Ordering::Relaxed),
        waits_ms: shared.waits_ms.lock().clone(),
    };
    match serde_json::to_string(&report) {
        Ok(s) => println!("{s}"),
        Err(e) => fail(e),
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = check_args(&args) {
        fail(e);
    }
    if let Some(run) = args.child.clone() {
        child_main(&args, &run).await;
        return;
    }
    let limited = run(&args, true, "with limiter").await;
    let baseline = if args.no_baseline {
        None
    } else {
        Some(run(&args, false, "without limiter").await)
    };
    let summary = Summary {
        store: format!("{:?}", args.store).to_lowercase(),
        processes: args.processes,
        workers: args.workers,
        duration_s: args.duration,
        window_s: args.window,
        guard_ms: args.guard_ms,
        metering: args.metering,
        output_dist: args.output_dist,
        preset: preset_of(args.metering).to_string(),
        provider_quota: args.provider_quota,
        external_load: args.external_load,
        calibration: !args.no_calibration,
        calls: limited.calls,
        rejected_429: limited.rejected_429,
        utilisation: limited.utilisation,
        binding_limit: limited.binding_limit,
        wait_p50_ms: limited.wait_p50_ms,
        wait_p99_ms: limited.wait_p99_ms,
        limited,
        without_limiter: baseline,
    };
    if args.json {
        match serde_json::to_string(&summary) {
            Ok(s) => println!("{s}"),
            Err(e) => fail(e),
        }
    } else {
        println!();
        println!(
            "{} workers in {} process(es), {} s, window {} s, guard {} ms, store {}",
            summary.workers,
            summary.processes,
            summary.duration_s,
            summary.window_s,
            summary.guard_ms,
            summary.store
        );
        print_run("with llm-limiter", &summary.limited);
        if let Some(b) = &summary.without_limiter {
            print_run("without a limiter", b);
        }
        let verdict = if summary.rejected_429 == 0 && summary.utilisation >= 0.97 {
            "OK: no 429 and the binding limit used to at least 97 %"
        } else if summary.rejected_429 == 0 {
            "no 429, but the binding limit was used below 97 %"
        } else {
            "FAILED: the provider answered 429"
        };
        println!("{verdict}");
    }
    if summary.rejected_429 > 0 {
        std::process::exit(1);
    }
}

#[cfg(test)]
mod output_tests {
    use super::*;

    /// The realistic distribution has its median at 20 % of `max_tokens`,
    /// never passes the cap, and its mean is the one the outside client
    /// plans with.
    #[test]
    fn realistic_output_is_skewed_capped_and_its_mean_known() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut draws: Vec<u64> = (0..200_000)
            .map(|_| OutputDist::Realistic.draw(&mut rng, 1_000))
            .collect();
        draws.sort_unstable();
        assert!(draws.iter().all(|&d| (1..=1_000).contains(&d)));
        let median = draws[draws.len() / 2] as f64;
        assert!((median - 200.0).abs() < 6.0, "median {median}");
        let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64 / 1_000.0;
        let expected = OutputDist::Realistic.mean_share();
        assert!((mean - expected).abs() < 0.005, "{mean} vs {expected}");
        let capped = draws.iter().filter(|&&d| d == 1_000).count() as f64 / draws.len() as f64;
        assert!((0.04..0.07).contains(&capped), "{capped}");
    }
}
