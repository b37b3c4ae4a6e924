//! Calendar days in a time zone, for daily limits that reset at a set local
//! time (Gemini's requests per day reset at midnight in Los Angeles).
//!
//! A zone is UTC, a fixed offset, or any zone of the IANA time zone
//! database by name ([`TimeZone::named`]), whose offsets come from the
//! [`jiff`] crate: the system's database (`/usr/share/zoneinfo`) when there
//! is one, else the copy compiled in, so that a minimal container knows
//! every zone too.
//!
//! A local day starts at the first instant its reset time is reached: the
//! first occurrence when the clocks go back and the reset time comes twice,
//! the change itself when they go forward over it. Stores that run the state
//! machine elsewhere (the Redis scripts) get the zone's offset changes
//! around "now" from [`TimeZone::offset_changes`] and apply the same rule
//! to them ([`day_start_in`]).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, OnceLock};

use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

const MICROS_PER_MIN: i64 = 60_000_000;
const MICROS_PER_DAY: i64 = 86_400_000_000;
const MICROS_PER_SEC: i64 = 1_000_000;
/// Beyond any UTC offset (the database's reach ±26 hours): how far around a
/// local instant its readings in UTC can be.
const REACH: i64 = 27 * 3_600_000_000;

/// The time zone in which a calendar day is counted.
///
/// In configuration files a zone is written as a string: `"UTC"`, a fixed
/// offset such as `"+05:30"` or `"-08:00"`, or an IANA name such as
/// `"Europe/Berlin"`. The tagged forms of earlier versions
/// (`{ kind = "fixed", offset_minutes = 330 }`) are still read.
///
/// ```
/// use limiter_core::TimeZone;
///
/// let berlin = TimeZone::named("Europe/Berlin")?;
/// assert_eq!(berlin.to_string(), "Europe/Berlin");
/// let tokyo: TimeZone = "Asia/Tokyo".parse()?;
/// assert_eq!(tokyo.offset_micros_at(0), 9 * 3_600_000_000);
/// assert_eq!("+05:30".parse::<TimeZone>()?, TimeZone::Fixed { offset_minutes: 330 });
/// # Ok::<(), limiter_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeZone {
    /// Coordinated Universal Time.
    Utc,
    /// A fixed offset from UTC, in minutes east of UTC (UTC-8 is `-480`).
    Fixed {
        /// Minutes east of UTC, within ±18 hours.
        offset_minutes: i32,
    },
    /// A zone with United States daylight saving time as in force since
    /// 2007: one hour ahead from the second Sunday of March, 02:00 local
    /// standard time, to the first Sunday of November, 02:00 local daylight
    /// time. Prefer a named zone ([`TimeZone::named`]), which also knows the
    /// rules of other years and places.
    UsDaylight {
        /// The standard-time offset in minutes east of UTC (Pacific: `-480`).
        standard_offset_minutes: i32,
    },
    /// A zone of the IANA time zone database.
    Named(ZoneName),
}

/// The name of a zone of the IANA time zone database, checked against it:
/// a small copyable handle (the zone's rules are loaded once per process).
///
/// ```
/// use limiter_core::calendar::ZoneName;
///
/// let z = ZoneName::new("america/new_york")?;
/// assert_eq!(z.as_str(), "America/New_York");
/// assert!(ZoneName::new("Mars/Olympus_Mons").is_err());
/// # Ok::<(), limiter_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZoneName(u16);

/// How many distinct zones one process may name (the database has about
/// 600 names, links included).
const MAX_ZONES: usize = 2048;

struct Zone {
    name: &'static str,
    tz: jiff::tz::TimeZone,
}

/// The zones named so far, by handle; written once each, read without a
/// lock.
static ZONES: [OnceLock<Zone>; MAX_ZONES] = [const { OnceLock::new() }; MAX_ZONES];

/// Handles by lowercased name, and the US daylight-saving zones by standard
/// offset; only for creating handles.
struct Registry {
    by_name: HashMap<String, u16>,
    next: usize,
    us_daylight: HashMap<i32, &'static jiff::tz::TimeZone>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| {
    let mut r = Registry {
        by_name: HashMap::new(),
        next: 0,
        us_daylight: HashMap::new(),
    };
    // The handles of the constants: fixed, so that they can be constants.
    for (name, posix) in [
        ("America/Los_Angeles", "PST8PDT,M3.2.0,M11.1.0"),
        ("America/New_York", "EST5EDT,M3.2.0,M11.1.0"),
    ] {
        // Were the database missing (the compiled-in copy makes that
        // unlikely), their rules since 2007 still hold.
        let tz = jiff::tz::TimeZone::get(name)
            .or_else(|_| jiff::tz::TimeZone::posix(posix))
            .unwrap_or(jiff::tz::TimeZone::UTC);
        r.insert(name, tz);
    }
    Mutex::new(r)
});

