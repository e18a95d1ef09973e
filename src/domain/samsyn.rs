//! *Samsyn*: how far a unit and its patients agree that the parts of the Patientkontrakt
//! work, question by question of "7 frågor" (seeds `000_…`, `002_…`).
//!
//! Every question is answered from one scale. Each answer has a *value* — ja 1, delvis ½,
//! nej 0 — except "vet inte", which has none. For one question, with the patients'
//! answers P and the unit's answer u:
//!
//! - **exact agreement**: the share of P equal to u (every answer counts, "vet inte"
//!   too); none when P is empty or the unit has not answered;
//! - **weighted agreement**: the mean of 1 − |value(p) − value(u)| over the answers in P
//!   that have a value, so "delvis" against "ja" counts half; none when u or every p has
//!   no value;
//! - **patients' mean**: the mean value of P (the share who say it works, "delvis" as
//!   half);
//! - **gap**: value(u) − patients' mean. Positive: care believes the part works better
//!   than its patients find it does.

use std::fmt;

/// One answer of the "7 frågor" scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Answer {
    Ja,
    Delvis,
    Nej,
    VetInte,
}

impl Answer {
    /// Every answer, in the order the scale lists them.
    pub const ALL: [Answer; 4] = [Answer::Ja, Answer::Delvis, Answer::Nej, Answer::VetInte];

    /// The code in the answer scale (`mappings/sju-fragor.toml`).
    pub fn code(self) -> &'static str {
        match self {
            Answer::Ja => "ja",
            Answer::Delvis => "delvis",
            Answer::Nej => "nej",
            Answer::VetInte => "vet-inte",
        }
    }

    pub fn from_code(code: &str) -> Option<Answer> {
        Answer::ALL.into_iter().find(|a| a.code() == code)
    }

    /// How far the answer says the part works: ja 1, delvis ½, nej 0; "vet inte" none.
    pub fn value(self) -> Option<f64> {
        match self {
            Answer::Ja => Some(1.0),
            Answer::Delvis => Some(0.5),
            Answer::Nej => Some(0.0),
            Answer::VetInte => None,
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Answer::Ja => "Ja",
            Answer::Delvis => "Delvis",
            Answer::Nej => "Nej",
            Answer::VetInte => "Vet inte",
        })
    }
}

/// Patients' answers to one question set beside their unit's (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// How many patients answered.
    pub patient_answers: usize,
    /// How many gave each answer, in [`Answer::ALL`]'s order.
    pub distribution: [usize; 4],
    pub unit_answer: Option<Answer>,
    pub patient_mean: Option<f64>,
    pub exact_agreement: Option<f64>,
    pub weighted_agreement: Option<f64>,
    pub gap: Option<f64>,
}

