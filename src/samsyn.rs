//! The samsyn report: for one unit and period, each of the seven questions with its
//! patients' answers beside the unit's own, scored as [`crate::domain::samsyn`] defines,
//! and the questions where the two differ most. Written as a FHIR `Parameters` resource
//! and as an SVG chart a person can read at a glance (one pair of bars per question).
//!
//! Which answers count:
//! - a patient's: those about the unit authored within the period; a person who
//!   answered more than once counts once, with their latest answers (answers without a
//!   named person count one by one);
//! - the unit's: every staff member's latest answers authored within the period (by the
//!   response's `author`; answers without one count one by one), so the unit's view is
//!   its staff's spread, not whoever answered last.
//!
//! Below a minimum number of patients (`[samsyn] min_patient_answers`, 5 by default) the
//! patients' figures are withheld: one person's answers are never shown as "the
//! patients'". The unit's answers to "Vad behöver ni förnya och utveckla?" are kept with
//! the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::{Value, json};

use crate::domain::HsaId;
use crate::domain::samsyn::{Answer, Comparison, compare, largest_gaps};
use crate::fhir::Profile;
use crate::fhir::narrative::escape;
use crate::fhir::questionnaire::{
    Respondent, ResponseFacts, answer_coding, link_ids, question_texts, read_response,
};
use crate::store::{ResponseQuery, Store, StoreError, StoredResponse};
use crate::swedish::stockholm;

/// How many questions the report names as those with the largest gap.
pub const LARGEST_GAPS: usize = 3;

/// The fewest patients whose answers are shown, unless configured otherwise.
pub const MIN_PATIENT_ANSWERS: usize = 5;

/// How many earlier periods a report shows beside its own, for the trend.
pub const EARLIER_PERIODS: usize = 3;

/// A period of whole days in Swedish time: `[start, end)`; open ends are unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Period {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// As it was given (`2026`, `2026-03`, `2026-01-01/2026-06-30`), or empty for all.
    pub text: String,
}

impl Period {
    /// All time.
    pub fn all() -> Period {
        Period::default()
    }

    /// `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or two of these as `from/to` (both included;
    /// either may be left empty).
    pub fn parse(s: &str) -> Result<Period, String> {
        let s = s.trim();
        let bad = || format!("'{s}' is not YYYY, YYYY-MM, YYYY-MM-DD or FROM/TO of these");
        let (from, to) = match s.split_once('/') {
            Some((a, b)) => (a, b),
            None => (s, s),
        };
        let span = |part: &str| -> Result<Option<(Date, Date)>, String> {
            if part.is_empty() {
                return Ok(None);
            }
            let pieces: Vec<&str> = part.split('-').collect();
            let num = |i: usize| pieces.get(i).and_then(|p| p.parse::<i16>().ok());
            let day = |y, m, d| Date::new(y, m, d).map_err(|_| bad());
            let (first, after) = match (pieces.len(), num(0), num(1), num(2)) {
                (1, Some(y), _, _) => (
                    day(y, 1, 1)?,
                    day(y, 1, 1)?.saturating_add(jiff::Span::new().years(1)),
                ),
                (2, Some(y), Some(m), _) => {
                    let first = day(y, m as i8, 1)?;
                    (first, first.saturating_add(jiff::Span::new().months(1)))
                }
                (3, Some(y), Some(m), Some(d)) => {
                    let first = day(y, m as i8, d as i8)?;
                    (first, first.tomorrow().map_err(|_| bad())?)
                }
                _ => return Err(bad()),
            };
            Ok(Some((first, after)))
        };
        let instant = |d: Date| -> Result<Timestamp, String> {
            d.to_zoned(stockholm())
                .map(|z| z.timestamp())
                .map_err(|_| bad())
        };
        let (from, to) = (span(from)?, span(to)?);
        let period = Period {
            start: from.map(|(d, _)| instant(d)).transpose()?,
            end: to.map(|(_, d)| instant(d)).transpose()?,
            text: s.to_owned(),
        };
        match (period.start, period.end) {
            (Some(a), Some(b)) if a >= b => Err(format!("'{s}' ends before it starts")),
            (None, None) if !s.is_empty() && s != "/" => Err(bad()),
            _ => Ok(period),
        }
    }

