//! Parsing of the retry delays providers send with a rate-limit answer.
//!
//! Every parser here takes untrusted text, never panics, and returns `None`
//! for anything it does not understand (negative, overflowing, malformed);
//! the caller then uses its own default delay.

use std::time::Duration;

use limiter_core::calendar::days_from_civil;
use limiter_core::Timestamp;

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// The longest delay any parser returns (about 31.7 years): larger values
/// are taken as garbage rather than a real hint.
const MAX_DELAY_NANOS: u128 = 1_000_000_000 * NANOS_PER_SEC;

/// Strips whitespace and one pair of surrounding double quotes.
fn unquote(value: &str) -> &str {
    let v = value.trim();
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
        .trim()
}

/// A non-negative decimal number (`"12"`, `"1.5"`, `".5"`) times `scale`
/// nanoseconds, in nanoseconds. Fraction digits past the ninth are cut off.
fn decimal_nanos(num: &str, scale: u128) -> Option<u128> {
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if int.len() > 30 {
        return None;
    }
    let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut total = whole.checked_mul(scale)?;
    let mut denom: u128 = 1;
    let mut frac_val: u128 = 0;
    for b in frac.bytes().take(18) {
        frac_val = frac_val * 10 + u128::from(b - b'0');
        denom *= 10;
    }
    total = total.checked_add(frac_val.checked_mul(scale)? / denom)?;
    (total <= MAX_DELAY_NANOS).then_some(total)
}

fn nanos_to_duration(nanos: u128) -> Option<Duration> {
    if nanos > MAX_DELAY_NANOS {
        return None;
    }
    let secs = u64::try_from(nanos / NANOS_PER_SEC).ok()?;
    Some(Duration::new(secs, (nanos % NANOS_PER_SEC) as u32))
}

/// A `Retry-After` value: delay-seconds (`"30"`; a decimal such as `"1.5"`
/// is accepted too) or an HTTP-date in IMF-fixdate form
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`), taken relative to `now`. A date in
/// the past gives zero.
///
/// ```
/// use std::time::Duration;
/// use limiter_core::Timestamp;
/// use limiter_models::retry_after::parse_retry_after;
///
/// let now = Timestamp::from_secs(1_445_412_470); // 2015-10-21T07:27:50Z
/// assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(10)));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let v = unquote(value);
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return decimal_nanos(v, NANOS_PER_SEC).and_then(nanos_to_duration);
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now))
}

/// A `retry-after-ms` value (Azure OpenAI, OpenAI): milliseconds, possibly
/// with a fraction.
///
/// ```
/// # use std::time::Duration;
/// assert_eq!(limiter_models::retry_after::parse_retry_after_ms("1500"), Some(Duration::from_millis(1500)));
/// ```
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    decimal_nanos(unquote(value), 1_000_000).and_then(nanos_to_duration)
}

/// A Go-style duration as in OpenAI's `x-ratelimit-reset-requests` and
/// `x-ratelimit-reset-tokens`: a sequence of decimal numbers each with a
/// unit, `h`, `m`, `s`, `ms`, `us`/`µs`, `ns` (`"1s"`, `"6m0s"`, `"20ms"`,
/// `"1m30.5s"`, `"2h3m"`); a bare `"0"` is zero. Negative durations give
/// `None`.
///
/// ```
/// # use std::time::Duration;
/// use limiter_models::retry_after::parse_go_duration;
/// assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
/// assert_eq!(parse_go_duration("1m30.5s"), Some(Duration::from_millis(90_500)));
/// assert_eq!(parse_go_duration("-1s"), None);
/// ```
pub fn parse_go_duration(value: &str) -> Option<Duration> {
    let mut s = unquote(value);
    if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let num_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        if num_len == 0 {
            return None;
        }
        let (num, rest) = s.split_at(num_len);
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        let scale: u128 = match unit {
            "h" => 3600 * NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "s" => NANOS_PER_SEC,
            "ms" => 1_000_000,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ns" => 1,
            _ => return None,
        };
        total = total.checked_add(decimal_nanos(num, scale)?)?;
        s = rest;
    }
    nanos_to_duration(total)
}

