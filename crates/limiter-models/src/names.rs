//! Providers, usage tiers and model kinds.

use std::fmt;
use std::str::FromStr;

use limiter_core::{Error, Metering};
use serde::{Deserialize, Serialize};

/// An LLM API provider whose quotas the registry knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Provider {
    /// The Gemini API (Google AI Studio keys, `generativelanguage.googleapis.com`).
    Gemini,
    /// The OpenAI API.
    #[serde(rename = "openai")]
    OpenAi,
    /// The Anthropic API (Claude).
    Anthropic,
    /// Azure OpenAI: limits per deployment.
    Azure,
    /// Amazon Bedrock: quotas per account, region and model.
    Bedrock,
}

impl Provider {
    /// Every provider, in a fixed order.
    pub const ALL: [Provider; 5] = [
        Provider::Gemini,
        Provider::OpenAi,
        Provider::Anthropic,
        Provider::Azure,
        Provider::Bedrock,
    ];

    /// How the provider counts a call's tokens ([`Metering`]): OpenAI and
    /// Azure OpenAI charge the request at arrival
    /// ([`Metering::AtArrival`]), Anthropic counts usage as it happens
    /// ([`Metering::AsUsed`]), Bedrock reserves prompt plus `max_tokens` and
    /// settles with the burndown ([`Metering::Burndown`]), and the Gemini
    /// API's tokens per minute count the prompt only
    /// ([`Metering::InputOnly`]). [`Registry::limiter`](crate::Registry::limiter)
    /// builds its limiters with it.
    ///
    /// ```
    /// use limiter_core::Metering;
    /// use limiter_models::Provider;
    ///
    /// assert_eq!(Provider::OpenAi.metering(), Metering::AtArrival);
    /// assert_eq!(Provider::Gemini.metering(), Metering::InputOnly);
    /// ```
    pub const fn metering(self) -> Metering {
        match self {
            Provider::OpenAi | Provider::Azure => Metering::AtArrival,
            Provider::Anthropic => Metering::AsUsed,
            Provider::Bedrock => Metering::Burndown,
            Provider::Gemini => Metering::InputOnly,
        }
    }

    /// The provider a model name belongs to, told by its form:
    /// `gemini-…`, `gemma-…`, `imagen-…`, `veo-…` (with or without
    /// `models/`) are Gemini's; `gpt-…`, `chatgpt-…`, `o1…`, `o3…`, `o4…`,
    /// `dall-e-…`, `tts-…`, `whisper-…`, `text-embedding-…`, `omni-…`,
    /// `codex-…`, `computer-use-…` are OpenAI's; `claude-…` Anthropic's;
    /// Bedrock's model ids (`anthropic.claude-…`, `us.anthropic.claude-…`,
    /// `amazon.…`, `meta.…`, ...) Bedrock's. `None` for any other name,
    /// Azure deployment names included (they are the user's).
    ///
    /// ```
    /// use limiter_models::Provider;
    ///
    /// assert_eq!(Provider::of_model("gemini-2.5-flash"), Some(Provider::Gemini));
    /// assert_eq!(Provider::of_model("models/gemini-2.5-pro"), Some(Provider::Gemini));
    /// assert_eq!(Provider::of_model("gpt-4o-mini-2024-07-18"), Some(Provider::OpenAi));
    /// assert_eq!(Provider::of_model("o4-mini"), Some(Provider::OpenAi));
    /// assert_eq!(Provider::of_model("claude-sonnet-4-5"), Some(Provider::Anthropic));
    /// assert_eq!(
    ///     Provider::of_model("us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ///     Some(Provider::Bedrock)
    /// );
    /// assert_eq!(Provider::of_model("my-model"), None);
    /// ```
    pub fn of_model(name: &str) -> Option<Provider> {
        let n = name.trim().to_ascii_lowercase();
        let n = n.strip_prefix("models/").unwrap_or(&n);
        // Bedrock ids: `vendor.model`, optionally behind a cross-region
        // inference profile prefix (`us.`, `eu.`, `apac.`, `global.`, ...).
        const BEDROCK: [&str; 9] = [
            "anthropic.",
            "amazon.",
            "meta.",
            "mistral.",
            "cohere.",
            "ai21.",
            "deepseek.",
            "openai.",
            "qwen.",
        ];
        let unprefixed = [
            "us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.",
        ]
        .iter()
        .find_map(|p| n.strip_prefix(p))
        .unwrap_or(n);
        if BEDROCK.iter().any(|p| unprefixed.starts_with(p)) {
            return Some(Provider::Bedrock);
        }
        if n.starts_with("claude-") {
            return Some(Provider::Anthropic);
        }
        const GEMINI: [&str; 4] = ["gemini-", "gemma-", "imagen-", "veo-"];
        const OPENAI: [&str; 12] = [
            "gpt-",
            "chatgpt-",
            "o1",
            "o3",
            "o4",
            "dall-e-",
            "tts-",
            "whisper-",
            "text-embedding-",
            "omni-",
            "codex-",
            "computer-use-",
        ];
        if GEMINI.iter().any(|p| n.starts_with(p)) {
            Some(Provider::Gemini)
        } else if OPENAI.iter().any(|p| n.starts_with(p)) {
            Some(Provider::OpenAi)
        } else {
            None
        }
    }

