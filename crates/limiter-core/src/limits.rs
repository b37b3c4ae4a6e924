//! Limits of a key and the cost of one request.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::calendar::TimeZone;
pub use crate::dimension::Dimension;
use crate::error::{Error, Result};

/// The largest amount any limit or cost may hold: 2^50. Larger numbers would
/// lose precision in a Redis script, whose numbers are doubles.
pub const MAX_AMOUNT: u64 = 1 << 50;

/// `d` in whole milliseconds, `u64::MAX` when it does not fit.
const fn saturating_millis(d: Duration) -> u64 {
    let ms = d.as_millis();
    if ms > u64::MAX as u128 {
        u64::MAX
    } else {
        ms as u64
    }
}

/// How the per-window limits (`rpm`, `tpm`, `input_tpm`, `output_tpm`,
/// `ipm`) count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WindowKind {
    /// A rolling window: in any span of `window` (plus the guard band), the
    /// admitted total never exceeds the limit. OpenAI, Gemini and the Python
    /// seed count this way.
    #[default]
    Rolling,
    /// A token bucket of the limit's size, refilled continuously at
    /// `limit / window` (Anthropic documents its limits this way). Its
    /// largest single request is the limit less what refills in the guard
    /// band.
    TokenBucket,
}

/// How the daily limits (`rpd`, `tpd`) count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DayWindow {
    /// A rolling window of 24 hours.
    #[default]
    Rolling,
    /// A calendar day that resets at a local time of day in a time zone.
    Calendar {
        /// Minutes after local midnight at which the day resets (0..1440).
        #[serde(default)]
        reset_minutes: u32,
        /// The zone the day is counted in.
        zone: TimeZone,
    },
}

impl DayWindow {
    /// Midnight in Los Angeles, daylight saving included: Gemini's reset.
    pub const PACIFIC_MIDNIGHT: DayWindow = DayWindow::Calendar {
        reset_minutes: 0,
        zone: TimeZone::US_PACIFIC,
    };

    /// Midnight UTC.
    pub const UTC_MIDNIGHT: DayWindow = DayWindow::Calendar {
        reset_minutes: 0,
        zone: TimeZone::Utc,
    };
}

/// The limits of one key (usually one model of one account).
///
/// Every limit is off when `0`. Any mix may be on at once; a request is
/// admitted only when every enabled limit allows it. Limits deserialise from
/// a map in which every field is optional:
///
/// ```
/// use limiter_core::Limits;
///
/// let limits: Limits = serde_json::from_str(r#"{"rpm": 500, "tpm": 200000}"#).unwrap();
/// assert_eq!(limits, Limits::new().rpm(500).tpm(200_000));
/// limits.validate().unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// Requests per second, over a rolling window of one second.
    pub rps: u64,
    /// Requests per window (`window_ms`, one minute by default).
    pub rpm: u64,
    /// Requests per day (see `day`).
    pub rpd: u64,
    /// Combined tokens per window: input + output × `burndown`.
    pub tpm: u64,
    /// Combined tokens per day.
    pub tpd: u64,
    /// Input tokens per window (split mode).
    pub input_tpm: u64,
    /// Output tokens per window (split mode). Not weighted by `burndown`.
    pub output_tpm: u64,
    /// Images per window.
    pub ipm: u64,
    /// Weight of an output token in the combined counts (`tpm`, `tpd`):
    /// 1.0 for most providers, 5.0 for Claude 4-class models on AWS Bedrock.
    pub burndown: f64,
    /// Multiplier applied to every limit (the seed's `burst_multiplier`);
    /// below 1.0 it keeps headroom.
    pub burst: f64,
    /// Space requests at least `1 / rps` apart (or `window / rpm` when `rps`
    /// is off), as Azure meters per-minute limits over one-second intervals.
    pub smoothing: bool,
    /// The length of the per-window limits' window, in milliseconds.
    pub window_ms: u64,
    /// How the per-window limits count.
    pub window_kind: WindowKind,
    /// The guard band, in milliseconds: each reservation keeps counting for
    /// this long past its window (at most 60 000), so that callers who wake late or whose
    /// request spends time on the network cannot make two windows' worth
    /// arrive at the provider within one window. Size it to cover wake-up
    /// lateness plus the spread of network delay.
    pub guard_ms: u64,
    /// How the daily limits count.
    pub day: DayWindow,
}

impl Default for Limits {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! setters {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        $(
            $(#[$m])*
            #[must_use]
            pub const fn $name(mut self, limit: u64) -> Self {
                self.$name = limit;
                self
            }
        )*
    };
}

impl Limits {
    /// The default window: 60 seconds.
    pub const DEFAULT_WINDOW_MS: u64 = 60_000;
    /// The default guard band: 200 milliseconds.
    pub const DEFAULT_GUARD_MS: u64 = 200;