    /// The period of the same length just before this one: the year, month or day
    /// before, or a `FROM/TO` span moved back by its own length. `None` for an open one.
    pub fn previous(&self) -> Option<Period> {
        let shift = |text: &str, back: jiff::Span| -> Option<String> {
            let pieces: Vec<&str> = text.split('-').collect();
            let n = |i: usize| pieces.get(i).and_then(|p| p.parse::<i16>().ok());
            match (pieces.len(), n(0), n(1), n(2)) {
                (1, Some(y), _, _) => Some(format!("{}", y - 1)),
                (2, Some(y), Some(m), _) => {
                    let d = Date::new(y, m as i8, 1)
                        .ok()?
                        .checked_sub(jiff::Span::new().months(1))
                        .ok()?;
                    Some(format!("{:04}-{:02}", d.year(), d.month()))
                }
                (3, Some(y), Some(m), Some(d)) => {
                    let d = Date::new(y, m as i8, d as i8)
                        .ok()?
                        .checked_sub(back)
                        .ok()?;
                    Some(d.to_string())
                }
                _ => None,
            }
        };
        let text = match self.text.split_once('/') {
            None => shift(&self.text, jiff::Span::new().days(1))?,
            Some((from, to)) => {
                let (from, to): (Date, Date) = (from.parse().ok()?, to.parse().ok()?);
                let days = jiff::Span::new().days(from.until(to).ok()?.get_days() + 1);
                format!(
                    "{}/{}",
                    from.checked_sub(days).ok()?,
                    to.checked_sub(days).ok()?
                )
            }
        };
        Period::parse(&text).ok()
    }

    fn contains(&self, t: Timestamp) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t < e)
    }
}

/// One question of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionReport {
    pub link_id: &'static str,
    /// The patient's wording.
    pub patient_text: &'static str,
    /// Care's wording.
    pub care_text: &'static str,
    pub comparison: Comparison,
}

/// The unit's responses that read as answers to the questionnaires, oldest first (a
/// response that does not read is left out, as it was refused when it came).
fn read_all<'a>(
    stored: &'a [StoredResponse],
    profile: &Profile,
    unit: &HsaId,
) -> Vec<(&'a StoredResponse, ResponseFacts)> {
    let mut read: Vec<(&StoredResponse, ResponseFacts)> = stored
        .iter()
        .filter(|r| r.unit == unit.as_str())
        .filter_map(|r| read_response(&r.resource, profile).ok().map(|f| (r, f)))
        .collect();
    read.sort_by(|(a, _), (b, _)| (a.authored, &a.id).cmp(&(b.authored, &b.id)));
    read
}

/// One earlier period in a report's trend.
#[derive(Debug, Clone, PartialEq)]
pub struct Earlier {
    pub period: Period,
    /// Per question: the patients' mean and the unit's mean.
    pub means: Vec<(Option<f64>, Option<f64>)>,
}

/// The report for one unit and period.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub unit: HsaId,
    /// The unit's name, as its answers gave it.
    pub unit_name: Option<String>,
    pub period: Period,
    /// How many patients' answers count.
    pub patients: usize,
    /// The patients' figures are withheld: fewer answered than this minimum.
    pub withheld_below: Option<usize>,
    /// How many of the unit's staff answered.
    pub staff: usize,
    /// When the latest of the unit's answers that count was given.
    pub unit_answered: Option<Timestamp>,
    /// The staff's answers to "Vad behöver ni förnya och utveckla?", oldest first.
    pub to_renew: Vec<String>,
    /// The earlier periods of the same length, oldest first, each with the patients' and
    /// the unit's mean per question (the patients' withheld as in the period itself).
    pub earlier: Vec<Earlier>,
    pub questions: Vec<QuestionReport>,
    /// Indexes into `questions`, largest gap first.
    pub largest_gaps: Vec<usize>,
}

