//! The simulation: many workers share one strict provider quota through the
//! limiter, and a summary tells how close to the quota they got without a
//! single 429.
//!
//! The simulated provider knows nothing of the limiter. It meters the time
//! each call *arrives* (after a random network delay) in an exact log per
//! limit, and answers 429 to any call that would put more than the limit into
//! any window of `--window` seconds; it then answers after a random latency.
//! The same workload is then run without the limiter for contrast.
//!
//! ```text
//! cargo run --release -p examples --bin simulate
//! cargo run --release -p examples --bin simulate -- --workers 64 --rpm 120 --json
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use llm_limiter::{Cost, Dimension, Error, Limiter, Limits, MemoryStore, Store, Timestamp};
use parking_lot::Mutex;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;

/// Where the limiter keeps its state.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum StoreKind {
    /// In this process.
    Memory,
}

/// What the provider charges for output tokens.
#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum Metering {
    /// `max_tokens` is charged up front at arrival (OpenAI's rule); the
    /// workers reserve exactly that.
    Reserved,
    /// The output actually produced is charged at arrival; the workers
    /// reserve `max_tokens` and settle the real count after the response.
    Actual,
}

/// Simulates workers sharing one provider quota through llm-limiter.
#[derive(Parser, Debug, Clone)]
#[command(version, about)]
struct Args {
    /// Store for the limiter.
    #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
    store: StoreKind,
    /// Concurrent workers.
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
    /// Network delay to the provider: smallest and largest, in ms.
    #[arg(long, num_args = 2, default_values_t = [2, 30])]
    net_delay_ms: Vec<u64>,
    /// Provider's response latency: smallest and largest, in ms.
    #[arg(long, num_args = 2, default_values_t = [200, 1200])]
    latency_ms: Vec<u64>,
    /// The limiter's guard band in ms: it must cover the spread of network
    /// delay plus wake-up lateness.
    #[arg(long, default_value_t = 60)]
    guard_ms: u64,
    /// Skip the run without the limiter.
    #[arg(long)]
    no_baseline: bool,
    /// Seed of the random workload.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the summary as one JSON object on stdout (and no progress).
    #[arg(long)]
    json: bool,
}

/// A strict provider: an exact log of arrivals per limit.
struct Provider {
    window_us: u64,
    limits: Vec<(Dimension, u64)>,
    state: Mutex<ProviderState>,
}

#[derive(Default)]
struct ProviderState {
    /// (arrival µs, amounts per limit) of every accepted call in the window.
    log: VecDeque<(u64, Vec<u64>)>,
    /// Totals of `log`.
    totals: Vec<u64>,
    /// Every accepted call, for the utilisation figures.
    accepted: Vec<(u64, Vec<u64>)>,
    rejected: u64,
}

impl Provider {
    fn new(window: Duration, limits: &Limits) -> Self {
        let limits: Vec<(Dimension, u64)> = [
            Dimension::Rpm,
            Dimension::Tpm,
            Dimension::InputTpm,
            Dimension::OutputTpm,
        ]
        .into_iter()
        .map(|d| (d, limits.get(d)))
        .filter(|(_, l)| *l > 0)
        .collect();
        let n = limits.len();
        Provider {
            window_us: window.as_micros() as u64,
            limits,
            state: Mutex::new(ProviderState {
                totals: vec![0; n],
                ..ProviderState::default()
            }),
        }
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

    /// A call arrives now: accepted, or 429 if any window of `window`
    /// ending now (both ends included) would exceed a limit.
    fn arrive(&self, input: u64, charged_output: u64) -> bool {
        let now = Timestamp::now_system().as_micros();
        let a = self.amounts(input, charged_output);
        let mut s = self.state.lock();
        while let Some((t, old)) = s.log.front() {
            if *t + self.window_us >= now {
                break;
            }
            let old = old.clone();
            s.log.pop_front();
            for (tot, v) in s.totals.iter_mut().zip(old) {
                *tot -= v;
            }
        }
        let fits = self
            .limits
            .iter()
            .zip(&s.totals)
            .zip(&a)
            .all(|(((_, l), t), v)| t + v <= *l);
        if !fits {
            s.rejected += 1;
            return false;
        }
        for (tot, v) in s.totals.iter_mut().zip(&a) {
            *tot += v;
        }
        s.log.push_back((now, a.clone()));
        s.accepted.push((now, a));
        true
    }
}

#[derive(Debug, Serialize)]
struct LimitUse {
    limit: &'static str,
    per_window: u64,
    utilisation: f64,
}

#[derive(Debug, Serialize)]
struct RunSummary {
    calls: u64,
    rejected_429: u64,
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
    workers: usize,
    duration_s: f64,
    window_s: f64,
    guard_ms: u64,
    metering: Metering,
    calls: u64,
    rejected_429: u64,
    utilisation: f64,
    binding_limit: Option<&'static str>,
    wait_p50_ms: f64,
    wait_p99_ms: f64,
    limited: RunSummary,
    without_limiter: Option<RunSummary>,
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
        let actual_output = rng.gen_range(max_tokens / 4..=max_tokens);
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
        tokio::time::sleep(net).await;
        let charged = match args.metering {
            Metering::Reserved => max_tokens,
            Metering::Actual => actual_output,
        };
        let ok = shared.provider.arrive(input, charged);
        shared.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(if ok { latency } else { net }).await;
        if let (Some(p), true, Metering::Actual) = (&permit, ok, args.metering) {
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

async fn run(args: &Args, store: Option<Arc<dyn Store>>, label: &str) -> RunSummary {
    let window = Duration::from_secs_f64(args.window);
    let limits = Limits::new()
        .rpm(args.rpm)
        .tpm(args.tpm)
        .input_tpm(args.input_tpm)
        .output_tpm(args.output_tpm)
        .window(window)
        .guard(Duration::from_millis(args.guard_ms));
    let shared = Arc::new(Shared {
        args: args.clone(),
        provider: Provider::new(window, &limits),
        calls: AtomicU64::new(0),
        cancelled: AtomicU64::new(0),
        waits_ms: Mutex::new(Vec::new()),
    });
    let limiter = match store {
        Some(store) => match Limiter::builder_shared(store, "sim-model")
            .limits(limits)
            .build()
        {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("invalid limits: {e}");
                std::process::exit(2);
            }
        },
        None => None,
    };
    let duration = Duration::from_secs_f64(args.duration);
    let start_us = Timestamp::now_system().as_micros();
    let deadline = tokio::time::Instant::now() + duration;
    let bar = if args.json {
        ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::hidden())
    } else {
        ProgressBar::new(1000)
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>16} [{bar:30}] {elapsed:>3} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    let tasks: Vec<_> = (0..args.workers)
        .map(|i| tokio::spawn(worker(i, shared.clone(), limiter.clone(), deadline)))
        .collect();
    let t0 = tokio::time::Instant::now();
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let frac = t0.elapsed().as_secs_f64() / duration.as_secs_f64();
        bar.set_position((frac.min(1.0) * 1000.0) as u64);
        let rejected = shared.provider.state.lock().rejected;
        bar.set_message(format!(
            "calls {:>6}  429s {:>5}",
            shared.calls.load(Ordering::Relaxed),
            rejected
        ));
    }
    for t in tasks {
        let _ = t.await;
    }
    bar.finish();
    let end_us = start_us + duration.as_micros() as u64;
    summarise(&shared, &limits, start_us, end_us)
}

