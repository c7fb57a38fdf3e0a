//! Dates as housing systems write them, read into CEL timestamps: `date(s)`,
//! `date(s, format)`, and the age bands `age_band` computes from them.
//!
//! Housing records hold dates in every shape: `1979-03-14`, `1979-03-14T00:00:00` with no
//! zone, RFC 3339, `07/11/2023`. CEL's `timestamp()` reads only RFC 3339, so an alert date
//! without a zone was an evaluation error and the marker was dropped. A date or time without
//! a zone is a UK one, so it is read in Europe/London: GMT in winter, BST in summer, and
//! before 1847 London's mean time, as the time zone database has it.
//!
//! Where a local time is not one instant: a time the clocks skipped in spring (01:30 on the
//! last Sunday of March) never happened there, so it is an error, never moved; a time that
//! happened twice in autumn (01:30 on the last Sunday of October) is the first of the two,
//! in BST. Whatever else does not read as a date is an error too, never a guess; a date
//! outside CEL's years 1 to 9999 is CEL's range error.
//!
//! The result is an instant, in UTC like every CEL timestamp: `getHours()` and the other
//! accessors read UTC unless given a zone (`date(s).getDate('Europe/London')`).

use chrono::format::{Fixed, Item, Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime};
use chrono::{TimeZone, Utc};
use chrono_tz::Europe::London;

/// A timestamp as CEL holds one.
pub type Timestamp = DateTime<FixedOffset>;

/// Why a text is not a date, or a date gives no age band: a phrase without the value.
pub type Why = &'static str;

/// The oldest age `age_band` answers for: an older one is a placeholder date of birth
/// (`0001-01-01`, `1900-01-01`) or a typo, and banding it "65+" would disclose a guess.
pub const MAX_AGE: i32 = 120;

/// `text` as a timestamp: `YYYY-MM-DD` (midnight in London), RFC 3339 with its zone (as
/// CEL's `timestamp()` reads it), or `YYYY-MM-DDTHH:MM:SS` with up to nine fractional
/// digits and no zone (London time).
///
/// # Errors
///
/// Any other text, a London time that did not exist, or an instant outside CEL's range.
pub fn date(text: &str) -> Result<Timestamp, Why> {
    if let Some(day) = ymd(text) {
        return london(day.and_time(NaiveTime::MIN));
    }
    if let Some(local) = local_date_time(text) {
        return london(local);
    }
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| "not YYYY-MM-DD, RFC 3339, or a date and time without a zone")?;
    in_range(t.with_timezone(&Utc))
}

/// `text` read by the strftime `format` (`%d/%m/%Y`): with `%z` (or `%s`) the instant it
/// names, else London time, midnight when the format has no time.
///
/// # Errors
///
/// A bad format ([`check_format`]), a text it does not read whole or that leaves the date
/// incomplete, or the errors of [`date`].
pub fn date_with(text: &str, format: &str) -> Result<Timestamp, Why> {
    let items = check_format(format)?;
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, text, items.iter())
        .map_err(|_| "does not match the format")?;
    if parsed.offset().is_some() {
        let t = parsed
            .to_datetime()
            .map_err(|_| "the format does not give a whole date and time")?;
        return in_range(t.with_timezone(&Utc));
    }
    if parsed.timestamp().is_some() {
        let t = parsed
            .to_datetime_with_timezone(&Utc)
            .map_err(|_| "the format gives a timestamp that disagrees with its other fields")?;
        return in_range(t);
    }
    let day = parsed
        .to_naive_date()
        .map_err(|_| "the format does not give a whole date")?;
    let timed = parsed.hour_div_12().is_some()
        || parsed.hour_mod_12().is_some()
        || parsed.minute().is_some()
        || parsed.second().is_some()
        || parsed.nanosecond().is_some();
    let time = if timed {
        parsed
            .to_naive_time()
            .map_err(|_| "the format does not give a whole time")?
    } else {
        NaiveTime::MIN
    };
    london(day.and_time(time))
}

