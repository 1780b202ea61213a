//! Cron schedules as upstream's ScheduledTask reads them (the standard five fields, the `@`
//! macros and `@every <duration>`), in UTC, and the next time one is due. Pure.

use std::{collections::BTreeSet, str::FromStr, time::Duration};

use k8s_openapi::jiff::{SignedDuration, Span, Timestamp, civil, tz::TimeZone};

/// Why a schedule cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not five fields.
    #[error("schedule {0:?} must have five fields (minute hour day-of-month month day-of-week)")]
    FieldCount(String),
    /// A field holds something that is not a value, range, list or step.
    #[error("schedule field {field} ({value:?}) {problem}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What it holds.
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// An `@` word that is not one of the macros.
    #[error(
        "schedule {0:?} is not one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, \
         @hourly or @every <duration>"
    )]
    UnknownMacro(String),
    /// `@every` with a duration that cannot be read, or is not positive.
    #[error("schedule {0:?}: @every takes a positive duration such as 90s, 15m or 1h30m")]
    Every(String),
    /// A time zone prefix: schedules are in UTC.
    #[error("schedule {0:?}: time zones (CRON_TZ=, TZ=) are not supported; schedules are in UTC")]
    TimeZone(String),
    /// Fields that match no date at all (`0 0 30 2 *`).
    #[error("schedule {0:?} matches no date")]
    Never(String),
}

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Due whenever every field matches.
    Fields(Fields),
    /// Due this long after the previous run.
    Every(Duration),
}

/// The five fields, as the values each allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    minutes: BTreeSet<u8>,
    hours: BTreeSet<u8>,
    days_of_month: BTreeSet<u8>,
    months: BTreeSet<u8>,
    /// 0 is Sunday.
    days_of_week: BTreeSet<u8>,
    /// Day of month or day of week is `*`: both must match (else either may, as in cron).
    any_day_star: bool,
}

struct FieldSpec {
    name: &'static str,
    min: u8,
    max: u8,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
// 7 is Sunday as well, as in most crons.
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed.starts_with("CRON_TZ=") || trimmed.starts_with("TZ=") {
            return Err(ScheduleError::TimeZone(text.to_owned()));
        }
        if let Some(word) = trimmed.strip_prefix('@') {
            if let Some(duration) = word.strip_prefix("every") {
                return parse_duration(duration.trim())
                    .filter(|d| !d.is_zero())
                    .map(Schedule::Every)
                    .ok_or_else(|| ScheduleError::Every(text.to_owned()));
            }
            let fields = match word {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => return Err(ScheduleError::UnknownMacro(text.to_owned())),
            };
            return fields.parse();
        }
        let parts: Vec<&str> = trimmed.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = parts[..] else {
            return Err(ScheduleError::FieldCount(text.to_owned()));
        };
        let mut days_of_week = parse_field(dow, &DAY_OF_WEEK)?;
        if days_of_week.remove(&7) {
            days_of_week.insert(0);
        }
        let star = |f: &str| f == "*" || f == "?";
        let fields = Fields {
            minutes: parse_field(minute, &MINUTE)?,
            hours: parse_field(hour, &HOUR)?,
            days_of_month: parse_field(dom, &DAY_OF_MONTH)?,
            months: parse_field(month, &MONTH)?,
            days_of_week,
            any_day_star: star(dom) || star(dow),
        };
        // A day that no month has (30 February) would never be due.
        let year = civil::date(2024, 1, 1); // a leap year
        let possible = (0..366).any(|offset| {
            year.checked_add(Span::new().days(offset))
                .is_ok_and(|date| fields.day_matches(date))
        });
        if !possible {
            return Err(ScheduleError::Never(text.to_owned()));
        }
        Ok(Schedule::Fields(fields))
    }
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<BTreeSet<u8>, ScheduleError> {
    let error = |problem: String| ScheduleError::Field {
        field: spec.name,
        value: text.to_owned(),
        problem,
    };
    let mut values = BTreeSet::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u8 =
                    step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        error(format!("has step {step:?}, not a positive number"))
                    })?;
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = if range == "*" || range == "?" {
            (spec.min, spec.max)
        } else if let Some((low, high)) = range.split_once('-') {
            (
                value(low, spec).map_err(&error)?,
                value(high, spec).map_err(&error)?,
            )
        } else {
            let single = value(range, spec).map_err(&error)?;
            // `5/15` runs from 5 to the end, as in cron.
            let high = if part.contains('/') { spec.max } else { single };
            (single, high)
        };
        if low > high {
            return Err(error(format!(
                "has range {range:?} that ends before it starts"
            )));
        }
        values.extend((low..=high).step_by(usize::from(step)));
    }
    Ok(values)
}

fn value(text: &str, spec: &FieldSpec) -> Result<u8, String> {
    if let Some(index) = spec
        .names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
    {
        // Names count from the field's first value: JAN is 1, SUN is 0.
        return u8::try_from(index)
            .map(|i| i + spec.min)
            .map_err(|e| e.to_string());
    }
    let number: u8 = text
        .parse()
        .map_err(|_| format!("has {text:?}, which is not a number or a name"))?;
    if number < spec.min || number > spec.max {
        return Err(format!("has {number}, outside {}-{}", spec.min, spec.max));
    }
    Ok(number)
}

/// A duration as Go writes it (`90s`, `15m`, `1h30m`, `1.5h`), as upstream's `@every` takes.
fn parse_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut total = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * seconds;
    }
    (total.is_finite() && total < 1e10).then(|| Duration::from_secs_f64(total))
}