impl Registry {
    fn insert(&mut self, name: &str, tz: jiff::tz::TimeZone) -> Option<u16> {
        if self.next >= MAX_ZONES {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        let _ = ZONES[i].set(Zone { name, tz });
        self.by_name.insert(name.to_ascii_lowercase(), i as u16);
        Some(i as u16)
    }
}

impl ZoneName {
    /// America/Los_Angeles.
    pub const LOS_ANGELES: ZoneName = ZoneName(0);
    /// America/New_York.
    pub const NEW_YORK: ZoneName = ZoneName(1);

    /// The zone named `name` in the IANA time zone database (any case).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the database has no such zone.
    pub fn new(name: &str) -> Result<ZoneName> {
        let key = name.to_ascii_lowercase();
        let mut r = REGISTRY.lock();
        if let Some(&i) = r.by_name.get(&key) {
            return Ok(ZoneName(i));
        }
        let unknown = |why: String| Error::InvalidConfig {
            field: "day.zone".into(),
            reason: why,
        };
        let tz = jiff::tz::TimeZone::get(name)
            .map_err(|e| unknown(format!("no time zone {name:?} in the tz database: {e}")))?;
        let canonical = tz.iana_name().unwrap_or(name).to_string();
        if let Some(&i) = r.by_name.get(&canonical.to_ascii_lowercase()) {
            r.by_name.insert(key, i);
            return Ok(ZoneName(i));
        }
        let i = r.insert(&canonical, tz).ok_or_else(|| {
            unknown(format!(
                "more than {MAX_ZONES} distinct time zones named in one process"
            ))
        })?;
        r.by_name.insert(key, i);
        Ok(ZoneName(i))
    }

    fn zone(self) -> &'static Zone {
        LazyLock::force(&REGISTRY);
        ZONES[usize::from(self.0)]
            .get()
            .expect("a ZoneName is only made for a registered zone")
    }

    /// The zone's name as the database spells it.
    pub fn as_str(self) -> &'static str {
        self.zone().name
    }
}

impl fmt::Debug for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZoneName({:?})", self.as_str())
    }
}

impl fmt::Display for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The zone of US daylight saving on `standard` minutes east, as a POSIX
/// rule (the same rule the variant documents).
fn us_daylight_tz(standard: i32) -> &'static jiff::tz::TimeZone {
    let mut r = REGISTRY.lock();
    if let Some(tz) = r.us_daylight.get(&standard) {
        return tz;
    }
    // POSIX offsets count west; the daylight offset defaults to one hour
    // ahead and the changes to 02:00 local.
    let west = -standard;
    let sign = if west < 0 { "-" } else { "" };
    let rule = format!(
        "<STD>{sign}{}:{:02}<DST>,M3.2.0,M11.1.0",
        west.abs() / 60,
        west.abs() % 60
    );
    let tz = jiff::tz::TimeZone::posix(&rule).unwrap_or_else(|_| {
        jiff::tz::TimeZone::fixed(
            jiff::tz::Offset::from_seconds(standard * 60).unwrap_or(jiff::tz::Offset::UTC),
        )
    });
    let tz: &'static jiff::tz::TimeZone = Box::leak(Box::new(tz));
    r.us_daylight.insert(standard, tz);
    tz
}

