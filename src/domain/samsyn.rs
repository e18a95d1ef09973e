//! *Samsyn*: how far a unit and its patients agree that the parts of the Patientkontrakt
//! work, question by question of "7 frågor" (seeds `000_…`, `002_…`).
//!
//! Every question is answered from one scale. Each answer has a *value* — ja 1, delvis ½,
//! nej 0 — except "vet inte", which has none. The questions asked "vid behov" (4 and 7)
//! also take "inte aktuellt för mig": someone who needs no fast vårdkontakt is not a gap,
//! so those answers are counted but left out of every score. For one question, with the
//! patients' answers P and the unit's staff's answers U (both without "inte aktuellt"):
//!
//! - **exact agreement**: the share of pairs (p, u) that are equal (every answer counts,
//!   "vet inte" too); none when P or U is empty;
//! - **weighted agreement**: the mean of 1 − |value(p) − value(u)| over the pairs where
//!   both have a value, so "delvis" against "ja" counts half; none without such a pair;
//! - **patients' mean** and **unit's mean**: the mean value of P and of U (the share who
//!   say it works, "delvis" as half);
//! - **gap**: unit's mean − patients' mean. Positive: care believes the part works better
//!   than its patients find it does.

use std::fmt;

/// One answer of the "7 frågor" scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Answer {
    Ja,
    Delvis,
    Nej,
    VetInte,
    /// "Inte aktuellt för mig": only for the questions asked "vid behov".
    InteAktuellt,
}

impl Answer {
    /// Every answer, in the order the scale lists them.
    pub const ALL: [Answer; 5] = [
        Answer::Ja,
        Answer::Delvis,
        Answer::Nej,
        Answer::VetInte,
        Answer::InteAktuellt,
    ];

    /// The code in the answer scale (`mappings/sju-fragor.toml`).
    pub fn code(self) -> &'static str {
        match self {
            Answer::Ja => "ja",
            Answer::Delvis => "delvis",
            Answer::Nej => "nej",
            Answer::VetInte => "vet-inte",
            Answer::InteAktuellt => "inte-aktuellt",
        }
    }

    pub fn from_code(code: &str) -> Option<Answer> {
        Answer::ALL.into_iter().find(|a| a.code() == code)
    }

    /// How far the answer says the part works: ja 1, delvis ½, nej 0; "vet inte" and
    /// "inte aktuellt" none.
    pub fn value(self) -> Option<f64> {
        match self {
            Answer::Ja => Some(1.0),
            Answer::Delvis => Some(0.5),
            Answer::Nej => Some(0.0),
            Answer::VetInte | Answer::InteAktuellt => None,
        }
    }

    /// Whether the answer takes part in the scores ("inte aktuellt" does not).
    pub fn scored(self) -> bool {
        self != Answer::InteAktuellt
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Answer::Ja => "Ja",
            Answer::Delvis => "Delvis",
            Answer::Nej => "Nej",
            Answer::VetInte => "Vet inte",
            Answer::InteAktuellt => "Inte aktuellt för mig",
        })
    }
}

/// Patients' answers to one question set beside their unit's (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// How many patients answered.
    pub patient_answers: usize,
    /// How many patients gave each answer, in [`Answer::ALL`]'s order.
    pub distribution: [usize; 5],
    /// How many of the unit's staff answered.
    pub unit_answers: usize,
    /// How many of the staff gave each answer, in [`Answer::ALL`]'s order.
    pub unit_distribution: [usize; 5],
    pub patient_mean: Option<f64>,
    pub unit_mean: Option<f64>,
    pub exact_agreement: Option<f64>,
    pub weighted_agreement: Option<f64>,
    pub gap: Option<f64>,
}

