//! Record timestamps as RFC 3339 text (`ce-time`, log lines).
//!
//! A date library for one conversion would be the largest dependency of the consumer, and the
//! conversion is small and fixed: a Kafka timestamp is whole milliseconds in UTC, so there are no
//! zones, no leap seconds (Unix time has none) and no rounding — always three fraction digits.
//! The day → civil date step uses the 400-year Gregorian cycle (146 097 days), counted from
//! 1 March so the leap day falls at the end of each computed year.

/// Days in one 400-year Gregorian cycle.
const DAYS_PER_ERA: i64 = 146_097;
/// Days from 0000-03-01 to 1970-01-01 (proleptic Gregorian).
const EPOCH_SHIFT: i64 = 719_468;

/// `2024-02-29T12:34:56.789Z` for a Unix time in milliseconds (negative = before 1970).
///
/// `None` outside years 0000–9999, which RFC 3339's four-digit year cannot express.
pub(crate) fn format_millis(unix_ms: i64) -> Option<String> {
    let secs = unix_ms.div_euclid(1000);
    let millis = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    ))
}

/// (year, month 1–12, day 1–31) of a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift so day 0 is 0000-03-01; then each era is exactly 400 years.
    let shifted = days + EPOCH_SHIFT;
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted.rem_euclid(DAYS_PER_ERA); // 0..=146096
                                                       // Years within the era: remove the leap days accumulated so far (one per 4 years, minus one
                                                       // per 100, plus one per 400; the last day of the era is the 400-year leap day).
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524
        - day_of_era / (DAYS_PER_ERA - 1))
        / 365; // 0..=399
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // 0..=365
                                                                                              // Months from March: their lengths 31,30,31,30,31 repeat with period 153 days per 5 months.
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    // January and February belong to the next calendar year.
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_table() {
        let cases: &[(i64, Option<&str>)] = &[
            (0, Some("1970-01-01T00:00:00.000Z")),
            (1, Some("1970-01-01T00:00:00.001Z")),
            (10, Some("1970-01-01T00:00:00.010Z")),
            (999, Some("1970-01-01T00:00:00.999Z")),
            (1_000, Some("1970-01-01T00:00:01.000Z")),
            // Before the epoch the fraction counts forward from the earlier second.
            (-1, Some("1969-12-31T23:59:59.999Z")),
            (-1_000, Some("1969-12-31T23:59:59.000Z")),
            (-1_001, Some("1969-12-31T23:59:58.999Z")),
            (86_399_999, Some("1970-01-01T23:59:59.999Z")),
            // Leap years: divisible by 4, by 400; not by 100.
            (951_782_400_000, Some("2000-02-29T00:00:00.000Z")),
            (951_868_800_000, Some("2000-03-01T00:00:00.000Z")),
            (1_709_210_096_789, Some("2024-02-29T12:34:56.789Z")),
            (1_709_251_199_999, Some("2024-02-29T23:59:59.999Z")),
            (1_709_251_200_000, Some("2024-03-01T00:00:00.000Z")),
            (4_107_456_000_000, Some("2100-02-28T00:00:00.000Z")),
            (4_107_542_400_000, Some("2100-03-01T00:00:00.000Z")),
            (-2_203_977_600_000, Some("1900-02-28T00:00:00.000Z")),
            (-2_203_891_200_000, Some("1900-03-01T00:00:00.000Z")),
            (1_735_689_599_999, Some("2024-12-31T23:59:59.999Z")),
            (1_735_689_600_000, Some("2025-01-01T00:00:00.000Z")),
            (1_700_000_000_000, Some("2023-11-14T22:13:20.000Z")),
            // The representable range ends.
            (-62_167_219_200_000, Some("0000-01-01T00:00:00.000Z")),
            (-62_167_219_200_001, None),
            (253_402_300_799_999, Some("9999-12-31T23:59:59.999Z")),
            (253_402_300_800_000, None),
            (i64::MAX, None),
            (i64::MIN, None),
        ];
        for &(ms, want) in cases {
            assert_eq!(format_millis(ms).as_deref(), want, "{ms} ms");
        }
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // 1600-01-01 .. 2400-12-31 day by day: dates strictly increase and months have the
        // Gregorian lengths, so no single table entry hides an off-by-one.
        let mut prev = civil_from_days(-135_141); // 1600-01-01 - 1 day
        for days in -135_140..157_000 {
            let (y, m, d) = civil_from_days(days);
            let next_expected = if prev.2 < len_of(prev.0, prev.1) {
                (prev.0, prev.1, prev.2 + 1)
            } else if prev.1 < 12 {
                (prev.0, prev.1 + 1, 1)
            } else {
                (prev.0 + 1, 1, 1)
            };
            assert_eq!((y, m, d), next_expected, "day {days}");
            prev = (y, m, d);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-135_140), (1600, 1, 1));
    }

    fn len_of(y: i64, m: u32) -> u32 {
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ][m as usize - 1]
    }
}
