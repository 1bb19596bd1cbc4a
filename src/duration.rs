//! The one duration grammar: Go durations (`30s`, `5m`, `1h30m`, `1.5s`), as gitlab-runner
//! writes them in config.toml, and plain seconds (`90`) where runnerform itself reads a
//! duration (every duration flag, the gitlab node's `timeout`).
//!
//! Two parsers used to disagree (`--lock-timeout 5m` was refused while `--wait-online 5m` was
//! taken) and one overflowed on a long enough number. Every caller goes through here, and every
//! value is checked against Go's range (an int64 of nanoseconds, about 292 years), so no input
//! can overflow the arithmetic that later adds a duration to a clock.

use std::time::Duration;

/// The longest duration Go can represent, in nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// What a person is told when a duration does not parse.
pub const GRAMMAR: &str = "seconds (90) or a Go duration (90s, 5m, 1h30m)";

/// Nanoseconds of a Go duration string (`1h30m`, `15m0s`, `300ms`, `-2h`), as Go's
/// `time.ParseDuration` reads it: `[-+]?` then one or more `number unit`, or a bare `0`.
/// `None` when it is not one, or when it does not fit Go's int64 of nanoseconds.
pub fn go_nanos(s: &str) -> Option<i128> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if body == "0" {
        return Some(0);
    }
    if body.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        // "." alone, or a unit with no number before it.
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, next) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        total = total.checked_add(component(int, frac, scale)?)?;
        if total > MAX_NANOS {
            return None;
        }
        rest = next;
    }
    let n = i128::try_from(total).ok()?;
    Some(if neg { -n } else { n })
}

/// `int.frac` units of `scale` nanoseconds each, or `None` past Go's range. Digits beyond a
/// nanosecond are dropped, as Go drops them.
fn component(int: &str, frac: &str, scale: u128) -> Option<u128> {
    let mut whole: u128 = 0;
    for d in int.bytes() {
        whole = whole.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
        if whole > MAX_NANOS {
            return None;
        }
    }
    let mut nanos = whole.checked_mul(scale)?;
    let mut unit = scale;
    for d in frac.bytes() {
        unit /= 10;
        if unit == 0 {
            break;
        }
        nanos += u128::from(d - b'0') * unit;
    }
    (nanos <= MAX_NANOS).then_some(nanos)
}

/// A duration flag or value: plain seconds or a Go duration; never negative, never longer
/// than Go's range.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u64>() {
            Ok(secs) if u128::from(secs) * 1_000_000_000 <= MAX_NANOS => {
                Ok(Duration::from_secs(secs))
            }
            _ => Err(too_long(s)),
        };
    }
    match go_nanos(s) {
        Some(n) if n >= 0 => Ok(Duration::from_nanos(n as u64)),
        Some(_) => Err(format!("\"{s}\" is negative: a duration here is 0 or more")),
        None if looks_numeric(s) => Err(too_long(s)),
        None => Err(format!("\"{s}\" is not a duration: write {GRAMMAR}")),
    }
}

/// Whole seconds of a duration (see [`parse`]), a fraction of a second rounding up so that
/// `500ms` is not silently zero. The value parser of flags whose field counts seconds.
pub fn parse_secs(s: &str) -> Result<u64, String> {
    let d = parse(s)?;
    Ok(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// Parses well but overflowed: digits and units only.
fn looks_numeric(s: &str) -> bool {
    let body = s.trim_start_matches(['-', '+']);
    body.bytes().any(|b| b.is_ascii_digit())
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || ".nsuµμmh".contains(c))
        && go_nanos_syntax_ok(body)
}

/// Whether `s` has Go's shape when numbers may be any size: told apart from a typo so the
/// message can say "too long" rather than "not a duration".
fn go_nanos_syntax_ok(s: &str) -> bool {
    // Shrinking every number to 1 keeps the shape and removes the overflow.
    let mut shrunk = String::new();
    let mut in_num = false;
    for c in s.chars() {
        if c.is_ascii_digit() || c == '.' {
            if !in_num {
                shrunk.push('1');
                in_num = true;
            }
        } else {
            shrunk.push(c);
            in_num = false;
        }
    }
    go_nanos(&shrunk).is_some()
}

fn too_long(s: &str) -> String {
    format!("\"{s}\" is too long: a duration is at most 2562047h (about 292 years)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_read_as_go_reads_them() {
        assert_eq!(go_nanos("0"), Some(0));
        assert_eq!(go_nanos("15m"), go_nanos("15m0s"));
        assert_eq!(go_nanos("1h30m"), Some(5_400_000_000_000));
        assert_eq!(go_nanos("1.5s"), Some(1_500_000_000));
        assert_eq!(go_nanos(".5s"), Some(500_000_000));
        assert_eq!(go_nanos("1.s"), Some(1_000_000_000));
        assert_eq!(go_nanos("-2ms"), Some(-2_000_000));
        assert_eq!(go_nanos("10us"), Some(10_000));
        assert_eq!(go_nanos("10µs"), Some(10_000));
        assert_eq!(go_nanos("1.0000000001s"), Some(1_000_000_000));
        for bad in [
            "", "15", "m", "1x", "1.2.3s", "1 h", "h1", ".s", "-", "1h-5m", "5mm",
        ] {
            assert_eq!(go_nanos(bad), None, "{bad}");
        }
    }

    #[test]
    fn nothing_overflows() {
        assert_eq!(go_nanos("2562047h"), Some(2_562_047 * 3_600_000_000_000));
        assert_eq!(go_nanos("2562048h"), None);
        assert_eq!(go_nanos("5124095576030432h"), None);
        assert_eq!(go_nanos("99999999999999999999999999999999999999999h"), None);
        assert_eq!(go_nanos("2562047h2562047h"), None);
        assert!(parse("5124095576030432h").unwrap_err().contains("too long"));
        assert!(
            parse("18446744073709551615")
                .unwrap_err()
                .contains("too long")
        );
        assert!(
            parse("99999999999999999999999")
                .unwrap_err()
                .contains("too long")
        );
        assert_eq!(
            parse("9223372036").unwrap(),
            Duration::from_secs(9_223_372_036)
        );
    }

    #[test]
    fn flags_take_seconds_or_go_durations() {
        assert_eq!(parse("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_secs("5m").unwrap(), 300);
        assert_eq!(parse_secs("500ms").unwrap(), 1);
        assert_eq!(parse_secs("86400").unwrap(), 86_400);
        assert!(parse("-5m").unwrap_err().contains("negative"));
        assert!(parse("soon").unwrap_err().contains("is not a duration"));
        assert!(
            parse("5 minutes")
                .unwrap_err()
                .contains("is not a duration")
        );
    }
}
