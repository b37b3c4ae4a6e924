//! Calendar days in a time zone.

use super::prelude::*;

const MICROS_PER_MIN: i64 = 60_000_000;
const MICROS_PER_DAY: i64 = 86_400_000_000;

fn utc(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> i64 {
    days_from_civil(y, mo, d) * MICROS_PER_DAY + h * 3_600_000_000 + mi * MICROS_PER_MIN
}

#[test]
fn civil_round_trip() {
    for days in [-800_000, -1, 0, 1, 19_000, 20_454, 2_000_000] {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(days_from_civil(2026, 3, 8), 20_520);
}

#[test]
fn pacific_offsets_follow_daylight_saving() {
    let z = TimeZone::US_PACIFIC;
    let h = 3_600_000_000;
    // 2026: DST from 8 March 10:00 UTC to 1 November 09:00 UTC.
    assert_eq!(z.offset_micros_at(utc(2026, 3, 8, 9, 59)), -8 * h);
    assert_eq!(z.offset_micros_at(utc(2026, 3, 8, 10, 0)), -7 * h);
    assert_eq!(z.offset_micros_at(utc(2026, 11, 1, 8, 59)), -7 * h);
    assert_eq!(z.offset_micros_at(utc(2026, 11, 1, 9, 0)), -8 * h);
    assert_eq!(z.offset_micros_at(utc(2026, 1, 15, 12, 0)), -8 * h);
}

#[test]
fn pacific_midnight_in_winter_and_summer() {
    let z = TimeZone::US_PACIFIC;
    // Winter: midnight PST = 08:00 UTC.
    let t = utc(2026, 1, 15, 7, 59);
    let d = day_index(&z, 0, t);
    assert_eq!(day_start(&z, 0, d + 1), utc(2026, 1, 15, 8, 0));
    // Summer: midnight PDT = 07:00 UTC.
    let t = utc(2026, 7, 1, 6, 59);
    let d = day_index(&z, 0, t);
    assert_eq!(day_start(&z, 0, d + 1), utc(2026, 7, 1, 7, 0));
    // The day DST starts is 23 hours long; the day it ends, 25.
    let d = day_index(&z, 0, utc(2026, 3, 8, 12, 0));
    assert_eq!(
        day_start(&z, 0, d + 1) - day_start(&z, 0, d),
        23 * 3_600_000_000
    );
    let d = day_index(&z, 0, utc(2026, 11, 1, 12, 0));
    assert_eq!(
        day_start(&z, 0, d + 1) - day_start(&z, 0, d),
        25 * 3_600_000_000
    );
}

#[test]
fn day_index_never_goes_back_when_the_reset_hour_repeats() {
    // Reset at 01:30 local; on 2026-11-01 01:30 PDT (08:30Z) and 01:30
    // PST (09:30Z) both occur. The day starts at the first.
    let z = TimeZone::US_PACIFIC;
    let first = utc(2026, 11, 1, 8, 30);
    let d = day_index(&z, 90, first);
    assert_eq!(day_start(&z, 90, d), first);
    let mut t = first - 3_600_000_000;
    let mut last = day_index(&z, 90, t);
    while t < first + 3 * 3_600_000_000 {
        let now = day_index(&z, 90, t);
        assert!(now >= last, "day went back at {t}");
        last = now;
        t += MICROS_PER_MIN;
    }
    // Reset at 02:30 local is skipped on 2026-03-08: the day starts at
    // the change, 03:00 PDT = 10:00Z.
    let d = day_index(&z, 150, utc(2026, 3, 8, 12, 0));
    assert_eq!(day_start(&z, 150, d), utc(2026, 3, 8, 10, 0));
}

#[test]
fn fixed_offset_and_reset_time() {
    let z = TimeZone::Fixed { offset_minutes: 60 };
    // Reset at 06:30 local = 05:30 UTC.
    let d = day_index(&z, 390, utc(2026, 5, 5, 5, 29));
    assert_eq!(day_start(&z, 390, d + 1), utc(2026, 5, 5, 5, 30));
    assert_eq!(day_index(&z, 390, utc(2026, 5, 5, 5, 30)), d + 1);
}
