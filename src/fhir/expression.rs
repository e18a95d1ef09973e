//! Where a broken contract rule lives in FHIR: turns a contract field path (as
//! [`crate::domain::Violation::field`] gives it) into the FHIRPath of the element that
//! carries it, so a 422 OperationOutcome names what the client sent.

use crate::domain::Contract;

/// The FHIR element for a contract field, e.g. `careContacts[1].period` →
/// `CareTeam.participant[1].period`.
pub fn expression_for(field: &str, contract: &Contract) -> String {
    let (head, rest) = field.split_once('.').unwrap_or((field, ""));
    let (name, index) = match head.split_once('[') {
        Some((name, i)) => (name, i.trim_end_matches(']').parse::<usize>().ok()),
        None => (head, None),
    };
    let at = |base: &str, i: Option<usize>| i.map_or(base.to_owned(), |i| format!("{base}[{i}]"));
    match name {
        "status" => "CarePlan.status".into(),
        "version" => "CarePlan.meta.versionId".into(),
        "nextStep" => "CarePlan.activity".into(),
        "responsibleUnit" if rest == "phoneHours" => "CareTeam.telecom.extension".into(),
        "responsibleUnit" => "CareTeam.managingOrganization".into(),
        "careContacts" => {
            let base = at("CareTeam.participant", index);
            if rest == "period" {
                format!("{base}.period")
            } else {
                base
            }
        }
        "agreedTimes" => at("Appointment", index),
        "linkedPlans" => at("CarePlan.supportingInfo", index),
        "discussed" => "CarePlan.extension".into(),
        "patient" => "CarePlan.subject.identifier".into(),
        "agreement" => match rest.split_once('[').map(|(list, i)| {
            (
                list,
                i.split(']').next().and_then(|n| n.parse::<usize>().ok()),
            )
        }) {
            Some(("whatMatters", i)) => format!("{}.description", at("Goal", i)),
            Some(("knowledge", _)) => "CarePlan.extension".into(),
            Some(("commitments", Some(i))) => {
                let offset = usize::from(contract.next_step.is_some());
                format!("CarePlan.activity[{}]", i + offset)
            }
            _ => "CarePlan.activity".into(),
        },
        _ => "CarePlan".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_become_fhir_elements() {
        let contract = crate::demo::contracts().unwrap().remove(0).1;
        let e = |f: &str| expression_for(f, &contract);
        assert_eq!(e("nextStep"), "CarePlan.activity");
        assert_eq!(
            e("careContacts[1].period"),
            "CareTeam.participant[1].period"
        );
        assert_eq!(
            e("responsibleUnit.phoneHours"),
            "CareTeam.telecom.extension"
        );
        assert_eq!(
            e("agreement.commitments[0].whereToTurn"),
            "CarePlan.activity[1]"
        );
        assert_eq!(e("agreement.whatMatters[1]"), "Goal[1].description");
        assert_eq!(e("agreedTimes[0].status"), "Appointment[0]");
        assert_eq!(e("discussed.agreedTime.date"), "CarePlan.extension");
    }
}
