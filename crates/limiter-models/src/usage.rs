//! Provider usage objects that settle permits.

use limiter_core::Cost;
use serde::Deserialize;

/// OpenAI's `usage` object, of the Chat Completions API (`prompt_tokens`,
/// `completion_tokens`) or the Responses API (`input_tokens`,
/// `output_tokens`). Cached prompt tokens are part of the input and stay
/// counted: OpenAI counts them towards the limits.
///
/// ```
/// use limiter_core::Cost;
/// use limiter_models::OpenAiUsage;
///
/// let usage: OpenAiUsage = serde_json::from_str(
///     r#"{"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}"#,
/// ).unwrap();
/// assert_eq!(Cost::from(usage), Cost::split(19, 10));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OpenAiUsage {
    /// Chat Completions: input tokens.
    pub prompt_tokens: Option<u64>,
    /// Chat Completions: output tokens (reasoning tokens included).
    pub completion_tokens: Option<u64>,
    /// Responses API: input tokens.
    pub input_tokens: Option<u64>,
    /// Responses API: output tokens (reasoning tokens included).
    pub output_tokens: Option<u64>,
    /// Input plus output, as reported (not used for the cost).
    pub total_tokens: Option<u64>,
}

impl From<OpenAiUsage> for Cost {
    fn from(u: OpenAiUsage) -> Cost {
        Cost::split(
            u.prompt_tokens.or(u.input_tokens).unwrap_or(0),
            u.completion_tokens.or(u.output_tokens).unwrap_or(0),
        )
    }
}

/// Gemini's `usageMetadata`. Input is `promptTokenCount` plus
/// `toolUsePromptTokenCount`; output is `candidatesTokenCount` plus
/// `thoughtsTokenCount` (thinking is billed and metered as output).
/// `cachedContentTokenCount` is already part of `promptTokenCount` and is
/// not subtracted.
///
/// ```
/// use limiter_core::Cost;
/// use limiter_models::GeminiUsage;
///
/// let usage: GeminiUsage = serde_json::from_str(
///     r#"{"promptTokenCount": 12, "candidatesTokenCount": 30, "thoughtsTokenCount": 100, "totalTokenCount": 142}"#,
/// ).unwrap();
/// assert_eq!(Cost::from(usage), Cost::split(12, 130));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GeminiUsage {
    /// Input tokens (cached ones included).
    pub prompt_token_count: u64,
    /// Output tokens of the candidates.
    pub candidates_token_count: u64,
    /// Thinking tokens, counted as output.
    pub thoughts_token_count: u64,
    /// Tokens of tool-use prompts, counted as input.
    pub tool_use_prompt_token_count: u64,
    /// Input tokens read from a cache (a part of `prompt_token_count`).
    pub cached_content_token_count: u64,
    /// The total, as reported (not used for the cost).
    pub total_token_count: u64,
}

impl From<GeminiUsage> for Cost {
    fn from(u: GeminiUsage) -> Cost {
        Cost::split(
            u.prompt_token_count
                .saturating_add(u.tool_use_prompt_token_count),
            u.candidates_token_count
                .saturating_add(u.thoughts_token_count),
        )
    }
}

/// Anthropic's `usage`. Input is `input_tokens` plus
/// `cache_creation_input_tokens`; `cache_read_input_tokens` are left out,
/// as Anthropic does not count them towards ITPM on current models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AnthropicUsage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Input tokens written to the cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the cache (not counted).
    pub cache_read_input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

impl AnthropicUsage {
    /// The cost as `model` counts it: cache reads count towards the input
    /// limit only on the models whose entry says so
    /// ([`ModelLimits::cache_reads_count`](crate::ModelLimits::cache_reads_count):
    /// Claude 3.5 Haiku among the built-in ones); on the others as
    /// `Cost::from` counts.
    pub fn cost_for(&self, model: &crate::ModelLimits) -> Cost {
        let mut input = self
            .input_tokens
            .saturating_add(self.cache_creation_input_tokens);
        if model.cache_reads_count {
            input = input.saturating_add(self.cache_read_input_tokens);
        }
        Cost::split(input, self.output_tokens)
    }
}

impl From<AnthropicUsage> for Cost {
    fn from(u: AnthropicUsage) -> Cost {
        Cost::split(
            u.input_tokens.saturating_add(u.cache_creation_input_tokens),
            u.output_tokens,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_helpers() {
        let u: OpenAiUsage = serde_json::from_str(
            r#"{"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 123}"#,
        )
        .unwrap();
        assert_eq!(Cost::from(u), Cost::split(36, 87));
        let u: OpenAiUsage = serde_json::from_str(
            r#"{"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
                "prompt_tokens_details": {"cached_tokens": 1024}}"#,
        )
        .unwrap();
        assert_eq!(Cost::from(u), Cost::split(1117, 46));
        let u: OpenAiUsage = serde_json::from_str("{}").unwrap();
        assert_eq!(Cost::from(u), Cost::request());
        let g: GeminiUsage = serde_json::from_str(
            r#"{"promptTokenCount": 2000, "candidatesTokenCount": 50, "thoughtsTokenCount": 950,
                "cachedContentTokenCount": 1500, "toolUsePromptTokenCount": 10,
                "totalTokenCount": 3010, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2000}]}"#,
        )
        .unwrap();
        assert_eq!(Cost::from(g), Cost::split(2010, 1000));
        assert_eq!(g.cached_content_token_count, 1500);
        let a: AnthropicUsage = serde_json::from_str(
            r#"{"input_tokens": 20, "cache_creation_input_tokens": 2000,
                "cache_read_input_tokens": 5000, "output_tokens": 300}"#,
        )
        .unwrap();
        assert_eq!(Cost::from(a), Cost::split(2020, 300));
        let mut haiku = crate::ModelLimits::new(
            "claude-3-5-haiku",
            crate::ModelKind::Text,
            limiter_core::Limits::new(),
        );
        assert_eq!(a.cost_for(&haiku), Cost::split(2020, 300));
        haiku.cache_reads_count = true;
        assert_eq!(a.cost_for(&haiku), Cost::split(7020, 300));
    }
}
