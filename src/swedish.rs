//! The contract in Swedish words: dates and times in Swedish style and the Europe/Stockholm
//! time zone, weekdays, phone hours, and the names of statuses, roles and channels. Used by
//! every view a person reads (FHIR narrative, the printable page).

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

use crate::domain::{Channel, ContactRole, MeetingMode, PhoneHours, PlanKind, Status, Weekday};

const MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
];

/// Sweden's time zone (bundled, so it does not depend on the host's tz database), looked
/// up once: every narrative and agreed time needs it.
pub fn stockholm() -> TimeZone {
    stockholm_zone().clone()
}

fn stockholm_zone() -> &'static TimeZone {
    static STOCKHOLM: std::sync::OnceLock<TimeZone> = std::sync::OnceLock::new();
    STOCKHOLM.get_or_init(|| TimeZone::get("Europe/Stockholm").unwrap_or(TimeZone::UTC))
}

/// `8 december 2026`.
pub fn date(d: Date) -> String {
    let mut out = String::with_capacity(20);
    push_date(&mut out, d);
    out
}

/// The day of `t` in Swedish local time, as [`date`] writes it.
pub fn local_date(t: Timestamp) -> String {
    date(stockholm_zone().to_datetime(t).date())
}

/// Appends [`date`]'s text. Dates and times are written digit by digit rather than
/// through `format!`: a narrative writes dozens of them, and the formatting machinery
/// was most of its time.
fn push_date(out: &mut String, d: Date) {
    let month = MONTHS
        .get(usize::try_from(d.month() - 1).unwrap_or(0))
        .copied()
        .unwrap_or_default();
    push_number(out, i64::from(d.day()));
    out.push(' ');
    out.push_str(month);
    out.push(' ');
    push_number(out, i64::from(d.year()));
}

/// Appends `n` in decimal, as `Display` writes it.
fn push_number(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        // A digit is below ten, so the cast keeps it whole.
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &digit in &digits[at..] {
        out.push(char::from(digit));
    }
}

/// Appends `09.30`, as Språkrådet recommends; the end of the day is `24.00`.
fn push_clock(out: &mut String, t: Time) {
    if t == Time::MAX {
        out.push_str("24.00");
        return;
    }
    let two = |out: &mut String, n: i8| {
        let n = u8::try_from(n).unwrap_or(0);
        out.push(char::from(b'0' + n / 10));
        out.push(char::from(b'0' + n % 10));
    };
    two(out, t.hour());
    out.push('.');
    two(out, t.minute());
}

/// `torsdag 10 december 2026 kl. 09.30`, in Swedish local time.
pub fn instant(t: Timestamp) -> String {
    let mut out = String::with_capacity(40);
    push_local_instant(&mut out, stockholm_zone().to_datetime(t));
    out
}

fn push_local_instant(out: &mut String, t: DateTime) {
    out.push_str(weekday_long(t.weekday()));
    out.push(' ');
    push_date(out, t.date());
    out.push_str(" kl. ");
    push_clock(out, t.time());
}

/// `torsdag 10 december 2026 kl. 09.30–10.00` (the end's date only when it differs).
pub fn span(start: Timestamp, end: Timestamp) -> String {
    let tz = stockholm_zone();
    let (s, e) = (tz.to_datetime(start), tz.to_datetime(end));
    let mut out = String::with_capacity(48);
    push_local_instant(&mut out, s);
    if s.date() == e.date() {
        out.push('–');
        push_clock(&mut out, e.time());
    } else {
        out.push_str(" – ");
        push_local_instant(&mut out, e);
    }
    out
}

fn weekday_long(w: jiff::civil::Weekday) -> &'static str {
    use jiff::civil::Weekday::*;
    match w {
        Monday => "måndag",
        Tuesday => "tisdag",
        Wednesday => "onsdag",
        Thursday => "torsdag",
        Friday => "fredag",
        Saturday => "lördag",
        Sunday => "söndag",
    }
}

