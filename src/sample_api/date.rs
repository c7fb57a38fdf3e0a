//! Calendar dates as a day count, just enough for the sample data.
//!
//! The sample data needs "today minus 400 days" and "YYYY-MM-DD" and nothing else, so a day
//! count since 1970-01-01 with Howard Hinnant's civil-calendar conversions
//! (<https://howardhinnant.github.io/date_algorithms.html>) does the job without a date crate.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use super::Error;

/// A proleptic Gregorian date. Ordered, so "is this marker's review date in the past" is `<`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Days since 1970-01-01.
    days: i64,
}

// === impl Date ===

impl Date {
    /// Today, in UTC, from the system clock (1970-01-01 if the clock is before it).
    pub fn today() -> Date {
        let days = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() / 86_400)
            .unwrap_or_default();
        Date { days: days as i64 }
    }

    /// The date `year-month-day`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidDate`] when the month or day does not exist (2025-02-29, 2025-13-01).
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Result<Date, Error> {
        let invalid = || Error::InvalidDate(format!("{year:04}-{month:02}-{day:02}"));
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(invalid());
        }
        let date = Date {
            days: days_from_civil(i64::from(year), i64::from(month), i64::from(day)),
        };
        // Day 31 of a 30-day month rolls over; the round trip catches it.
        if date.ymd() != (year, month, day) {
            return Err(invalid());
        }
        Ok(date)
    }

    /// The date `days` later (earlier when negative).
    pub fn add_days(self, days: i64) -> Date {
        Date {
            days: self.days + days,
        }
    }

    /// Days from `earlier` to `self`.
    pub fn days_since(self, earlier: Date) -> i64 {
        self.days - earlier.days
    }

    /// (year, month, day).
    pub fn ymd(self) -> (i32, u32, u32) {
        let (y, m, d) = civil_from_days(self.days);
        // The sample data spans a century around `today`: these always fit.
        (
            i32::try_from(y).unwrap_or(i32::MAX),
            u32::try_from(m).unwrap_or(1),
            u32::try_from(d).unwrap_or(1),
        )
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl FromStr for Date {
    type Err = Error;

    /// Exactly `YYYY-MM-DD`, the form the API emits.
    fn from_str(s: &str) -> Result<Date, Error> {
        let invalid = || Error::InvalidDate(s.chars().take(32).collect());
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(invalid());
        }
        let digits = |part: &str| -> Result<u32, Error> {
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().map_err(|_| invalid())
            } else {
                Err(invalid())
            }
        };
        let year = digits(&s[0..4])?;
        let month = digits(&s[5..7])?;
        let day = digits(&s[8..10])?;
        let year = i32::try_from(year).map_err(|_| invalid())?;
        Date::from_ymd(year, month, day).map_err(|_| invalid())
    }
}

/// As the `YYYY-MM-DD` string housing systems use in JSON.
impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
