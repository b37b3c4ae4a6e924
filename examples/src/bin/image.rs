//! Image generation with model-priority fallback: `gpt-image-1-mini`, then
//! `gpt-image-1`, then `imagen-4.0-fast-generate`, against a simulated
//! image provider.
//!
//! Each request asks for 1 to 4 images and reserves `Cost::images(n)`. The
//! limiters take their RPM (and Imagen's RPD) from the built-in tables
//! (`Registry::builtin()`, tier `tier1`), plus an images-per-minute (IPM)
//! limit given as an override (`Registry::with_override`), as for an
//! account whose image budget is lower than what the tables publish. To
//! keep the run short, every per-minute limit is applied to a window of
//! `--window-ms` (2 s by default) instead of 60 s: the numbers are per
//! 2 s, the behaviour is the real one scaled down.
//!
//! Two kinds of fallback show:
//!
//! - the limiter's own: when a model's IPM would make the request wait
//!   longer than the caller's maximum wait, the router passes it over
//!   without calling it ("would wait");
//! - the provider's: the simulated `gpt-image-1` takes fewer images per
//!   window than its limiter allows and answers 429 with a
//!   `retry-after-ms` header; the router cools it down and goes on.
//!
//! ```text
//! cargo run -p examples --bin image
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use llm_limiter::models::{Provider, Registry, Tier};
use llm_limiter::{
    Cost, HttpError, MemoryStore, ModelRefusal, RefusalReason, Router, RouterError, Store,
    Timestamp,
};
use parking_lot::Mutex;

/// The priority list: model, provider, IPM override, images per window the
/// simulated provider takes.
const MODELS: [(&str, Provider, u64, u64); 3] = [
    ("gpt-image-1-mini", Provider::OpenAi, 6, 100),
    ("gpt-image-1", Provider::OpenAi, 10, 4),
    ("imagen-4.0-fast-generate", Provider::Gemini, 20, 100),
];

/// Image requests with fallback between image models, against a simulated
/// provider.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Requests to make, one after the other.
    #[arg(long, default_value_t = 16)]
    requests: usize,
    /// Pause between requests, in milliseconds.
    #[arg(long, default_value_t = 80)]
    spacing_ms: u64,
    /// The window every per-minute limit is applied to, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    window_ms: u64,
}

/// Per model: its quota in images per window and the (arrival, images) it
/// took.
type Ledger = BTreeMap<String, (u64, VecDeque<(Instant, u64)>)>;

/// A simulated image provider: each model takes at most so many images in
/// any window and answers the rest with 429 and `retry-after-ms`.
#[derive(Debug)]
struct FakeImages {
    window: Duration,
    models: Mutex<Ledger>,
    rejected: Mutex<u64>,
}