fn jiff_ts(utc_micros: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(utc_micros).unwrap_or(if utc_micros < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

impl TimeZone {
    /// America/Los_Angeles.
    pub const US_PACIFIC: TimeZone = TimeZone::Named(ZoneName::LOS_ANGELES);

    /// America/New_York.
    pub const US_EASTERN: TimeZone = TimeZone::Named(ZoneName::NEW_YORK);

    /// The zone named `name` in the IANA time zone database
    /// (`"Europe/Berlin"`, any case).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the database has no such zone.
    pub fn named(name: &str) -> Result<TimeZone> {
        ZoneName::new(name).map(TimeZone::Named)
    }

    pub(crate) fn is_valid(&self) -> bool {
        let m = match *self {
            TimeZone::Utc | TimeZone::Named(_) => 0,
            TimeZone::Fixed { offset_minutes } => offset_minutes,
            TimeZone::UsDaylight {
                standard_offset_minutes,
            } => standard_offset_minutes,
        };
        (-18 * 60..=18 * 60).contains(&m)
    }

    /// The fixed offset in µs, or the database's zone.
    fn rules(&self) -> std::result::Result<i64, &'static jiff::tz::TimeZone> {
        match *self {
            TimeZone::Utc => Ok(0),
            TimeZone::Fixed { offset_minutes } => Ok(i64::from(offset_minutes) * MICROS_PER_MIN),
            TimeZone::UsDaylight {
                standard_offset_minutes,
            } => Err(us_daylight_tz(standard_offset_minutes)),
            TimeZone::Named(z) => Err(&z.zone().tz),
        }
    }

    /// The offset from UTC, in microseconds, in force at `utc_micros`.
    pub fn offset_micros_at(&self, utc_micros: i64) -> i64 {
        match self.rules() {
            Ok(fixed) => fixed,
            Err(tz) => i64::from(tz.to_offset(jiff_ts(utc_micros)).seconds()) * MICROS_PER_SEC,
        }
    }

    /// The zone's offsets over `from..to` (UTC µs): the offset in force at
    /// `from`, then each change after `from` and before `to` as the instant
    /// it takes effect and the offset from then on, in time order.
    ///
    /// With [`day_start_in`] this is all a store needs to find the days of
    /// that span; the Redis scripts get it as an argument.
    ///
    /// ```
    /// use limiter_core::TimeZone;
    ///
    /// let h = 3_600_000_000;
    /// // 2026 in Berlin: CEST from 29 March 01:00 UTC to 25 October 01:00 UTC.
    /// let (first, changes) = TimeZone::named("Europe/Berlin")?
    ///     .offset_changes(1_767_225_600_000_000, 1_798_761_600_000_000);
    /// assert_eq!(first, h);
    /// assert_eq!(changes, [(1_774_746_000_000_000, 2 * h), (1_792_890_000_000_000, h)]);
    /// # Ok::<(), limiter_core::Error>(())
    /// ```
    pub fn offset_changes(&self, from: i64, to: i64) -> (i64, Vec<(i64, i64)>) {
        match self.rules() {
            Ok(fixed) => (fixed, Vec::new()),
            Err(tz) => {
                let first = i64::from(tz.to_offset(jiff_ts(from)).seconds()) * MICROS_PER_SEC;
                let changes = tz
                    .following(jiff_ts(from))
                    .map(|t| {
                        (
                            t.timestamp().as_microsecond(),
                            i64::from(t.offset().seconds()) * MICROS_PER_SEC,
                        )
                    })
                    .take_while(|&(at, _)| at < to)
                    .collect();
                (first, changes)
            }
        }
    }
}

impl fmt::Display for TimeZone {
    /// The form configuration files use: `UTC`, `+05:30`, the IANA name;
    /// `US daylight saving, standard -08:00` for that variant.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = |f: &mut fmt::Formatter<'_>, m: i32| {
            let sign = if m < 0 { '-' } else { '+' };
            write!(f, "{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60)
        };
        match *self {
            TimeZone::Utc => f.write_str("UTC"),
            TimeZone::Fixed { offset_minutes } => offset(f, offset_minutes),
            TimeZone::UsDaylight {
                standard_offset_minutes,
            } => {
                f.write_str("US daylight saving, standard ")?;
                offset(f, standard_offset_minutes)
            }
            TimeZone::Named(z) => f.write_str(z.as_str()),
        }
    }
}

/// `+HH:MM` or `-HH:MM` (also `+HH`, `UTC+HH:MM`), in minutes east.
fn parse_offset(s: &str) -> Option<i32> {
    let s = s
        .strip_prefix("UTC")
        .or_else(|| s.strip_prefix("utc"))
        .unwrap_or(s);
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    if h.is_empty()
        || h.len() > 2
        || m.len() > 2
        || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60).then_some(sign * (h * 60 + m))
}

impl FromStr for TimeZone {
    type Err = Error;

