//! The official working-day calendar (`docs/domain.md` section 5): holidays and worked weekend days as
//! data, loaded from a TOML file, with deadline arithmetic. A date in a year the calendar does not
//! cover is never a silent guess: [`Calendar::is_working_day`] says so as an error, and the
//! deadline arithmetic ([`Calendar::add_working_days`], [`Calendar::add_calendar_days`]) counts
//! such days Monday–Friday and marks the result [`DueDate::provisional`].

use crate::Date;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The calendar shipped with yrdx (2024–2026), used when no `calendar_file` is configured.
pub const DEFAULT_CALENDAR_TOML: &str = include_str!("../data/calendar.toml");

/// Why a calendar could not be loaded or a deadline computed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    /// The date falls in a year the calendar file does not cover.
    #[error("the working-day calendar does not cover {year} (needed for {date}); add the year to the calendar file")]
    YearNotCovered {
        /// The uncovered year.
        year: i32,
        /// The date whose status was needed.
        date: String,
    },
    /// The calendar file is not valid TOML of the expected shape.
    #[error("calendar file: {0}")]
    Syntax(String),
    /// A date or range in the file is malformed.
    #[error("calendar file, year {year}: {message}")]
    Entry {
        /// The year entry.
        year: i32,
        /// What is wrong.
        message: String,
    },
    /// The calendar file could not be read.
    #[error("calendar file {path}: {message}")]
    Io {
        /// The path read.
        path: String,
        /// The I/O error.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    year: Vec<YearEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearEntry {
    year: i32,
    holidays: Vec<String>,
    weekend_workdays: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct YearDays {
    holidays: BTreeSet<i64>,
    weekend_workdays: BTreeSet<i64>,
}

/// A deadline computed by the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueDate {
    /// The due date.
    pub date: Date,
    /// Whether counting it needed a day of a year the calendar does not cover (that day was
    /// taken as a working day exactly when it is Monday–Friday). A provisional date is recomputed
    /// when the calendar is extended.
    pub provisional: bool,
}

/// Working days per the official calendar, for the years it covers.
#[derive(Debug, Clone)]
pub struct Calendar {
    years: BTreeMap<i32, YearDays>,
}

impl Calendar {
    /// The calendar shipped with yrdx.
    pub fn embedded() -> Calendar {
        // The embedded file is part of the build and tested; a failure here is a build defect.
        Calendar::from_toml(DEFAULT_CALENDAR_TOML).expect("embedded calendar.toml is valid")
    }