impl FakeImages {
    async fn generate(&self, model: &str, prompt: &str, n: u64) -> Result<Vec<String>, HttpError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = Instant::now();
        {
            let mut models = self.models.lock();
            let (quota, log) = models.get_mut(model).expect("a simulated model");
            while log
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) >= self.window)
            {
                log.pop_front();
            }
            let used: u64 = log.iter().map(|(_, k)| k).sum();
            if used + n > *quota {
                let free_in = log
                    .front()
                    .map_or(self.window, |(t, _)| self.window - now.duration_since(*t));
                *self.rejected.lock() += 1;
                return Err(HttpError {
                    status: 429,
                    headers: vec![("retry-after-ms".into(), free_in.as_millis().to_string())],
                    body: format!(
                        r#"{{"error": {{"message": "Rate limit reached for images per minute: Limit {quota}.", "type": "images", "code": "rate_limit_exceeded"}}}}"#
                    ),
                });
            }
            log.push_back((now, n));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        Ok((1..=n)
            .map(|k| format!("{model}: {prompt} #{k}.png"))
            .collect())
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn describe(r: &ModelRefusal, now: Timestamp) -> String {
    match &r.reason {
        RefusalReason::CoolingDown { until } => format!(
            "{} cooling down for another {}",
            r.model,
            secs(until.duration_since(now))
        ),
        RefusalReason::WouldWait { denied, .. } => {
            format!("{} would wait {} for its IPM", r.model, secs(denied.wait()))
        }
        RefusalReason::RateLimited { cooldown, .. } => format!(
            "{} answered 429: cooldown set for {}",
            r.model,
            secs(*cooldown)
        ),
        other => format!("{} passed over: {other}", r.model),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let window = Duration::from_millis(args.window_ms.max(1));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());

    // Table limits, with an IPM of our own on top of each.
    let mut registry = Registry::builtin();
    for (model, provider, ipm, _) in MODELS {
        let table = registry.lookup(provider, Tier::Tier1, model)?.limits;
        registry = registry.with_override(provider, Tier::Tier1, model, table.ipm(ipm))?;
    }
    let mut router = Router::builder().default_cooldown(window);
    for (model, provider, _, _) in MODELS {
        let limiter = registry.limiter(store.clone(), provider, Tier::Tier1, model)?;
        limiter.set_limits(limiter.limits().window(window))?;
        let l = limiter.limits();
        println!(
            "limiter {:<38} rpm {:>3}  ipm {:>3}  rpd {:>3}  (per-minute limits per {})",
            limiter.key(),
            l.rpm,
            l.ipm,
            l.rpd,
            secs(window)
        );
        router = router.model(model, limiter);
    }
    let router = router.build()?;
    let provider = FakeImages {
        window,
        models: Mutex::new(
            MODELS
                .iter()
                .map(|(m, _, _, quota)| (m.to_string(), (*quota, VecDeque::new())))
                .collect(),
        ),
        rejected: Mutex::new(0),
    };
    println!(
        "simulated provider: gpt-image-1 takes {} images per {}\n",
        MODELS[1].3,
        secs(window)
    );

    let start = Instant::now();
    let mut images: BTreeMap<String, u64> = BTreeMap::new();
    let mut fallbacks = 0u64;
    for i in 1..=args.requests {
        let n = [1, 2, 3, 1, 4, 2][i % 6];
        let prompt = format!("a lighthouse, take {i}");
        loop {
            let result = router
                .run(Cost::images(n), Duration::from_millis(200), |model| {
                    let (provider, prompt) = (&provider, &prompt);
                    async move { provider.generate(&model, prompt, n).await }
                })
                .await;
            let now = store.clock().now();
            let at = secs(start.elapsed());
            match result {
                Ok(routed) => {
                    let notes: Vec<String> =
                        routed.skipped.iter().map(|r| describe(r, now)).collect();
                    if routed.model != MODELS[0].0 {
                        fallbacks += 1;
                    }
                    *images.entry(routed.model.clone()).or_default() += routed.value.len() as u64;
                    let notes = if notes.is_empty() {
                        String::new()
                    } else {
                        format!("  [{}]", notes.join("; "))
                    };
                    println!(
                        "[{at:>6}] request {i:>2} ({n} images) served by {}{notes}",
                        routed.model
                    );
                    break;
                }
                Err(RouterError::AllModelsExhausted { reasons }) => {
                    let notes: Vec<String> = reasons.iter().map(|r| describe(r, now)).collect();
                    println!(
                        "[{at:>6}] request {i:>2} all models exhausted [{}]; retrying shortly",
                        notes.join("; ")
                    );
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        tokio::time::sleep(Duration::from_millis(args.spacing_ms)).await;
    }

    println!("\nsummary after {}:", secs(start.elapsed()));
    for (model, n) in &images {
        println!("  {model:<26} generated {n} images");
    }
    println!(
        "  fallbacks                  {fallbacks} (requests served by a model other than {})",
        MODELS[0].0
    );
    println!("  429s from the provider     {}", provider.rejected.lock());
    Ok(())
}
