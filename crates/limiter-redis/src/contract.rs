//! The contract between this crate and its Lua scripts, defined once here:
//! where each argument of the admission scripts sits in `ARGV`, where each
//! scalar of a key's state sits in its MessagePack array, and the bits that
//! say where a record was counted (those of `limiter_core::state`).
//!
//! `src/lua/common.lua` names the same places in three tables at its top
//! (`A`, `S` and `C`); a test reads them and checks them against these.

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
    /// 1 when the zone follows US daylight saving.
    pub(crate) const US_DST: usize = 19;
    /// The zone's standard offset in minutes east of UTC.
    pub(crate) const OFFSET: usize = 20;
    /// How long a record stays adjustable, in µs.
    pub(crate) const RETENTION: usize = 21;
    /// How long the state is kept past its last use, in µs.
    pub(crate) const KEEP: usize = 22;
    /// The first of the operation's own arguments.
    pub(crate) const OP: usize = 23;

    /// Every name with its position, as `common.lua`'s table `A` has them.
    #[cfg_attr(not(test), allow(dead_code))]
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
        ("US_DST", US_DST),
        ("OFFSET", OFFSET),
        ("RETENTION", RETENTION),
        ("KEEP", KEEP),
        ("OP", OP),
    ];
}

/// Slots of a key's state array (field `m` of its hash), 1-based, as
/// `common.lua`'s table `S` has them. Only the scripts read and write it;
/// the names follow `limiter_core::KeyState`'s fields. Runs of five
/// (`TOTALS_*`, `TAT`, `FULL`) start at the slot given.
#[cfg_attr(not(test), allow(dead_code))]
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
];

/// The bits of a record's `counted` field, as `common.lua`'s table `C` has
/// them: those of `limiter_core::state`.
#[cfg_attr(not(test), allow(dead_code))]
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

#[cfg(test)]
mod tests {
    use super::*;

    const COMMON: &str = include_str!("lua/common.lua");

    /// The `NAME = number` entries of the Lua table `local NAME = { ... }`.
    fn lua_table(name: &str) -> Vec<(String, u64)> {
        let start = format!("local {name} = {{");
        let from = COMMON
            .find(&start)
            .unwrap_or_else(|| panic!("common.lua has no table {name}"))
            + start.len();
        let body = &COMMON[from..from + COMMON[from..].find('}').expect("a closing brace")];
        body.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (k, v) = e
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{name}: {e:?} is not NAME = number"));
                let v = v.trim().parse().unwrap_or_else(|_| panic!("{name}: {e:?}"));
                (k.trim().to_owned(), v)
            })
            .collect()
    }

    fn owned<T: Copy + Into<u64>>(rows: &[(&str, T)]) -> Vec<(String, u64)> {
        rows.iter()
            .map(|&(k, v)| (k.to_owned(), v.into()))
            .collect()
    }

    #[test]
    fn the_lua_header_matches_the_argv_layout() {
        let layout: Vec<(&str, u64)> = argv::LAYOUT.iter().map(|&(k, v)| (k, v as u64)).collect();
        assert_eq!(lua_table("A"), owned(&layout));
    }

    #[test]
    fn the_lua_header_matches_the_state_slots() {
        let slots: Vec<(&str, u64)> = STATE_SLOTS.iter().map(|&(k, v)| (k, v as u64)).collect();
        assert_eq!(lua_table("S"), owned(&slots));
    }

    #[test]
    fn the_lua_header_matches_the_counted_bits() {
        assert_eq!(lua_table("C"), owned(COUNTED_BITS));
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
        // State: runs of five for the totals and buckets, one otherwise.
        let width = |name: &str| {
            if name.starts_with("TOTALS_") || name == "TAT" || name == "FULL" {
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
        for (file, src) in [
            ("common.lua", COMMON),
            ("reserve.lua", include_str!("lua/reserve.lua")),
            ("adjust.lua", include_str!("lua/adjust.lua")),
            ("refund.lua", include_str!("lua/refund.lua")),
            ("status.lua", include_str!("lua/status.lua")),
        ] {
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