/// A protobuf `Duration` in its JSON form, as in Gemini's
/// `google.rpc.RetryInfo.retryDelay`: decimal seconds ending in `s`
/// (`"17s"`, `"1.5s"`, `"0.043s"`). The value is returned as given: it is
/// never lengthened.
///
/// ```
/// # use std::time::Duration;
/// assert_eq!(limiter_models::retry_after::parse_protobuf_duration("17s"), Some(Duration::from_secs(17)));
/// ```
pub fn parse_protobuf_duration(value: &str) -> Option<Duration> {
    let v = unquote(value);
    let num = v.strip_suffix('s')?;
    decimal_nanos(num, NANOS_PER_SEC).and_then(nanos_to_duration)
}

fn two(s: &str) -> Option<u32> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Microseconds since the epoch of a validated UTC date and time; `None`
/// before the epoch or for an invalid date.
fn civil_micros(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // 60 is a leap second.
    if h > 23 || m > 59 || s > 60 || !(0..=9999).contains(&year) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s);
    Some(secs * 1_000_000)
}

fn clamp_epoch(micros: i64) -> Timestamp {
    Timestamp::from_micros(u64::try_from(micros).unwrap_or(0))
}

fn hms(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split(':');
    let h = two(it.next()?)?;
    let m = two(it.next()?)?;
    let sec = two(it.next()?)?;
    if it.next().is_some() {
        return None;
    }
    Some((h, m, sec))
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn month_of(name: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(name))
        .map(|i| i as u32 + 1)
}