pub fn weekday_short(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "mån",
        Weekday::Tue => "tis",
        Weekday::Wed => "ons",
        Weekday::Thu => "tors",
        Weekday::Fri => "fre",
        Weekday::Sat => "lör",
        Weekday::Sun => "sön",
    }
}

/// `mån–fre 08.00–10.00`; runs of three or more days are written as a range.
pub fn phone_hours(h: &PhoneHours) -> String {
    let mut out = String::with_capacity(32);
    push_phone_hours(&mut out, h);
    out
}

/// Appends [`phone_hours`]'s text.
fn push_phone_hours(out: &mut String, h: &PhoneHours) {
    let index = |d: Weekday| Weekday::ALL.iter().position(|&x| x == d).unwrap_or(0);
    // A run of following days, as positions in the week: from `.0` to `.1`.
    let write_run = |out: &mut String, (from, to): (usize, usize)| {
        let short = |i: usize| Weekday::ALL.get(i).map_or("", |&d| weekday_short(d));
        if !out.is_empty() {
            out.push_str(", ");
        }
        if to >= from + 2 {
            out.push_str(short(from));
            out.push('–');
            out.push_str(short(to));
        } else {
            for i in from..=to {
                if i > from {
                    out.push_str(", ");
                }
                out.push_str(short(i));
            }
        }
    };
    let mut days = String::new();
    let mut run: Option<(usize, usize)> = None;
    for &d in h.days() {
        let i = index(d);
        run = match run {
            Some((from, to)) if to + 1 == i => Some((from, i)),
            Some(done) => {
                write_run(&mut days, done);
                Some((i, i))
            }
            None => Some((i, i)),
        };
    }
    if let Some(last) = run {
        write_run(&mut days, last);
    }
    out.push_str(if days.is_empty() { "alla dagar" } else { &days });
    if h.opens() == Time::MIN && h.closes() == Time::MAX {
        out.push_str(" dygnet runt");
        return;
    }
    out.push(' ');
    push_clock(out, h.opens());
    out.push('–');
    push_clock(out, h.closes());
}

/// Every phone hours' text, separated by commas.
pub fn all_phone_hours(hours: &[PhoneHours]) -> String {
    let mut out = String::with_capacity(32 * hours.len());
    for (n, h) in hours.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        push_phone_hours(&mut out, h);
    }
    out
}

/// The status as one word ("gällande"). A contract is an agreement, not a legal
/// document: one that no longer applies has "upphört", not been "återkallat".
pub fn status(s: Status) -> &'static str {
    match s {
        Status::Draft => "utkast",
        Status::Active => "gällande",
        Status::OnHold => "vilande",
        Status::Completed => "avslutat",
        Status::Revoked => "upphört",
    }
}

/// The status as the person reads it on the first page: a whole sentence.
pub fn status_sentence(s: Status) -> &'static str {
    match s {
        Status::Draft => "Kontraktet är ett utkast som vi inte har kommit överens om än.",
        Status::Active => "Kontraktet gäller.",
        Status::OnHold => "Kontraktet vilar just nu.",
        Status::Completed => "Kontraktet är avslutat.",
        Status::Revoked => "Kontraktet gäller inte längre.",
    }
}

/// `n` and the word in the number it takes: "1 patient", "5 patienter".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `text` with its first letter small: a title or role in the middle of a sentence.
pub fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub fn role(r: ContactRole) -> &'static str {
    match r {
        ContactRole::FastVardkontakt => "fast vårdkontakt",
        ContactRole::FastLakarkontakt => "fast läkarkontakt",
    }
}

pub fn meeting_mode(m: MeetingMode) -> &'static str {
    match m {
        MeetingMode::InPerson => "besök",
        MeetingMode::Phone => "telefon",
        MeetingMode::Video => "video",
        MeetingMode::HomeVisit => "hembesök",
    }
}

pub fn plan_kind(k: PlanKind) -> &'static str {
    match k {
        PlanKind::Sip => "SIP, samordnad individuell plan",
        PlanKind::MinVardplan => "Min vårdplan",
        PlanKind::Vardforlopp => "Vårdförlopp",
        PlanKind::Other => "Plan",
    }
}