    /// No limit on; a 60 s rolling window, a 200 ms guard band, burndown and
    /// burst of 1, a rolling 24 h day.
    pub const fn new() -> Self {
        Limits {
            rps: 0,
            rpm: 0,
            rpd: 0,
            tpm: 0,
            tpd: 0,
            input_tpm: 0,
            output_tpm: 0,
            ipm: 0,
            burndown: 1.0,
            burst: 1.0,
            smoothing: false,
            window_ms: Self::DEFAULT_WINDOW_MS,
            window_kind: WindowKind::Rolling,
            guard_ms: Self::DEFAULT_GUARD_MS,
            day: DayWindow::Rolling,
        }
    }

    setters! {
        /// Sets requests per second.
        rps,
        /// Sets requests per window.
        rpm,
        /// Sets requests per day.
        rpd,
        /// Sets combined tokens per window.
        tpm,
        /// Sets combined tokens per day.
        tpd,
        /// Sets input tokens per window.
        input_tpm,
        /// Sets output tokens per window.
        output_tpm,
        /// Sets images per window.
        ipm,
    }

    /// Sets the output-token weight of the combined counts.
    #[must_use]
    pub const fn burndown(mut self, rate: f64) -> Self {
        self.burndown = rate;
        self
    }

    /// Sets the multiplier applied to every limit.
    #[must_use]
    pub const fn burst(mut self, multiplier: f64) -> Self {
        self.burst = multiplier;
        self
    }

    /// Turns request spacing on or off.
    #[must_use]
    pub const fn smoothing(mut self, on: bool) -> Self {
        self.smoothing = on;
        self
    }

    /// Sets the window of the per-window limits. A window longer than
    /// [`validate`](Self::validate) takes (one day) is kept as it is, not
    /// wrapped, so that `validate` refuses it.
    #[must_use]
    pub const fn window(mut self, window: Duration) -> Self {
        self.window_ms = saturating_millis(window);
        self
    }

    /// Sets how the per-window limits count.
    #[must_use]
    pub const fn window_kind(mut self, kind: WindowKind) -> Self {
        self.window_kind = kind;
        self
    }

    /// Sets the guard band. Like [`window`](Self::window), a value too
    /// large is kept, not wrapped, for `validate` to refuse.
    #[must_use]
    pub const fn guard(mut self, guard: Duration) -> Self {
        self.guard_ms = saturating_millis(guard);
        self
    }

    /// Sets how the daily limits count.
    #[must_use]
    pub const fn day(mut self, day: DayWindow) -> Self {
        self.day = day;
        self
    }

    /// The configured limit of a dimension (before `burst`), 0 when off.
    pub const fn get(&self, dimension: Dimension) -> u64 {
        match dimension {
            Dimension::Rps => self.rps,
            Dimension::Rpm => self.rpm,
            Dimension::Rpd => self.rpd,
            Dimension::Tpm => self.tpm,
            Dimension::Tpd => self.tpd,
            Dimension::InputTpm => self.input_tpm,
            Dimension::OutputTpm => self.output_tpm,
            Dimension::Ipm => self.ipm,
        }
    }

    /// The same limits with `dimension` set to `limit` (0: off).
    #[must_use]
    pub const fn with(self, dimension: Dimension, limit: u64) -> Self {
        match dimension {
            Dimension::Rps => self.rps(limit),
            Dimension::Rpm => self.rpm(limit),
            Dimension::Rpd => self.rpd(limit),
            Dimension::Tpm => self.tpm(limit),
            Dimension::Tpd => self.tpd(limit),
            Dimension::InputTpm => self.input_tpm(limit),
            Dimension::OutputTpm => self.output_tpm(limit),
            Dimension::Ipm => self.ipm(limit),
        }
    }

    /// The limit in force for a dimension: the configured limit times
    /// `burst`, rounded down but at least 1; 0 when off.
    pub fn effective(&self, dimension: Dimension) -> u64 {
        let l = self.get(dimension);
        if l == 0 {
            return 0;
        }
        let scaled = (l as f64 * self.burst).floor();
        if scaled.is_finite() {
            (scaled as u64).clamp(1, MAX_AMOUNT)
        } else {
            MAX_AMOUNT
        }
    }