fn digits(s: &str, min: usize, max: usize) -> Option<u32> {
    (s.len() >= min && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// An HTTP-date (RFC 9110) in any of its three forms, as recipients must
/// accept them:
///
/// - IMF-fixdate: `"Sun, 06 Nov 1994 08:49:37 GMT"` (the weekday is
///   optional and not checked);
/// - RFC 850: `"Sunday, 06-Nov-94 08:49:37 GMT"`, whose two-digit year is
///   taken as 20xx when below 70 and 19xx otherwise;
/// - asctime: `"Sun Nov  6 08:49:37 1994"`.
///
/// Dates before the epoch give the epoch.
pub fn parse_http_date(value: &str) -> Option<Timestamp> {
    let v = unquote(value);
    let rest = match v.split_once(',') {
        Some((_weekday, rest)) => rest.trim(),
        None => v,
    };
    let parts: Vec<&str> = rest.split_ascii_whitespace().collect();
    let gmt = |z: &str| z.eq_ignore_ascii_case("GMT") || z.eq_ignore_ascii_case("UTC");
    let (year, month, day, time) = match parts.as_slice() {
        // IMF-fixdate: 06 Nov 1994 08:49:37 GMT
        [d, mon, y, t, z] if gmt(z) && y.len() == 4 => (
            i64::from(digits(y, 4, 4)?),
            month_of(mon)?,
            digits(d, 1, 2)?,
            *t,
        ),
        // RFC 850: 06-Nov-94 08:49:37 GMT
        [dmy, t, z] if gmt(z) => {
            let mut it = dmy.split('-');
            let (d, mon, y) = (it.next()?, it.next()?, it.next()?);
            if it.next().is_some() {
                return None;
            }
            let yy = i64::from(digits(y, 2, 2)?);
            let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
            (year, month_of(mon)?, digits(d, 1, 2)?, *t)
        }
        // asctime: Sun Nov  6 08:49:37 1994 (no comma, a weekday first)
        [_weekday, mon, d, t, y] if v == rest => (
            i64::from(digits(y, 4, 4)?),
            month_of(mon)?,
            digits(d, 1, 2)?,
            *t,
        ),
        _ => return None,
    };
    let (h, m, s) = hms(time)?;
    civil_micros(year, month, day, h, m, s).map(clamp_epoch)
}

/// An RFC 3339 timestamp such as Anthropic's
/// `anthropic-ratelimit-requests-reset`: `"2024-06-01T12:00:30Z"`,
/// `"2024-06-01T12:00:30.5+02:00"`. Instants before the epoch give the
/// epoch.
pub fn parse_rfc3339(value: &str) -> Option<Timestamp> {
    let v = unquote(value);
    if !v.is_ascii() || v.len() < 20 {
        return None;
    }
    let (date, rest) = v.split_at(10);
    let mut d = date.split('-');
    let year = d.next()?;
    if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = year.parse().ok()?;
    let month = two(d.next()?)?;
    let day = two(d.next()?)?;
    if d.next().is_some() {
        return None;
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    if rest.len() < 9 {
        return None;
    }
    let (time, mut rest) = rest.split_at(8);
    let (h, m, s) = hms(time)?;
    let mut frac_micros: i64 = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        if n == 0 {
            return None;
        }
        let digits = &r[..n];
        for (i, b) in digits.bytes().take(6).enumerate() {
            frac_micros += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
        }
        rest = &r[n..];
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            let (oh, om) = (two(oh)?, two(om)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * i64::from(oh * 3600 + om * 60)
        }
    };
    let base = civil_micros(year, month, day, h, m, s)?;
    Some(clamp_epoch(base + frac_micros - offset_secs * 1_000_000))
}

/// Reading retry delays from response headers.
///
/// A namespace: it has no values. See [`RetryHint::from_headers`].
#[derive(Debug)]
pub enum RetryHint {}

impl RetryHint {
    /// The delay one header asks for, if it is a retry header this crate
    /// knows and its value parses (`name` is case-insensitive):
    ///
    /// | header | form |
    /// |---|---|
    /// | `retry-after` | seconds or HTTP-date ([`parse_retry_after`]) |
    /// | `retry-after-ms` (OpenAI, Azure), `x-ms-retry-after-ms` (Azure) | milliseconds ([`parse_retry_after_ms`]) |
    /// | `x-ratelimit-reset-*` (OpenAI, Azure: `-requests`, `-tokens`, `-project-tokens`) | Go duration ([`parse_go_duration`]) |
    /// | `anthropic-ratelimit-*-reset` | RFC 3339 instant ([`parse_rfc3339`]), relative to `now` |
    pub fn from_header(name: &str, value: &str, now: Timestamp) -> Option<Duration> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("retry-after") {
            parse_retry_after(value, now)
        } else if name.eq_ignore_ascii_case("retry-after-ms")
            || name.eq_ignore_ascii_case("x-ms-retry-after-ms")
        {
            parse_retry_after_ms(value)
        } else if starts_with_ignore_case(name, "x-ratelimit-reset-") {
            parse_go_duration(value)
        } else if starts_with_ignore_case(name, "anthropic-ratelimit-")
            && ends_with_ignore_case(name, "-reset")
        {
            parse_rfc3339(value).map(|at| at.duration_since(now))
        } else {
            None
        }
    }

    /// The delay `headers` ask for (see [`from_header`](Self::from_header));
    /// `None` when none applies or parses, so the caller uses its default.
    ///
    /// A retry header (`retry-after`, `retry-after-ms`,
    /// `x-ms-retry-after-ms`) says when to retry, and wins when there is
    /// one (the longest, if several). Without one, the reset headers
    /// (`x-ratelimit-reset-*`, `anthropic-ratelimit-*-reset`) say when each
    /// bucket is full again, which is later than a retry needs: the longest
    /// of them is taken, since the response does not say which dimension was
    /// exhausted, and waiting for the longest never retries too early.
    ///
    /// ```
    /// use std::time::Duration;
    /// use limiter_core::Timestamp;
    /// use limiter_models::RetryHint;
    ///
    /// let headers = [
    ///     ("x-ratelimit-reset-requests", "120ms"),
    ///     ("X-RateLimit-Reset-Tokens", "6m0s"),
    ///     ("content-type", "application/json"),
    /// ];
    /// assert_eq!(RetryHint::from_headers(headers, Timestamp::EPOCH), Some(Duration::from_secs(360)));
    /// // A retry-after wins over a later "fully replenished" reset.
    /// let headers = [("x-ratelimit-reset-tokens", "6m0s"), ("retry-after", "20")];
    /// assert_eq!(RetryHint::from_headers(headers, Timestamp::EPOCH), Some(Duration::from_secs(20)));
    /// ```
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: Timestamp,
    ) -> Option<Duration> {
        let (mut retry, mut reset): (Option<Duration>, Option<Duration>) = (None, None);
        for (name, value) in headers {
            let Some(d) = Self::from_header(name, value, now) else {
                continue;
            };
            let slot = if is_retry_header(name) {
                &mut retry
            } else {
                &mut reset
            };
            *slot = Some(slot.map_or(d, |s| s.max(d)));
        }
        retry.or(reset)
    }
}