/// `telefon 08-123 456 10 (mån, ons, fre 08.30–09.30)`, `meddelande via 1177 …`.
pub fn channel(c: &Channel) -> String {
    match c {
        Channel::Phone { number, hours } if hours.is_empty() => format!("telefon {number}"),
        Channel::Phone { number, hours } => {
            format!("telefon {number} ({})", all_phone_hours(hours))
        }
        Channel::Message { via } => format!("meddelande via {via}"),
        Channel::Video { via } => format!("videosamtal via {via}"),
        Channel::WebBooking { url } => format!("webbtidbok: {url}"),
        Channel::Kallelse { via } => format!("kallelser via {via}"),
        Channel::EService {
            name,
            url: Some(url),
        } => format!("e-tjänst: {name} ({url})"),
        Channel::EService { name, url: None } => format!("e-tjänst: {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date as d, time};

    #[test]
    fn dates_and_times_in_swedish_and_stockholm_time() {
        assert_eq!(date(d(2026, 12, 8)), "8 december 2026");
        // 08:30 UTC in December is 09.30 in Stockholm (CET); in June 10.30 (CEST).
        assert_eq!(
            instant("2026-12-10T08:30:00Z".parse().unwrap()),
            "torsdag 10 december 2026 kl. 09.30"
        );
        assert_eq!(
            instant("2026-06-10T08:30:00Z".parse().unwrap()),
            "onsdag 10 juni 2026 kl. 10.30"
        );
        let (s, e) = (
            "2026-12-10T08:30:00Z".parse().unwrap(),
            "2026-12-10T09:00:00Z".parse().unwrap(),
        );
        assert_eq!(span(s, e), "torsdag 10 december 2026 kl. 09.30–10.00");
        let next_day = "2026-12-11T07:00:00Z".parse().unwrap();
        assert_eq!(
            span(s, next_day),
            "torsdag 10 december 2026 kl. 09.30 – fredag 11 december 2026 kl. 08.00"
        );
        assert_eq!(
            local_date("2026-12-31T23:30:00Z".parse().unwrap()),
            "1 januari 2027"
        );
        let clock = |t: Time| {
            let mut out = String::new();
            push_clock(&mut out, t);
            out
        };
        assert_eq!(clock(Time::MAX), "24.00");
        assert_eq!(clock(time(0, 5, 0, 0)), "00.05");
    }

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        for n in [0, 7, 10, 2026, -5, -10_000, i64::MAX, i64::MIN] {
            let mut out = String::new();
            push_number(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn phone_hours_read_naturally() {
        let h = |days: &[Weekday]| {
            PhoneHours::new(days.to_vec(), time(8, 0, 0, 0), time(10, 0, 0, 0)).unwrap()
        };
        assert_eq!(phone_hours(&h(&Weekday::WORKDAYS)), "mån–fre 08.00–10.00");
        assert_eq!(
            phone_hours(&h(&[Weekday::Mon, Weekday::Wed, Weekday::Fri])),
            "mån, ons, fre 08.00–10.00"
        );
        assert_eq!(
            phone_hours(&h(&[Weekday::Tue, Weekday::Wed])),
            "tis, ons 08.00–10.00"
        );
        assert_eq!(
            phone_hours(&h(&[
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Fri
            ])),
            "mån–ons, fre 08.00–10.00"
        );
        let around = PhoneHours::from_words("mon-sun 00:00-24:00").unwrap();
        assert_eq!(phone_hours(&around), "mån–sön dygnet runt");
        let evening = PhoneHours::from_words("sat,sun 16:00-24:00").unwrap();
        assert_eq!(phone_hours(&evening), "lör, sön 16.00–24.00");
        assert_eq!(
            all_phone_hours(&[h(&Weekday::WORKDAYS), evening]),
            "mån–fre 08.00–10.00, lör, sön 16.00–24.00"
        );
        assert_eq!(
            phone_hours(&h(&[
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sun
            ])),
            "mån, tis, tors, fre, sön 08.00–10.00"
        );
    }
}