impl Fields {
    fn day_matches(&self, date: civil::Date) -> bool {
        let (Ok(month), Ok(day), Ok(weekday)) = (
            u8::try_from(date.month()),
            u8::try_from(date.day()),
            u8::try_from(date.weekday().to_sunday_zero_offset()),
        ) else {
            return false;
        };
        if !self.months.contains(&month) {
            return false;
        }
        let dom = self.days_of_month.contains(&day);
        let dow = self.days_of_week.contains(&weekday);
        if self.any_day_star {
            dom && dow
        } else {
            dom || dow
        }
    }
}

impl Schedule {
    /// The first time after `after` that the schedule is due (whole minutes for cron fields);
    /// `None` beyond the year 9999.
    #[must_use]
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Self::Every(every) => {
                let span = SignedDuration::try_from(*every).ok()?;
                after.checked_add(span).ok()
            }
            Self::Fields(fields) => fields.next_after(after),
        }
    }
}

impl Fields {
    fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = after.to_zoned(TimeZone::UTC).datetime();
        let start_date = start.date();
        // A schedule that matches some date matches one within eight years (29 February).
        for offset in 0..(366 * 8) {
            let date = start_date.checked_add(Span::new().days(offset)).ok()?;
            if !self.day_matches(date) {
                continue;
            }
            let today = offset == 0;
            for &hour in &self.hours {
                if today && i8::try_from(hour).ok()? < start.hour() {
                    continue;
                }
                for &minute in &self.minutes {
                    let time =
                        civil::time(i8::try_from(hour).ok()?, i8::try_from(minute).ok()?, 0, 0);
                    let at = date.to_datetime(time);
                    if at <= start {
                        continue;
                    }
                    return at
                        .to_zoned(TimeZone::UTC)
                        .ok()
                        .map(|zoned| zoned.timestamp());
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    fn next(schedule: &str, after: &str) -> String {
        schedule
            .parse::<Schedule>()
            .expect("a schedule")
            .next_after(at(after))
            .expect("due some day")
            .to_string()
    }

    #[test]
    fn the_next_run_is_the_first_matching_minute_after() {
        assert_eq!(
            next("* * * * *", "2026-12-02T18:01:30Z"),
            "2026-12-02T18:02:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-12-02T18:01:00Z"),
            "2026-12-02T18:15:00Z"
        );
        assert_eq!(
            next("0 3 * * *", "2026-12-02T03:00:00Z"),
            "2026-12-03T03:00:00Z"
        );
        assert_eq!(
            next("30 2 1 * *", "2026-12-02T00:00:00Z"),
            "2027-01-01T02:30:00Z"
        );
        assert_eq!(
            next("5/20 * * * *", "2026-12-02T18:46:00Z"),
            "2026-12-02T19:05:00Z"
        );
        assert_eq!(
            next("0 0 29 2 *", "2026-03-01T00:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
        assert_eq!(
            next("0 12 * JAN,jul *", "2026-12-02T00:00:00Z"),
            "2027-01-01T12:00:00Z"
        );
    }

    #[test]
    fn days_of_month_and_week_match_either_unless_one_is_a_star() {
        // 2026-12-02 is a Wednesday.
        assert_eq!(
            next("0 0 * * MON", "2026-12-02T00:00:00Z"),
            "2026-12-07T00:00:00Z"
        );
        assert_eq!(
            next("0 0 * * 7", "2026-12-02T00:00:00Z"),
            "2026-12-06T00:00:00Z"
        );
        assert_eq!(
            next("0 0 * * 1-5", "2026-12-04T01:00:00Z"),
            "2026-12-07T00:00:00Z"
        );
        // The 15th or any Friday: Friday the 4th comes first.
        assert_eq!(
            next("0 0 15 * FRI", "2026-12-02T00:00:00Z"),
            "2026-12-04T00:00:00Z"
        );
    }

    #[test]
    fn macros_and_every() {
        assert_eq!(
            next("@daily", "2026-12-02T18:00:00Z"),
            "2026-12-03T00:00:00Z"
        );
        assert_eq!(
            next("@hourly", "2026-12-02T18:00:00Z"),
            "2026-12-02T19:00:00Z"
        );
        assert_eq!(
            next("@weekly", "2026-12-02T18:00:00Z"),
            "2026-12-06T00:00:00Z"
        );
        assert_eq!(
            next("@yearly", "2026-12-02T18:00:00Z"),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@every 1h30m", "2026-12-02T18:00:10Z"),
            "2026-12-02T19:30:10Z"
        );
        assert_eq!(
            next("@every 90s", "2026-12-02T18:00:00Z"),
            "2026-12-02T18:01:30Z"
        );
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        let error = |text: &str| text.parse::<Schedule>().expect_err(text).to_string();
        assert!(
            error("* * * *").contains("five fields"),
            "{}",
            error("* * * *")
        );
        assert!(
            error("61 * * * *").contains("minute"),
            "{}",
            error("61 * * * *")
        );
        assert!(error("61 * * * *").contains("outside 0-59"));
        assert!(error("* 5-2 * * *").contains("ends before it starts"));
        assert!(error("*/0 * * * *").contains("step"));
        assert!(error("* * * FOO *").contains("month"));
        assert!(error("0 0 30 2 *").contains("matches no date"));
        assert!(error("@fortnightly").contains("@every"));
        assert!(error("@every 0s").contains("positive duration"));
        assert!(error("@every soon").contains("positive duration"));
        assert!(error("CRON_TZ=Europe/Paris 0 0 * * *").contains("UTC"));
        assert!(error("").contains("five fields"));
    }
}
