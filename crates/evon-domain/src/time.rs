//! Rendering instants the way the original's API does.

use chrono::{DateTime, Utc};

/// ISO 8601 in the hub's time zone, with microseconds when there are any, and `Z` for a zero
/// offset: `2026-12-04T02:05:38.958060Z`, `2026-12-04T13:05:38.958060+11:00`.
pub fn render_datetime(instant: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    let local = instant.with_timezone(&zone);
    let fraction = if local.timestamp_subsec_micros() == 0 {
        ""
    } else {
        "%.6f"
    };
    let text = local
        .format(&format!("%Y-%m-%dT%H:%M:%S{fraction}%:z"))
        .to_string();
    match text.strip_suffix("+00:00") {
        Some(stem) => format!("{stem}Z"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn renders_in_the_configured_zone() {
        let instant = Utc.with_ymd_and_hms(2026, 12, 4, 2, 5, 38).unwrap()
            + chrono::Duration::microseconds(958_060);
        assert_eq!(
            render_datetime(instant, chrono_tz::UTC),
            "2026-12-04T02:05:38.958060Z"
        );
        assert_eq!(
            render_datetime(instant, chrono_tz::Australia::Sydney),
            "2026-12-04T13:05:38.958060+11:00"
        );
        assert_eq!(
            render_datetime(instant, chrono_tz::Europe::London),
            "2026-12-04T02:05:38.958060Z"
        );
        let whole = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        assert_eq!(
            render_datetime(whole, chrono_tz::America::New_York),
            "2026-05-31T20:00:00-04:00"
        );
    }
}