    /// `"UTC"` (or `"Z"`), a fixed offset (`"+05:30"`, `"-08:00"`,
    /// `"UTC+01"`), or an IANA name.
    fn from_str(s: &str) -> Result<TimeZone> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" {
            return Ok(TimeZone::Utc);
        }
        if let Some(offset_minutes) = parse_offset(t) {
            let z = TimeZone::Fixed { offset_minutes };
            if !z.is_valid() {
                return Err(Error::number(
                    "day.zone",
                    format!("the UTC offset {t:?} is beyond ±18 hours"),
                ));
            }
            return Ok(z);
        }
        TimeZone::named(t)
    }
}

impl Serialize for TimeZone {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match *self {
            TimeZone::UsDaylight {
                standard_offset_minutes,
            } => Tagged::UsDaylight {
                standard_offset_minutes,
            }
            .serialize(s),
            _ => s.collect_str(self),
        }
    }
}

/// The tagged forms of earlier versions, still read.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Tagged {
    Utc,
    Fixed { offset_minutes: i32 },
    UsDaylight { standard_offset_minutes: i32 },
    Named { name: String },
}

/// The zones whose rules `UsDaylight` wrote by hand, by standard offset.
const US_MAINLAND: [(i32, &str); 5] = [
    (-300, "America/New_York"),
    (-360, "America/Chicago"),
    (-420, "America/Denver"),
    (-480, "America/Los_Angeles"),
    (-540, "America/Anchorage"),
];

#[derive(Deserialize)]
#[serde(untagged)]
enum AnyForm {
    Text(String),
    Tagged(Tagged),
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        match AnyForm::deserialize(d)? {
            AnyForm::Text(s) => s.parse().map_err(D::Error::custom),
            AnyForm::Tagged(Tagged::Utc) => Ok(TimeZone::Utc),
            AnyForm::Tagged(Tagged::Fixed { offset_minutes }) => {
                Ok(TimeZone::Fixed { offset_minutes })
            }
            // The old form of the mainland US zones reads as their names
            // (the same days since 2007, and right before).
            AnyForm::Tagged(Tagged::UsDaylight {
                standard_offset_minutes,
            }) => match US_MAINLAND
                .iter()
                .find(|(m, _)| *m == standard_offset_minutes)
            {
                Some((_, name)) => TimeZone::named(name).map_err(D::Error::custom),
                None => Ok(TimeZone::UsDaylight {
                    standard_offset_minutes,
                }),
            },
            AnyForm::Tagged(Tagged::Named { name }) => {
                TimeZone::named(&name).map_err(D::Error::custom)
            }
        }
    }
}

fn reset_micros(reset_minutes: u32) -> i64 {
    i64::from(reset_minutes) * MICROS_PER_MIN
}

fn raw_index(zone: &TimeZone, reset_minutes: u32, utc_micros: i64) -> i64 {
    let local = utc_micros + zone.offset_micros_at(utc_micros) - reset_micros(reset_minutes);
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
/// the reset time, the change.
pub fn day_start(zone: &TimeZone, reset_minutes: u32, day: i64) -> i64 {
    let local = day * MICROS_PER_DAY + reset_micros(reset_minutes);
    match zone.rules() {
        Ok(fixed) => local - fixed,
        Err(_) => {
            let (first, changes) = zone.offset_changes(local - REACH, local + REACH);
            first_reaching(local, first, &changes)
        }
    }
}

/// [`day_start`] from a zone's offsets as [`TimeZone::offset_changes`]
/// gives them: exact for the days whose start is within the span they
/// cover (less a day at either end); beyond, the offsets at the ends are
/// taken to last.
pub fn day_start_in(first: i64, changes: &[(i64, i64)], reset_minutes: u32, day: i64) -> i64 {
    first_reaching(
        day * MICROS_PER_DAY + reset_micros(reset_minutes),
        first,
        changes,
    )
}

/// The first instant `t` with `t + offset(t) ≥ local`, where the offset is
/// `first` before the first change and each change's from its instant on:
/// in each stretch of one offset, the earliest instant of the stretch that
/// reads `local` or later; the first stretch that has one wins.
fn first_reaching(local: i64, first: i64, changes: &[(i64, i64)]) -> i64 {
    let mut offset = first;
    let mut from = i64::MIN;
    for &(at, next) in changes {
        let t = (local - offset).max(from);
        if t < at {
            return t;
        }
        offset = next;
        from = at;
    }
    (local - offset).max(from)
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