/// Whether `name` is a header that says when to retry (not a reset).
fn is_retry_header(name: &str) -> bool {
    let name = name.trim();
    ["retry-after", "retry-after-ms", "x-ms-retry-after-ms"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.is_char_boundary(s.len() - suffix.len())
        && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }
    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    // 2015-10-21T07:27:50Z
    const NOW: Timestamp = Timestamp::from_secs(1_445_412_470);

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("30", NOW), secs(30));
        assert_eq!(parse_retry_after(" 0 ", NOW), secs(0));
        assert_eq!(parse_retry_after("1.5", NOW), ms(1500));
        assert_eq!(parse_retry_after("\"20\"", NOW), secs(20));
        assert_eq!(parse_retry_after("86400", NOW), secs(86_400));
    }

    #[test]
    fn retry_after_http_date() {
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW),
            secs(10)
        );
        // Without weekday, other case.
        assert_eq!(parse_retry_after("21 oct 2015 07:29:00 gmt", NOW), secs(70));
        // In the past: retry now.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NOW),
            secs(0)
        );
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Timestamp::from_secs(784_111_777))
        );
        // RFC 9110's obsolete forms, which recipients must accept too.
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(Timestamp::from_secs(784_111_777))
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(Timestamp::from_secs(784_111_777))
        );
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", NOW),
            secs(10)
        );
        assert_eq!(parse_retry_after("Wed Oct 21 07:28:00 2015", NOW), secs(10));
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(Timestamp::from_secs(1_709_164_800))
        );
    }

    #[test]
    fn retry_after_garbage() {
        for v in [
            "",
            " ",
            "-1",
            "-0.5",
            "soon",
            "1e3",
            "30s",
            "1.2.3",
            ".",
            "NaN",
            "inf",
            "99999999999999999999999999999999999999999999",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 29 Feb 2015 07:28:00 GMT",
            "Wed, 21 Foo 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 25:28:00 GMT",
            "Wed, 21 Oct 2015 07:28:00 PST",
            "Wed, 21 Oct 15 07:28:00 GMT",
            "Wednesday, 21-Oct-2015 07:28:00 GMT",
            "Wed Oct 21 07:28:00 15",
            "Wed, Oct 21 07:28:00 2015",
            "Wed, 21 Oct 2015 07:28 GMT",
            "Wed, 21 Oct 2015 07:28:00 GMT extra",
            "Wed, 21 Oct 2015 7:28:00 GMT",
            "\u{e9}\u{e9}\u{e9}, 21 Oct 2015",
            "\"",
        ] {
            assert_eq!(parse_retry_after(v, NOW), None, "{v:?}");
        }
    }

    #[test]
    fn retry_after_ms_values() {
        assert_eq!(parse_retry_after_ms("1500"), ms(1500));
        assert_eq!(parse_retry_after_ms("0"), ms(0));
        assert_eq!(
            parse_retry_after_ms("20.5"),
            Some(Duration::from_micros(20_500))
        );
        for v in ["", "-5", "abc", "5ms", "1,000"] {
            assert_eq!(parse_retry_after_ms(v), None, "{v:?}");
        }
    }

    #[test]
    fn go_durations_from_openai() {
        assert_eq!(parse_go_duration("1s"), secs(1));
        assert_eq!(parse_go_duration("6m0s"), secs(360));
        assert_eq!(parse_go_duration("20ms"), ms(20));
        assert_eq!(parse_go_duration("1m30.5s"), ms(90_500));
        assert_eq!(parse_go_duration("2h3m"), secs(2 * 3600 + 180));
        assert_eq!(parse_go_duration("500us"), Some(Duration::from_micros(500)));
        assert_eq!(
            parse_go_duration("500\u{b5}s"),
            Some(Duration::from_micros(500))
        );
        assert_eq!(
            parse_go_duration("500\u{3bc}s"),
            Some(Duration::from_micros(500))
        );
        assert_eq!(parse_go_duration("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(parse_go_duration("0"), secs(0));
        assert_eq!(parse_go_duration("0s"), secs(0));
        assert_eq!(parse_go_duration("17.28s"), ms(17_280));
        assert_eq!(parse_go_duration("1h0m0s"), secs(3600));
        assert_eq!(parse_go_duration(".5s"), ms(500));
        assert_eq!(parse_go_duration("1.s"), secs(1));
        assert_eq!(parse_go_duration(" 8.64s "), ms(8640));
        assert_eq!(parse_go_duration("+3s"), secs(3));
    }

    #[test]
    fn go_duration_garbage() {
        for v in [
            "",
            "s",
            "1",
            "12",
            "-1s",
            "1x",
            "1 s",
            "1s ms",
            "1.2.3s",
            "..s",
            "ms1",
            "1S",
            "1sec",
            "1m-2s",
            "abc",
            "1h1",
            "999999999999999999999999999999h",
            "99999999999999h",
            "\u{b5}s",
        ] {
            assert_eq!(parse_go_duration(v), None, "{v:?}");
        }
    }

    #[test]
    fn protobuf_durations_from_gemini() {
        assert_eq!(parse_protobuf_duration("17s"), secs(17));
        assert_eq!(parse_protobuf_duration("\"22s\""), secs(22));
        assert_eq!(parse_protobuf_duration("1.5s"), ms(1500));
        assert_eq!(parse_protobuf_duration("0.043s"), ms(43));
        assert_eq!(parse_protobuf_duration("0s"), secs(0));
        assert_eq!(
            parse_protobuf_duration("1.000000001s"),
            Some(Duration::new(1, 1))
        );
        // Never lengthened (the seed added 1,800 s to Gemini's delay).
        assert_eq!(parse_protobuf_duration("39s"), secs(39));
        for v in [
            "", "17", "-17s", "17ms", "s", "1m", "abc s", "1.5.s", "17 s",
        ] {
            assert_eq!(parse_protobuf_duration(v), None, "{v:?}");
        }
    }

    #[test]
    fn rfc3339_from_anthropic() {
        let t = parse_rfc3339("2015-10-21T07:28:00Z").unwrap();
        assert_eq!(t, Timestamp::from_secs(1_445_412_480));
        assert_eq!(
            parse_rfc3339("2015-10-21T07:28:00.25Z").unwrap(),
            Timestamp::from_micros(1_445_412_480_250_000)
        );
        assert_eq!(parse_rfc3339("2015-10-21T09:28:00+02:00").unwrap(), t);
        assert_eq!(parse_rfc3339("2015-10-21T00:28:00-07:00").unwrap(), t);
        assert_eq!(parse_rfc3339("2015-10-21t07:28:00z").unwrap(), t);
        assert_eq!(parse_rfc3339("2015-10-21 07:28:00Z").unwrap(), t);
        assert_eq!(
            parse_rfc3339("2015-10-21T07:28:00.123456789Z").unwrap(),
            Timestamp::from_micros(1_445_412_480_123_456)
        );
        for v in [
            "",
            "2015-10-21",
            "2015-10-21T07:28:00",
            "2015-13-21T07:28:00Z",
            "2015-02-29T07:28:00Z",
            "2015-10-21T24:28:00Z",
            "2015-10-21T07:28:00+2:00",
            "2015-10-21T07:28:00.Z",
            "2015-10-21T07:28:00Zjunk",
            "15-10-21T07:28:00Z",
            "2015/10/21T07:28:00Z",
            "2015-10-21T07:28:00\u{e9}",
            "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
        ] {
            assert_eq!(parse_rfc3339(v), None, "{v:?}");
        }
    }

    #[test]
    fn retry_headers_win_over_resets_and_the_longest_of_each_counts() {
        // A reset says when the bucket is full again, not when to retry.
        let h = [
            ("x-ratelimit-limit-requests", "500"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "120ms"),
            ("x-ratelimit-reset-tokens", "1m30.5s"),
            ("Retry-After", "20"),
        ];
        assert_eq!(RetryHint::from_headers(h, NOW), secs(20));
        // Without a retry header, the longest reset.
        let h = [
            ("x-ratelimit-reset-requests", "120ms"),
            ("x-ratelimit-reset-tokens", "1m30.5s"),
        ];
        assert_eq!(RetryHint::from_headers(h, NOW), ms(90_500));
        // Azure's x-ms-retry-after-ms.
        let h = [
            ("x-ms-retry-after-ms", "750"),
            ("x-ratelimit-reset-tokens", "10s"),
        ];
        assert_eq!(RetryHint::from_headers(h, NOW), ms(750));
        let h = [("RETRY-AFTER-MS", "2500"), ("retry-after", "2")];
        assert_eq!(RetryHint::from_headers(h, NOW), ms(2500));
        let h = [
            ("anthropic-ratelimit-requests-reset", "2015-10-21T07:28:00Z"),
            ("anthropic-ratelimit-tokens-reset", "2015-10-21T07:27:55Z"),
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("retry-after", "7"),
        ];
        assert_eq!(RetryHint::from_headers(h, NOW), secs(7));
        let h = [
            ("anthropic-ratelimit-requests-reset", "2015-10-21T07:28:00Z"),
            ("anthropic-ratelimit-tokens-reset", "2015-10-21T07:27:55Z"),
        ];
        assert_eq!(RetryHint::from_headers(h, NOW), secs(10));
        let h = [("x-ratelimit-reset-project-tokens", "3s")];
        assert_eq!(RetryHint::from_headers(h, NOW), secs(3));
    }

    #[test]
    fn headers_with_garbage_give_none_or_the_good_ones() {
        let h = [
            ("retry-after", "soon"),
            ("x-ratelimit-reset-requests", "-1s"),
            ("anthropic-ratelimit-tokens-reset", "yesterday"),
            ("retry-after-ms", "NaN"),
            ("x-ratelimit-remaining-requests", "0"),
            ("\u{e9}", "1"),
        ];
        assert_eq!(RetryHint::from_headers(h, NOW), None);
        let h = [("retry-after", "soon"), ("x-ratelimit-reset-tokens", "2s")];
        assert_eq!(RetryHint::from_headers(h, NOW), secs(2));
        assert_eq!(RetryHint::from_headers([], NOW), None);
        // An unrelated header that parses as a number is not a hint.
        assert_eq!(
            RetryHint::from_headers([("content-length", "90")], NOW),
            None
        );
    }
}
