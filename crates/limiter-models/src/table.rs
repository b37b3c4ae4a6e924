//! The table file format and its parser.

use std::collections::{BTreeMap, HashSet};

use limiter_core::{DayWindow, Error, Limits, Result};
use serde::Deserialize;

use crate::names::{ModelKind, Provider, Tier};

/// Where a table or a model entry comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// A table shipped with this crate.
    Builtin,
    /// The user's own table or override; always wins over built-in entries.
    User,
}

/// When a table's daily limits (`rpd`, `tpd`) reset, for entries whose
/// limits do not set `day` themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DailyReset {
    Rolling,
    PacificMidnight,
    UtcMidnight,
}

impl DailyReset {
    const fn day(self) -> DayWindow {
        match self {
            DailyReset::Rolling => DayWindow::Rolling,
            DailyReset::PacificMidnight => DayWindow::PACIFIC_MIDNIGHT,
            DailyReset::UtcMidnight => DayWindow::UTC_MIDNIGHT,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    provider: Provider,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    retrieved: Option<String>,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    daily_reset: Option<DailyReset>,
    #[serde(default)]
    models: Vec<RawModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: String,
    kind: ModelKind,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    pool: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    retrieved: Option<String>,
    #[serde(default)]
    third_party: bool,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    shutdown: Option<String>,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    rpm_per_1000_tpm: Option<f64>,
    #[serde(default)]
    cache_reads_count: bool,
    #[serde(default)]
    tiers: BTreeMap<String, toml::Table>,
}

/// Where a table came from and when its numbers were read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableInfo {
    /// The provider the table is for.
    pub provider: Provider,
    /// The URL of the provider's page the numbers come from (`source`).
    pub source: Option<String>,
    /// The date the numbers were read, `YYYY-MM-DD` (`retrieved`).
    pub retrieved: Option<String>,
    /// Free-form notes on the table's provenance (`notes`).
    pub notes: Option<String>,
    /// Built in or loaded by the user.
    pub origin: Origin,
}

/// The limits of one model of one provider at one tier: what
/// [`Registry::lookup`](crate::Registry::lookup) returns.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ModelLimits {
    /// The model's canonical name (`gpt-4o` for a lookup of
    /// `gpt-4o-2024-08-06`).
    pub name: String,
    /// What the model produces.
    pub kind: ModelKind,
    /// Other names that find this entry.
    pub aliases: Vec<String>,
    /// The limits to give a [`Limiter`](limiter_core::Limiter) for this model.
    pub limits: Limits,
    /// The most live sessions that may be open at once, where known.
    pub concurrent_sessions: Option<u32>,
    /// Whether the entry is built in or the user's.
    pub origin: Origin,
    /// The quota pool this model shares with others (Anthropic: every Opus
    /// 4.x model draws on one limit): models of one pool share one limiter
    /// key ([`Registry::limiter_key`](crate::Registry::limiter_key)).
    pub pool: Option<String>,
    /// The page the numbers come from.
    pub source: Option<String>,
    /// The date the page was read, `YYYY-MM-DD`.
    pub retrieved: Option<String>,
    /// The numbers are not published by the provider (see `note`).
    pub third_party: bool,
    /// A note on the entry (where third-party numbers come from, what a
    /// limit means).
    pub note: Option<String>,
    /// The model's shutdown date, `YYYY-MM-DD` (past or scheduled).
    pub shutdown: Option<String>,
    /// The model the provider names as its replacement.
    pub replacement: Option<String>,
    /// Set by [`Registry::lookup`](crate::Registry::lookup) for a model shut
    /// down or scheduled to be: what to know before relying on it.
    pub warning: Option<String>,
    /// Azure: requests per minute a deployment gets per 1,000 TPM assigned
    /// ([`Registry::azure_deployment`](crate::Registry::azure_deployment)).
    pub rpm_per_1000_tpm: Option<f64>,
    /// Anthropic: cache reads count towards the input limit on this model
    /// ([`AnthropicUsage::cost_for`](crate::AnthropicUsage::cost_for)).
    pub cache_reads_count: bool,
}

impl ModelLimits {
    /// A user entry with no aliases and no session cap.
    pub fn new(name: impl Into<String>, kind: ModelKind, limits: Limits) -> Self {
        ModelLimits {
            name: name.into(),
            kind,
            aliases: Vec::new(),
            limits,
            concurrent_sessions: None,
            origin: Origin::User,
            pool: None,
            source: None,
            retrieved: None,
            third_party: false,
            note: None,
            shutdown: None,
            replacement: None,
            warning: None,
            rpm_per_1000_tpm: None,
            cache_reads_count: false,
        }
    }

    /// The same entry with these aliases.
    #[must_use]
    pub fn with_aliases<I, S>(mut self, aliases: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.aliases = aliases.into_iter().map(Into::into).collect();
        self
    }

    /// The same entry with a cap on concurrent live sessions.
    #[must_use]
    pub fn with_concurrent_sessions(mut self, sessions: u32) -> Self {
        self.concurrent_sessions = Some(sessions);
        self
    }

    /// Whether `name` is this entry's name or one of its aliases (ASCII case
    /// ignored).
    pub fn answers_to(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }

    /// The same entry in quota pool `pool` (shared with other models).
    #[must_use]
    pub fn with_pool(mut self, pool: impl Into<String>) -> Self {
        self.pool = Some(pool.into());
        self
    }

    /// The name the entry's quota is counted under: its pool, or its name.
    pub fn quota_name(&self) -> &str {
        self.pool.as_deref().unwrap_or(&self.name)
    }

