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

#[test]
fn named_zones_follow_the_tz_database() {
    let h = 3_600_000_000;
    let berlin = TimeZone::named("Europe/Berlin").unwrap();
    assert_eq!(berlin.offset_micros_at(utc(2026, 3, 29, 0, 59)), h);
    assert_eq!(berlin.offset_micros_at(utc(2026, 3, 29, 1, 0)), 2 * h);
    // 29 March is 23 hours long, 25 October 25.
    let d = day_index(&berlin, 0, utc(2026, 3, 29, 12, 0));
    assert_eq!(day_start(&berlin, 0, d), utc(2026, 3, 28, 23, 0));
    assert_eq!(
        day_start(&berlin, 0, d + 1) - day_start(&berlin, 0, d),
        23 * h
    );
    let d = day_index(&berlin, 0, utc(2026, 10, 25, 12, 0));
    assert_eq!(
        day_start(&berlin, 0, d + 1) - day_start(&berlin, 0, d),
        25 * h
    );
    // A reset at 02:30 repeats on 25 October: the first one counts.
    let d = day_index(&berlin, 150, utc(2026, 10, 25, 12, 0));
    assert_eq!(day_start(&berlin, 150, d), utc(2026, 10, 25, 0, 30));
    // ... and is skipped on 29 March: the day starts at the change.
    let d = day_index(&berlin, 150, utc(2026, 3, 29, 12, 0));
    assert_eq!(day_start(&berlin, 150, d), utc(2026, 3, 29, 1, 0));
    // Half-hour daylight saving: Lord Howe, +10:30 / +11:00.
    let lh = TimeZone::named("Australia/Lord_Howe").unwrap();
    assert_eq!(lh.offset_micros_at(utc(2026, 1, 15, 0, 0)), 11 * h);
    assert_eq!(lh.offset_micros_at(utc(2026, 7, 15, 0, 0)), 21 * h / 2);
    // Tokyo keeps +09:00.
    let tokyo = TimeZone::named("asia/tokyo").unwrap();
    assert_eq!(tokyo.to_string(), "Asia/Tokyo");
    let d = day_index(&tokyo, 0, utc(2026, 5, 5, 12, 0));
    assert_eq!(day_start(&tokyo, 0, d), utc(2026, 5, 5, -9, 0));
}

#[test]
fn the_us_constants_are_the_named_zones_and_keep_the_old_rules() {
    assert_eq!(
        TimeZone::US_PACIFIC,
        TimeZone::named("America/Los_Angeles").unwrap()
    );
    assert_eq!(TimeZone::US_EASTERN.to_string(), "America/New_York");
    // The rules written out before agree with the database since 2007.
    for (old, named) in [(-480, TimeZone::US_PACIFIC), (-300, TimeZone::US_EASTERN)] {
        let rule = TimeZone::UsDaylight {
            standard_offset_minutes: old,
        };
        let mut t = utc(2007, 1, 1, 0, 0);
        while t < utc(2040, 1, 1, 0, 0) {
            assert_eq!(
                rule.offset_micros_at(t),
                named.offset_micros_at(t),
                "{old} at {t}"
            );
            assert_eq!(
                day_start(&rule, 120, day_index(&rule, 120, t) + 1),
                day_start(&named, 120, day_index(&named, 120, t) + 1)
            );
            t += 7 * 3_600_000_000 + 13 * MICROS_PER_MIN;
        }
    }
}

#[test]
fn offset_changes_and_day_start_in_agree_with_day_start() {
    for name in [
        "Europe/Dublin",
        "Australia/Lord_Howe",
        "Africa/Casablanca",
        "America/St_Johns",
        "Pacific/Apia",
    ] {
        let z = TimeZone::named(name).unwrap();
        let from = utc(2011, 1, 1, 0, 0);
        let (first, changes) = z.offset_changes(from, utc(2027, 1, 1, 0, 0));
        assert!(!changes.is_empty(), "{name}");
        assert!(changes.windows(2).all(|w| w[0].0 < w[1].0));
        let d0 = day_index(&z, 0, from) + 1;
        for d in d0..d0 + 16 * 365 {
            for reset in [0, 90, 150] {
                assert_eq!(
                    day_start_in(first, &changes, reset, d),
                    day_start(&z, reset, d),
                    "{name} day {d} reset {reset}"
                );
            }
        }
    }
}

#[test]
fn zones_read_and_write_as_strings_and_old_forms_still_read() {
    let parse = |s: &str| serde_json::from_str::<TimeZone>(s);
    assert_eq!(
        parse(r#""Europe/Berlin""#).unwrap(),
        TimeZone::named("Europe/Berlin").unwrap()
    );
    assert_eq!(parse(r#""UTC""#).unwrap(), TimeZone::Utc);
    assert_eq!(
        parse(r#""+05:30""#).unwrap(),
        TimeZone::Fixed {
            offset_minutes: 330
        }
    );
    assert_eq!(
        parse(r#""-08:00""#).unwrap(),
        TimeZone::Fixed {
            offset_minutes: -480
        }
    );
    assert_eq!(parse(r#"{"kind": "utc"}"#).unwrap(), TimeZone::Utc);
    assert_eq!(
        parse(r#"{"kind": "fixed", "offset_minutes": 60}"#).unwrap(),
        TimeZone::Fixed { offset_minutes: 60 }
    );
    assert_eq!(
        parse(r#"{"kind": "us_daylight", "standard_offset_minutes": -480}"#).unwrap(),
        TimeZone::US_PACIFIC
    );
    assert_eq!(
        parse(r#"{"kind": "us_daylight", "standard_offset_minutes": -600}"#).unwrap(),
        TimeZone::UsDaylight {
            standard_offset_minutes: -600
        }
    );
    for z in [
        TimeZone::Utc,
        TimeZone::Fixed {
            offset_minutes: -150,
        },
        TimeZone::US_PACIFIC,
        TimeZone::named("Asia/Kathmandu").unwrap(),
        TimeZone::UsDaylight {
            standard_offset_minutes: -600,
        },
    ] {
        let s = serde_json::to_string(&z).unwrap();
        assert_eq!(parse(&s).unwrap(), z, "{s}");
    }
    assert_eq!(
        serde_json::to_string(&TimeZone::US_PACIFIC).unwrap(),
        r#""America/Los_Angeles""#
    );
    let e = parse(r#""Mars/Olympus_Mons""#).unwrap_err().to_string();
    assert!(e.contains("Mars/Olympus_Mons"), "{e}");
    assert!(parse(r#""+19:00""#).is_err());
    assert!(matches!(
        TimeZone::named("Nowhere/Else"),
        Err(Error::InvalidConfig { .. })
    ));
    assert!("+5:3x".parse::<TimeZone>().is_err());
}