impl Report {
    /// Reads the unit's answers and its patients' from the store and compares them.
    pub async fn build(
        store: &Store,
        profile: &Profile,
        unit: &HsaId,
        period: Period,
        min_patients: usize,
    ) -> Result<Report, StoreError> {
        let stored = store
            .responses(&ResponseQuery {
                unit: Some(unit.as_str().to_owned()),
                authored_before: period.end,
                ..ResponseQuery::default()
            })
            .await?;
        // Each response is read once, for the period and the ones before it.
        let read = read_all(&stored, profile, unit);
        let mut report = Report::of_read(&read, unit, period, min_patients);
        let mut earlier = Vec::new();
        let mut before = report.period.previous();
        while let Some(p) = before.take().filter(|_| earlier.len() < EARLIER_PERIODS) {
            before = p.previous();
            let then = Report::of_read(&read, unit, p, min_patients);
            earlier.push(Earlier {
                means: then
                    .questions
                    .iter()
                    .map(|q| (q.comparison.patient_mean, q.comparison.unit_mean))
                    .collect(),
                period: then.period,
            });
        }
        earlier.reverse();
        report.earlier = earlier;
        Ok(report)
    }

    /// The report from the unit's stored responses (any order).
    pub fn of(
        stored: &[StoredResponse],
        profile: &Profile,
        unit: &HsaId,
        period: Period,
        min_patients: usize,
    ) -> Report {
        Report::of_read(&read_all(stored, profile, unit), unit, period, min_patients)
    }

    /// The report from the unit's responses as [`read_all`] reads them.
    fn of_read(
        read: &[(&StoredResponse, ResponseFacts)],
        unit: &HsaId,
        period: Period,
        min_patients: usize,
    ) -> Report {
        let mut latest_per_person: BTreeMap<String, &[Answer]> = BTreeMap::new();
        // Per staff member: their latest response and what it says.
        let mut latest_per_staff: BTreeMap<String, (&StoredResponse, &ResponseFacts)> =
            BTreeMap::new();
        for (r, facts) in read.iter().filter(|(r, _)| period.contains(r.authored)) {
            match Respondent::parse(&r.respondent) {
                Some(Respondent::Patient) => {
                    let who = r
                        .patient
                        .clone()
                        .unwrap_or_else(|| format!("response:{}", r.id));
                    latest_per_person.insert(who, &facts.answers);
                }
                Some(Respondent::Care) => {
                    let author = &r.resource["author"];
                    let who = author["identifier"]["value"]
                        .as_str()
                        .or_else(|| author["display"].as_str())
                        .map_or_else(|| format!("response:{}", r.id), str::to_owned);
                    latest_per_staff.insert(who, (r, facts));
                }
                _ => {}
            }
        }
        let mut staff: Vec<&(&StoredResponse, &ResponseFacts)> =
            latest_per_staff.values().collect();
        staff.sort_by_key(|(r, _)| (r.authored, r.id.clone()));
        let withheld_below = (latest_per_person.len() < min_patients).then_some(min_patients);
        let (patient_texts, care_texts) = (
            question_texts(Respondent::Patient),
            question_texts(Respondent::Care),
        );
        let questions: Vec<QuestionReport> = link_ids()
            .into_iter()
            .enumerate()
            .map(|(q, link_id)| {
                let patients: Vec<Answer> = if withheld_below.is_some() {
                    Vec::new()
                } else {
                    latest_per_person
                        .values()
                        .filter_map(|a| a.get(q).copied())
                        .collect()
                };
                let unit_answers: Vec<Answer> = staff
                    .iter()
                    .filter_map(|(_, facts)| facts.answers.get(q).copied())
                    .collect();
                QuestionReport {
                    link_id,
                    patient_text: patient_texts[q],
                    care_text: care_texts[q],
                    comparison: compare(&patients, &unit_answers),
                }
            })
            .collect();
        let comparisons: Vec<Comparison> = questions.iter().map(|q| q.comparison.clone()).collect();
        Report {
            unit: unit.clone(),
            unit_name: staff
                .iter()
                .rev()
                .find_map(|(r, _)| r.resource["subject"]["display"].as_str())
                .map(str::to_owned),
            period,
            patients: latest_per_person.len(),
            withheld_below,
            staff: staff.len(),
            unit_answered: staff.last().map(|(r, _)| r.authored),
            to_renew: staff
                .iter()
                .filter_map(|(_, facts)| facts.to_renew.clone())
                .collect(),
            earlier: Vec::new(),
            largest_gaps: largest_gaps(&comparisons, LARGEST_GAPS),
            questions,
        }
    }

