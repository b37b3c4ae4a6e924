//! Model-priority fallback: text calls go to `gemini-2.5-flash` first and
//! fall back to `gpt-4o-mini` when Gemini pushes back.
//!
//! Both providers are simulated in this process, so the program needs no
//! set-up and no API key. Each fake enforces a strict quota of its own, in
//! calls per window, and knows nothing of the limiter:
//!
//! - the Gemini fake takes fewer calls than the limiter's table allows (as
//!   happens when a project's real quota is lower than the published one,
//!   or another client shares it) and then answers HTTP 429 with a
//!   `RESOURCE_EXHAUSTED` body whose `google.rpc.RetryInfo.retryDelay` says
//!   when its window frees up;
//! - the OpenAI fake answers 429 with a `Retry-After` header and an
//!   OpenAI `rate_limit_exceeded` body.
//!
//! The limiters take their limits from the built-in tables
//! (`Registry::builtin()`: Gemini `free`, OpenAI `tier1`) through
//! `Registry::limiter`, all on one in-memory store. To keep the run short,
//! every per-minute limit is applied to a window of `--window-ms` (2 s by
//! default) instead of 60 s, and the fakes use the same window: the numbers
//! are per 2 s, the behaviour is the real one scaled down.
//!
//! The router runs each call on the first model that is not cooling down;
//! on a 429 it cools that model down in the store for the provider's delay
//! and calls the next. When both are cooling down, the call gets
//! `RouterError::AllModelsExhausted` with a reason per model, and the program
//! waits for the first cooldown to end. Each call's line says which model
//! served it and why others were passed over; a summary ends the run.
//!
//! ```text
//! cargo run -p examples --bin fallback
//! cargo run -p examples --bin fallback -- --calls 40 --spacing-ms 50
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use llm_limiter::models::{Provider, Registry, Tier};
use llm_limiter::{
    Cost, GeminiUsage, HttpError, MemoryStore, ModelRefusal, OpenAiUsage, RefusalReason, Router,
    RouterError, Store, Timestamp,
};
use parking_lot::Mutex;
use serde_json::{json, Value};

const GEMINI: &str = "gemini-2.5-flash";
const OPENAI: &str = "gpt-4o-mini";

/// Text calls with fallback from Gemini to OpenAI, against simulated
/// providers.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Calls to make, one after the other.
    #[arg(long, default_value_t = 24)]
    calls: usize,
    /// Pause between calls, in milliseconds.
    #[arg(long, default_value_t = 100)]
    spacing_ms: u64,
    /// The window every per-minute limit is applied to, in milliseconds
    /// (60000 is the real minute).
    #[arg(long, default_value_t = 2_000)]
    window_ms: u64,
    /// Calls per window the simulated Gemini takes (below the table's RPM).
    #[arg(long, default_value_t = 4)]
    gemini_quota: usize,
    /// Calls per window the simulated OpenAI takes.
    #[arg(long, default_value_t = 5)]
    openai_quota: usize,
}

/// How a simulated provider words its 429.
#[derive(Clone, Copy, Debug)]
enum Dialect {
    Gemini,
    OpenAi,
}

/// A simulated provider: takes at most `quota` calls in any `window`, and
/// answers the rest with a 429 in its own dialect.
#[derive(Debug)]
struct FakeProvider {
    dialect: Dialect,
    quota: usize,
    window: Duration,
    /// Arrival times of the calls it took.
    log: Mutex<VecDeque<Instant>>,
    rejected: Mutex<u64>,
}

impl FakeProvider {
    fn new(dialect: Dialect, quota: usize, window: Duration) -> Self {
        FakeProvider {
            dialect,
            quota,
            window,
            log: Mutex::new(VecDeque::new()),
            rejected: Mutex::new(0),
        }
    }