    /// The most one request may ask for in `dimension` and still be
    /// admissible some day; 0 when the dimension is off.
    pub fn max_request(&self, dimension: Dimension) -> u64 {
        let l = self.effective(dimension);
        let per_window = matches!(
            dimension,
            Dimension::Rpm
                | Dimension::Tpm
                | Dimension::InputTpm
                | Dimension::OutputTpm
                | Dimension::Ipm
        );
        if l == 0 || !per_window || self.window_kind != WindowKind::TokenBucket {
            return l;
        }
        // A token bucket's burst tolerance is shortened by the guard band.
        let w = u128::from(self.window_ms);
        let g = u128::from(self.guard_ms);
        (u128::from(l) * (w - g.min(w)) / w.max(1)) as u64
    }

    /// The window of the per-window limits.
    pub const fn window_duration(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }

    /// The guard band.
    pub const fn guard_duration(&self) -> Duration {
        Duration::from_millis(self.guard_ms)
    }

    /// Whether any limit is on.
    pub fn any_enabled(&self) -> bool {
        Dimension::ALL.iter().any(|d| self.get(*d) > 0)
    }

    /// The minimum spacing between consecutive slots when smoothing is on.
    pub fn spacing(&self) -> Option<Duration> {
        if !self.smoothing {
            return None;
        }
        let rps = self.effective(Dimension::Rps);
        if rps > 0 {
            return Some(Duration::from_micros(1_000_000u64.div_ceil(rps)));
        }
        let rpm = self.effective(Dimension::Rpm);
        if rpm > 0 {
            return Some(Duration::from_micros((self.window_ms * 1000).div_ceil(rpm)));
        }
        None
    }

    /// Checks every number and setting; the limiter calls this before use.
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] for a number out of range (a limit above
    /// [`MAX_AMOUNT`], a burndown or burst that is negative, zero, NaN or
    /// infinite, a window of zero), [`Error::InvalidConfig`] for settings that
    /// contradict each other.
    pub fn validate(&self) -> Result<()> {
        for d in Dimension::ALL {
            if self.get(d) > MAX_AMOUNT {
                return Err(Error::number(
                    "limits",
                    format!("{d} = {} is above the maximum {MAX_AMOUNT}", self.get(d)),
                ));
            }
        }
        if !self.burndown.is_finite() || self.burndown < 0.0 || self.burndown > 1000.0 {
            return Err(Error::number(
                "burndown",
                format!("{} is not a finite number in 0..=1000", self.burndown),
            ));
        }
        if !self.burst.is_finite() || self.burst <= 0.0 || self.burst > 1000.0 {
            return Err(Error::number(
                "burst",
                format!("{} is not a finite number in (0, 1000]", self.burst),
            ));
        }
        if self.window_ms == 0 || self.window_ms > 86_400_000 {
            return Err(Error::number(
                "window_ms",
                format!("{} is not in 1..=86400000 (one day)", self.window_ms),
            ));
        }
        if self.guard_ms >= self.window_ms {
            return Err(Error::InvalidConfig {
                field: "guard_ms".into(),
                reason: format!(
                    "the guard band ({} ms) must be shorter than the window ({} ms)",
                    self.guard_ms, self.window_ms
                ),
            });
        }
        if self.guard_ms > 60_000 {
            return Err(Error::number(
                "guard_ms",
                format!(
                    "{} is above one minute, far beyond any network delay",
                    self.guard_ms
                ),
            ));
        }
        if self.rps > 0 && self.guard_ms >= 1000 {
            return Err(Error::InvalidConfig {
                field: "guard_ms".into(),
                reason: format!(
                    "with rps on, the guard band ({} ms) must be shorter than one second",
                    self.guard_ms
                ),
            });
        }
        if self.smoothing && self.rps == 0 && self.rpm == 0 {
            return Err(Error::InvalidConfig {
                field: "smoothing".into(),
                reason: "smoothing spaces requests by rps or rpm, and both are off".into(),
            });
        }
        if let DayWindow::Calendar {
            reset_minutes,
            zone,
        } = self.day
        {
            if reset_minutes >= 1440 {
                return Err(Error::number(
                    "day.reset_minutes",
                    format!("{reset_minutes} is not a minute of the day (0..1440)"),
                ));
            }
            if !zone.is_valid() {
                return Err(Error::number(
                    "day.zone",
                    "the UTC offset is beyond ±18 hours".to_string(),
                ));
            }
        }
        Ok(())
    }

    /// Validates and reduces these limits to a [`Plan`].
    ///
    /// # Errors
    /// As [`Limits::validate`].
    pub fn plan(&self) -> Result<Plan> {
        self.validate()?;
        let guard_us = self.guard_ms * 1000;
        let window_us = self.window_ms * 1000;
        let mut max = [0; 8];
        for (i, d) in Dimension::ALL.into_iter().enumerate() {
            max[i] = if self.get(d) == 0 {
                u64::MAX
            } else {
                self.max_request(d)
            };
        }
        Ok(Plan {
            window_us,
            guard_us,
            spans: (
                window_us + guard_us,
                1_000_000 + guard_us,
                86_400_000_000 + guard_us,
            ),
            wl: self.window_limits(),
            rps: self.effective(Dimension::Rps),
            day_l: [
                self.effective(Dimension::Rpd),
                self.effective(Dimension::Tpd),
            ],
            max,
            spacing_us: self.spacing().map(|d| d.as_micros() as u64),
            kind: self.window_kind,
            day: self.day,
            burndown: self.burndown,
        })
    }

    /// The effective per-window limits in the order of [`Amounts`].
    pub(crate) fn window_limits(&self) -> [u64; DIMS] {
        [
            self.effective(Dimension::Rpm),
            self.effective(Dimension::Tpm),
            self.effective(Dimension::InputTpm),
            self.effective(Dimension::OutputTpm),
            self.effective(Dimension::Ipm),
        ]
    }
}

/// Limits checked and reduced to what the admission state machine reads on
/// every call, so that no float arithmetic is repeated per dimension.
///
/// For implementers of [`Store`](crate::Store) that port the state machine
/// (the Redis store passes these numbers to its scripts): get one with
/// [`Limits::plan`], and the counted amounts of a request with
/// [`Plan::amounts`].
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub(crate) window_us: u64,
    pub(crate) guard_us: u64,
    /// Spans of the per-window, per-second and rolling-day rings.
    pub(crate) spans: (u64, u64, u64),
    /// Effective per-window limits, in the order of [`Amounts`].
    pub(crate) wl: [u64; DIMS],
    pub(crate) rps: u64,
    /// Effective requests and tokens per day.
    pub(crate) day_l: [u64; 2],
    /// Largest admissible request per dimension, in [`Dimension::ALL`] order
    /// (`u64::MAX` when off).
    max: [u64; 8],
    pub(crate) spacing_us: Option<u64>,
    pub(crate) kind: WindowKind,
    pub(crate) day: DayWindow,
    burndown: f64,
}