    /// The report as a FHIR `Parameters` resource: `unit`, `period`, `patients`, one
    /// `question` per question (its scores as decimals between 0 and 1; the gap between
    /// −1 and 1) and `largestGap` (link ids, largest first).
    pub fn parameters(&self, profile: &Profile) -> Value {
        let mut parameters = vec![
            json!({ "name": "unit", "valueIdentifier": { "system": profile.identifiers.hsa_id, "value": self.unit.as_str() } }),
        ];
        if let Some(name) = &self.unit_name {
            parameters.push(json!({ "name": "unitName", "valueString": name }));
        }
        if self.period.start.is_some() || self.period.end.is_some() {
            let mut period = json!({});
            if let Some(s) = self.period.start {
                period["start"] = json!(s.to_string());
            }
            if let Some(e) = self.period.end {
                period["end"] = json!(e.to_string());
            }
            parameters.push(json!({ "name": "period", "valuePeriod": period }));
        }
        parameters.push(json!({ "name": "patients", "valueInteger": self.patients }));
        if let Some(min) = self.withheld_below {
            parameters.push(json!({ "name": "patientFiguresWithheld", "valueString": format!("fewer than {min} patients answered: their figures are not shown") }));
        }
        parameters.push(json!({ "name": "staff", "valueInteger": self.staff }));
        if let Some(t) = self.unit_answered {
            parameters.push(json!({ "name": "unitAnswered", "valueDateTime": t.to_string() }));
        }
        for text in &self.to_renew {
            parameters.push(json!({ "name": "toRenew", "valueString": text }));
        }
        for q in &self.questions {
            let c = &q.comparison;
            let mut part = vec![
                json!({ "name": "linkId", "valueString": q.link_id }),
                json!({ "name": "text", "valueString": q.patient_text }),
                json!({ "name": "patientAnswers", "valueInteger": c.patient_answers }),
            ];
            for (answer, count) in Answer::ALL.iter().zip(c.distribution) {
                part.push(json!({ "name": "answers", "part": [
                    { "name": "answer", "valueCoding": answer_coding(*answer) },
                    { "name": "count", "valueInteger": count },
                ] }));
            }
            part.push(json!({ "name": "unitAnswers", "valueInteger": c.unit_answers }));
            for (answer, count) in Answer::ALL.iter().zip(c.unit_distribution) {
                part.push(json!({ "name": "unitAnswersOf", "part": [
                    { "name": "answer", "valueCoding": answer_coding(*answer) },
                    { "name": "count", "valueInteger": count },
                ] }));
            }
            let scores = [
                ("patientMean", c.patient_mean),
                ("unitMean", c.unit_mean),
                ("exactAgreement", c.exact_agreement),
                ("weightedAgreement", c.weighted_agreement),
                ("gap", c.gap),
            ];
            for (name, score) in scores {
                if let Some(v) = score {
                    part.push(json!({ "name": name, "valueDecimal": round(v) }));
                }
            }
            parameters.push(json!({ "name": "question", "part": part }));
        }
        for &i in &self.largest_gaps {
            parameters
                .push(json!({ "name": "largestGap", "valueString": self.questions[i].link_id }));
        }
        for then in &self.earlier {
            let mut part = vec![json!({ "name": "period", "valueString": then.period.text })];
            for (q, (patients, unit)) in self.questions.iter().zip(&then.means) {
                let mut question = vec![json!({ "name": "linkId", "valueString": q.link_id })];
                for (name, mean) in [("patientMean", patients), ("unitMean", unit)] {
                    if let Some(v) = mean {
                        question.push(json!({ "name": name, "valueDecimal": round(*v) }));
                    }
                }
                part.push(json!({ "name": "question", "part": question }));
            }
            parameters.push(json!({ "name": "earlier", "part": part }));
        }
        json!({ "resourceType": "Parameters", "parameter": parameters })
    }

