//! Provider knowledge for **llm-limiter**: what the core admission engine
//! (`limiter-core`) needs to know of each LLM provider and does not.
//!
//! - Quota tables: the limits of Gemini and OpenAI text, image, audio/TTS
//!   and live models, per usage tier, so that users need not look them up
//!   (below).
//! - Pushback classification: [`Pushback`] says what a provider's error
//!   means for admission (a rate limit with its delay, an exhausted quota,
//!   an overload), read from the status and headers ([`Pushback::from_http`])
//!   or, with the `json` feature, the JSON body; [`RateLimitError`] is the
//!   extension point for the caller's own error type, [`HttpError`] a ready
//!   one. [`RetryHint`] and the [`retry_after`] parsers read the delay
//!   headers (`Retry-After`, `retry-after-ms`, `x-ratelimit-reset-*`, ...).
//! - Settling: [`OpenAiUsage`], [`GeminiUsage`] and [`AnthropicUsage`]
//!   turn a response's `usage` object into a [`Cost`](limiter_core::Cost).
//! - Model-priority fallback: [`Router`] runs a call on the first model of
//!   a priority list that is not cooling down and can admit it in time,
//!   and on a provider's pushback cools the model down in the store, for
//!   every process, for the provider's delay, then tries the next.
//!
//! The Router lives here, not in `limiter-core` nor in a crate of its own:
//! what it adds to the core's cooldowns is the reading of providers'
//! answers, which is this crate's subject.
//!
//! # Feature flags
//!
//! - `json`: classification of providers' JSON error bodies
//!   ([`Pushback::from_json_body`], [`Pushback::from_response`]), on
//!   `serde_json`. Without it, [`HttpError`] and [`Pushback::from_http`]
//!   classify by status and headers only.
//!
//! # Quota tables
//!
//! - [`Registry::builtin`] holds the built-in tables. They are data files
//!   (`data/gemini.toml`, `data/openai.toml`) embedded at build time, each
//!   with the URL of the provider's rate-limit page (`source`) and the date
//!   it was read (`retrieved`); [`Registry::tables`] lists them. A tier whose
//!   limits are not known is absent, never guessed; a limit the provider
//!   does not publish is left off (0, off).
//! - [`Registry::lookup`] finds a model's [`ModelLimits`] by [`Provider`],
//!   [`Tier`] and name, through aliases, dated snapshots
//!   (`gpt-4o-2024-08-06` finds `gpt-4o`) and Gemini resource names
//!   (`models/gemini-2.5-flash`). An unknown model is
//!   [`Error::UnknownModel`](limiter_core::Error::UnknownModel), listing the
//!   models known at that tier.
//! - Overrides always win: [`Registry::with_override`] replaces one model's
//!   limits or adds a custom model, [`Registry::with_model`] adds a whole
//!   entry, and [`Registry::load_toml`] / [`Registry::load_toml_file`] load a
//!   table of the user's in the same format. Invalid user input is an
//!   [`Error::InvalidConfig`](limiter_core::Error::InvalidConfig) naming the
//!   field and model, never a panic.
//!
//! The numbers change often and differ between accounts: the built-in ones
//! are a starting point (each file's header says which numbers were checked
//! and which come from the `llm-limiters` Python package). Check your
//! account's limits page and override what differs.
//!
//! # Example
//!
//! ```
//! use limiter_core::{DayWindow, Limits};
//! use limiter_models::{ModelKind, Provider, Registry, Tier};
//!
//! # fn main() -> limiter_core::Result<()> {
//! let registry = Registry::builtin()
//!     // Our project has a raised limit on one model...
//!     .with_override(Provider::OpenAi, Tier::Tier1, "gpt-4o-mini", Limits::new().rpm(1_000).tpm(400_000))?
//!     // ...and runs an internal model behind the same limiter.
//!     .load_toml(r#"
//!         provider = "openai"
//!         [[models]]
//!         name = "internal-summariser"
//!         kind = "text"
//!         tiers.tier1 = { rpm = 20, rpd = 100 }
//!     "#)?;
//!
//! let flash = registry.lookup(Provider::Gemini, Tier::Free, "models/gemini-2.5-flash")?;
//! assert_eq!(flash.kind, ModelKind::Text);
//! assert!(flash.limits.rpm > 0);
//! assert_eq!(flash.limits.day, DayWindow::PACIFIC_MIDNIGHT);
//!
//! let mini = registry.lookup(Provider::OpenAi, Tier::Tier1, "gpt-4o-mini-2024-07-18")?;
//! assert_eq!((mini.name.as_str(), mini.limits.rpm), ("gpt-4o-mini", 1_000));
//!
//! let tier: Tier = "tier1".parse()?;
//! assert_eq!(registry.lookup(Provider::OpenAi, tier, "internal-summariser")?.limits.rpd, 100);
//! assert!(registry.lookup(Provider::OpenAi, tier, "no-such-model").is_err());
//! # Ok(()) }
//! ```
//!
//! The [`ModelLimits::limits`] go straight to a
//! [`Limiter`](limiter_core::Limiter) of any store.
//!
//! # Table format
//!
//! ```toml
//! provider = "gemini"              # "gemini" or "openai"
//! source = "https://ai.google.dev/gemini-api/docs/rate-limits"  # optional for user tables
//! retrieved = "2026-11-23"         # YYYY-MM-DD, optional for user tables
//! notes = "free text"              # optional
//! daily_reset = "pacific_midnight" # "rolling" (default), "pacific_midnight", "utc_midnight"
//!
//! [[models]]
//! name = "gemini-2.5-flash"        # canonical name, unique in the table
//! kind = "text"                    # "text", "image", "audio", "live"
//! aliases = ["gemini-flash"]       # optional, other names of the same entry
//! [models.tiers]                   # "free", "tier1" ... "tier5"; unknown tiers left out
//! free = { rpm = 10, input_tpm = 250_000, rpd = 250 }
//! tier1 = { rpm = 1_000, input_tpm = 1_000_000, rpd = 10_000, concurrent_sessions = 5 }
//! ```
//!
//! Each tier's value is a [`Limits`](limiter_core::Limits) map (`rps`, `rpm`,
//! `rpd`, `tpm`, `tpd`, `input_tpm`, `output_tpm`, `ipm`, `burndown`,
//! `burst`, `smoothing`, `window_ms`, `window_kind`, `guard_ms`, `day`; any
//! other field is an error) plus an optional `concurrent_sessions` for live
//! models. `daily_reset` applies to every tier that does not set `day`.
//! Gemini counts TPM on input tokens, so its tables use `input_tpm`; OpenAI
//! counts input plus output, so its tables use `tpm`.
//!
//! # Minimum supported Rust version
//!
//! The `rust-version` in `Cargo.toml`; raising it is a minor-version change.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod names;
mod pushback;
mod registry;
pub mod retry_after;
mod router;
mod table;
mod usage;

pub use names::{ModelKind, Provider, Tier};
pub use pushback::{
    until_next_month_utc, until_pacific_midnight, HttpError, Pushback, RateLimitError,
};
pub use registry::{Registry, Tiers};
pub use retry_after::RetryHint;
pub use router::{ModelRefusal, RefusalReason, Routed, Router, RouterBuilder, RouterError};
pub use table::{ModelLimits, Origin, TableInfo};
pub use usage::{AnthropicUsage, GeminiUsage, OpenAiUsage};