impl Plan {
    /// The per-window limits' window, µs.
    pub fn window_us(&self) -> u64 {
        self.window_us
    }

    /// The guard band, µs.
    pub fn guard_us(&self) -> u64 {
        self.guard_us
    }

    /// How long a reservation counts in the per-window, per-second and
    /// rolling-day windows: each window plus the guard band, µs.
    pub fn spans_us(&self) -> (u64, u64, u64) {
        self.spans
    }

    /// Effective per-window limits (0 = off) in the order of
    /// [`Amounts::get`]: requests, combined tokens, input, output, images.
    pub fn window_limits(&self) -> [u64; 5] {
        self.wl
    }

    /// Effective requests per second (0 = off).
    pub fn rps(&self) -> u64 {
        self.rps
    }

    /// Effective requests and combined tokens per day (0 = off).
    pub fn day_limits(&self) -> [u64; 2] {
        self.day_l
    }

    /// Minimum spacing of slots, µs, when smoothing is on.
    pub fn spacing_us(&self) -> Option<u64> {
        self.spacing_us
    }

    /// How the per-window limits count.
    pub fn window_kind(&self) -> WindowKind {
        self.kind
    }

    /// How the daily limits count.
    pub fn day_window(&self) -> DayWindow {
        self.day
    }

    /// How long a reservation stays adjustable after its slot, µs: the
    /// longer of [`RECORD_RETENTION`](crate::state::RECORD_RETENTION) and
    /// the window plus guard band.
    pub fn retention_us(&self) -> u64 {
        self.spans
            .0
            .max(crate::state::RECORD_RETENTION.as_micros() as u64)
    }

    /// The counted amounts of a request's real usage, for settling: numbers
    /// are checked, limits are not (usage is what it was).
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] for numbers out of range.
    pub fn usage_amounts(&self, cost: &Cost) -> Result<Amounts> {
        cost.amounts(self.burndown)
    }

    /// Checks a request against the limits: its numbers are in range and no
    /// enabled limit is too small to ever admit it. Returns what it counts.
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] for numbers out of range,
    /// [`Error::ExceedsLimit`] for a request no limit could ever admit.
    pub fn amounts(&self, cost: &Cost) -> Result<Amounts> {
        let a = cost.amounts(self.burndown)?;
        let asks = [1, 1, 1, a.0[TOK], a.0[TOK], a.0[INP], a.0[OUT], a.0[IMG]];
        for ((dimension, requested), max) in Dimension::ALL.into_iter().zip(asks).zip(self.max) {
            if requested > max {
                return Err(Error::ExceedsLimit {
                    dimension,
                    requested,
                    max,
                });
            }
        }
        Ok(a)
    }
}

