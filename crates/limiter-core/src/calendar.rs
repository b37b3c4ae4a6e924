//! Calendar days in a time zone, for daily limits that reset at a set local
//! time (Gemini's requests per day reset at midnight in Los Angeles).
//!
//! Plain integer arithmetic only, so that the same rules can be written in a
//! Redis script: a fixed UTC offset, or United States daylight saving rules.

use serde::{Deserialize, Serialize};

const MICROS_PER_MIN: i64 = 60_000_000;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The time zone in which a calendar day is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimeZone {
    /// Coordinated Universal Time.
    Utc,
    /// A fixed offset from UTC, in minutes east of UTC (UTC-8 is `-480`).
    Fixed {
        /// Minutes east of UTC, within ±18 hours.
        offset_minutes: i32,
    },
    /// A United States zone with daylight saving time as in force since 2007:
    /// one hour ahead from the second Sunday of March, 02:00 local standard
    /// time, to the first Sunday of November, 02:00 local daylight time.
    UsDaylight {
        /// The standard-time offset in minutes east of UTC (Pacific: `-480`).
        standard_offset_minutes: i32,
    },
}

impl TimeZone {
    /// America/Los_Angeles: UTC-8, UTC-7 in daylight saving time.
    pub const US_PACIFIC: TimeZone = TimeZone::UsDaylight {
        standard_offset_minutes: -480,
    };

    /// America/New_York: UTC-5, UTC-4 in daylight saving time.
    pub const US_EASTERN: TimeZone = TimeZone::UsDaylight {
        standard_offset_minutes: -300,
    };

    pub(crate) fn is_valid(&self) -> bool {
        let m = match *self {
            TimeZone::Utc => 0,
            TimeZone::Fixed { offset_minutes } => offset_minutes,
            TimeZone::UsDaylight {
                standard_offset_minutes,
            } => standard_offset_minutes,
        };
        (-18 * 60..=18 * 60).contains(&m)
    }

    /// The offset from UTC, in microseconds, in force at `utc_micros`.
    pub fn offset_micros_at(&self, utc_micros: i64) -> i64 {
        match *self {
            TimeZone::Utc => 0,
            TimeZone::Fixed { offset_minutes } => i64::from(offset_minutes) * MICROS_PER_MIN,
            TimeZone::UsDaylight {
                standard_offset_minutes,
            } => {
                let std = i64::from(standard_offset_minutes) * MICROS_PER_MIN;
                let local_days = (utc_micros + std).div_euclid(MICROS_PER_DAY);
                let (year, _, _) = civil_from_days(local_days);
                // Second Sunday of March, 02:00 standard time.
                let start_local = nth_sunday(year, 3, 2) * MICROS_PER_DAY + 120 * MICROS_PER_MIN;
                // First Sunday of November, 02:00 daylight time (= 01:00 standard).
                let end_local = nth_sunday(year, 11, 1) * MICROS_PER_DAY + 60 * MICROS_PER_MIN;
                let local_std = utc_micros + std;
                if local_std >= start_local && local_std < end_local {
                    std + 60 * MICROS_PER_MIN
                } else {
                    std
                }
            }
        }
    }
}

fn raw_index(zone: &TimeZone, reset_minutes: u32, utc_micros: i64) -> i64 {
    let local =
        utc_micros + zone.offset_micros_at(utc_micros) - i64::from(reset_minutes) * MICROS_PER_MIN;
    local.div_euclid(MICROS_PER_DAY)
}

/// The index of the local day holding `utc_micros`, where a day starts at
/// `reset_minutes` past local midnight.
///
/// Never decreases as time goes on, even when the clocks go back and the
/// reset time comes twice: the day starts at its first occurrence.
pub fn day_index(zone: &TimeZone, reset_minutes: u32, utc_micros: i64) -> i64 {
    let d = raw_index(zone, reset_minutes, utc_micros);
    if day_start(zone, reset_minutes, d + 1) <= utc_micros {
        d + 1
    } else {
        d
    }
}

/// The UTC instant (microseconds) at which local day `day` starts: the
/// first occurrence of its reset time, or, when a change of offset skips
/// the reset time, the first instant after the skip.
pub fn day_start(zone: &TimeZone, reset_minutes: u32, day: i64) -> i64 {
    let local = day * MICROS_PER_DAY + i64::from(reset_minutes) * MICROS_PER_MIN;
    match *zone {
        TimeZone::Utc | TimeZone::Fixed { .. } => local - zone.offset_micros_at(local),
        TimeZone::UsDaylight {
            standard_offset_minutes,
        } => {
            let std = i64::from(standard_offset_minutes) * MICROS_PER_MIN;
            let dst = std + 60 * MICROS_PER_MIN;
            // Read as daylight time first: it is the earlier reading.
            let as_dst = local - dst;
            if zone.offset_micros_at(as_dst) == dst {
                return as_dst;
            }
            let as_std = local - std;
            if zone.offset_micros_at(as_std) == std {
                return as_std;
            }
            // Skipped by the change to daylight time: the day starts at the
            // change, a whole minute within the hour after `as_dst`.
            let mut t = as_dst;
            while raw_index(zone, reset_minutes, t) < day && t < as_std {
                t += MICROS_PER_MIN;
            }
            t
        }
    }
}

/// Days since 1970-01-01 of the `n`th Sunday of `month` in `year`.
fn nth_sunday(year: i64, month: u32, n: i64) -> i64 {
    let first = days_from_civil(year, month, 1);
    // 1970-01-01 was a Thursday; weekday 0 = Sunday.
    let weekday = (first + 4).rem_euclid(7);
    let first_sunday = first + (7 - weekday) % 7;
    first_sunday + 7 * (n - 1)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