/// Compares the patients' answers to one question with the unit's.
pub fn compare(patients: &[Answer], unit: Option<Answer>) -> Comparison {
    let mut distribution = [0; 4];
    for a in patients {
        distribution[Answer::ALL.iter().position(|x| x == a).unwrap_or(3)] += 1;
    }
    let valued: Vec<f64> = patients.iter().filter_map(|a| a.value()).collect();
    let patient_mean = mean(valued.iter().copied());
    let exact_agreement = unit
        .filter(|_| !patients.is_empty())
        .map(|u| patients.iter().filter(|&&p| p == u).count() as f64 / patients.len() as f64);
    let unit_value = unit.and_then(Answer::value);
    let weighted_agreement =
        unit_value.and_then(|u| mean(valued.iter().map(|p| 1.0 - (p - u).abs())));
    let gap = unit_value.zip(patient_mean).map(|(u, m)| u - m);
    Comparison {
        patient_answers: patients.len(),
        distribution,
        unit_answer: unit,
        patient_mean,
        exact_agreement,
        weighted_agreement,
        gap,
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The questions (by index) with the largest gap, largest first, at most `n`; questions
/// without a gap are left out, ties keep question order.
pub fn largest_gaps(comparisons: &[Comparison], n: usize) -> Vec<usize> {
    let mut with_gap: Vec<(usize, f64)> = comparisons
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.gap.map(|g| (i, g.abs())))
        .filter(|(_, g)| *g > 0.0)
        .collect();
    with_gap.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    with_gap.into_iter().take(n).map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::Answer::*;
    use super::*;

    #[test]
    fn agreement_on_a_hand_computed_example() {
        let c = compare(&[Ja, Ja, Delvis, Nej], Some(Ja));
        assert_eq!(c.patient_answers, 4);
        assert_eq!(c.distribution, [2, 1, 1, 0]);
        assert_eq!(c.exact_agreement, Some(0.5));
        // (1 + 1 + ½ + 0) / 4
        assert_eq!(c.weighted_agreement, Some(0.625));
        assert_eq!(c.patient_mean, Some(0.625));
        assert_eq!(c.gap, Some(0.375));
    }

    #[test]
    fn vet_inte_counts_for_exact_agreement_but_has_no_value() {
        let c = compare(&[Ja, VetInte], Some(Delvis));
        assert_eq!(c.distribution, [1, 0, 0, 1]);
        assert_eq!(c.exact_agreement, Some(0.0));
        assert_eq!(c.weighted_agreement, Some(0.5));
        assert_eq!(c.patient_mean, Some(1.0));
        assert_eq!(c.gap, Some(-0.5));

        let both_unsure = compare(&[VetInte, Nej], Some(VetInte));
        assert_eq!(both_unsure.exact_agreement, Some(0.5));
        assert_eq!(both_unsure.weighted_agreement, None);
        assert_eq!(both_unsure.gap, None);
        assert_eq!(both_unsure.patient_mean, Some(0.0));
    }

    #[test]
    fn no_answers_give_no_scores() {
        let c = compare(&[], Some(Ja));
        assert_eq!(c.patient_answers, 0);
        assert_eq!(c.distribution, [0; 4]);
        assert_eq!(
            (
                c.exact_agreement,
                c.weighted_agreement,
                c.patient_mean,
                c.gap
            ),
            (None, None, None, None)
        );
        let no_unit = compare(&[Ja, Nej], None);
        assert_eq!(no_unit.exact_agreement, None);
        assert_eq!(no_unit.weighted_agreement, None);
        assert_eq!(no_unit.patient_mean, Some(0.5));
        assert_eq!(no_unit.gap, None);
    }

    #[test]
    fn a_single_answer() {
        let same = compare(&[Delvis], Some(Delvis));
        assert_eq!(same.exact_agreement, Some(1.0));
        assert_eq!(same.weighted_agreement, Some(1.0));
        assert_eq!(same.gap, Some(0.0));
        let opposite = compare(&[Nej], Some(Ja));
        assert_eq!(opposite.exact_agreement, Some(0.0));
        assert_eq!(opposite.weighted_agreement, Some(0.0));
        assert_eq!(opposite.gap, Some(1.0));
    }

    #[test]
    fn the_largest_gaps_come_first_and_zero_gaps_are_left_out() {
        let cs = [
            compare(&[Ja], Some(Ja)),      // gap 0
            compare(&[Nej], Some(Delvis)), // ½
            compare(&[Ja], Some(Nej)),     // −1
            compare(&[], Some(Ja)),        // none
            compare(&[Delvis], Some(Ja)),  // ½
            compare(&[Nej, Ja], Some(Ja)), // ½
        ];
        assert_eq!(largest_gaps(&cs, 3), vec![2, 1, 4]);
        assert_eq!(largest_gaps(&cs, 10), vec![2, 1, 4, 5]);
    }

    #[test]
    fn codes_round_trip() {
        for a in Answer::ALL {
            assert_eq!(Answer::from_code(a.code()), Some(a));
        }
        assert_eq!(Answer::from_code("kanske"), None);
    }
}