    /// One text generation: the answer and the provider's usage report.
    async fn generate(&self, model: &str, prompt: &str) -> Result<(String, Value), HttpError> {
        // The request travels to the provider.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = Instant::now();
        {
            let mut log = self.log.lock();
            while log
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                log.pop_front();
            }
            if log.len() >= self.quota {
                // When the oldest call leaves the window.
                let free_in = self.window - now.duration_since(log[0]);
                *self.rejected.lock() += 1;
                return Err(self.too_many(model, free_in));
            }
            log.push_back(now);
        }
        // The model thinks.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (input, output) = (prompt.len() as u64 * 3, 42);
        let usage = match self.dialect {
            Dialect::Gemini => json!({"promptTokenCount": input, "candidatesTokenCount": output,
                                      "totalTokenCount": input + output}),
            Dialect::OpenAi => json!({"prompt_tokens": input, "completion_tokens": output,
                                      "total_tokens": input + output}),
        };
        Ok((format!("{model}'s answer to {prompt:?}"), usage))
    }

    /// The 429 this provider answers with.
    fn too_many(&self, model: &str, free_in: Duration) -> HttpError {
        match self.dialect {
            Dialect::Gemini => HttpError {
                status: 429,
                headers: vec![],
                body: json!({"error": {
                    "code": 429,
                    "message": "You exceeded your current quota, please check your plan and billing details.",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                         "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                                         "quotaDimensions": {"location": "global", "model": model},
                                         "quotaValue": self.quota.to_string()}]},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                         "retryDelay": format!("{:.3}s", free_in.as_secs_f64())}
                    ]}})
                .to_string(),
            },
            Dialect::OpenAi => HttpError {
                status: 429,
                // Whole seconds, rounded up, as `Retry-After` allows.
                headers: vec![(
                    "Retry-After".into(),
                    free_in.as_secs_f64().ceil().to_string(),
                )],
                body: json!({"error": {
                    "message": format!("Rate limit reached for {model} on requests per min (RPM): Limit {}.", self.quota),
                    "type": "requests",
                    "code": "rate_limit_exceeded"}})
                .to_string(),
            },
        }
    }
}

/// `d` as seconds with two decimals.
fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// One refusal, worded for the log; counts the cooldowns it set.
fn describe(r: &ModelRefusal, now: Timestamp, cooldowns: &mut u64) -> String {
    match &r.reason {
        RefusalReason::CoolingDown { until } => format!(
            "{} skipped, cooling down for another {}",
            r.model,
            secs(until.duration_since(now))
        ),
        RefusalReason::RateLimited {
            retry_after,
            cooldown,
        } => {
            *cooldowns += 1;
            let asked = retry_after.map_or("nothing".into(), secs);
            format!(
                "{} answered 429 (asked for {asked}): cooldown set for {}",
                r.model,
                secs(*cooldown)
            )
        }
        other => format!("{} passed over: {other}", r.model),
    }
}