/// The items of a strftime `format`, checked: `%Z` is refused because chrono reads a zone
/// name by skipping it, which would take `12:00 EST` as London's noon.
///
/// # Errors
///
/// A format chrono cannot read, or one with `%Z`.
pub fn check_format(format: &str) -> Result<Vec<Item<'_>>, Why> {
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    for item in &items {
        match item {
            Item::Error => return Err("not a strftime format"),
            Item::Fixed(Fixed::TimezoneName) => {
                return Err("%Z (a zone name) cannot be read: use %z")
            }
            _ => {}
        }
    }
    Ok(items)
}

/// The band of the age someone born at `born` has reached at `now`, both as London dates.
///
/// # Errors
///
/// A birth after `now`, or an age over [`MAX_AGE`].
pub fn age_band(born: Timestamp, now: Timestamp) -> Result<&'static str, Why> {
    band(
        born.with_timezone(&London).date_naive(),
        now.with_timezone(&London).date_naive(),
    )
}

/// The band of the age reached on `today` by someone born on `born`.
///
/// Age counts whole years: a birthday is reached on its date, and someone born on 29
/// February reaches it on 1 March in a common year (as UK law counts it).
fn band(born: NaiveDate, today: NaiveDate) -> Result<&'static str, Why> {
    let mut age = today.year() - born.year();
    if (today.month(), today.day()) < (born.month(), born.day()) {
        age -= 1;
    }
    Ok(match age {
        a if a < 0 => return Err("a date of birth in the future"),
        0..=17 => "under 18",
        18..=24 => "18-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=54 => "45-54",
        55..=64 => "55-64",
        65..=MAX_AGE => "65+",
        _ => return Err("an age over 120"),
    })
}

/// A strict `YYYY-MM-DD`: chrono alone would also take `2025-1-5`.
fn ymd(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if !(b.len() == 10 && digits_but(b, b'-', [4, 7])) {
        return None;
    }
    // Digits only, by the shape: read them directly (chrono's parser compiles its format
    // string on every call, which was most of a streamed element's `age_band`).
    let year = i32::try_from(digits(&b[0..4])).ok()?;
    NaiveDate::from_ymd_opt(year, digits(&b[5..7]), digits(&b[8..10]))
}

/// A strict `YYYY-MM-DDTHH:MM:SS`, with `.` and one to nine digits after it or nothing.
fn local_date_time(text: &str) -> Option<NaiveDateTime> {
    let (day, time) = text.split_at_checked(10)?;
    let day = ymd(day)?;
    let time = time.strip_prefix('T')?;
    let (hms, fraction) = time.split_at_checked(8)?;
    let b = hms.as_bytes();
    if !digits_but(b, b':', [2, 5]) {
        return None;
    }
    let nanos = match fraction.strip_prefix('.') {
        None if fraction.is_empty() => 0,
        Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|c| c.is_ascii_digit()) => {
            digits(f.as_bytes()) * 10u32.pow(9 - u32::try_from(f.len()).ok()?)
        }
        _ => return None,
    };
    let time =
        NaiveTime::from_hms_nano_opt(digits(&b[0..2]), digits(&b[3..5]), digits(&b[6..8]), nanos)?;
    Some(day.and_time(time))
}

/// Whether `b` is ASCII digits but for `separator` at the two places `at`.
fn digits_but(b: &[u8], separator: u8, at: [usize; 2]) -> bool {
    b.iter().enumerate().all(|(i, c)| {
        if at.contains(&i) {
            *c == separator
        } else {
            c.is_ascii_digit()
        }
    })
}

/// The number ASCII digits spell (at most nine of them: no overflow).
fn digits(b: &[u8]) -> u32 {
    b.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

/// The instant of a London wall-clock time (the module comment says which, at a change of
/// the clocks).
fn london(local: NaiveDateTime) -> Result<Timestamp, Why> {
    let t = match London.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
        LocalResult::None => return Err("a time the clocks skipped in Europe/London"),
    };
    in_range(t.with_timezone(&Utc))
}

/// `t` as CEL holds it, within CEL's range: 0001-01-01T00:00:00Z to the end of 9999.
fn in_range(t: DateTime<Utc>) -> Result<Timestamp, Why> {
    if (1..=9999).contains(&t.year()) {
        Ok(t.fixed_offset())
    } else {
        Err("outside the years 1 to 9999")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests;