    /// The name used in table files and messages: `gemini`, `openai`,
    /// `anthropic`, `azure`, `bedrock`.
    pub const fn name(self) -> &'static str {
        match self {
            Provider::Gemini => "gemini",
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Azure => "azure",
            Provider::Bedrock => "bedrock",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Provider {
    type Err = Error;

    /// Parses `gemini` (or `google`), `openai` (or `open-ai`, `open_ai`),
    /// `anthropic` (or `claude`), `azure` (or `azure-openai`) and `bedrock`
    /// (or `aws-bedrock`), ignoring ASCII case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gemini" | "google" => Ok(Provider::Gemini),
            "openai" | "open-ai" | "open_ai" => Ok(Provider::OpenAi),
            "anthropic" | "claude" => Ok(Provider::Anthropic),
            "azure" | "azure-openai" | "azure_openai" => Ok(Provider::Azure),
            "bedrock" | "aws-bedrock" | "aws_bedrock" => Ok(Provider::Bedrock),
            _ => Err(Error::InvalidConfig {
                field: "provider".into(),
                reason: format!(
                    "unknown provider {s:?}; known: gemini, openai, anthropic, azure, bedrock"
                ),
            }),
        }
    }
}

/// A usage tier of a provider account. Gemini has `free` and tiers 1 to 3;
/// OpenAI has `free` and tiers 1 to 5; Anthropic tiers 1 to 4 and, under its
/// newer names, `start`, `build` and `scale`; Azure and Bedrock, whose
/// limits are set per deployment or account, `default` (the default quota).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Tier {
    /// The free tier (no billing).
    Free,
    /// Tier 1.
    Tier1,
    /// Tier 2.
    Tier2,
    /// Tier 3.
    Tier3,
    /// Tier 4 (OpenAI).
    Tier4,
    /// Tier 5 (OpenAI).
    Tier5,
    /// Anthropic's Start tier.
    Start,
    /// Anthropic's Build tier.
    Build,
    /// Anthropic's Scale tier.
    Scale,
    /// The default quota (Azure deployments, Bedrock accounts).
    Default,
}

impl Tier {
    /// Every tier: the numbered ones ascending, then the named ones.
    pub const ALL: [Tier; 10] = [
        Tier::Free,
        Tier::Tier1,
        Tier::Tier2,
        Tier::Tier3,
        Tier::Tier4,
        Tier::Tier5,
        Tier::Start,
        Tier::Build,
        Tier::Scale,
        Tier::Default,
    ];

    /// The name used in table files and messages: `free`, `tier1`, …
    pub const fn name(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Tier1 => "tier1",
            Tier::Tier2 => "tier2",
            Tier::Tier3 => "tier3",
            Tier::Tier4 => "tier4",
            Tier::Tier5 => "tier5",
            Tier::Start => "start",
            Tier::Build => "build",
            Tier::Scale => "scale",
            Tier::Default => "default",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Tier {
    type Err = Error;

    /// Parses `free`, `tier1` … `tier5` (also written `tier-1`, `tier_1`,
    /// `tier 1` or just `1`), `start`, `build`, `scale` and `default`,
    /// ignoring ASCII case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "free" => return Ok(Tier::Free),
            "start" => return Ok(Tier::Start),
            "build" => return Ok(Tier::Build),
            "scale" => return Ok(Tier::Scale),
            "default" => return Ok(Tier::Default),
            _ => {}
        }
        let number = lower
            .strip_prefix("tier")
            .map(|rest| rest.trim_start_matches(['-', '_', ' ']))
            .unwrap_or(&lower);
        match number {
            "1" => Ok(Tier::Tier1),
            "2" => Ok(Tier::Tier2),
            "3" => Ok(Tier::Tier3),
            "4" => Ok(Tier::Tier4),
            "5" => Ok(Tier::Tier5),
            _ => Err(Error::InvalidConfig {
                field: "tier".into(),
                reason: format!(
                    "unknown tier {s:?}; known: free, tier1, tier2, tier3, tier4, tier5, \
                     start, build, scale, default"
                ),
            }),
        }
    }
}

/// What a model produces, which decides the limiter that fits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ModelKind {
    /// Text generation (chat, completion).
    Text,
    /// Image generation.
    Image,
    /// Audio: text-to-speech and native audio generation.
    Audio,
    /// Live / realtime streaming sessions.
    Live,
}

impl ModelKind {
    /// The name used in table files: `text`, `image`, `audio`, `live`.
    pub const fn name(self) -> &'static str {
        match self {
            ModelKind::Text => "text",
            ModelKind::Image => "image",
            ModelKind::Audio => "audio",
            ModelKind::Live => "live",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_providers_and_tiers() {
        assert_eq!("Gemini".parse::<Provider>().unwrap(), Provider::Gemini);
        assert_eq!(" open-ai ".parse::<Provider>().unwrap(), Provider::OpenAi);
        assert_eq!(
            "Anthropic".parse::<Provider>().unwrap(),
            Provider::Anthropic
        );
        for p in Provider::ALL {
            assert_eq!(p.name().parse::<Provider>().unwrap(), p);
        }
        assert!(matches!(
            "mistral".parse::<Provider>(),
            Err(Error::InvalidConfig { field, .. }) if field == "provider"
        ));
        for t in Tier::ALL {
            assert_eq!(t.name().parse::<Tier>().unwrap(), t);
        }
        assert_eq!("Tier-2".parse::<Tier>().unwrap(), Tier::Tier2);
        assert_eq!("tier_5".parse::<Tier>().unwrap(), Tier::Tier5);
        assert_eq!("3".parse::<Tier>().unwrap(), Tier::Tier3);
        for bad in ["tier6", "tier0", "", "pro", "tier"] {
            assert!(matches!(
                bad.parse::<Tier>(),
                Err(Error::InvalidConfig { field, .. }) if field == "tier"
            ));
        }
    }
}
