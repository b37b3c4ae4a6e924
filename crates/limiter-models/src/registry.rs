//! The registry: built-in tables, user tables and overrides, and lookup.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use limiter_core::{Error, Limiter, Limits, Result, Store};

use crate::names::{ModelKind, Provider, Tier};
use crate::router::Router;
use crate::table::{config, parse, ModelLimits, Origin, TableInfo};

/// The tables shipped with the crate: file name and TOML text.
const BUILTIN: &[(&str, &str)] = &[
    ("anthropic.toml", include_str!("../data/anthropic.toml")),
    ("azure.toml", include_str!("../data/azure.toml")),
    ("bedrock.toml", include_str!("../data/bedrock.toml")),
    ("gemini.toml", include_str!("../data/gemini.toml")),
    ("openai.toml", include_str!("../data/openai.toml")),
];

type Entries = BTreeMap<(Provider, Tier), Vec<ModelLimits>>;

/// Model limits by provider, tier and model name: the built-in tables, plus
/// the user's own tables and overrides, which always win.
///
/// Lookup of a name tries, in order, the name itself (after dropping a
/// Gemini resource prefix `models/`), then the name without a trailing
/// snapshot date `-YYYY-MM-DD` / `-YYYYMMDD` or version `-NNN` / `-NNNN`; each form is
/// looked up among the user's entries first, then the built-in ones, by
/// canonical name or alias, ignoring ASCII case.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    builtin: Entries,
    user: Entries,
    tables: Vec<TableInfo>,
}

impl Registry {
    /// A registry with no entries at all, for users who bring every table.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A registry holding every built-in table (Gemini and OpenAI).
    ///
    /// # Panics
    /// Never in practice: the embedded tables are fixed at build time and
    /// the crate's tests parse every one of them.
    pub fn builtin() -> Self {
        static BUILTIN_REGISTRY: OnceLock<Registry> = OnceLock::new();
        BUILTIN_REGISTRY
            .get_or_init(|| {
                let mut registry = Registry::empty();
                for (file, text) in BUILTIN {
                    let table = parse(text, Origin::Builtin)
                        .unwrap_or_else(|e| panic!("built-in table {file} is invalid: {e}"));
                    for (tier, entry) in table.entries {
                        registry
                            .builtin
                            .entry((table.info.provider, tier))
                            .or_default()
                            .push(entry);
                    }
                    registry.tables.push(table.info);
                }
                registry
            })
            .clone()
    }