    /// Reads a calendar file.
    pub fn from_file(path: &Path) -> Result<Calendar, CalendarError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CalendarError::Io { path: path.display().to_string(), message: e.to_string() })?;
        Calendar::from_toml(&text)
    }

    /// Parses a calendar from TOML text (the format of `data/calendar.toml`).
    pub fn from_toml(text: &str) -> Result<Calendar, CalendarError> {
        let file: CalendarFile = toml::from_str(text).map_err(|e| CalendarError::Syntax(e.to_string()))?;
        let mut years = BTreeMap::new();
        for entry in file.year {
            let y = entry.year;
            let err = |message: String| CalendarError::Entry { year: y, message };
            if years.contains_key(&y) {
                return Err(err("the year is listed twice".into()));
            }
            let mut days = YearDays::default();
            for item in &entry.holidays {
                let (from, to) = match item.split_once("..") {
                    Some((a, b)) => (parse_in_year(a, y).map_err(err)?, parse_in_year(b, y).map_err(err)?),
                    None => {
                        let d = parse_in_year(item, y).map_err(err)?;
                        (d, d)
                    }
                };
                if to.to_days() < from.to_days() {
                    return Err(err(format!("range '{item}' ends before it starts")));
                }
                days.holidays.extend(from.to_days()..=to.to_days());
            }
            for item in &entry.weekend_workdays {
                let d = parse_in_year(item, y).map_err(err)?;
                if d.iso_weekday() < 6 {
                    return Err(err(format!("{item} is listed as a worked weekend day but is a weekday")));
                }
                if days.holidays.contains(&d.to_days()) {
                    return Err(err(format!("{item} is both a holiday and a worked day")));
                }
                days.weekend_workdays.insert(d.to_days());
            }
            years.insert(y, days);
        }
        Ok(Calendar { years })
    }

    /// The years covered.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// Whether `date` is a working day; an error when its year is not covered.
    pub fn is_working_day(&self, date: &Date) -> Result<bool, CalendarError> {
        let year = self
            .years
            .get(&date.year)
            .ok_or_else(|| CalendarError::YearNotCovered { year: date.year, date: date.to_string() })?;
        let day = date.to_days();
        if year.holidays.contains(&day) {
            return Ok(false);
        }
        if year.weekend_workdays.contains(&day) {
            return Ok(true);
        }
        Ok(date.iso_weekday() <= 5)
    }

    /// The first and the last day the calendar covers (`None` for an empty calendar).
    pub fn covered_range(&self) -> Option<(Date, Date)> {
        let first = *self.years.keys().next()?;
        let last = *self.years.keys().next_back()?;
        Some((Date { year: first, month: 1, day: 1 }, Date { year: last, month: 12, day: 31 }))
    }

    /// Whether `date` is a working day, and whether that answer is provisional (its year is not
    /// covered, so Monday–Friday counts).
    fn working_day_or_weekday(&self, date: &Date) -> (bool, bool) {
        match self.is_working_day(date) {
            Ok(working) => (working, false),
            Err(_) => (date.iso_weekday() <= 5, true),
        }
    }

    /// The `n`th working day after `date` (the opening day itself is not counted). Days of a year
    /// the calendar does not cover count Monday–Friday, and the result is then provisional.
    pub fn add_working_days(&self, date: &Date, n: u32) -> DueDate {
        let mut d = *date;
        let mut left = n;
        let mut provisional = false;
        while left > 0 {
            d = d.plus_days(1);
            let (working, guessed) = self.working_day_or_weekday(&d);
            provisional |= guessed;
            if working {
                left -= 1;
            }
        }
        DueDate { date: d, provisional }
    }

    /// `date` plus `n` calendar days; a result that falls on a day off moves to the next working
    /// day. Provisional when a day whose status decided the result is in an uncovered year.
    pub fn add_calendar_days(&self, date: &Date, n: u32) -> DueDate {
        let mut d = date.plus_days(n as i64);
        let mut provisional = false;
        loop {
            let (working, guessed) = self.working_day_or_weekday(&d);
            provisional |= guessed;
            if working {
                return DueDate { date: d, provisional };
            }
            d = d.plus_days(1);
        }
    }
}

