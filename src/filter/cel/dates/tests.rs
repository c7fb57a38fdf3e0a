use proptest::prelude::*;

use super::*;

fn utc(text: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(text).unwrap()
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

#[test]
fn every_accepted_form_of_date() {
    for (text, instant) in [
        // Midnight in London: GMT in winter, BST in summer.
        ("1979-03-14", "1979-03-14T00:00:00Z"),
        ("2023-07-11", "2023-07-10T23:00:00Z"),
        ("2004-02-29", "2004-02-29T00:00:00Z"),
        // Without a zone: London time.
        ("1979-03-14T00:00:00", "1979-03-14T00:00:00Z"),
        ("2023-07-11T09:30:00", "2023-07-11T08:30:00Z"),
        ("2023-07-11T09:30:00.5", "2023-07-11T08:30:00.5Z"),
        (
            "2023-07-11T09:30:00.123456789",
            "2023-07-11T08:30:00.123456789Z",
        ),
        // RFC 3339: its own zone.
        ("2023-07-11T09:30:00Z", "2023-07-11T09:30:00Z"),
        ("2023-07-11T09:30:00+02:00", "2023-07-11T07:30:00Z"),
        ("2023-07-11T09:30:00.25-05:00", "2023-07-11T14:30:00.25Z"),
        // Placeholders are the dates they say.
        ("1900-01-01", "1900-01-01T00:00:00Z"),
        ("9999-12-31", "9999-12-31T00:00:00Z"),
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
    ] {
        assert_eq!(date(text), Ok(utc(instant)), "{text}");
        assert_eq!(date(text).unwrap().offset().local_minus_utc(), 0, "{text}");
    }
    // Before 1847 London kept its mean time, 1 minute 15 seconds behind Greenwich.
    let first = date("0001-01-01").unwrap();
    assert_eq!(first, utc("0001-01-01T00:01:15Z"));
}

#[test]
fn every_other_text_is_an_error() {
    for text in [
        "",
        "yesterday",
        "1979-3-14",
        "1979-03-4",
        "79-03-14",
        "14/03/1979",
        "1979-02-30",
        "1979-13-01",
        "1979-03-14T00:00",
        "1979-03-14T0:00:00",
        "1979-03-14T24:00:00",
        "1979-03-14T00:00:60",
        "1979-03-14T00:00:00.",
        "1979-03-14T00:00:00.1234567890",
        "1979-03-14T00:00:00,5",
        "1979-03-14 00:00:00",
        "1979-03-14t00:00:00",
        "1979-03-14T00:00:00 ",
        " 1979-03-14",
        "1979-03-14Z",
        "1979-03-14T00:00:00+01",
        "1979-03-14T00:00:00 Europe/London",
        "１９７９-03-14",
        "0000-12-31",
        "10000-01-01",
        "0001-01-01T00:00:00+01:00",
        "10000-01-01T00:00:00Z",
    ] {
        assert!(date(text).is_err(), "{text:?} gave {:?}", date(text));
    }
}

#[test]
fn clock_changes_are_decided_not_guessed() {
    // Spring forward, 2024-03-31: 01:00 GMT became 02:00 BST, so 01:30 never happened.
    assert_eq!(
        date("2024-03-31T01:30:00"),
        Err("a time the clocks skipped in Europe/London")
    );
    assert_eq!(date("2024-03-31T00:59:59"), Ok(utc("2024-03-31T00:59:59Z")));
    assert_eq!(date("2024-03-31T02:00:00"), Ok(utc("2024-03-31T01:00:00Z")));
    // Fall back, 2024-10-27: 01:30 happened twice; the first, in BST.
    assert_eq!(date("2024-10-27T01:30:00"), Ok(utc("2024-10-27T00:30:00Z")));
    assert_eq!(date("2024-10-27T02:00:00"), Ok(utc("2024-10-27T02:00:00Z")));
    assert!(date_with("31/03/2024 01:30", "%d/%m/%Y %H:%M").is_err());
}

#[test]
fn strftime_dates() {
    for (text, format, instant) in [
        ("07/11/2023", "%m/%d/%Y", "2023-07-10T23:00:00Z"),
        ("11/07/2023", "%d/%m/%Y", "2023-07-10T23:00:00Z"),
        ("14 Mar 1979", "%d %b %Y", "1979-03-14T00:00:00Z"),
        ("14/03/1979 13:45", "%d/%m/%Y %H:%M", "1979-03-14T13:45:00Z"),
        (
            "11/07/2023 9:05:01 pm",
            "%d/%m/%Y %I:%M:%S %P",
            "2023-07-11T20:05:01Z",
        ),
        (
            "2023-07-11 10:00 +0200",
            "%Y-%m-%d %H:%M %z",
            "2023-07-11T08:00:00Z",
        ),
        ("1689033600", "%s", "2023-07-11T00:00:00Z"),
        ("01/01/0001", "%d/%m/%Y", "0001-01-01T00:01:15Z"),
    ] {
        assert_eq!(date_with(text, format), Ok(utc(instant)), "{text} {format}");
    }
    for (text, format) in [
        ("07/11/2023", "%d/%m/%Y %H:%M"),
        ("07/11/2023 extra", "%m/%d/%Y"),
        ("2023-07-11", "%m/%d/%Y"),
        ("13/13/2023", "%m/%d/%Y"),
        ("2023", "%Y"),
        ("10:00", "%H:%M"),
        ("2023-07-11 10", "%Y-%m-%d %H"),
        ("2023-07-11 10:00 EST", "%Y-%m-%d %H:%M %Z"),
        ("2023-07-11", "%Y-%m-%d %"),
        ("2023-07-11", "%Q"),
        ("Monday 11/07/2023", "%A %d/%m/%Y"),
        ("31/12/10000", "%d/%m/%Y"),
    ] {
        assert!(
            date_with(text, format).is_err(),
            "{text} {format}: {:?}",
            date_with(text, format)
        );
    }
    assert!(check_format("%d/%m/%Y").is_ok());
    assert!(check_format("%Y %Z").is_err());
    assert!(check_format("%Y %").is_err());
}

#[test]
fn age_band_boundaries() {
    let born = d(2000, 6, 15);
    for (today, want) in [
        (d(2018, 6, 14), "under 18"),
        (d(2018, 6, 15), "18-24"),
        (d(2025, 6, 14), "18-24"),
        (d(2025, 6, 15), "25-34"),
        (d(2035, 6, 14), "25-34"),
        (d(2035, 6, 15), "35-44"),
        (d(2045, 6, 15), "45-54"),
        (d(2055, 6, 15), "55-64"),
        (d(2065, 6, 14), "55-64"),
        (d(2065, 6, 15), "65+"),
        (d(2120, 6, 15), "65+"),
        (d(2000, 6, 15), "under 18"),
    ] {
        assert_eq!(band(born, today), Ok(want), "{today}");
    }
    assert_eq!(
        band(born, d(2000, 6, 14)),
        Err("a date of birth in the future")
    );
    assert_eq!(band(born, d(2121, 6, 15)), Err("an age over 120"));
}

#[test]
fn leap_day_birthday_is_reached_on_the_first_of_march() {
    let born = d(2004, 2, 29);
    assert_eq!(band(born, d(2022, 2, 28)), Ok("under 18"));
    assert_eq!(band(born, d(2022, 3, 1)), Ok("18-24"));
}

#[test]
fn placeholder_births_have_no_band() {
    let now = utc("2025-03-01T12:00:00Z");
    for placeholder in ["0001-01-01", "1900-01-01"] {
        assert_eq!(
            age_band(date(placeholder).unwrap(), now),
            Err("an age over 120"),
            "{placeholder}"
        );
    }
    assert!(date("1900-01-01").unwrap() < now);
}

#[test]
fn ages_are_counted_in_london_dates() {
    // 23:30 UTC on 15 June is already the 16th in London (BST): a birthday on the 16th
    // has been reached, and a birth at that instant is a birth on the 16th.
    let now = utc("2008-06-15T23:30:00Z");
    assert_eq!(age_band(date("1990-06-16").unwrap(), now), Ok("18-24"));
    assert_eq!(age_band(date("1990-06-17").unwrap(), now), Ok("under 18"));
    assert_eq!(
        age_band(utc("1990-06-16T23:30:00Z"), now),
        Ok("under 18"),
        "born on the 17th, London time"
    );
}

fn any_day() -> impl Strategy<Value = NaiveDate> {
    (1i32..=9999, 1u32..=12, 1u32..=31).prop_filter_map("a real date", |(y, m, day)| {
        NaiveDate::from_ymd_opt(y, m, day)
    })
}

proptest! {
    /// Every date reads as midnight of that date in London, however it is written.
    #[test]
    fn a_date_is_its_london_midnight(day in any_day()) {
        let t = date(&day.format("%Y-%m-%d").to_string()).unwrap();
        let local = t.with_timezone(&London).naive_local();
        prop_assert_eq!(local, day.and_time(NaiveTime::MIN));
        let text = day.format("%d/%m/%Y").to_string();
        prop_assert_eq!(date_with(&text, "%d/%m/%Y"), Ok(t));
        let text = day.format("%Y-%m-%dT00:00:00").to_string();
        prop_assert_eq!(date(&text), Ok(t));
    }

    /// A London wall-clock time reads back as itself, or is refused when it never was.
    #[test]
    fn a_local_time_is_itself_in_london(
        day in any_day(),
        secs in 0u32..86_400,
        nanos in prop::option::of(0u32..1_000_000_000),
    ) {
        let time = NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos.unwrap_or(0)).unwrap();
        let local = day.and_time(time);
        let text = match nanos {
            Some(_) => local.format("%Y-%m-%dT%H:%M:%S%.9f").to_string(),
            None => local.format("%Y-%m-%dT%H:%M:%S").to_string(),
        };
        match (date(&text), London.from_local_datetime(&local)) {
            (Ok(t), LocalResult::Single(want) | LocalResult::Ambiguous(want, _)) => {
                prop_assert_eq!(t, want.fixed_offset());
            }
            (Err(_), LocalResult::None) => {}
            (Err(_), _) if day.year() == 9999 || day.year() == 1 => {}
            (got, _) => prop_assert!(false, "{text}: {got:?}"),
        }
    }

    /// Arbitrary text never panics, and what is accepted is in CEL's range.
    #[test]
    fn any_text_is_a_date_in_range_or_an_error(text in "\\PC{0,40}", format in "[%a-zA-Z/: -]{0,12}") {
        for t in [date(&text), date_with(&text, &format)].into_iter().flatten() {
            prop_assert!((1..=9999).contains(&t.with_timezone(&Utc).year()));
        }
    }
}
