//! Simulated live (streaming) sessions through a `LiveLimiter`.
//!
//! Several clients each open a few sessions with a simulated live
//! provider that enforces, strictly, a cap on open sessions and a rolling
//! token rate: it refuses a connection beyond the cap and answers 429 to a
//! turn that would exceed the token rate. Each client goes through the
//! limiter:
//!
//! - `acquire_session` waits (FIFO) for a concurrent-session slot and a
//!   session start;
//! - before each turn, `wait_for_tokens(estimate)` waits until the token
//!   rate has room (back-pressure), and the usage the provider reports is
//!   recorded with `record_token_usage`;
//! - once, the provider pushes back (a GoAway-like notice): the client
//!   calls `trigger_cooldown`, which pauses the model for every client.
//!
//! The per-minute limits run on a window of `--window-ms` (2 s by default)
//! to keep the run short. The summary shows the provider never refused:
//! peak open sessions within the cap, 0 refused connections, 0 429s.
//!
//! ```text
//! cargo run -p examples --bin live
//! cargo run -p examples --bin live -- --redis-url redis://127.0.0.1:6390
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use llm_limiter::live::{LiveLimiter, LiveLimits};
use llm_limiter::{LeaseStore, MemoryStore, RedisStore};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};

const MODEL: &str = "gemini-live-sim";

/// Simulated streaming sessions through the live limiter.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Clients, each opening sessions one after the other.
    #[arg(long, default_value_t = 6)]
    clients: usize,
    /// Sessions per client.
    #[arg(long, default_value_t = 2)]
    sessions: usize,
    /// Turns per session.
    #[arg(long, default_value_t = 4)]
    turns: usize,
    /// How long a turn streams, in milliseconds.
    #[arg(long, default_value_t = 150)]
    turn_ms: u64,
    /// Sessions the provider allows open at once.
    #[arg(long, default_value_t = 3)]
    cap: u64,
    /// Tokens per window the provider allows.
    #[arg(long, default_value_t = 6_000)]
    tokens_per_window: u64,
    /// The window of the per-minute limits, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    window_ms: u64,
    /// Use this Redis instead of the in-memory store.
    #[arg(long)]
    redis_url: Option<String>,
}

/// A live provider that meters strictly.
struct Provider {
    cap: u64,
    tokens_per_window: u64,
    window: Duration,
    state: Mutex<ProviderState>,
}

#[derive(Default)]
struct ProviderState {
    open: u64,
    peak_open: u64,
    refused_connects: u64,
    rejected_turns: u64,
    log: VecDeque<(Instant, u64)>,
    in_window: u64,
    peak_in_window: u64,
    pushed_back: bool,
}

impl Provider {
    fn connect(&self) -> bool {
        let mut s = self.state.lock();
        if s.open >= self.cap {
            s.refused_connects += 1;
            return false;
        }
        s.open += 1;
        s.peak_open = s.peak_open.max(s.open);
        true
    }

    fn disconnect(&self) {
        self.state.lock().open -= 1;
    }

    /// A turn of `tokens`: `Err` for a 429.
    fn turn(&self, tokens: u64) -> Result<(), ()> {
        let now = Instant::now();
        let mut s = self.state.lock();
        while let Some(&(t, n)) = s.log.front() {
            if now.duration_since(t) < self.window {
                break;
            }
            s.log.pop_front();
            s.in_window -= n;
        }
        if s.in_window + tokens > self.tokens_per_window {
            s.rejected_turns += 1;
            return Err(());
        }
        s.log.push_back((now, tokens));
        s.in_window += tokens;
        s.peak_in_window = s.peak_in_window.max(s.in_window);
        Ok(())
    }

    /// Pushes back once, on the first call after `after` turns overall.
    fn push_back_once(&self, turns_so_far: u64, after: u64) -> bool {
        let mut s = self.state.lock();
        if !s.pushed_back && turns_so_far >= after {
            s.pushed_back = true;
            return true;
        }
        false
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let window = Duration::from_millis(args.window_ms);
    let store: Arc<dyn LeaseStore> = match &args.redis_url {
        Some(url) => Arc::new(RedisStore::connect(url).await?),
        None => Arc::new(MemoryStore::new()),
    };
    let limits = LiveLimits::new()
        .concurrent_sessions(args.cap)
        .sessions_per_minute(20)
        .tokens_per_minute(args.tokens_per_window)
        .window(window);
    let live = LiveLimiter::builder_shared(store)
        .model(MODEL, limits)
        .lease_ttl(Duration::from_secs(5))
        .poll_interval(Duration::from_millis(20))
        .max_wait(Duration::from_secs(60))
        .build()?;
    let provider = Arc::new(Provider {
        cap: args.cap,
        tokens_per_window: args.tokens_per_window,
        window,
        state: Mutex::new(ProviderState::default()),
    });
    let turns_done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    println!(
        "{} clients x {} sessions x {} turns; provider: {} sessions open at most, {} tokens per {:?}",
        args.clients, args.sessions, args.turns, args.cap, args.tokens_per_window, window
    );

    let mut tasks = Vec::new();
    for client in 0..args.clients {
        let (live, provider, turns_done) = (live.clone(), provider.clone(), turns_done.clone());
        let (sessions, turns, turn_ms) = (args.sessions, args.turns, args.turn_ms);
        let total_turns = (args.clients * args.sessions * args.turns) as u64;
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(client as u64);
            for n in 0..sessions {
                let asked = Instant::now();
                let session = live.acquire_session(MODEL).await?;
                let waited = asked.elapsed();
                assert!(provider.connect(), "the provider refused a connection");
                let mut tokens = 0;
                let mut back_pressure = Duration::ZERO;
                for _ in 0..turns {
                    let estimate = rng.gen_range(300..=700);
                    back_pressure += session.wait_for_tokens(estimate).await?;
                    let used = estimate * rng.gen_range(70..=100) / 100;
                    if provider.turn(used).is_err() {
                        eprintln!("client {client}: the provider answered 429");
                    }
                    session.record_token_usage(used).await?;
                    tokens += used;
                    tokio::time::sleep(Duration::from_millis(turn_ms)).await;
                    let done = turns_done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    if provider.push_back_once(done, total_turns / 3) {
                        println!("client {client}: the provider pushed back; {MODEL} cools down 0.5 s for every client");
                        session.trigger_cooldown(Duration::from_millis(500)).await?;
                    }
                }
                provider.disconnect();
                session.end().await?;
                println!(
                    "client {client} session {n}: waited {:.2} s to start, {:.2} s on back-pressure, {turns} turns, {tokens} tokens",
                    waited.as_secs_f64(),
                    back_pressure.as_secs_f64()
                );
                if client == 0 && n == 0 {
                    println!("  {}", live.check_availability(MODEL).await?);
                }
            }
            Ok::<(), llm_limiter::live::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let st = live.status(MODEL).await?;
    let s = provider.state.lock();
    println!(
        "summary after {:.1} s: {} sessions, {} turns; provider: peak open {} of {}, refused connections {}, 429s {}, peak tokens in a window {} of {}; open now {}",
        started.elapsed().as_secs_f64(),
        args.clients * args.sessions,
        turns_done.load(std::sync::atomic::Ordering::SeqCst),
        s.peak_open,
        args.cap,
        s.refused_connects,
        s.rejected_turns,
        s.peak_in_window,
        args.tokens_per_window,
        st.open_sessions()
    );
    if s.refused_connects + s.rejected_turns > 0 {
        return Err("the provider refused calls".into());
    }
    Ok(())
}
