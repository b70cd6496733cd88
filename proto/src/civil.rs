//! Civil dates and Beijing time (UTC+8), without a time-zone database: China has had a single fixed
//! offset since 1991, which is all the exchange needs.

use crate::{Date, Timestamp};
use std::fmt;

/// Seconds east of UTC of China Standard Time (Beijing time).
pub const BEIJING_OFFSET_SECONDS: i64 = 8 * 3600;

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` days after 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days in a month of a year.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// A date from its parts, or `None` when it is not a real calendar date (years 1–9999).
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        let ok = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year as i64, month);
        ok.then_some(Date { year, month: month as i32, day: day as i32 })
    }

    /// Whether the parts form a real calendar date.
    pub fn is_valid(&self) -> bool {
        Date::from_ymd(self.year, self.month.max(0) as u32, self.day.max(0) as u32).is_some()
    }

    /// Days since 1970-01-01.
    pub fn to_days(&self) -> i64 {
        days_from_civil(self.year as i64, self.month as u32, self.day as u32)
    }

    /// The date `days` days after 1970-01-01.
    pub fn from_days(days: i64) -> Date {
        let (y, m, d) = civil_from_days(days);
        Date { year: y as i32, month: m as i32, day: d as i32 }
    }

    /// The date `n` calendar days later (earlier when negative).
    pub fn plus_days(&self, n: i64) -> Date {
        Date::from_days(self.to_days() + n)
    }

    /// ISO weekday: 1 = Monday … 7 = Sunday.
    pub fn iso_weekday(&self) -> u32 {
        // 1970-01-01 was a Thursday (4).
        ((self.to_days() + 3).rem_euclid(7) + 1) as u32
    }

    /// Parses exactly `yyyy-MM-dd`.
    pub fn parse_iso(text: &str) -> Option<Date> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        Date::from_ymd(digits(&b[0..4])? as i32, digits(&b[5..7])?, digits(&b[8..10])?)
    }

    /// Parses exactly `yyyyMMdd`.
    pub fn parse_compact(text: &str) -> Option<Date> {
        let b = text.as_bytes();
        if b.len() != 8 {
            return None;
        }
        Date::from_ymd(digits(&b[0..4])? as i32, digits(&b[4..6])?, digits(&b[6..8])?)
    }

    /// `yyyyMMdd`.
    pub fn to_compact(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Display for Date {
    /// `yyyy-MM-dd`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Parses a run of ASCII digits (no sign, no spaces).
pub fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |acc, d| acc * 10 + (d - b'0') as u32))
}

/// A wall-clock time in Beijing (UTC+8), to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeijingTime {
    /// The Beijing calendar date.
    pub date: Date,
    /// Hour 0–23.
    pub hour: u32,
    /// Minute 0–59.
    pub minute: u32,
    /// Second 0–59.
    pub second: u32,
}

impl BeijingTime {
    /// Beijing wall-clock time of an instant (sub-second part dropped).
    pub fn of(ts: &Timestamp) -> BeijingTime {
        let local = ts.seconds + BEIJING_OFFSET_SECONDS;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400) as u32;
        BeijingTime { date: Date::from_days(days), hour: secs / 3600, minute: secs / 60 % 60, second: secs % 60 }
    }

    /// The instant of this Beijing wall-clock time.
    pub fn to_timestamp(&self) -> Timestamp {
        let secs = self.date.to_days() * 86_400 + (self.hour * 3600 + self.minute * 60 + self.second) as i64
            - BEIJING_OFFSET_SECONDS;
        Timestamp { seconds: secs, nanos: 0 }
    }

    /// Parses `yyyyMMddHHmmss` (Jiangsu T14).
    pub fn parse_compact(text: &str) -> Option<BeijingTime> {
        let b = text.as_bytes();
        if b.len() != 14 {
            return None;
        }
        let date = Date::parse_compact(std::str::from_utf8(&b[..8]).ok()?)?;
        BeijingTime::checked(date, digits(&b[8..10])?, digits(&b[10..12])?, digits(&b[12..14])?)
    }

    /// Parses `yyyy-MM-dd HH:mm:ss` (SAMR).
    pub fn parse_spaced(text: &str) -> Option<BeijingTime> {
        let b = text.as_bytes();
        if b.len() != 19 || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let date = Date::parse_iso(std::str::from_utf8(&b[..10]).ok()?)?;
        BeijingTime::checked(date, digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?)
    }

    fn checked(date: Date, hour: u32, minute: u32, second: u32) -> Option<BeijingTime> {
        (hour < 24 && minute < 60 && second < 60).then_some(BeijingTime { date, hour, minute, second })
    }

    /// `yyyyMMddHHmmss`.
    pub fn to_compact(&self) -> String {
        format!("{}{:02}{:02}{:02}", self.date.to_compact(), self.hour, self.minute, self.second)
    }

    /// `yyyy-MM-dd HH:mm:ss`.
    pub fn to_spaced(&self) -> String {
        format!("{} {:02}:{:02}:{:02}", self.date, self.hour, self.minute, self.second)
    }

    /// `yyyy-MM-ddTHH:mm:ss+08:00`.
    pub fn to_rfc3339(&self) -> String {
        format!("{}T{:02}:{:02}:{:02}+08:00", self.date, self.hour, self.minute, self.second)
    }
}

/// Parses an RFC 3339 / xs:dateTime with a mandatory offset (`Z` or `±hh:mm`) and optional
/// fraction of a second, to an instant.
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = Date::parse_iso(std::str::from_utf8(&b[..10]).ok()?)?;
    let (h, mi, s) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if h >= 24 || mi >= 60 || s >= 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos: i32 = 0;
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        let frac = digits(&rest[1..1 + n])?;
        nanos = (frac * 10u32.pow(9 - n as u32)) as i32;
        rest = &rest[1 + n..];
    }
    let offset: i64 = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = digits(&[*h1, *h2])? as i64;
            let om = digits(&[*m1, *m2])? as i64;
            if oh > 14 || om >= 60 {
                return None;
            }
            let v = oh * 3600 + om * 60;
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let local = date.to_days() * 86_400 + (h * 3600 + mi * 60 + s) as i64;
    Some(Timestamp { seconds: local - offset, nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_weekdays() {
        let d = Date::from_ymd(2024, 2, 8).unwrap();
        assert_eq!(d.iso_weekday(), 4, "2024-02-08 is a Thursday");
        assert_eq!(Date::from_days(d.to_days()), d);
        assert_eq!(Date::from_ymd(2024, 2, 18).unwrap().iso_weekday(), 7);
        assert_eq!(Date::from_ymd(1970, 1, 1).unwrap().to_days(), 0);
        assert_eq!(d.plus_days(22).to_string(), "2024-03-01");
        assert!(Date::from_ymd(2023, 2, 29).is_none());
        assert!(Date::from_ymd(2024, 2, 29).is_some());
    }

    #[test]
    fn parses_formats_strictly() {
        assert_eq!(Date::parse_iso("2024-03-12").unwrap().to_compact(), "20240312");
        assert!(Date::parse_iso("2024-3-12").is_none());
        assert!(Date::parse_compact("20241301").is_none());
        let t = BeijingTime::parse_compact("20240312142005").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-12T14:20:05+08:00");
        assert_eq!(t.to_timestamp().seconds, 1_710_224_405);
        assert_eq!(BeijingTime::of(&t.to_timestamp()), t);
        assert!(BeijingTime::parse_compact("20240312246000").is_none());
        assert_eq!(BeijingTime::parse_spaced("2024-04-02 09:15:00").unwrap().to_compact(), "20240402091500");
    }

    #[test]
    fn rfc3339_offsets() {
        let a = parse_rfc3339("2024-03-12T14:20:05+08:00").unwrap();
        let b = parse_rfc3339("2024-03-12T06:20:05Z").unwrap();
        let c = parse_rfc3339("2024-03-12T01:20:05.250-05:00").unwrap();
        assert_eq!(a.seconds, b.seconds);
        assert_eq!(c.seconds, a.seconds);
        assert_eq!(c.nanos, 250_000_000);
        assert!(parse_rfc3339("2024-03-12T14:20:05").is_none(), "an offset is required");
        assert!(parse_rfc3339("2024-03-12 14:20:05+08:00").is_none());
    }
}