/// How long until the first model's cooldown ends, per the refusals.
fn first_cooldown_end(reasons: &[ModelRefusal], now: Timestamp) -> Duration {
    reasons
        .iter()
        .filter_map(|r| match r.reason {
            RefusalReason::CoolingDown { until } => Some(until.duration_since(now)),
            RefusalReason::RateLimited { cooldown, .. } => Some(cooldown),
            _ => None,
        })
        .min()
        .unwrap_or(Duration::from_millis(100))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let window = Duration::from_millis(args.window_ms.max(1));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let registry = Registry::builtin();

    // Limits from the built-in tables, keyed "gemini:gemini-2.5-flash" and
    // "openai:gpt-4o-mini", their per-minute limits scaled to `window`.
    let gemini = registry.limiter(store.clone(), Provider::Gemini, Tier::Free, GEMINI)?;
    let openai = registry.limiter(store.clone(), Provider::OpenAi, Tier::Tier1, OPENAI)?;
    for l in [&gemini, &openai] {
        l.set_limits(l.limits().window(window))?;
        let m = l.limits();
        println!(
            "limiter {:<24} rpm {:>4}  tpm {:>7}  input_tpm {:>7}  rpd {:>6}  (per-minute limits per {})",
            l.key(),
            m.rpm,
            m.tpm,
            m.input_tpm,
            m.rpd,
            secs(window)
        );
    }
    let router = Router::builder()
        .model(GEMINI, gemini)
        .model(OPENAI, openai)
        // Used only when a provider gives no delay.
        .default_cooldown(window)
        .build()?;

    let providers: BTreeMap<&str, FakeProvider> = [
        (
            GEMINI,
            FakeProvider::new(Dialect::Gemini, args.gemini_quota, window),
        ),
        (
            OPENAI,
            FakeProvider::new(Dialect::OpenAi, args.openai_quota, window),
        ),
    ]
    .into();
    println!(
        "simulated providers: {GEMINI} takes {} calls per {}, {OPENAI} takes {}\n",
        args.gemini_quota,
        secs(window),
        args.openai_quota
    );

    let start = Instant::now();
    let mut served: BTreeMap<String, u64> = BTreeMap::new();
    let (mut fallbacks, mut cooldowns, mut exhausted) = (0u64, 0u64, 0u64);
    for i in 1..=args.calls {
        let prompt = format!("question {i}");
        loop {
            let result = router
                .run(Cost::split(50, 100), Duration::from_millis(250), |model| {
                    let providers = &providers;
                    let prompt = &prompt;
                    async move { providers[model.as_str()].generate(&model, prompt).await }
                })
                .await;
            let now = store.clock().now();
            let at = secs(start.elapsed());
            match result {
                Ok(routed) => {
                    let (_answer, usage) = &routed.value;
                    // Settle the permit with the usage the provider reported.
                    let actual: Cost = if routed.model == GEMINI {
                        serde_json::from_value::<GeminiUsage>(usage.clone())?.into()
                    } else {
                        serde_json::from_value::<OpenAiUsage>(usage.clone())?.into()
                    };
                    routed.settle(actual).await?;
                    let notes: Vec<String> = routed
                        .skipped
                        .iter()
                        .map(|r| describe(r, now, &mut cooldowns))
                        .collect();
                    if routed.model != GEMINI {
                        fallbacks += 1;
                    }
                    *served.entry(routed.model.clone()).or_default() += 1;
                    let notes = if notes.is_empty() {
                        String::new()
                    } else {
                        format!("  [{}]", notes.join("; "))
                    };
                    println!("[{at:>6}] call {i:>2} served by {}{notes}", routed.model);
                    break;
                }
                Err(RouterError::AllModelsExhausted { reasons }) => {
                    exhausted += 1;
                    let notes: Vec<String> = reasons
                        .iter()
                        .map(|r| describe(r, now, &mut cooldowns))
                        .collect();
                    let wait = first_cooldown_end(&reasons, now);
                    println!(
                        "[{at:>6}] call {i:>2} all models exhausted [{}]; waiting {}",
                        notes.join("; "),
                        secs(wait)
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        tokio::time::sleep(Duration::from_millis(args.spacing_ms)).await;
    }

    println!("\nsummary after {}:", secs(start.elapsed()));
    for (model, n) in &served {
        println!("  {model:<18} served {n} calls");
    }
    let rejected: Vec<String> = providers
        .iter()
        .map(|(m, p)| format!("{m} {}", p.rejected.lock()))
        .collect();
    let total_rejected: u64 = providers.values().map(|p| *p.rejected.lock()).sum();
    println!("  fallbacks          {fallbacks} (calls served by a model other than {GEMINI})");
    println!("  cooldowns set      {cooldowns} (one per 429 seen)");
    println!("  all exhausted      {exhausted} (times the caller waited for a cooldown to end)");
    println!("  429s by provider   {}", rejected.join(", "));
    // Every 429 must have cooled its model down.
    if cooldowns != total_rejected {
        return Err(format!("{total_rejected} 429s but {cooldowns} cooldowns").into());
    }
    Ok(())
}
