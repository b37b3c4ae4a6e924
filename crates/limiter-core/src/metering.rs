//! How a provider counts a call's tokens, and so what the limiter reserves
//! when a call is admitted and what a settlement changes.
//!
//! The providers do not meter alike (see each variant for its source), and
//! a limiter that reserves and settles the same way for all of them either
//! under-counts (settling an OpenAI call down to what it produced, when
//! OpenAI charged `max_tokens` at arrival) or over-counts (reserving output
//! on Gemini, whose tokens per minute count the prompt only). A
//! [`Metering`] set once per key ([`LimiterBuilder::metering`]) makes the
//! same caller code right for every provider: pass the request's prompt
//! tokens and `max_tokens` to [`acquire`](crate::Limiter::acquire), and the
//! usage the response reports to [`Permit::adjust`](crate::Permit::adjust);
//! the preset decides what the store holds.
//!
//! ```
//! use limiter_core::{Cost, Metering};
//!
//! // A call with a 1,200-token prompt and max_tokens = 800 that produced 150.
//! let request = Cost::split(1_200, 800);
//! let usage = Cost::split(1_200, 150);
//!
//! // OpenAI counts the request as it arrived; what it produced changes nothing.
//! assert_eq!(Metering::AtArrival.reserve(request), request);
//! assert_eq!(Metering::AtArrival.settle(usage), None);
//! // Bedrock holds prompt + max_tokens while the call runs, then input +
//! // output x burndown (the limits' `burndown` weighs the output).
//! assert_eq!(Metering::Burndown.reserve(request), Cost::tokens(2_000));
//! assert_eq!(Metering::Burndown.settle(usage), Some(usage));
//! // Gemini's tokens per minute count the prompt only.
//! assert_eq!(Metering::InputOnly.reserve(request), Cost::tokens(1_200));
//! ```
//!
//! [`LimiterBuilder::metering`]: crate::LimiterBuilder::metering

use serde::{Deserialize, Serialize};

use crate::limits::Cost;

/// How the provider of a key counts a call's tokens.
///
/// [`reserve`](Self::reserve) turns the request's cost (prompt tokens and
/// `max_tokens`) into what is held while the call runs; [`settle`](Self::settle)
/// turns the usage the response reports into what is held from then on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Metering {
    /// Counted as used, in both directions: reserve the request's cost,
    /// then hold what the response says was used. Anthropic: output tokens
    /// count toward OTPM as they are produced (`max_tokens` does not
    /// count), and input tokens toward ITPM are estimated at the start and
    /// adjusted during the request (docs.claude.com, "Rate limits"). Also
    /// right for any provider that settles to actual usage. The default.
    #[default]
    AsUsed,
    /// Charged at arrival from the request: prompt plus `max_tokens` count
    /// when the request arrives, and what the call then produces changes
    /// nothing, so a settlement keeps the reservation. OpenAI (the larger
    /// of `max_tokens` and an estimate from the request's characters,
    /// platform.openai.com "Rate limits") and Azure OpenAI (an estimate at
    /// arrival from the prompt, `max_tokens` and `best_of`,
    /// learn.microsoft.com "Azure OpenAI quotas and limits").
    AtArrival,
    /// Reserved at the start as prompt plus `max_tokens`, unweighted, and
    /// settled at the end as input plus output times the burndown rate
    /// (the limits' [`burndown`](crate::Limits::burndown), 5 on Claude 4
    /// models). AWS Bedrock (docs.aws.amazon.com, "How tokens are counted in
    /// Amazon Bedrock"). Bedrock meters combined tokens: the output is held
    /// as combined tokens until settled, so an output-only limit sees none
    /// of it and an input limit sees prompt plus `max_tokens` (and may
    /// refuse it with [`Error::ExceedsLimit`](crate::Error::ExceedsLimit)).
    Burndown,
    /// Output tokens are not counted: tokens per minute count the prompt
    /// only. The Gemini API's TPM (ai.google.dev, "Rate limits": input
    /// tokens per minute).
    InputOnly,
}

impl Metering {
    /// Every preset, in the order of the docs.
    pub const ALL: [Metering; 4] = [
        Metering::AsUsed,
        Metering::AtArrival,
        Metering::Burndown,
        Metering::InputOnly,
    ];

    /// What is held while the call runs, for a request of `request`
    /// (prompt tokens as input, `max_tokens` as output).
    pub const fn reserve(self, request: Cost) -> Cost {
        match self {
            Metering::AsUsed | Metering::AtArrival => request,
            Metering::Burndown => Cost {
                input_tokens: request.total_tokens(),
                output_tokens: 0,
                images: request.images,
            },
            Metering::InputOnly => request.with_output(0),
        }
    }

    /// What is held once the response reports `usage`; `None` when a
    /// settlement changes nothing ([`AtArrival`](Self::AtArrival)).
    pub const fn settle(self, usage: Cost) -> Option<Cost> {
        match self {
            Metering::AsUsed | Metering::Burndown => Some(usage),
            Metering::AtArrival => None,
            Metering::InputOnly => Some(usage.with_output(0)),
        }
    }

    /// The preset's name, as `Display` and serde write it.
    pub const fn name(self) -> &'static str {
        match self {
            Metering::AsUsed => "as_used",
            Metering::AtArrival => "at_arrival",
            Metering::Burndown => "burndown",
            Metering::InputOnly => "input_only",
        }
    }
}

impl std::fmt::Display for Metering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Metering {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        Metering::ALL
            .into_iter()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| crate::Error::InvalidConfig {
                field: "metering".into(),
                reason: format!(
                    "{s:?} is not a metering preset (as_used, at_arrival, burndown, input_only)"
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_preset_reserves_and_settles_as_its_provider_meters() {
        let request = Cost::split(1_000, 500).with_images(2);
        let usage = Cost::split(900, 120).with_images(2);
        assert_eq!(Metering::AsUsed.reserve(request), request);
        assert_eq!(Metering::AsUsed.settle(usage), Some(usage));
        assert_eq!(Metering::AtArrival.reserve(request), request);
        assert_eq!(Metering::AtArrival.settle(usage), None);
        let held = Metering::Burndown.reserve(request);
        assert_eq!(
            (held.input_tokens, held.output_tokens, held.images),
            (1_500, 0, 2)
        );
        assert_eq!(Metering::Burndown.settle(usage), Some(usage));
        let held = Metering::InputOnly.reserve(request);
        assert_eq!(
            (held.input_tokens, held.output_tokens, held.images),
            (1_000, 0, 2)
        );
        assert_eq!(
            Metering::InputOnly.settle(usage),
            Some(usage.with_output(0))
        );
    }

    #[test]
    fn names_round_trip_and_bad_names_are_typed_errors() {
        for m in Metering::ALL {
            assert_eq!(m.to_string().parse::<Metering>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
        }
        assert!(matches!(
            "openai".parse::<Metering>(),
            Err(crate::Error::InvalidConfig { .. })
        ));
    }
}