fn summarise(shared: &Shared, limits: &Limits, start_us: u64, end_us: u64) -> RunSummary {
    let p = &shared.provider;
    let st = p.state.lock();
    // Steady state: from one window after the start (the first window's
    // burst is free capacity any client gets) to the end.
    let from = start_us + p.window_us;
    let span = end_us.saturating_sub(from).max(1) as f64;
    let mut uses = Vec::new();
    for (i, (d, l)) in p.limits.iter().enumerate() {
        let consumed: u64 = st
            .accepted
            .iter()
            .filter(|(t, _)| *t >= from && *t < end_us)
            .map(|(_, a)| a[i])
            .sum();
        let capacity = *l as f64 * span / p.window_us as f64;
        uses.push(LimitUse {
            limit: d.name(),
            per_window: limits.get(*d),
            utilisation: consumed as f64 / capacity,
        });
    }
    let binding = uses
        .iter()
        .max_by(|a, b| a.utilisation.total_cmp(&b.utilisation));
    let mut waits = shared.waits_ms.lock().clone();
    waits.sort_by(f64::total_cmp);
    RunSummary {
        calls: shared.calls.load(Ordering::Relaxed),
        rejected_429: st.rejected,
        utilisation: binding.map_or(0.0, |b| b.utilisation),
        binding_limit: binding.map(|b| b.limit),
        limits: uses,
        wait_p50_ms: percentile(&waits, 0.5),
        wait_p99_ms: percentile(&waits, 0.99),
        wait_max_ms: waits.last().copied().unwrap_or(0.0),
        cancelled_at_end: shared.cancelled.load(Ordering::Relaxed),
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
    Ok(())
}

fn print_run(name: &str, r: &RunSummary) {
    println!("{name}");
    println!("  calls sent         {:>10}", r.calls);
    println!("  429 answers        {:>10}", r.rejected_429);
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
    if r.wait_max_ms > 0.0 || r.calls > 0 {
        println!(
            "  wait p50/p99/max   {:>7.0} / {:.0} / {:.0} ms",
            r.wait_p50_ms, r.wait_p99_ms, r.wait_max_ms
        );
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = check_args(&args) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    let store: Arc<dyn Store> = match args.store {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
    };
    let limited = run(&args, Some(store), "with limiter").await;
    let baseline = if args.no_baseline {
        None
    } else {
        Some(run(&args, None, "without limiter").await)
    };
    let summary = Summary {
        store: format!("{:?}", args.store).to_lowercase(),
        workers: args.workers,
        duration_s: args.duration,
        window_s: args.window,
        guard_ms: args.guard_ms,
        metering: args.metering,
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
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    } else {
        println!();
        println!(
            "{} workers, {} s, window {} s, guard {} ms, store {}",
            summary.workers, summary.duration_s, summary.window_s, summary.guard_ms, summary.store
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
