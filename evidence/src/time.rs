//! Instants as signed text: milliseconds since the Unix epoch written as RFC 3339 UTC with exactly
//! three fraction digits (`2026-12-01T13:00:00.123Z`), one text per instant so that a signature
//! over the text is a signature over the instant.

/// An instant that cannot be written in the receipt form (before year 0 or after year 9999).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{millis} ms since 1970 is outside the years 0000 to 9999")]
pub struct OutOfRange {
    /// The instant, in milliseconds since 1970-01-01T00:00:00Z.
    pub millis: i64,
}

/// A text that is not in the receipt form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not an RFC 3339 UTC instant with milliseconds (e.g. 2026-12-01T13:00:00.123Z)")]
pub struct TimeParseError {
    /// The text found (cut to 80 characters).
    pub text: String,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `millis` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_millis(millis: i64) -> Result<String, OutOfRange> {
    let days = millis.div_euclid(86_400_000);
    let in_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return Err(OutOfRange { millis });
    }
    let (h, m, s, ms) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    Ok(format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z"))
}

/// Parses exactly the form [`format_millis`] writes (no other offset, precision or spelling).
pub fn parse_millis(text: &str) -> Result<i64, TimeParseError> {
    let refuse = || TimeParseError { text: text.chars().take(80).collect() };
    let b = text.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return Err(refuse());
    }
    if b[19] != b'.' || b[23] != b'Z' {
        return Err(refuse());
    }
    let number = |from: usize, to: usize| -> Result<i64, TimeParseError> {
        let digits = &b[from..to];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(refuse());
        }
        Ok(digits.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (h, m, s, ms) = (number(11, 13)?, number(14, 16)?, number(17, 19)?, number(20, 23)?);
    if !(1..=12).contains(&month) || day < 1 || h > 23 || m > 59 || s > 59 {
        return Err(refuse());
    }
    let days = days_from_civil(year, month, day);
    // A day past the month's end (02-30) would land in the next month: refuse it.
    if civil_from_days(days) != (year, month, day) {
        return Err(refuse());
    }
    Ok(days * 86_400_000 + h * 3_600_000 + m * 60_000 + s * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        assert_eq!(format_millis(0).unwrap(), "1970-01-01T00:00:00.000Z");
        // 2026-12-01T13:00:00.123Z
        let at = 1_796_130_000_123;
        assert_eq!(format_millis(at).unwrap(), "2026-12-01T13:00:00.123Z");
        assert_eq!(parse_millis("2026-12-01T13:00:00.123Z").unwrap(), at);
        assert_eq!(format_millis(951_782_400_000).unwrap(), "2000-02-29T00:00:00.000Z");
        for millis in [-1, 1, 86_399_999, 4_102_444_800_000, 253_402_300_799_999] {
            assert_eq!(parse_millis(&format_millis(millis).unwrap()).unwrap(), millis);
        }
        assert!(format_millis(253_402_300_800_000).is_err());
    }

    #[test]
    fn refuses_other_spellings() {
        for bad in [
            "2026-12-01T13:00:00Z",
            "2026-12-01T13:00:00.123+08:00",
            "2026-12-01 13:00:00.123Z",
            "2026-02-30T13:00:00.123Z",
            "2026-13-01T13:00:00.123Z",
            "2026-12-01T24:00:00.123Z",
            "2026-12-01T13:00:00.12aZ",
            "",
        ] {
            assert!(parse_millis(bad).is_err(), "{bad}");
        }
    }
}