/// Index of requests in [`Amounts`].
pub(crate) const REQ: usize = 0;
/// Index of combined (weighted) tokens in [`Amounts`].
pub(crate) const TOK: usize = 1;
/// Index of input tokens in [`Amounts`].
pub(crate) const INP: usize = 2;
/// Index of output tokens in [`Amounts`].
pub(crate) const OUT: usize = 3;
/// Index of images in [`Amounts`].
pub(crate) const IMG: usize = 4;
/// Number of counted quantities.
pub(crate) const DIMS: usize = 5;

/// What one request counts in each quantity: requests, combined tokens
/// (output weighted by the burndown rate), input tokens, output tokens,
/// images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts(pub(crate) [u64; DIMS]);

impl Amounts {
    /// The five amounts, in the order above.
    pub fn get(&self) -> [u64; DIMS] {
        self.0
    }
}

/// The cost of one request: its tokens and images.
///
/// ```
/// use limiter_core::Cost;
///
/// // Combined mode: one number of tokens.
/// let c = Cost::tokens(5_000);
/// assert_eq!(c.input_tokens, 5_000);
/// // Split mode: input plus the estimated output (`max_tokens`).
/// let c = Cost::split(3_000, 1_000);
/// assert_eq!(c.total_tokens(), 4_000);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cost {
    /// Input (prompt) tokens, or all tokens in combined mode.
    pub input_tokens: u64,
    /// Output tokens: an estimate (e.g. `max_tokens`) when reserving, the
    /// real count when settling.
    pub output_tokens: u64,
    /// Images generated.
    pub images: u64,
}

impl Cost {
    /// One request and nothing else.
    pub const fn request() -> Self {
        Cost {
            input_tokens: 0,
            output_tokens: 0,
            images: 0,
        }
    }

    /// One request of `tokens` combined tokens (counted as input tokens).
    pub const fn tokens(tokens: u64) -> Self {
        Cost {
            input_tokens: tokens,
            output_tokens: 0,
            images: 0,
        }
    }

    /// One request of `input` tokens with `output` estimated output tokens.
    pub const fn split(input: u64, output: u64) -> Self {
        Cost {
            input_tokens: input,
            output_tokens: output,
            images: 0,
        }
    }

    /// One request generating `images` images.
    pub const fn images(images: u64) -> Self {
        Cost {
            input_tokens: 0,
            output_tokens: 0,
            images,
        }
    }

    /// The same cost with `images` images.
    #[must_use]
    pub const fn with_images(mut self, images: u64) -> Self {
        self.images = images;
        self
    }

    /// The same cost with `input` input tokens.
    #[must_use]
    pub const fn with_input(mut self, input: u64) -> Self {
        self.input_tokens = input;
        self
    }

    /// The same cost with `output` output tokens.
    #[must_use]
    pub const fn with_output(mut self, output: u64) -> Self {
        self.output_tokens = output;
        self
    }

    /// Input plus output tokens, unweighted (saturating).
    pub const fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Input + output × `burndown`, rounded up.
    pub fn weighted_tokens(&self, burndown: f64) -> Result<u64> {
        Ok(self.amounts(burndown)?.0[TOK])
    }

    pub(crate) fn amounts(&self, burndown: f64) -> Result<Amounts> {
        for (field, v) in [
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
            ("images", self.images),
        ] {
            if v > MAX_AMOUNT {
                return Err(Error::number(
                    field,
                    format!("{v} is above the maximum {MAX_AMOUNT}"),
                ));
            }
        }
        let tok = if burndown == 1.0 {
            // Exact in integers: both are at most 2^50.
            self.input_tokens + self.output_tokens
        } else {
            let weighted = (self.output_tokens as f64 * burndown).ceil();
            let tok = self.input_tokens as f64 + weighted;
            if !tok.is_finite() || tok > MAX_AMOUNT as f64 {
                return Err(Error::number(
                    "output_tokens",
                    format!("input + output × burndown = {tok} is above the maximum {MAX_AMOUNT}"),
                ));
            }
            tok as u64
        };
        if tok > MAX_AMOUNT {
            return Err(Error::number(
                "output_tokens",
                format!("input + output × burndown = {tok} is above the maximum {MAX_AMOUNT}"),
            ));
        }
        Ok(Amounts([
            1,
            tok,
            self.input_tokens,
            self.output_tokens,
            self.images,
        ]))
    }
}
