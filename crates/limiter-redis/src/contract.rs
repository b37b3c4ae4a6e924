//! The contract between this crate and its Lua scripts, defined once here:
//! where each argument of the admission scripts sits in `ARGV`, where each
//! scalar of a key's state sits in its MessagePack array, and the bits that
//! say where a record was counted (those of `limiter_core::state`).
//!
//! The scripts in `src/lua/` use the same names, prefixed: `A_NOW` for
//! [`argv::NOW`], `S_LAST_ID` for the state slot `LAST_ID`, `C_IN_BUCKETS`
//! for the bit `IN_BUCKETS`. [`expand`] puts the numbers in place of the
//! names before a script is loaded, so the server runs plain literals (a
//! Lua local or table per name would cost time on every call), and the
//! tests check that every such name in the scripts is one of these.

/// Positions in `ARGV` of the admission scripts (reserve, adjust, refund,
/// status), 1-based as Lua counts.
pub(crate) mod argv {
    /// "Now" in µs, or "" for the server's `TIME`.
    pub(crate) const NOW: usize = 1;
    /// The window in µs.
    pub(crate) const WINDOW: usize = 2;
    /// The guard band in µs.
    pub(crate) const GUARD: usize = 3;
    /// How long a reservation counts in the per-window limits.
    pub(crate) const SPAN_W: usize = 4;
    /// How long a reservation counts in the per-second limit.
    pub(crate) const SPAN_S: usize = 5;
    /// How long a reservation counts in the rolling day.
    pub(crate) const SPAN_D: usize = 6;
    /// The first of the five per-window limits (requests, weighted tokens,
    /// input, output, images).
    pub(crate) const WL: usize = 7;
    /// Requests per second.
    pub(crate) const RPS: usize = 12;
    /// The first of the two daily limits (requests, weighted tokens).
    pub(crate) const DL: usize = 13;
    /// Smoothing: the spacing between two slots in µs (0: off).
    pub(crate) const SPACING: usize = 15;
    /// 1 for token buckets, 0 for rolling windows.
    pub(crate) const BUCKET: usize = 16;
    /// 1 for calendar days, 0 for rolling days.
    pub(crate) const CALENDAR: usize = 17;
    /// The daily reset, in minutes after local midnight.
    pub(crate) const RESET: usize = 18;
    /// The zone's offsets around now, in µs: the offset in force first,
    /// then pairs of the instant of a change and the offset from then on,
    /// comma-separated (`TimeZone::offset_changes`).
    pub(crate) const ZONE: usize = 19;
    /// How long a record stays adjustable, in µs.
    pub(crate) const RETENTION: usize = 20;
    /// How long the state is kept past its last use, in µs.
    pub(crate) const KEEP: usize = 21;
    /// The first of the operation's own arguments.
    pub(crate) const OP: usize = 22;

    /// Every name with its position, as `common.lua`'s `A_*` locals have them.
    pub(crate) const LAYOUT: &[(&str, usize)] = &[
        ("NOW", NOW),
        ("WINDOW", WINDOW),
        ("GUARD", GUARD),
        ("SPAN_W", SPAN_W),
        ("SPAN_S", SPAN_S),
        ("SPAN_D", SPAN_D),
        ("WL", WL),
        ("RPS", RPS),
        ("DL", DL),
        ("SPACING", SPACING),
        ("BUCKET", BUCKET),
        ("CALENDAR", CALENDAR),
        ("RESET", RESET),
        ("ZONE", ZONE),
        ("RETENTION", RETENTION),
        ("KEEP", KEEP),
        ("OP", OP),
    ];
}