/// Compares the patients' answers to one question with the unit's staff's.
pub fn compare(patients: &[Answer], unit: &[Answer]) -> Comparison {
    let count = |answers: &[Answer]| {
        let mut distribution = [0; 5];
        for a in answers {
            if let Some(i) = Answer::ALL.iter().position(|x| x == a) {
                distribution[i] += 1;
            }
        }
        distribution
    };
    let p: Vec<Answer> = patients.iter().copied().filter(|a| a.scored()).collect();
    let u: Vec<Answer> = unit.iter().copied().filter(|a| a.scored()).collect();
    let pairs = || p.iter().flat_map(|&x| u.iter().map(move |&y| (x, y)));
    let exact_agreement = (!p.is_empty() && !u.is_empty())
        .then(|| pairs().filter(|(x, y)| x == y).count() as f64 / (p.len() * u.len()) as f64);
    let weighted_agreement = mean(pairs().filter_map(|(x, y)| {
        let (x, y) = (x.value()?, y.value()?);
        Some(1.0 - (x - y).abs())
    }));
    let patient_mean = mean(p.iter().filter_map(|a| a.value()));
    let unit_mean = mean(u.iter().filter_map(|a| a.value()));
    Comparison {
        patient_answers: patients.len(),
        distribution: count(patients),
        unit_answers: unit.len(),
        unit_distribution: count(unit),
        patient_mean,
        unit_mean,
        exact_agreement,
        weighted_agreement,
        gap: unit_mean.zip(patient_mean).map(|(u, m)| u - m),
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
        let c = compare(&[Ja, Ja, Delvis, Nej], &[Ja]);
        assert_eq!(c.patient_answers, 4);
        assert_eq!(c.distribution, [2, 1, 1, 0, 0]);
        assert_eq!(c.exact_agreement, Some(0.5));
        // (1 + 1 + ½ + 0) / 4
        assert_eq!(c.weighted_agreement, Some(0.625));
        assert_eq!(c.patient_mean, Some(0.625));
        assert_eq!(c.gap, Some(0.375));
    }

    #[test]
    fn vet_inte_counts_for_exact_agreement_but_has_no_value() {
        let c = compare(&[Ja, VetInte], &[Delvis]);
        assert_eq!(c.distribution, [1, 0, 0, 1, 0]);
        assert_eq!(c.exact_agreement, Some(0.0));
        assert_eq!(c.weighted_agreement, Some(0.5));
        assert_eq!(c.patient_mean, Some(1.0));
        assert_eq!(c.gap, Some(-0.5));

        let both_unsure = compare(&[VetInte, Nej], &[VetInte]);
        assert_eq!(both_unsure.exact_agreement, Some(0.5));
        assert_eq!(both_unsure.weighted_agreement, None);
        assert_eq!(both_unsure.gap, None);
        assert_eq!(both_unsure.patient_mean, Some(0.0));
    }

    #[test]
    fn no_answers_give_no_scores() {
        let c = compare(&[], &[Ja]);
        assert_eq!(c.patient_answers, 0);
        assert_eq!(c.distribution, [0; 5]);
        assert_eq!(
            (
                c.exact_agreement,
                c.weighted_agreement,
                c.patient_mean,
                c.gap
            ),
            (None, None, None, None)
        );
        let no_unit = compare(&[Ja, Nej], &[]);
        assert_eq!(no_unit.exact_agreement, None);
        assert_eq!(no_unit.weighted_agreement, None);
        assert_eq!(no_unit.patient_mean, Some(0.5));
        assert_eq!(no_unit.gap, None);
    }

    #[test]
    fn a_single_answer() {
        let same = compare(&[Delvis], &[Delvis]);
        assert_eq!(same.exact_agreement, Some(1.0));
        assert_eq!(same.weighted_agreement, Some(1.0));
        assert_eq!(same.gap, Some(0.0));
        let opposite = compare(&[Nej], &[Ja]);
        assert_eq!(opposite.exact_agreement, Some(0.0));
        assert_eq!(opposite.weighted_agreement, Some(0.0));
        assert_eq!(opposite.gap, Some(1.0));
    }

    #[test]
    fn the_largest_gaps_come_first_and_zero_gaps_are_left_out() {
        let cs = [
            compare(&[Ja], &[Ja]),      // gap 0
            compare(&[Nej], &[Delvis]), // ½
            compare(&[Ja], &[Nej]),     // −1
            compare(&[], &[Ja]),        // none
            compare(&[Delvis], &[Ja]),  // ½
            compare(&[Nej, Ja], &[Ja]), // ½
        ];
        assert_eq!(largest_gaps(&cs, 3), vec![2, 1, 4]);
        assert_eq!(largest_gaps(&cs, 10), vec![2, 1, 4, 5]);
    }

    /// Hand-computed: five patients, one of them "inte aktuellt", and two of the staff.
    #[test]
    fn every_staff_answer_counts_and_inte_aktuellt_is_no_gap() {
        let c = compare(&[Ja, Ja, Delvis, Nej, InteAktuellt], &[Ja, Delvis]);
        assert_eq!(c.distribution, [2, 1, 1, 0, 1]);
        assert_eq!(c.unit_distribution, [1, 1, 0, 0, 0]);
        assert_eq!((c.patient_answers, c.unit_answers), (5, 2));
        // (1 + 1 + ½ + 0) / 4 and (1 + ½) / 2
        assert_eq!(c.patient_mean, Some(0.625));
        assert_eq!(c.unit_mean, Some(0.75));
        // Of 4 × 2 pairs, ja–ja twice and delvis–delvis once are equal.
        assert_eq!(c.exact_agreement, Some(0.375));
        // ja: 1 + ½ (twice), delvis: ½ + 1, nej: 0 + ½, over 8 pairs = 5 / 8
        assert_eq!(c.weighted_agreement, Some(0.625));
        assert_eq!(c.gap, Some(0.125));
        // Nobody needing it is not a gap.
        let none_need = compare(&[InteAktuellt, InteAktuellt], &[Ja]);
        assert_eq!(
            (
                none_need.patient_mean,
                none_need.gap,
                none_need.exact_agreement
            ),
            (None, None, None)
        );
        assert_eq!(none_need.patient_answers, 2);
    }

    #[test]
    fn codes_round_trip() {
        for a in Answer::ALL {
            assert_eq!(Answer::from_code(a.code()), Some(a));
        }
        assert_eq!(Answer::from_code("kanske"), None);
    }
}
