//! Time for the simulator: milliseconds since the Unix epoch, shifted by an offset that tests
//! move forward to age runners and expire tokens without waiting.
//!
//! GitLab speaks ISO 8601 (`2026-05-03T12:00:00.000Z`) in bodies, plain dates for personal
//! access token expiry, and HTTP dates in `If-Unmodified-Since`; all three are here so the
//! simulator needs no date crate.

use std::time::{SystemTime, UNIX_EPOCH};

pub const SECOND: i64 = 1000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// Real wall-clock time in milliseconds.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// Howard Hinnant's days-from-civil and civil-from-days: exact for the proleptic Gregorian
// calendar, which is what GitLab's timestamps use.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2026-05-03T12:00:00.000Z`, the shape Rails gives timestamps in API responses.
pub fn iso(ms: i64) -> String {
    let days = ms.div_euclid(DAY);
    let rem = ms.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / HOUR,
        rem % HOUR / MINUTE,
        rem % MINUTE / SECOND,
        rem % SECOND
    )
}

/// `2026-05-03`, the shape of a personal access token's `expires_at`.
pub fn date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`, for headers such as `RateLimit-ResetTime`.
pub fn http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = ms.div_euclid(DAY);
    let rem = ms.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[m as usize - 1],
        rem / HOUR,
        rem % HOUR / MINUTE,
        rem % MINUTE / SECOND
    )
}

fn num(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn ymd(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (num(it.next()?)?, num(it.next()?)?, num(it.next()?)?);
    if s.len() != 10 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m as u32, d as u32) * DAY)
}

/// Parses `YYYY-MM-DD` or an ISO 8601 date-time (`T` or space, optional seconds, fraction,
/// and `Z` or `±HH:MM` offset; no offset means UTC, as Rails assumes for API input).
pub fn parse_iso(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() == 10 {
        return ymd(s);
    }
    let (day, rest) = (s.get(..10)?, s.get(10..)?);
    let base = ymd(day)?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (clock, offset_ms) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']).filter(|&i| i >= 5) {
        let sign = if rest.as_bytes()[i] == b'-' { -1 } else { 1 };
        let off = rest[i + 1..].replace(':', "");
        if off.len() != 4 {
            return None;
        }
        let (h, m) = (num(&off[..2])?, num(&off[2..])?);
        (&rest[..i], sign * (h * HOUR + m * MINUTE))
    } else {
        (rest, 0)
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.split(':');
    let h = num(parts.next()?)?;
    let m = num(parts.next()?)?;
    let sec = parts.next().map(num).unwrap_or(Some(0))?;
    if parts.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let frac_ms = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        num(&digits)?
    };
    Some(base + h * HOUR + m * MINUTE + sec * SECOND + frac_ms - offset_ms)
}

/// Parses an RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rest = s.trim().split_once(", ")?.1;
    let f: Vec<&str> = rest.split(' ').collect();
    if f.len() != 5 || f[4] != "GMT" {
        return None;
    }
    let m = MONTHS.iter().position(|&x| x == f[1])? + 1;
    let day = days_from_civil(num(f[2])?, m as u32, num(f[0])? as u32);
    let t: Vec<i64> = f[3].split(':').map(num).collect::<Option<_>>()?;
    if t.len() != 3 {
        return None;
    }
    Some(day * DAY + t[0] * HOUR + t[1] * MINUTE + t[2] * SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let t = 1_777_777_777_123;
        assert_eq!(parse_iso(&iso(t)), Some(t));
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(date(DAY * 365), "1971-01-01");
        assert_eq!(
            parse_iso("2000-02-29"),
            Some(days_from_civil(2000, 2, 29) * DAY)
        );
    }

    #[test]
    fn parses_offsets_and_http_dates() {
        assert_eq!(
            parse_iso("2026-01-01T02:00:00+02:00"),
            parse_iso("2026-01-01T00:00:00Z")
        );
        assert_eq!(parse_iso("2026-01-01T00:00"), parse_iso("2026-01-01"));
        assert_eq!(parse_iso("2026-13-01"), None);
        assert_eq!(parse_iso("soon"), None);
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            parse_iso("1994-11-06T08:49:37Z")
        );
        let t = parse_iso("1994-11-06T08:49:37Z").unwrap();
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