/// Slots of a key's state array (field `m` of its hash), 1-based, as
/// `common.lua`'s `S_*` locals have them. Only the scripts read and write it;
/// the names follow `limiter_core::KeyState`'s fields. Runs of five
/// (`TOTALS_*`, `TAT`, `FULL`, `EXT`, `EXT_PEAK`) start at the slot given.
pub(crate) const STATE_SLOTS: &[(&str, usize)] = &[
    ("NEXT_ID", 1),
    ("LAST_SLOT", 2),
    ("LAST_ID", 3),
    ("FIRST_DAY", 4),
    ("DAYS", 5),
    ("FIRST_RECORD", 6),
    ("RECORD_SLOTS", 7),
    ("LIVE_RECORDS", 8),
    ("LAST_NOW", 9),
    ("KEPT_UNTIL", 10),
    ("WIDTH_W", 11),
    ("WIDTH_S", 12),
    ("WIDTH_D", 13),
    ("TOTALS_W", 14),
    ("TOTALS_S", 19),
    ("TOTALS_D", 24),
    ("TAT", 29),
    ("FULL", 34),
    ("FIRST_W", 39),
    ("FIRST_S", 40),
    ("FIRST_D", 41),
    ("WAITING", 42),
    ("FRONT_EXPIRY", 43),
    ("EXT", 44),
    ("EXT_UNTIL", 49),
    ("EXT_PEAK", 50),
    ("EXT_PERIOD", 55),
];

/// Constants of `limiter_core::state` the scripts share, as `K_*`.
pub(crate) const CONSTANTS: &[(&str, u64)] = {
    use limiter_core::state::{BUCKETS, EXTERNAL_MARGIN};
    &[("BUCKETS", BUCKETS), ("EXTERNAL_MARGIN", EXTERNAL_MARGIN)]
};

/// The bits of a record's `counted` field, as `common.lua`'s `C_*` locals
/// have them: those of `limiter_core::state`.
pub(crate) const COUNTED_BITS: &[(&str, u8)] = {
    use limiter_core::state::{
        IN_BUCKETS, IN_CALENDAR, IN_DAY_RING, IN_SECOND, IN_WINDOW, ZONE_NEXT,
    };
    &[
        ("IN_WINDOW", IN_WINDOW),
        ("IN_SECOND", IN_SECOND),
        ("IN_DAY_RING", IN_DAY_RING),
        ("IN_CALENDAR", IN_CALENDAR),
        ("IN_BUCKETS", IN_BUCKETS),
        ("ZONE_NEXT", ZONE_NEXT),
    ]
};

/// The number a contract name stands for in a script: `A_*` from
/// [`argv::LAYOUT`], `S_*` from [`STATE_SLOTS`], `C_*` from
/// [`COUNTED_BITS`], `K_*` from [`CONSTANTS`].
fn value_of(name: &str) -> Option<u64> {
    let (prefix, rest) = (name.get(..2)?, name.get(2..)?);
    match prefix {
        "A_" => argv::LAYOUT
            .iter()
            .find(|(n, _)| *n == rest)
            .map(|&(_, v)| v as u64),
        "S_" => STATE_SLOTS
            .iter()
            .find(|(n, _)| *n == rest)
            .map(|&(_, v)| v as u64),
        "C_" => COUNTED_BITS
            .iter()
            .find(|(n, _)| *n == rest)
            .map(|&(_, v)| u64::from(v)),
        "K_" => CONSTANTS.iter().find(|(n, _)| *n == rest).map(|&(_, v)| v),
        _ => None,
    }
}

