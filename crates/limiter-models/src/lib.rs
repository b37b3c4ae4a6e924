//! Provider quota tables for **llm-limiter**: the limits of Gemini and
//! OpenAI text, image, audio/TTS and live models, per usage tier, so that
//! users need not look them up.
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
mod registry;
mod table;

pub use names::{ModelKind, Provider, Tier};
pub use registry::Registry;
pub use table::{ModelLimits, Origin, TableInfo};