fn parse_in_year(text: &str, year: i32) -> Result<Date, String> {
    let d = Date::parse_iso(text.trim()).ok_or_else(|| format!("'{text}' is not a date yyyy-MM-dd"))?;
    if d.year != year {
        return Err(format!("{text} is not in {year}"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        Date::parse_iso(text).unwrap()
    }

    fn sure(text: &str) -> DueDate {
        DueDate { date: d(text), provisional: false }
    }

    fn provisional(text: &str) -> DueDate {
        DueDate { date: d(text), provisional: true }
    }

    #[test]
    fn worked_examples_of_domain_section_5() {
        let cal = Calendar::embedded();
        assert_eq!(cal.add_working_days(&d("2024-02-08"), 5), sure("2024-02-21"));
        assert_eq!(cal.add_working_days(&d("2024-09-27"), 5), sure("2024-10-10"));
        assert_eq!(cal.add_working_days(&d("2025-01-24"), 10), sure("2025-02-13"));
        assert_eq!(cal.add_calendar_days(&d("2024-09-13"), 15), sure("2024-09-29"));
    }

    #[test]
    fn adjusted_days() {
        let cal = Calendar::embedded();
        assert!(cal.is_working_day(&d("2024-02-18")).unwrap(), "a worked Sunday");
        assert!(!cal.is_working_day(&d("2024-02-12")).unwrap(), "a Monday in Spring Festival");
        assert!(!cal.is_working_day(&d("2026-01-03")).unwrap());
        assert!(cal.is_working_day(&d("2026-01-04")).unwrap());
        assert!(cal.is_working_day(&d("2025-10-11")).unwrap());
        assert!(!cal.is_working_day(&d("2025-10-08")).unwrap());
    }

    #[test]
    fn year_boundary_is_crossed_with_both_years() {
        let cal = Calendar::embedded();
        // 2024-12-27 (Fri) + 5 working days: 12-30, 12-31, (01-01 off), 01-02, 01-03, 01-06.
        assert_eq!(cal.add_working_days(&d("2024-12-27"), 5), sure("2025-01-06"));
        // 2025-12-20 + 15 calendar days = 2026-01-04, a worked Sunday.
        assert_eq!(cal.add_calendar_days(&d("2025-12-20"), 15), sure("2026-01-04"));
        // 2025-12-17 + 15 = 2026-01-01 (off), 01-02, 01-03 off, 01-04 worked.
        assert_eq!(cal.add_calendar_days(&d("2025-12-17"), 15), sure("2026-01-04"));
    }

    #[test]
    fn uncovered_years_give_provisional_weekday_dates() {
        let cal = Calendar::embedded();
        // 2026-12-28 (Mon) + 5: 12-29, 12-30, 12-31 known; 2027-01-01 (Fri), 01-04 (Mon) guessed.
        assert_eq!(cal.add_working_days(&d("2026-12-28"), 5), provisional("2027-01-04"));
        // Within the covered year nothing is provisional, even right at its end.
        assert_eq!(cal.add_working_days(&d("2026-12-28"), 3), sure("2026-12-31"));
        // 2026-12-20 + 15 calendar days = 2027-01-04 (a Monday, guessed as working).
        assert_eq!(cal.add_calendar_days(&d("2026-12-20"), 15), provisional("2027-01-04"));
        // 2026-12-17 + 15 = 2027-01-01, a Friday: provisional (its status is a guess).
        assert_eq!(cal.add_calendar_days(&d("2026-12-17"), 15), provisional("2027-01-01"));
        // Before the first covered year too; the plain status question stays an error.
        assert_eq!(cal.add_working_days(&d("2023-06-01"), 1), provisional("2023-06-02"));
        let err = cal.is_working_day(&d("2023-06-01")).unwrap_err();
        assert_eq!(err, CalendarError::YearNotCovered { year: 2023, date: "2023-06-01".into() });
        assert_eq!(cal.covered_range(), Some((d("2024-01-01"), d("2026-12-31"))));
    }

    #[test]
    fn extending_the_calendar_settles_a_provisional_date() {
        let short = Calendar::from_toml("[[year]]\nyear = 2024\nholidays = []\nweekend_workdays = []\n").unwrap();
        // 2024-12-27 (Fri) + 5: 12-30, 12-31, then 2025-01-01..03 guessed as working.
        assert_eq!(short.add_working_days(&d("2024-12-27"), 5), provisional("2025-01-03"));
        // With 2025 known (01-01 a holiday) the date moves to 01-06 and is settled.
        assert_eq!(Calendar::embedded().add_working_days(&d("2024-12-27"), 5), sure("2025-01-06"));
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(matches!(Calendar::from_toml("year = 3"), Err(CalendarError::Syntax(_))));
        let wrong_year = "[[year]]\nyear = 2024\nholidays = [\"2025-01-01\"]\nweekend_workdays = []\n";
        assert!(matches!(Calendar::from_toml(wrong_year), Err(CalendarError::Entry { .. })));
        let weekday = "[[year]]\nyear = 2024\nholidays = []\nweekend_workdays = [\"2024-02-05\"]\n";
        assert!(matches!(Calendar::from_toml(weekday), Err(CalendarError::Entry { .. })));
        let unknown = "[[year]]\nyear = 2024\nholidays = []\nweekend_workdays = []\nextra = 1\n";
        assert!(Calendar::from_toml(unknown).is_err());
    }
}