/// Whether `name` has the form of a contract name: `A_`, `S_`, `C_` or `K_`, then
/// capitals, digits and underscores.
fn is_contract_name(name: &str) -> bool {
    matches!(name.get(..2), Some("A_" | "S_" | "C_" | "K_"))
        && name.len() > 2
        && name[2..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// `src` with every contract name replaced by its number; all other text
/// is kept as it is.
///
/// # Panics
/// On a name of the contract's form that the contract does not define (the
/// tests run every script through this, so a typo fails them, not a user).
pub(crate) fn expand(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.push_str(&rest[..start]);
        let word = &rest[start..];
        let len = word
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(word.len());
        let ident = &word[..len];
        if is_contract_name(ident) {
            let v =
                value_of(ident).unwrap_or_else(|| panic!("{ident} is not defined in contract.rs"));
            out.push_str(&v.to_string());
        } else {
            out.push_str(ident);
        }
        rest = &word[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMON: &str = include_str!("lua/common.lua");

    const SCRIPTS: [(&str, &str); 6] = [
        ("common.lua", COMMON),
        ("reserve.lua", include_str!("lua/reserve.lua")),
        ("adjust.lua", include_str!("lua/adjust.lua")),
        ("refund.lua", include_str!("lua/refund.lua")),
        ("status.lua", include_str!("lua/status.lua")),
        ("external.lua", include_str!("lua/external.lua")),
    ];

    /// Every identifier of `src` that has the form of a contract name.
    fn names_in(src: &str) -> Vec<&str> {
        src.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| is_contract_name(w))
            .collect()
    }

    #[test]
    fn every_name_the_scripts_use_is_defined_and_every_one_defined_is_used() {
        let mut used = std::collections::BTreeSet::new();
        for (file, src) in SCRIPTS {
            for name in names_in(src) {
                assert!(
                    value_of(name).is_some(),
                    "{file}: {name} is not in contract.rs"
                );
                used.insert(name.to_owned());
            }
        }
        let defined = argv::LAYOUT
            .iter()
            .map(|(n, _)| format!("A_{n}"))
            .chain(STATE_SLOTS.iter().map(|(n, _)| format!("S_{n}")))
            .chain(COUNTED_BITS.iter().map(|(n, _)| format!("C_{n}")));
        for name in defined {
            assert!(
                used.contains(&name),
                "{name} is defined but no script uses it"
            );
        }
    }

    #[test]
    fn expand_puts_numbers_for_names_and_keeps_the_rest() {
        assert_eq!(
            expand("x = n(A_OP + 1) + M[S_LAST_ID] -- S_FIRST_DAY, C_ZONE_NEXT\nA_b S_"),
            "x = n(22 + 1) + M[3] -- 4, 32\nA_b S_"
        );
        // A longer name is never cut at a shorter one's end, nor a name
        // taken out of a longer identifier.
        assert_eq!(expand("S_FIRST_D S_FIRST_DAY"), "41 4");
        assert_eq!(expand("MY_S_LAST_ID"), "MY_S_LAST_ID");
        for (file, src) in SCRIPTS {
            assert!(names_in(&expand(src)).is_empty(), "{file}: a name was left");
        }
    }

    #[test]
    #[should_panic(expected = "S_NO_SUCH_SLOT is not defined")]
    fn an_undefined_name_is_refused() {
        expand("M[S_NO_SUCH_SLOT]");
    }

    #[test]
    fn the_layouts_are_consistent() {
        // ARGV: each argument follows the last (WL and DL hold 5 and 2).
        let width = |name: &str| match name {
            "WL" => 5,
            "DL" => 2,
            _ => 1,
        };
        for pair in argv::LAYOUT.windows(2) {
            assert_eq!(pair[0].1 + width(pair[0].0), pair[1].1, "{pair:?}");
        }
        // State: runs of five for the totals, buckets and external usage,
        // one otherwise.
        let width = |name: &str| {
            if name.starts_with("TOTALS_") || ["TAT", "FULL", "EXT", "EXT_PEAK"].contains(&name) {
                5
            } else {
                1
            }
        };
        for pair in STATE_SLOTS.windows(2) {
            assert_eq!(pair[0].1 + width(pair[0].0), pair[1].1, "{pair:?}");
        }
        // Bits: distinct powers of two.
        let mut seen = 0u8;
        for &(name, bit) in COUNTED_BITS {
            assert!(bit.is_power_of_two() && seen & bit == 0, "{name}");
            seen |= bit;
        }
    }

    /// No script indexes ARGV, the state array or the bits by a bare number.
    #[test]
    fn the_scripts_use_the_names() {
        for (file, src) in SCRIPTS {
            for (i, line) in src.lines().enumerate() {
                let code = line.split("--").next().unwrap_or("");
                for bare in ["n(", "mv(", "M[", "has(r.counted, "] {
                    if let Some(at) = code.find(bare) {
                        let next = code[at + bare.len()..].chars().next();
                        assert!(
                            !next.is_some_and(|c| c.is_ascii_digit()),
                            "{file}:{}: a bare index: {line}",
                            i + 1
                        );
                    }
                }
            }
        }
    }
}
