//! The Swedish narrative (`CarePlan.text`, status `generated`): the essentials of the
//! contract for an EHR or portal that shows only narrative. Valid XHTML within FHIR's
//! narrative rules: no scripts, no external references, only basic formatting elements.

use std::fmt::Write;

use crate::domain::{Actor, AgreedTimeStatus, CommitmentStatus, Contract, Part, Situation};
use crate::swedish;

/// Escapes text for XHTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A `<h2>` section with a list, left out when there is nothing to list.
fn list(out: &mut String, heading: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = write!(out, "<h2>{}</h2><ul>", escape(heading));
    for item in items {
        let _ = write!(out, "<li>{}</li>", escape(item));
    }
    out.push_str("</ul>");
}

fn who(actor: &Actor) -> String {
    match actor {
        Actor::Patient => "Jag".to_owned(),
        Actor::Network {
            name,
            relation: Some(r),
        } => format!("{name} ({r})"),
        Actor::Network {
            name,
            relation: None,
        } => name.clone(),
        Actor::Care {
            role,
            name: Some(n),
            ..
        } => format!("{n}, {role}"),
        Actor::Care {
            role, name: None, ..
        } => role.clone(),
    }
}

/// The narrative `div` for a contract.
pub fn care_plan_div(c: &Contract) -> String {
    let mut out =
        String::from(r#"<div xmlns="http://www.w3.org/1999/xhtml" lang="sv" xml:lang="sv">"#);
    let name = c.patient.name.as_deref().unwrap_or("personen");
    let _ = write!(out, "<h1>Patientkontrakt för {}</h1>", escape(name));
    let _ = write!(out, "<p>Status: {}.</p>", swedish::status(c.status));
    if let Some(unit) = &c.responsible_unit {
        let hours = swedish::all_phone_hours(&unit.phone_hours);
        let _ = write!(
            out,
            "<p>Ansvarig enhet: <b>{}</b>, telefon {}{}.</p>",
            escape(&unit.name),
            escape(unit.phone.as_str()),
            if hours.is_empty() {
                String::new()
            } else {
                format!(", telefontider {}", escape(&hours))
            }
        );
    }
    if let Some(step) = &c.next_step {
        let mut text = step.description.clone();
        if let Some(due) = step.due {
            let _ = write!(text, " (senast {})", swedish::date(due));
        }
        if let Some(actor) = &step.who {
            let _ = write!(text, " – {}", who(actor));
        }
        list(&mut out, "Mitt nästa steg", &[text]);
    }
    let mut upcoming: Vec<_> = c
        .agreed_times
        .iter()
        .filter(|t| t.status == AgreedTimeStatus::Agreed)
        .collect();
    upcoming.sort_by_key(|t| t.start);
    if let Some(t) = upcoming.first() {
        let with = t
            .with
            .as_deref()
            .map(|w| format!(", med {w}"))
            .unwrap_or_default();
        let place = t
            .location
            .as_deref()
            .map(|l| format!(", {l}"))
            .unwrap_or_default();
        let line = format!(
            "{}: {} ({}{with}{place})",
            swedish::span(t.start, t.end),
            t.what,
            swedish::meeting_mode(t.mode)
        );
        list(&mut out, "Nästa överenskomna tid", &[line]);
    }
    let contacts: Vec<String> = c
        .care_contacts
        .iter()
        .filter(|k| k.period.end.is_none())
        .map(|k| {
            let mut s = format!("{} – {}", k.name, swedish::role(k.role));
            if let Some(t) = &k.title {
                let _ = write!(s, ", {t}");
            }
            let channels: Vec<String> = k.channels.iter().map(swedish::channel).collect();
            if !channels.is_empty() {
                let _ = write!(s, ". Nås via {}", channels.join("; "));
            }
            s
        })
        .collect();
    list(&mut out, "Min fasta vårdkontakt", &contacts);
    list(
        &mut out,
        "Det här är viktigt för mig",
        &c.agreement.what_matters,
    );
    let active = || {
        c.agreement
            .commitments
            .iter()
            .filter(|x| x.status == CommitmentStatus::Active)
    };
    let lines = |situation: Situation, actor: fn(&Actor) -> bool| -> Vec<String> {
        active()
            .filter(|x| x.situation == situation && actor(&x.who))
            .map(|x| {
                let mut s = format!("{}: {}", who(&x.who), x.what);
                if let Some(when) = &x.when {
                    let _ = write!(s, " ({when})");
                }
                if let Some(turn) = &x.where_to_turn {
                    let _ = write!(s, ". Vart jag vänder mig: {turn}");
                }
                s
            })
            .collect()
    };
    list(
        &mut out,
        "Det jag gör för att må bra",
        &lines(Situation::StayingWell, |a| matches!(a, Actor::Patient)),
    );
    list(
        &mut out,
        "Det mitt nätverk gör",
        &lines(Situation::StayingWell, |a| {
            matches!(a, Actor::Network { .. })
        }),
    );
    list(
        &mut out,
        "Det vården gör",
        &lines(Situation::StayingWell, |a| matches!(a, Actor::Care { .. })),
    );
    list(
        &mut out,
        "Varningstecken: när jag ska söka vård och vart jag vänder mig",
        &lines(Situation::WarningSign, |_| true),
    );
    list(
        &mut out,
        "Om jag blir sämre",
        &lines(Situation::GettingWorse, |_| true),
    );
    let plans: Vec<String> = c
        .linked_plans
        .iter()
        .map(|p| {
            let mut s = format!("{}: {}", swedish::plan_kind(p.kind), p.title);
            if let Some(k) = &p.coordinator {
                let _ = write!(s, ". Samordnas av {}", k.name);
                for extra in [&k.role, &k.organization].into_iter().flatten() {
                    let _ = write!(s, ", {extra}");
                }
            }
            s
        })
        .collect();
    list(&mut out, "Mina andra planer", &plans);
    let discussed: Vec<String> = Part::ALL
        .iter()
        .map(|&part| {
            let d = c.discussed.get(part);
            let mut s = format!("{}: ", part.swedish());
            match (d.discussed, d.date) {
                (true, Some(date)) => {
                    let _ = write!(s, "samtal {}", swedish::date(date));
                }
                (true, None) => s.push_str("samtal har förts"),
                (false, _) => s.push_str("inte samtalat ännu"),
            }
            if let Some(why) = &d.not_applicable {
                let _ = write!(s, ". Gäller inte: {why}");
            }
            s
        })
        .collect();
    list(&mut out, "Vi har samtalat om delarna", &discussed);
    out.push_str("</div>");
    out
}