    /// The report as an SVG chart: per question, the patients' mean (ja 100 %, delvis
    /// 50 %, nej 0 %) and the unit's answer as two bars, the weighted agreement beside
    /// them, and the questions with the largest gap marked.
    pub fn svg(&self) -> String {
        const WIDTH: i32 = 960;
        const ROW: i32 = 86;
        const TOP: i32 = 118;
        const BAR_X: i32 = 190;
        const BAR_W: f64 = 560.0;
        let height = TOP + ROW * self.questions.len() as i32 + 24;
        let unit = self.unit_name.as_deref().unwrap_or(self.unit.as_str());
        let period = if self.period.text.is_empty() {
            "alla svar".to_owned()
        } else {
            format!("period {}", self.period.text)
        };
        let heading = format!("Samsyn, 7 frågor: {unit}");
        let summary = match self.withheld_below {
            Some(min) => format!(
                "Svar från {}: för få för att visas (minst {min}). Enhetens egna svar ({period}).",
                crate::swedish::count(self.patients, "patient", "patienter")
            ),
            None => format!(
                "Svar från {} jämförda med enhetens egna svar, från {} ({period}).",
                crate::swedish::count(self.patients, "patient", "patienter"),
                crate::swedish::count(self.staff, "person i personalen", "personer i personalen")
            ),
        };
        let mut s = String::new();
        let _ = write!(
            s,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="rubrik beskrivning" font-family="DejaVu Sans, Arial, sans-serif" lang="sv">
<title id="rubrik">{}</title>
<desc id="beskrivning">{}</desc>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="20" y="34" font-size="22" font-weight="bold" fill="#1a1a1a">{}</text>
<text x="20" y="60" font-size="14" fill="#333333">{}</text>
<rect x="20" y="76" width="16" height="12" fill="#1f5fa8"/><text x="42" y="87" font-size="13" fill="#333333">Patienterna: andel som svarar ja (delvis räknas som hälften)</text>
<rect x="500" y="76" width="16" height="12" fill="#e07b00"/><text x="522" y="87" font-size="13" fill="#333333">Enhetens personal: andel som svarar ja, på samma sätt</text>
"##,
            escape(&heading),
            escape(&summary),
            escape(&heading),
            escape(&summary),
        );
        for (i, q) in self.questions.iter().enumerate() {
            let y = TOP + ROW * i as i32;
            let c = &q.comparison;
            let flagged = self.largest_gaps.contains(&i);
            let label = format!("{}. {}", q.link_id, shorten(q.patient_text, 92));
            let _ = write!(
                s,
                r##"<g><title>{} / {}</title>
<text x="20" y="{}" font-size="14" font-weight="bold" fill="#1a1a1a">{}</text>
"##,
                escape(q.patient_text),
                escape(q.care_text),
                y + 4,
                escape(&label),
            );
            let bars = [
                (
                    format!("Patienterna (n={})", c.patient_answers),
                    c.patient_mean,
                    "#1f5fa8",
                    c.patient_mean.map(|m| format!("{} %", percent(m))),
                ),
                (
                    format!("Enheten (n={})", c.unit_answers),
                    c.unit_mean,
                    "#e07b00",
                    c.unit_mean.map(|m| format!("{} %", percent(m))),
                ),
            ];
            for (b, (name, value, colour, shown)) in bars.into_iter().enumerate() {
                let by = y + 14 + 24 * b as i32;
                let width = value.map_or(0.0, |v| v * BAR_W);
                let shown = shown.unwrap_or_else(|| "inget svar".to_owned());
                let _ = write!(
                    s,
                    r##"<text x="20" y="{}" font-size="13" fill="#333333">{}</text>
<rect x="{BAR_X}" y="{by}" width="{BAR_W}" height="18" fill="#eeeeee"/>
<rect x="{BAR_X}" y="{by}" width="{width:.1}" height="18" fill="{colour}"/>
<text x="{}" y="{}" font-size="13" fill="#1a1a1a">{}</text>
"##,
                    by + 14,
                    escape(&name),
                    BAR_X + BAR_W as i32 + 8,
                    by + 14,
                    escape(&shown),
                );
            }
            let agreement = c.weighted_agreement.map_or_else(
                || "samsyn –".to_owned(),
                |w| format!("samsyn {} %", percent(w)),
            );
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" font-size="14" text-anchor="end" fill="#1a1a1a">{}</text>"##,
                WIDTH - 20,
                y + 32,
                escape(&agreement),
            );
            if !self.earlier.is_empty() {
                let trend: Vec<String> = self
                    .earlier
                    .iter()
                    .map(|then| {
                        let mean = then.means.get(i).and_then(|m| m.0);
                        format!(
                            "{} {}",
                            then.period.text,
                            mean.map_or_else(|| "–".to_owned(), |m| format!("{} %", percent(m)))
                        )
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    r##"<text x="{BAR_X}" y="{}" font-size="12" fill="#555555">{}</text>"##,
                    y + 72,
                    escape(&format!("Patienterna tidigare: {}", trend.join(", "))),
                );
            }
            if flagged {
                let _ = writeln!(
                    s,
                    r##"<text x="{}" y="{}" font-size="13" font-weight="bold" text-anchor="end" fill="#b00020">störst skillnad</text>"##,
                    WIDTH - 20,
                    y + 52,
                );
            }
            s.push_str("</g>\n");
        }
        s.push_str("</svg>\n");
        s
    }
}

fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn percent(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

/// At most `max` characters, cut at a word with "…".
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    let at_word = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{at_word} …")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_period_before_has_the_same_length() {
        let before = |text: &str| Period::parse(text).unwrap().previous().map(|p| p.text);
        assert_eq!(before("2026").as_deref(), Some("2025"));
        assert_eq!(before("2026-01").as_deref(), Some("2025-12"));
        assert_eq!(before("2026-03-01").as_deref(), Some("2026-02-28"));
        // 181 days back.
        assert_eq!(
            before("2026-01-01/2026-06-30").as_deref(),
            Some("2025-07-04/2025-12-31")
        );
        assert_eq!(before("2026/"), None, "an open period has none before it");
        assert_eq!(Period::all().previous(), None);
    }

    #[test]
    fn periods_are_whole_swedish_days() {
        let year = Period::parse("2026").unwrap();
        assert_eq!(year.start, Some(t("2025-12-31T23:00:00Z")));
        assert_eq!(year.end, Some(t("2026-12-31T23:00:00Z")));
        let month = Period::parse("2026-06").unwrap();
        assert_eq!(month.start, Some(t("2026-05-31T22:00:00Z")));
        assert_eq!(month.end, Some(t("2026-06-30T22:00:00Z")));
        let span = Period::parse("2026-01-01/2026-06-30").unwrap();
        assert_eq!(span.start, Some(t("2025-12-31T23:00:00Z")));
        assert_eq!(span.end, Some(t("2026-06-30T22:00:00Z")));
        let open = Period::parse("2026-03/").unwrap();
        assert_eq!((open.start.is_some(), open.end), (true, None));
        assert_eq!(Period::parse("").unwrap(), Period::all());
        for bad in [
            "2026-13",
            "igår",
            "2026-06-31",
            "2026-06/2026-01",
            "2026-1-1-1",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_questions_are_shortened_at_a_word() {
        assert_eq!(
            shorten("Vet du ditt nästa steg?", 92),
            "Vet du ditt nästa steg?"
        );
        assert_eq!(shorten("ett två tre fyra", 9), "ett två …");
    }
}
