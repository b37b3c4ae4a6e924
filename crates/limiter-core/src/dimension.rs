//! [`Dimension`]: one limited quantity. A leaf module, so that the error
//! type can name it without a cycle.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One limited quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Dimension {
    /// Requests per second (a rolling window of one second).
    Rps,
    /// Requests per window (per minute by default).
    Rpm,
    /// Requests per day.
    Rpd,
    /// Combined tokens per window: input plus output times the burndown rate.
    Tpm,
    /// Combined tokens per day.
    Tpd,
    /// Input tokens per window.
    InputTpm,
    /// Output tokens per window.
    OutputTpm,
    /// Images per window.
    Ipm,
}

impl Dimension {
    /// Every dimension, in a fixed order.
    pub const ALL: [Dimension; 8] = [
        Dimension::Rps,
        Dimension::Rpm,
        Dimension::Rpd,
        Dimension::Tpm,
        Dimension::Tpd,
        Dimension::InputTpm,
        Dimension::OutputTpm,
        Dimension::Ipm,
    ];

    /// The short name used in configuration files and status output.
    pub const fn name(self) -> &'static str {
        match self {
            Dimension::Rps => "rps",
            Dimension::Rpm => "rpm",
            Dimension::Rpd => "rpd",
            Dimension::Tpm => "tpm",
            Dimension::Tpd => "tpd",
            Dimension::InputTpm => "input_tpm",
            Dimension::OutputTpm => "output_tpm",
            Dimension::Ipm => "ipm",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