    /// Checks names and limits; `context` names the entry in errors.
    pub(crate) fn check(&self, context: &str) -> Result<()> {
        check_name(context, "name", &self.name)?;
        for alias in &self.aliases {
            check_name(context, "aliases", alias)?;
        }
        if let Some(pool) = &self.pool {
            check_name(context, "pool", pool)?;
        }
        for (field, date) in [("retrieved", &self.retrieved), ("shutdown", &self.shutdown)] {
            if let Some(d) = date {
                if !is_date(d) {
                    return Err(config(
                        format!("{context}.{field}"),
                        format!("{d:?} is not a date written YYYY-MM-DD"),
                    ));
                }
            }
        }
        if let Some(r) = self.rpm_per_1000_tpm {
            if !(r.is_finite() && r > 0.0 && r <= 1000.0) {
                return Err(config(
                    format!("{context}.rpm_per_1000_tpm"),
                    format!("{r} is not a number of requests per 1,000 TPM in (0, 1000]"),
                ));
            }
        }
        if self.concurrent_sessions == Some(0) {
            return Err(config(
                format!("{context}.concurrent_sessions"),
                "0 sessions would admit nothing; leave the field off for no cap",
            ));
        }
        self.limits
            .validate()
            .map_err(|e| config(format!("{context}.limits"), e.to_string()))
    }
}

fn check_name(context: &str, field: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() || name.trim() != name {
        return Err(config(
            format!("{context}.{field}"),
            format!("{name:?} is empty or has surrounding spaces"),
        ));
    }
    Ok(())
}

pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A parsed table: its provenance and its entries by tier.
#[derive(Debug)]
pub(crate) struct ParsedTable {
    pub(crate) info: TableInfo,
    pub(crate) entries: Vec<(Tier, ModelLimits)>,
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// Parses and checks one table in the TOML format.
pub(crate) fn parse(text: &str, origin: Origin) -> Result<ParsedTable> {
    let raw: RawFile = toml::from_str(text).map_err(|e| config("table", e.to_string()))?;
    if let Some(date) = &raw.retrieved {
        if !is_date(date) {
            return Err(config(
                "retrieved",
                format!("{date:?} is not a date written YYYY-MM-DD"),
            ));
        }
    }
    let default_day = raw.daily_reset.map(DailyReset::day);
    let mut seen = HashSet::new();
    let mut entries = Vec::new();
    for model in raw.models {
        let context = format!("models[{:?}]", model.name);
        for name in std::iter::once(&model.name).chain(&model.aliases) {
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(config(
                    context.clone(),
                    format!("the name {name:?} is used twice in the table"),
                ));
            }
        }
        if model.tiers.is_empty() {
            return Err(config(
                format!("{context}.tiers"),
                "the model lists no tier; leave unknown models out",
            ));
        }
        for (tier_name, mut table) in model.tiers {
            let tier: Tier = tier_name.parse().map_err(|e: Error| {
                config(format!("{context}.tiers.{tier_name}"), e.to_string())
            })?;
            let at = format!("{context}.tiers.{tier}");
            let sessions = match table.remove("concurrent_sessions") {
                None => None,
                Some(toml::Value::Integer(n)) => Some(u32::try_from(n).map_err(|_| {
                    config(
                        format!("{at}.concurrent_sessions"),
                        format!("{n} is not a session count"),
                    )
                })?),
                Some(other) => {
                    return Err(config(
                        format!("{at}.concurrent_sessions"),
                        format!("expected an integer, found {}", other.type_str()),
                    ))
                }
            };
            let has_day = table.contains_key("day");
            let mut limits: Limits = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| config(at.clone(), e.message().to_string()))?;
            if let (false, Some(day)) = (has_day, default_day) {
                limits = limits.day(day);
            }
            let entry = ModelLimits {
                name: model.name.clone(),
                kind: model.kind,
                aliases: model.aliases.clone(),
                limits,
                concurrent_sessions: sessions,
                origin,
                pool: model.pool.clone(),
                source: model.source.clone().or_else(|| raw.source.clone()),
                retrieved: model.retrieved.clone().or_else(|| raw.retrieved.clone()),
                third_party: model.third_party,
                note: model.note.clone(),
                shutdown: model.shutdown.clone(),
                replacement: model.replacement.clone(),
                warning: None,
                rpm_per_1000_tpm: model.rpm_per_1000_tpm,
                cache_reads_count: model.cache_reads_count,
            };
            entry.check(&at)?;
            entries.push((tier, entry));
        }
    }
    Ok(ParsedTable {
        info: TableInfo {
            provider: raw.provider,
            source: raw.source,
            retrieved: raw.retrieved,
            notes: raw.notes,
            origin,
        },
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert!(is_date("2026-11-23"));
        for bad in ["2026-1-23", "20261123", "2026/11/23", "2026-11-2x", ""] {
            assert!(!is_date(bad), "{bad}");
        }
    }

    #[test]
    fn concurrent_sessions_and_default_day() {
        let t = parse(
            r#"
            provider = "gemini"
            daily_reset = "utc_midnight"
            [[models]]
            name = "live-x"
            kind = "live"
            tiers.free = { rpm = 3, rpd = 10, concurrent_sessions = 3 }
            tiers.tier1 = { rpm = 3, rpd = 10, day = { kind = "rolling" } }
            "#,
            Origin::User,
        )
        .unwrap();
        assert_eq!(t.entries.len(), 2);
        let (tier, e) = &t.entries[0];
        assert_eq!(*tier, Tier::Free);
        assert_eq!(e.concurrent_sessions, Some(3));
        assert_eq!(e.limits.day, DayWindow::UTC_MIDNIGHT);
        assert_eq!(t.entries[1].1.limits.day, DayWindow::Rolling);
    }
}