    /// The built-in tables' file names and TOML texts, e.g. to start a
    /// table of one's own from.
    pub fn builtin_sources() -> &'static [(&'static str, &'static str)] {
        BUILTIN
    }

    /// A registry holding the built-in tables and the user's table in the
    /// file at `path` (see [`Registry::load_toml_file`]).
    ///
    /// # Errors
    /// As [`Registry::load_toml_file`].
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::builtin().load_toml_file(path)
    }

    /// Adds a table of the user's, in the same TOML format as the built-in
    /// ones. Its entries win over built-in ones and over earlier user
    /// entries of the same name. `source` and `retrieved` are optional here.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field (and model) at fault when
    /// the text is not valid TOML, has unknown fields, a bad tier or kind,
    /// a name used twice, or limits that do not validate. Nothing is added
    /// then.
    pub fn load_toml(mut self, text: &str) -> Result<Self> {
        let table = parse(text, Origin::User)?;
        for (tier, entry) in table.entries {
            insert_user(&mut self.user, table.info.provider, tier, entry);
        }
        self.tables.push(table.info);
        Ok(self)
    }

    /// Reads the file at `path` and adds it as [`Registry::load_toml`] does.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the path when the file cannot be read,
    /// otherwise as [`Registry::load_toml`].
    pub fn load_toml_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| config(path.display().to_string(), e.to_string()))?;
        self.load_toml(&text).map_err(|e| match e {
            Error::InvalidConfig { field, reason } => {
                config(format!("{}: {field}", path.display()), reason)
            }
            other => other,
        })
    }

    /// Replaces the limits of one model at one tier, or adds a custom model
    /// (of kind [`ModelKind::Text`], or the kind of the model it is a
    /// snapshot of) when the name is not known. The override wins over
    /// every built-in entry and earlier user entry of that name; a known
    /// model keeps its canonical name, kind, aliases and session cap.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the model when the name is empty or
    /// the limits do not validate.
    pub fn with_override(
        mut self,
        provider: Provider,
        tier: Tier,
        model: &str,
        limits: Limits,
    ) -> Result<Self> {
        let name = strip_resource_prefix(model.trim());
        let context = format!("{provider}.{tier}.{model:?}");
        let mut entry = if let Some(found) = self.find_exact(provider, tier, name) {
            let mut e = found.clone();
            e.limits = limits;
            e
        } else {
            let base = snapshot_base(name).and_then(|b| self.find_exact(provider, tier, &b));
            let mut e = ModelLimits::new(name, base.map_or(ModelKind::Text, |b| b.kind), limits);
            e.concurrent_sessions = base.and_then(|b| b.concurrent_sessions);
            e
        };
        entry.origin = Origin::User;
        entry.check(&context)?;
        insert_user(&mut self.user, provider, tier, entry);
        Ok(self)
    }

    /// Adds a whole user entry (name, kind, aliases, limits, session cap)
    /// at one tier; it wins over every entry answering to the same name.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the model when a name is empty or the
    /// limits do not validate.
    pub fn with_model(
        mut self,
        provider: Provider,
        tier: Tier,
        model: ModelLimits,
    ) -> Result<Self> {
        let mut entry = model;
        entry.origin = Origin::User;
        entry.check(&format!("{provider}.{tier}.{:?}", entry.name))?;
        insert_user(&mut self.user, provider, tier, entry);
        Ok(self)
    }

    /// The limits of `model` at `tier` of `provider`.
    ///
    /// `gpt-4o-2024-08-06` finds `gpt-4o`, `models/gemini-2.5-flash` finds
    /// `gemini-2.5-flash`, and aliases find their entry (see [`Registry`]).
    ///
    /// # Errors
    /// [`Error::UnknownModel`] when nothing answers to the name, listing the
    /// canonical names known for that provider and tier (empty when the
    /// tier has no known limits at all).
    pub fn lookup(&self, provider: Provider, tier: Tier, model: &str) -> Result<ModelLimits> {
        let name = strip_resource_prefix(model.trim());
        let mut forms = vec![name.to_string()];
        forms.extend(snapshot_base(name));
        if provider == Provider::Bedrock {
            // A cross-region inference profile (`us.anthropic.…`) is the
            // model's own id behind a region prefix.
            if let Some((_, id)) = name
                .split_once('.')
                .filter(|(p, _)| INFERENCE_PROFILES.contains(p))
            {
                forms.push(id.to_string());
            }
        }
        let mut found = forms
            .iter()
            .find_map(|form| self.find_exact(provider, tier, form))
            .cloned()
            .ok_or_else(|| Error::UnknownModel {
                name: model.to_string(),
                known: self.known_models(provider, tier),
            })?;
        if let Some(date) = &found.shutdown {
            let when = if date.as_str() <= today().as_str() {
                "was shut down on"
            } else {
                "is scheduled to shut down on"
            };
            let mut warning = format!("{provider} model {} {when} {date}", found.name);
            if let Some(r) = &found.replacement {
                warning.push_str(&format!("; its replacement is {r}"));
            }
            tracing::warn!(%provider, model = %found.name, "{warning}");
            found.warning = Some(warning);
        }
        Ok(found)
    }

    /// The limits of an Azure OpenAI deployment of `model` that was assigned
    /// `tpm` tokens per minute: Azure derives the deployment's requests per
    /// minute from its TPM at a ratio that depends on the model (the
    /// table's `rpm_per_1000_tpm`: 6 RPM per 1,000 TPM for older chat
    /// models, 1 for gpt-4.1), and evaluates them over one-second intervals,
    /// so the limits space requests evenly (`smoothing`) and cap each
    /// second at a sixtieth of the RPM (`rps`).
    ///
    /// ```
    /// use limiter_models::Registry;
    ///
    /// let d = Registry::builtin().azure_deployment("gpt-4o", 30_000)?;
    /// assert_eq!((d.limits.tpm, d.limits.rpm, d.limits.rps), (30_000, 180, 3));
    /// assert!(d.limits.smoothing);
    /// # Ok::<(), limiter_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownModel`] when the Azure table has no ratio for the
    /// model; [`Error::InvalidConfig`] for a TPM of 0 or one that gives
    /// invalid limits.
    pub fn azure_deployment(&self, model: &str, tpm: u64) -> Result<ModelLimits> {
        let mut entry = self.lookup(Provider::Azure, Tier::Default, model)?;
        let ratio = entry.rpm_per_1000_tpm.ok_or_else(|| Error::UnknownModel {
            name: model.to_string(),
            known: self
                .models(Provider::Azure, Tier::Default)
                .into_iter()
                .filter(|m| m.rpm_per_1000_tpm.is_some())
                .map(|m| m.name)
                .collect(),
        })?;
        if tpm == 0 {
            return Err(config(
                format!("azure.{model}.tpm"),
                "a deployment of 0 TPM admits nothing",
            ));
        }
        let rpm = ((tpm as f64) * ratio / 1000.0).floor().max(1.0);
        let rpm = if rpm >= limiter_core::MAX_AMOUNT as f64 {
            limiter_core::MAX_AMOUNT
        } else {
            rpm as u64
        };
        entry.limits = entry
            .limits
            .tpm(tpm)
            .rpm(rpm)
            .rps((rpm / 60).max(1))
            .smoothing(true);
        entry.check(&format!("azure.{model}"))?;
        Ok(entry)
    }

    /// The limits of a Bedrock model under this account's quotas, which
    /// AWS sets per account, region and model (Service Quotas): requests
    /// and tokens per minute as given, tokens per day at AWS's default of
    /// TPM x 1,440, and the model's output burndown from the table (5x for
    /// most Claude models: output tokens count five times in TPM and TPD).
    ///
    /// ```
    /// use limiter_models::Registry;
    ///
    /// let m = Registry::builtin().bedrock("us.anthropic.claude-sonnet-4-20250514-v1:0", 200, 200_000)?;
    /// assert_eq!(m.limits.burndown, 5.0);
    /// assert_eq!(m.limits.tpd, 200_000 * 1440);
    /// # Ok::<(), limiter_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownModel`] for a model the Bedrock table does not have
    /// (see [`Registry::with_override`] to add one); [`Error::InvalidConfig`]
    /// for quotas that give invalid limits.
    pub fn bedrock(&self, model: &str, rpm: u64, tpm: u64) -> Result<ModelLimits> {
        let mut entry = self.lookup(Provider::Bedrock, Tier::Default, model)?;
        entry.limits = entry
            .limits
            .rpm(rpm)
            .tpm(tpm)
            .tpd(tpm.saturating_mul(1440).min(limiter_core::MAX_AMOUNT));
        entry.check(&format!("bedrock.{model}"))?;
        Ok(entry)
    }

    /// A [`Limiter`] over `store` with the limits of `model` at `tier` of
    /// `provider` (as [`Registry::lookup`] finds them), metering as the
    /// provider does ([`Provider::metering`]).
    ///
    /// The limiter's key is `"{provider}:{canonical model name}"`, e.g.
    /// `"gemini:gemini-2.5-flash"` or `"openai:gpt-4o-mini"`, or, for a model
    /// in a quota pool, `"{provider}:{pool}"` (`"anthropic:claude-opus-4"`
    /// for every Opus 4.x): a snapshot or
    /// alias (`gpt-4o-mini-2024-07-18`, `models/gemini-2.5-flash`) counts
    /// under its canonical model's key, as the provider counts it, and every
    /// process that builds its limiter this way on one store shares the
    /// quota and the model's cooldowns. The tier is not part of the key: an
    /// account has one tier per provider. Use
    /// [`Limiter::builder_shared`] with a key of your own for another scheme
    /// (one key per project or API key, say).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use limiter_core::{Limiter, Store};
    /// use limiter_models::{Provider, Registry, Tier};
    ///
    /// # fn demo(store: Arc<dyn Store>) -> limiter_core::Result<()> {
    /// let registry = Registry::builtin();
    /// let mini = registry.limiter(store, Provider::OpenAi, Tier::Tier1, "gpt-4o-mini-2024-07-18")?;
    /// assert_eq!(mini.key(), "openai:gpt-4o-mini");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownModel`] as [`Registry::lookup`]; the limiter
    /// builder's errors (invalid limits) otherwise.
    pub fn limiter(
        &self,
        store: Arc<dyn Store>,
        provider: Provider,
        tier: Tier,
        model: &str,
    ) -> Result<Limiter> {
        let entry = self.lookup(provider, tier, model)?;
        Limiter::builder_shared(store, Self::limiter_key(provider, entry.quota_name()))
            .limits(entry.limits)
            .metering(provider.metering())
            .build()
    }

    /// A [`Router`] over `models`, in priority order, each limited by its
    /// built-in (or overridden) limits: the provider of each model told by
    /// its name ([`Provider::of_model`]), at that provider's tier in
    /// `tiers` (one [`Tier`] for every provider, or a tier per provider),
    /// keyed as [`Registry::limiter`] keys, on one shared `store`. The
    /// router calls its closure with the model's name as given here.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use limiter_core::Store;
    /// use limiter_models::{Provider, Registry, Tier, Tiers};
    ///
    /// # fn demo(store: Arc<dyn Store>) -> limiter_core::Result<()> {
    /// // Every provider on its free tier:
    /// let router = Registry::builtin().router(store.clone(), Tier::Free, ["gemini-2.5-flash", "gemini-2.5-flash-lite"])?;
    /// assert_eq!(router.models().collect::<Vec<_>>(), ["gemini-2.5-flash", "gemini-2.5-flash-lite"]);
    /// // A tier per provider:
    /// let tiers = Tiers::from([(Provider::Gemini, Tier::Free), (Provider::OpenAi, Tier::Tier1)]);
    /// let router = Registry::builtin().router(store, tiers, ["gemini-2.5-flash", "gpt-4o-mini"])?;
    /// assert_eq!(router.limiter("gpt-4o-mini").unwrap().key(), "openai:gpt-4o-mini");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a name whose provider cannot be told, a
    /// provider with no tier in `tiers`, or an empty or repeated list;
    /// [`Error::UnknownModel`] for a model the tables do not have at its
    /// tier.
    pub fn router<I, S>(
        &self,
        store: Arc<dyn Store>,
        tiers: impl Into<Tiers>,
        models: I,
    ) -> Result<Router>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let tiers = tiers.into();
        let mut builder = Router::builder();
        for model in models {
            let model = model.as_ref();
            let provider = Provider::of_model(model).ok_or_else(|| Error::InvalidConfig {
                field: "models".into(),
                reason: format!(
                    "cannot tell the provider of {model:?} by its name; build its limiter with \
                     Registry::limiter and add it with RouterBuilder::model"
                ),
            })?;
            let tier = tiers.get(provider).ok_or_else(|| Error::InvalidConfig {
                field: "tiers".into(),
                reason: format!("no tier given for {provider} (model {model:?})"),
            })?;
            builder = builder.model(model, self.limiter(store.clone(), provider, tier, model)?);
        }
        builder.build()
    }

    /// The key [`Registry::limiter`] gives the limiter of a model whose
    /// canonical name (or quota pool, [`ModelLimits::quota_name`]) is
    /// `canonical`: `"{provider}:{canonical}"`.
    pub fn limiter_key(provider: Provider, canonical: &str) -> String {
        format!("{provider}:{canonical}")
    }

    /// The canonical names of the models known at `tier` of `provider`,
    /// sorted, each once.
    pub fn known_models(&self, provider: Provider, tier: Tier) -> Vec<String> {
        let mut names: Vec<String> = self
            .models(provider, tier)
            .into_iter()
            .map(|m| m.name)
            .collect();
        names.sort();
        names
    }

    /// The entries in force at `tier` of `provider`: user entries, then
    /// built-in entries that no user entry replaces, sorted by name.
    pub fn models(&self, provider: Provider, tier: Tier) -> Vec<ModelLimits> {
        let key = (provider, tier);
        let mut out: Vec<ModelLimits> = Vec::new();
        let user = self.user.get(&key).into_iter().flatten().rev();
        let builtin = self.builtin.get(&key).into_iter().flatten();
        for entry in user.chain(builtin) {
            if !out.iter().any(|e| e.name.eq_ignore_ascii_case(&entry.name)) {
                out.push(entry.clone());
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The tiers of `provider` that have at least one entry, ascending.
    pub fn tiers(&self, provider: Provider) -> Vec<Tier> {
        Tier::ALL
            .into_iter()
            .filter(|t| {
                let key = (provider, *t);
                self.user.get(&key).is_some_and(|v| !v.is_empty())
                    || self.builtin.get(&key).is_some_and(|v| !v.is_empty())
            })
            .collect()
    }

    /// Every table loaded, built-in ones first, with source and date.
    pub fn tables(&self) -> &[TableInfo] {
        &self.tables
    }

    /// The entry answering to exactly `name` (user entries first, latest
    /// first), without snapshot stripping.
    fn find_exact(&self, provider: Provider, tier: Tier, name: &str) -> Option<&ModelLimits> {
        let key = (provider, tier);
        let user = self.user.get(&key).into_iter().flatten().rev();
        let builtin = self.builtin.get(&key).into_iter().flatten();
        user.chain(builtin).find(|e| e.answers_to(name))
    }
}

/// The region prefixes of Bedrock's cross-region inference profiles.
const INFERENCE_PROFILES: [&str; 8] = ["us", "eu", "apac", "us-gov", "global", "jp", "au", "ca"];

/// Today's date in UTC, `YYYY-MM-DD`.
fn today() -> String {
    let days = (limiter_core::Timestamp::now_system().as_micros() / 86_400_000_000) as i64;
    let (y, m, d) = limiter_core::calendar::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Adds a user entry, dropping earlier user entries of the same name.
fn insert_user(user: &mut Entries, provider: Provider, tier: Tier, entry: ModelLimits) {
    let list = user.entry((provider, tier)).or_default();
    list.retain(|e| !e.name.eq_ignore_ascii_case(&entry.name));
    list.push(entry);
}

/// `models/gemini-2.5-flash` (a Gemini API resource name) is
/// `gemini-2.5-flash`.
fn strip_resource_prefix(name: &str) -> &str {
    name.strip_prefix("models/").unwrap_or(name)
}

/// The name without a trailing snapshot date (`-2024-08-06`,
/// `-20250929`) or version (`-001`, `-0613`), if it has one.
fn snapshot_base(name: &str) -> Option<String> {
    let b = name.as_bytes();
    if b.len() > 11 {
        let tail = &b[b.len() - 11..];
        let dated = tail.iter().enumerate().all(|(i, c)| match i {
            0 | 5 | 8 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
        if dated {
            return Some(name[..name.len() - 11].to_string());
        }
    }
    let (base, version) = name.rsplit_once('-')?;
    // `-001`, `-0613`, or Anthropic's `-20250929`.
    let is_version =
        matches!(version.len(), 3 | 4 | 8) && version.bytes().all(|c| c.is_ascii_digit());
    (is_version && !base.is_empty()).then(|| base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_suffixes() {
        assert_eq!(
            snapshot_base("gpt-4o-2024-08-06").as_deref(),
            Some("gpt-4o")
        );
        assert_eq!(
            snapshot_base("imagen-4.0-generate-002").as_deref(),
            Some("imagen-4.0-generate")
        );
        assert_eq!(snapshot_base("gpt-4-0613").as_deref(), Some("gpt-4"));
        assert_eq!(
            snapshot_base("claude-sonnet-4-5-20250929").as_deref(),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(snapshot_base("model-12345"), None);
        assert_eq!(snapshot_base("gpt-4o"), None);
        assert_eq!(snapshot_base("gemini-2.5-flash"), None);
        assert_eq!(snapshot_base("model-12"), None);
        assert_eq!(snapshot_base("-001"), None);
        assert_eq!(snapshot_base("x-2024-08-0a"), None);
        assert_eq!(snapshot_base("é-2024-08-06").as_deref(), Some("é"));
    }
}

/// The usage tier of each provider account, for [`Registry::router`]: one
/// tier for every provider (`Tiers::from(Tier::Free)`, or a [`Tier`]
/// where `impl Into<Tiers>` is taken), or a tier per provider.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tiers {
    all: Option<Tier>,
    each: Vec<(Provider, Tier)>,
}

impl Tiers {
    /// The same tier for every provider.
    pub fn all(tier: Tier) -> Self {
        Tiers {
            all: Some(tier),
            each: Vec::new(),
        }
    }

    /// `provider` at `tier` (over a tier for all).
    #[must_use]
    pub fn with(mut self, provider: Provider, tier: Tier) -> Self {
        self.each.retain(|(p, _)| *p != provider);
        self.each.push((provider, tier));
        self
    }

    /// The tier of `provider`, if given.
    pub fn get(&self, provider: Provider) -> Option<Tier> {
        self.each
            .iter()
            .find(|(p, _)| *p == provider)
            .map(|&(_, t)| t)
            .or(self.all)
    }
}

impl From<Tier> for Tiers {
    fn from(tier: Tier) -> Self {
        Tiers::all(tier)
    }
}

impl<const N: usize> From<[(Provider, Tier); N]> for Tiers {
    fn from(each: [(Provider, Tier); N]) -> Self {
        each.into_iter()
            .fold(Tiers::default(), |t, (p, tier)| t.with(p, tier))
    }
}
