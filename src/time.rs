//! Dates and times, in one place: what "now" is, and reading and writing the timestamps
//! gitlab-runner keeps in config.toml (`token_obtained_at`, `token_expires_at`). The simulator
//! keeps its own clock on purpose (it shares no code with the client side).

use jiff::Timestamp;

/// Now, in Unix seconds.
pub fn now_unix() -> i64 {
    Timestamp::now().as_second()
}

/// A Unix time as gitlab-runner writes timestamps: RFC 3339 in UTC, whole seconds.
pub fn rfc3339(unix: i64) -> String {
    Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| "0001-01-01T00:00:00Z".to_string())
}

/// A TOML datetime in Unix seconds; `None` for gitlab-runner's "never" (year 1) and for
/// datetimes without a date.
pub fn toml_unix(dt: &toml_edit::Datetime) -> Option<i64> {
    let date = dt.date?;
    if date.year <= 1 {
        return None;
    }
    let time = dt.time.unwrap_or(toml_edit::Time {
        hour: 0,
        minute: 0,
        second: Some(0),
        nanosecond: None,
    });
    let civil = jiff::civil::date(
        i16::try_from(date.year).ok()?,
        i8::try_from(date.month).ok()?,
        i8::try_from(date.day).ok()?,
    )
    .at(
        i8::try_from(time.hour).ok()?,
        i8::try_from(time.minute).ok()?,
        i8::try_from(time.second.unwrap_or(0)).ok()?,
        0,
    );
    let offset_secs = match dt.offset {
        Some(toml_edit::Offset::Custom { minutes }) => i32::from(minutes) * 60,
        _ => 0,
    };
    let offset = jiff::tz::Offset::from_seconds(offset_secs).ok()?;
    Some(
        civil
            .to_zoned(offset.to_time_zone())
            .ok()?
            .timestamp()
            .as_second(),
    )
}

/// A span of seconds as a person says it: "3 days", "5 hours", "2 minutes".
pub fn human_secs(s: i64) -> String {
    match s {
        s if s >= 86_400 => format!("{} days", s / 86_400),
        s if s >= 3600 => format!("{} hours", s / 3600),
        s => format!("{} minutes", (s / 60).max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_datetimes_read_as_unix_seconds_with_offsets() {
        let dt: toml_edit::Datetime = "2026-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(toml_unix(&dt), Some(1_767_323_045));
        let dt: toml_edit::Datetime = "2026-01-02T05:04:05+02:00".parse().unwrap();
        assert_eq!(toml_unix(&dt), Some(1_767_323_045));
        let never: toml_edit::Datetime = "0001-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(toml_unix(&never), None);
    }

    #[test]
    fn now_is_written_as_gitlab_runner_writes_it() {
        let s = rfc3339(1_767_323_045);
        assert_eq!(s, "2026-01-02T03:04:05Z");
        assert!(rfc3339(now_unix()).parse::<toml_edit::Datetime>().is_ok());
    }
}
