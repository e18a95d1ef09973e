//! The Swedish narrative (`CarePlan.text`, status `generated`): the essentials of the
//! contract for an EHR or portal that shows only narrative. Valid XHTML within FHIR's
//! narrative rules: no scripts, no external references, only basic formatting elements.

use std::fmt::Write;

use crate::domain::{
    Actor, AgreedTimeStatus, CommitmentStatus, ContactRole, Contract, KnowledgeLink, Part,
    RequestStatus, Situation, Status,
};
use crate::fhir::{FirstPageElement, Profile};
use crate::swedish;

/// Escapes text for XHTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(&mut out, s);
    out
}

/// Appends `s` to `out`, escaped for XHTML.
fn push_escaped(out: &mut String, s: &str) {
    // Writing to a String cannot fail.
    let _ = write_escaped(out, s);
}

/// Appends the pieces in order: what `write!` does for a format of plain pieces, without
/// the formatting machinery (most of the narrative's time when it was written that way).
fn push_all(out: &mut String, pieces: &[&str]) {
    for piece in pieces {
        out.push_str(piece);
    }
}

/// Text escaped for XHTML as it is written (`write!(out, "<p>{}</p>", Escaped(text))`),
/// without a copy of its own.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_escaped(f, self.0)
    }
}

/// Most text has none of the five markup characters and is written in one go: they are
/// looked for sixteen bytes at a time, which the compiler turns into vector instructions.
fn write_escaped(out: &mut impl Write, s: &str) -> std::fmt::Result {
    let markup = |b: u8| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'');
    let plain_text = s
        .as_bytes()
        .chunks(16)
        .all(|chunk| !chunk.iter().fold(false, |hit, &b| hit | markup(b)));
    if plain_text {
        return out.write_str(s);
    }
    let mut plain = 0;
    for (at, byte) in s.bytes().enumerate() {
        let entity = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        // The five are ASCII, so `at` is always at a character boundary.
        out.write_str(&s[plain..at])?;
        out.write_str(entity)?;
        plain = at + 1;
    }
    out.write_str(&s[plain..])
}

/// A `<h2>` section with a list, left out when there is nothing to list.
fn list(out: &mut String, heading: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    out.push_str("<h2>");
    push_escaped(out, heading);
    out.push_str("</h2><ul>");
    for item in items {
        out.push_str("<li>");
        push_escaped(out, item);
        out.push_str("</li>");
    }
    out.push_str("</ul>");
}

fn who(actor: &Actor) -> String {
    match actor {
        Actor::Patient => "jag".to_owned(),
        Actor::Network {
            name,
            relation: Some(r),
        } => {
            let mut s = String::with_capacity(name.len() + r.len() + 3);
            push_all(&mut s, &[name, " (", r, ")"]);
            s
        }
        Actor::Network {
            name,
            relation: None,
        } => name.clone(),
        Actor::Care {
            role,
            name,
            organization,
            ..
        } => {
            // A role after a name is part of the sentence: "Sara Ek, fast läkarkontakt".
            let mut s = match name {
                Some(n) => {
                    let mut s = n.clone();
                    push_all(&mut s, &[", ", &swedish::lowercase_first(role)]);
                    s
                }
                None => role.clone(),
            };
            if let Some(o) = organization {
                push_all(&mut s, &[" (", o, ")"]);
            }
            s
        }
    }
}

/// A part found not to apply says so plainly, rather than vanishing.
fn not_applicable(out: &mut String, heading: &str, c: &Contract, part: Part) {
    if let Some(why) = &c.discussed.get(part).not_applicable {
        let _ = write!(
            out,
            "<h2>{}</h2><p>Gäller inte just nu: {}</p>",
            Escaped(heading),
            Escaped(why)
        );
    }
}

/// The narrative `div` for a contract: the first page's content (as `profile` says the
/// unit wants it), what the unit left off it, then the rest.
pub fn care_plan_div(c: &Contract, profile: &Profile) -> String {
    let shows = profile.first_page_of(c.responsible_unit.as_ref().map(|u| &u.hsa_id));
    let (first, off, rest) = (
        first_page(c, None, shows),
        off_first_page(c, None, shows),
        rest(c),
    );
    const OPEN: &str = r#"<div xmlns="http://www.w3.org/1999/xhtml" lang="sv" xml:lang="sv">"#;
    let mut div = String::with_capacity(OPEN.len() + first.len() + off.len() + rest.len() + 6);
    for part in [OPEN, &first, &off, &rest, "</div>"] {
        div.push_str(part);
    }
    div
}

/// What belongs on the first page: who the contract is with and the responsible unit,
/// then the elements the unit shows there (`shows`, in its order; by default: its phone
/// number and phone hours, its contact services, the next step, the next agreed time and
/// the fixed contacts with how to reach them).
///
/// On paper (`now` given) the next agreed time is the next one from now and the
/// contacts are those who have not left by now (a planned end included). The CarePlan's
/// narrative (`None`) is a versioned document and does not change as time passes: it
/// shows the earliest agreed time and the contacts without an end.
pub fn first_page(
    c: &Contract,
    now: Option<jiff::Timestamp>,
    shows: &[FirstPageElement],
) -> String {
    let mut out = String::with_capacity(1024);
    match c.patient.name.as_deref() {
        Some(name) => {
            let _ = write!(out, "<h1>Patientkontrakt för {}</h1>", Escaped(name));
        }
        None => out.push_str("<h1>Patientkontrakt</h1>"),
    }
    let _ = write!(out, "<p>{}</p>", swedish::status_sentence(c.status));
    if matches!(c.status, Status::Completed | Status::Revoked) {
        out.push_str(
            "<p>Det som står här gällde medan kontraktet gällde. Fråga din vårdenhet vad som gäller nu.</p>",
        );
    }
    if let Some(unit) = &c.responsible_unit {
        let _ = write!(
            out,
            "<p>Ansvarig enhet: <b>{}</b>{}.</p>",
            Escaped(&unit.name),
            unit_phone(c, shows)
        );
    }
    for element in shows {
        if !matches!(
            element,
            FirstPageElement::Phone | FirstPageElement::PhoneHours
        ) {
            out.push_str(&section(c, now, *element));
        }
    }
    out
}

/// What the unit left off its first page, right after it: nothing is left out.
pub fn off_first_page(
    c: &Contract,
    now: Option<jiff::Timestamp>,
    shows: &[FirstPageElement],
) -> String {
    let off: Vec<FirstPageElement> = FirstPageElement::ALL
        .into_iter()
        .filter(|e| !shows.contains(e))
        .collect();
    let mut out = String::new();
    let phone_off = off
        .iter()
        .any(|e| matches!(e, FirstPageElement::Phone | FirstPageElement::PhoneHours));
    if phone_off {
        let phone = unit_phone(c, &[FirstPageElement::Phone, FirstPageElement::PhoneHours]);
        if !phone.is_empty() {
            let _ = write!(
                out,
                "<p>Ansvarig enhet nås på{}.</p>",
                phone.trim_start_matches(',')
            );
        }
    }
    for element in off {
        if !matches!(
            element,
            FirstPageElement::Phone | FirstPageElement::PhoneHours
        ) {
            out.push_str(&section(c, now, element));
        }
    }
    out
}

/// `, telefon …, telefontider …` of the unit, as far as `shows` has them.
fn unit_phone(c: &Contract, shows: &[FirstPageElement]) -> String {
    let Some(unit) = &c.responsible_unit else {
        return String::new();
    };
    let mut out = String::new();
    if shows.contains(&FirstPageElement::Phone) {
        let _ = write!(out, ", telefon {}", Escaped(unit.phone.as_str()));
    }
    if shows.contains(&FirstPageElement::PhoneHours) {
        let hours = swedish::all_phone_hours(&unit.phone_hours);
        if !hours.is_empty() {
            let _ = write!(out, ", telefontider {}", Escaped(&hours));
        }
    }
    out
}

/// One element of the first page.
fn section(c: &Contract, now: Option<jiff::Timestamp>, element: FirstPageElement) -> String {
    let mut out = String::new();
    match element {
        FirstPageElement::Phone | FirstPageElement::PhoneHours => {}
        FirstPageElement::ContactServices => {
            let services: Vec<String> = c
                .responsible_unit
                .iter()
                .flat_map(|u| u.channels.iter().map(swedish::channel))
                .collect();
            if !services.is_empty() {
                let _ = write!(
                    out,
                    "<p>Enhetens kontaktvägar: {}.</p>",
                    Escaped(&services.join("; "))
                );
            }
        }
        FirstPageElement::NextStep => {
            if let Some(step) = &c.next_step {
                let mut text = step.description.clone();
                // "senast" only for a deadline; a fixed day is "den 3 december".
                if let Some(due) = step.due {
                    push_all(&mut text, &[" (senast ", &swedish::date(due), ")"]);
                }
                if let Some(on) = step.on {
                    push_all(&mut text, &[" (den ", &swedish::date(on), ")"]);
                }
                match &step.who {
                    Some(Actor::Patient) => text.push_str(" – det gör jag"),
                    Some(actor) => push_all(&mut text, &[" – ", &who(actor)]),
                    None => {}
                }
                list(&mut out, "Mitt nästa steg", &[text]);
            }
        }
        FirstPageElement::NextAgreedTime => next_agreed_time(&mut out, c, now),
        FirstPageElement::FixedContacts => fixed_contacts(&mut out, c, now),
    }
    out
}

/// "Nästa överenskomna tid": on paper the next one from now. The narrative, a versioned
/// document read at any later time, cannot say which is next: it lists the agreed times
/// with their dates ("Överenskomna tider"), and never calls a past visit the next.
fn next_agreed_time(out: &mut String, c: &Contract, now: Option<jiff::Timestamp>) {
    let mut agreed: Vec<_> = c
        .agreed_times
        .iter()
        .filter(|t| t.status == AgreedTimeStatus::Agreed)
        .filter(|t| now.is_none_or(|now| t.is_agreed() && t.start >= now))
        .collect();
    agreed.sort_by_key(|t| t.start);
    // `{span}: {what} ({mode}, med {with}, {location})`, pushed piece by piece.
    let line = |t: &crate::domain::AgreedTime| {
        let mut s = swedish::span(t.start, t.end);
        for piece in [": ", &t.what, " (", swedish::meeting_mode(t.mode)] {
            s.push_str(piece);
        }
        if let Some(with) = &t.with {
            s.push_str(", med ");
            s.push_str(with);
        }
        if let Some(location) = &t.location {
            s.push_str(", ");
            s.push_str(location);
        }
        s.push(')');
        s
    };
    match now {
        Some(_) => {
            if let Some(t) = agreed.first() {
                list(out, "Nästa överenskomna tid", &[line(t)]);
            }
        }
        None => {
            let lines: Vec<String> = agreed.into_iter().map(line).collect();
            list(out, "Överenskomna tider", &lines);
        }
    }
}

/// "Mina fasta kontakter", with how to reach them, and where to turn while there is no
/// fast vårdkontakt.
fn fixed_contacts(out: &mut String, c: &Contract, now: Option<jiff::Timestamp>) {
    let contacts: Vec<String> = c
        .care_contacts
        .iter()
        .filter(|k| match now {
            Some(now) => k.period.end.is_none_or(|end| end > now),
            // Read at any later time: everyone from the latest handover in their role on,
            // each with the dates that bound them; those who left before it are history.
            None => k
                .period
                .end
                .is_none_or(|end| end >= latest_start(c, k.role)),
        })
        .map(|k| {
            let day = swedish::local_date;
            let mut s = String::with_capacity(k.name.len() + 32);
            push_all(&mut s, &[&k.name, " – ", swedish::role(k.role)]);
            let follows = |now: Option<jiff::Timestamp>| match now {
                Some(now) => k.period.start > now,
                None => k.period.start == latest_start(c, k.role) && has_predecessor(c, k),
            };
            if follows(now) {
                push_all(&mut s, &[" (från ", &day(k.period.start), ")"]);
            }
            if let Some(end) = k.period.end {
                push_all(&mut s, &[" (till ", &day(end), ")"]);
            }
            if let Some(t) = &k.title {
                push_all(&mut s, &[", ", &swedish::lowercase_first(t)]);
            }
            let channels: Vec<String> = k.channels.iter().map(swedish::channel).collect();
            if !channels.is_empty() {
                push_all(&mut s, &[". Kontaktvägar: ", &channels.join("; ")]);
            }
            s
        })
        .collect();
    list(out, "Mina fasta kontakter", &contacts);
    if contacts.is_empty() {
        not_applicable(out, "Mina fasta kontakter", c, Part::FixedCareContact);
    }
    if let Some(meanwhile) = meanwhile(c) {
        let _ = write!(out, "<p>{}</p>", Escaped(&meanwhile));
    }
}

/// When the latest contact in `role` starts.
fn latest_start(c: &Contract, role: ContactRole) -> jiff::Timestamp {
    c.care_contacts
        .iter()
        .filter(|k| k.role == role)
        .map(|k| k.period.start)
        .max()
        .unwrap_or_default()
}

/// Whether someone else had `k`'s role before `k`.
fn has_predecessor(c: &Contract, k: &crate::domain::CareContact) -> bool {
    c.care_contacts
        .iter()
        .any(|o| o.role == k.role && o.period.start < k.period.start)
}

/// Where to turn while there is no fast vårdkontakt: between the one who left and the
/// next (the gap before the latest one), or after the last one has left. The unit's
/// phone is the answer.
fn meanwhile(c: &Contract) -> Option<String> {
    // Nobody is to be appointed for a contract that no longer applies.
    let in_force = !matches!(c.status, Status::Completed | Status::Revoked);
    if !in_force || c.discussed.fixed_care_contact.not_applicable.is_some() {
        return None;
    }
    let mut primaries: Vec<_> = c
        .care_contacts
        .iter()
        .filter(|k| k.primary && k.role == ContactRole::FastVardkontakt)
        .collect();
    primaries.sort_by_key(|k| k.period.start);
    let turn_to = match &c.responsible_unit {
        Some(unit) => format!("vänd dig till {}, telefon {}", unit.name, unit.phone),
        None => "vänd dig till din vårdenhet".to_owned(),
    };
    let day = swedish::local_date;
    let last = primaries.last()?;
    if let Some(end) = last.period.end {
        return Some(format!(
            "Din fasta vårdkontakt {} slutar {}. Tills en ny fast vårdkontakt är utsedd: {turn_to}.",
            last.name,
            day(end)
        ));
    }
    let before = primaries.iter().rev().nth(1)?;
    match before.period.end {
        Some(end) if end < last.period.start => Some(format!(
            "Mellan {} och {} har du ingen fast vårdkontakt. Under den tiden: {turn_to}.",
            day(end),
            day(last.period.start)
        )),
        _ => None,
    }
}

/// Everything after the first page, in the words of the seeds' "Hemma" list: what
/// matters, what I do, what I watch for and where I turn, what I do if I get worse, what
/// my network and care do, my agreed times, my other plans, what was discussed.
pub fn rest(c: &Contract) -> String {
    let mut out = String::with_capacity(4096);
    list(
        &mut out,
        "Det här är viktigt för mig",
        &c.agreement.what_matters,
    );
    if c.agreement.what_matters.is_empty() && c.agreement.commitments.is_empty() {
        not_applicable(&mut out, "Vår överenskommelse", c, Part::Agreement);
    }
    let active = || {
        c.agreement
            .commitments
            .iter()
            .filter(|x| x.status == CommitmentStatus::Active)
    };
    // The person's own items are theirs already by the heading ("Det jag gör …"): only
    // others' are named.
    let lines = |situation: Situation, actor: fn(&Actor) -> bool| -> Vec<String> {
        active()
            .filter(|x| x.situation == situation && actor(&x.who))
            .map(|x| {
                let mut s = match &x.who {
                    Actor::Patient => x.what.clone(),
                    other => {
                        let mut s = who(other);
                        push_all(&mut s, &[": ", &x.what]);
                        s
                    }
                };
                if let Some(when) = &x.when {
                    push_all(&mut s, &[" (", when, ")"]);
                }
                if let Some(turn) = &x.where_to_turn {
                    push_all(&mut s, &[". Vart jag vänder mig: ", turn]);
                }
                for k in &x.knowledge {
                    push_all(&mut s, &[". Läs mer: ", &knowledge_line(k)]);
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
        "Det vården och omsorgen gör",
        &lines(Situation::StayingWell, |a| matches!(a, Actor::Care { .. })),
    );
    list(
        &mut out,
        "Det jag håller koll på för att veta när jag behöver söka vård, och vart jag vänder mig",
        &lines(Situation::WarningSign, |_| true),
    );
    list(
        &mut out,
        "Om jag blir sämre",
        &lines(Situation::GettingWorse, |_| true),
    );
    let knowledge: Vec<String> = c.agreement.knowledge.iter().map(knowledge_line).collect();
    list(&mut out, "Kunskapsstöd för mig", &knowledge);
    let plans: Vec<String> = c
        .linked_plans
        .iter()
        .map(|p| {
            // The kind, unless the title says it already ("Min vårdplan – bröstcancer").
            let kind = swedish::plan_kind(p.kind);
            let mut s = if p.title.to_lowercase().starts_with(&kind.to_lowercase()) {
                p.title.clone()
            } else {
                let mut s = String::with_capacity(kind.len() + p.title.len() + 2);
                push_all(&mut s, &[kind, ": ", &p.title]);
                s
            };
            if let Some(k) = &p.coordinator {
                push_all(&mut s, &[". Samordnas av ", &k.name]);
                if let Some(role) = &k.role {
                    push_all(&mut s, &[", ", &swedish::lowercase_first(role)]);
                }
                if let Some(organization) = &k.organization {
                    push_all(&mut s, &[", ", organization]);
                }
            }
            s
        })
        .collect();
    agreed_times(&mut out, c);
    list(&mut out, "Mina andra planer", &plans);
    if plans.is_empty() {
        not_applicable(&mut out, "Mina andra planer", c, Part::CoordinatedPlan);
    }
    let discussed: Vec<String> = Part::ALL
        .iter()
        .map(|&part| {
            let d = c.discussed.get(part);
            let mut s = String::with_capacity(64);
            push_all(&mut s, &[part.swedish(), ": "]);
            match (d.discussed, d.date) {
                (true, Some(date)) => {
                    push_all(
                        &mut s,
                        &["vi samtalade om det den ", &swedish::date(date), "."],
                    );
                }
                (true, None) => s.push_str("vi har samtalat om det."),
                (false, _) => s.push_str("vi har inte samtalat om det ännu."),
            }
            if let Some(why) = &d.not_applicable {
                push_all(&mut s, &[" Gäller inte just nu: ", why]);
            }
            s
        })
        .collect();
    list(&mut out, "Vi har samtalat om delarna", &discussed);
    if let Some(confirmed) = &c.confirmed {
        let _ = write!(
            out,
            "<p>Jag bekräftade att vi är överens {}.</p>",
            Escaped(&swedish::instant(confirmed.at))
        );
    }
    let requests: Vec<String> = c
        .contact_requests
        .iter()
        .map(|r| {
            let state = match r.status {
                RequestStatus::Open => "väntar på svar",
                RequestStatus::Done => "besvarad",
                RequestStatus::Withdrawn => "återtagen",
            };
            let mut s = String::with_capacity(r.message.len() + 64);
            push_all(
                &mut s,
                &[
                    r.reason.swedish(),
                    " (",
                    &swedish::instant(r.asked_at),
                    ", ",
                    state,
                    "): ",
                    &r.message,
                ],
            );
            s
        })
        .collect();
    list(&mut out, "Mina önskemål om kontakt", &requests);
    out
}

/// A kunskapsstöd link as the person reads it: its title, who wrote it for whom, when
/// it was reviewed, and its address.
fn knowledge_line(k: &KnowledgeLink) -> String {
    let mut s = String::with_capacity(k.title.len() + k.url.len() + 64);
    s.push_str(&k.title);
    let reviewed = k.reviewed.map(swedish::date);
    let about = [
        k.source.as_deref().map(|source| ["", source]),
        k.diagnosis_group.as_deref().map(|group| ["för ", group]),
        reviewed.as_deref().map(|day| ["granskad ", day]),
    ];
    for (n, [what, text]) in about.iter().flatten().enumerate() {
        push_all(&mut s, &[if n == 0 { " (" } else { ", " }, what, text]);
    }
    if about.iter().any(Option::is_some) {
        s.push(')');
    }
    push_all(&mut s, &[": ", &k.url]);
    s
}

/// "Mina överenskomna tider": a table, the one place where the content is tabular.
fn agreed_times(out: &mut String, c: &Contract) {
    let mut times: Vec<_> = c.agreed_times.iter().collect();
    times.sort_by_key(|t| t.start);
    if times.is_empty() {
        not_applicable(out, "Mina överenskomna tider", c, Part::AgreedTime);
        return;
    }
    out.push_str("<h2>Mina överenskomna tider</h2><table><thead><tr><th scope=\"col\">När</th><th scope=\"col\">Vad</th><th scope=\"col\">Med vem och var</th><th scope=\"col\">Status</th></tr></thead><tbody>");
    for t in times {
        let status = match t.status {
            AgreedTimeStatus::Agreed => "Överenskommen",
            AgreedTimeStatus::Proposed => "Förslag",
            AgreedTimeStatus::Cancelled => "Inställd",
            AgreedTimeStatus::Fulfilled => "Genomförd",
        };
        out.push_str("<tr><td>");
        push_escaped(out, &swedish::span(t.start, t.end));
        out.push_str("</td><td>");
        push_escaped(out, &t.what);
        // With whom and where: the meeting's mode, then whoever and wherever is known.
        out.push_str("</td><td>");
        push_escaped(out, swedish::meeting_mode(t.mode));
        for known in [&t.with, &t.location].into_iter().flatten() {
            out.push_str(", ");
            push_escaped(out, known);
        }
        push_all(out, &["</td><td>", status, "</td></tr>"]);
    }
    out.push_str("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::{FirstPageElement, Profile, care_plan_div, escape, first_page, off_first_page};
    use crate::domain::{ContactRole, Contract};

    fn contract() -> Contract {
        crate::demo::contracts()
            .unwrap_or_default()
            .into_iter()
            .find(|(n, _)| *n == "hjartsvikt-primarvard")
            .map(|(_, c)| c)
            .unwrap_or_else(|| panic!("the demo has hjartsvikt-primarvard"))
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// On paper, as of now: the next agreed time is the next one from now (not a past
    /// visit), and a contact shows until the day they leave.
    #[test]
    fn the_first_page_on_paper_is_as_of_now() {
        let mut c = contract();
        let i = c
            .care_contacts
            .iter()
            .position(|k| k.primary && k.role == ContactRole::FastVardkontakt)
            .unwrap_or_else(|| panic!("a fast vårdkontakt"));
        let name = c.care_contacts[i].name.clone();
        c.care_contacts[i].period.end = Some(at("2027-01-01T12:00:00Z"));
        let before = first_page(&c, Some(at("2026-12-01T12:00:00Z")), &FirstPageElement::ALL);
        assert!(before.contains("Nästa överenskomna tid"), "{before}");
        assert!(before.contains("10 december 2026"), "{before}");
        assert!(before.contains("(till 1 januari 2027)"), "{before}");
        let after = first_page(&c, Some(at("2027-02-01T12:00:00Z")), &FirstPageElement::ALL);
        assert!(!after.contains("10 december 2026"), "{after}");
        assert!(!after.contains(&format!("<li>{name}")), "{after}");
        // The versioned narrative is read at any later time: it shows the contact with
        // the day they leave, and lists the agreed times by date, calling none "next".
        let narrative = first_page(&c, None, &FirstPageElement::ALL);
        assert!(
            narrative.contains(&format!("<li>{name}"))
                && narrative.contains("(till 1 januari 2027)"),
            "{narrative}"
        );
        assert!(!narrative.contains("Nästa överenskomna tid"), "{narrative}");
        assert!(narrative.contains("Överenskomna tider"), "{narrative}");
    }

    /// Between the fast vårdkontakt who left and the next, and after the last one has
    /// left, the first page says to turn to the unit, with its phone.
    #[test]
    fn the_first_page_says_where_to_turn_while_there_is_no_fast_vardkontakt() {
        let mut c = contract();
        let unit = c
            .responsible_unit
            .clone()
            .unwrap_or_else(|| panic!("a unit"));
        let i = c
            .care_contacts
            .iter()
            .position(|k| k.primary && k.role == ContactRole::FastVardkontakt)
            .unwrap_or_else(|| panic!("a fast vårdkontakt"));
        let mut next = c.care_contacts[i].clone();
        c.care_contacts[i].period.end = Some(at("2026-03-01T09:00:00Z"));
        next.id = "fvk-ny".into();
        next.name = "Maria Holm".into();
        next.period.start = at("2026-03-15T09:00:00Z");
        next.period.end = None;
        c.care_contacts.push(next);
        let page = first_page(&c, None, &FirstPageElement::ALL);
        let turn = format!(
            "Mellan 1 mars 2026 och 15 mars 2026 har du ingen fast vårdkontakt. Under den tiden: vänd dig till {}, telefon {}.",
            unit.name, unit.phone
        );
        assert!(page.contains(&escape(&turn)), "{page}");
        // The last one has left and no one is named yet.
        c.care_contacts.pop();
        let page = first_page(&c, None, &FirstPageElement::ALL);
        assert!(
            page.contains(
                "slutar 1 mars 2026. Tills en ny fast vårdkontakt är utsedd: vänd dig till"
            ),
            "{page}"
        );
        // Without a gap nothing is said.
        c.care_contacts[i].period.end = None;
        assert!(!first_page(&c, None, &FirstPageElement::ALL).contains("vänd dig till"));
    }

    #[test]
    fn escape_replaces_the_five_markup_characters_and_keeps_the_rest() {
        assert_eq!(escape(""), "");
        assert_eq!(escape("Åsa & Örjan"), "Åsa &amp; Örjan");
        assert_eq!(
            escape(r#"<b>"väl" 'så'</b>"#),
            "&lt;b&gt;&quot;väl&quot; &#39;så&#39;&lt;/b&gt;"
        );
        assert_eq!(escape("&&"), "&amp;&amp;");
        assert_eq!(escape("ingen märkning"), "ingen märkning");
        // Looked for sixteen bytes at a time: found in any chunk, at either end of one.
        let long = "sexton tecken...";
        assert_eq!(long.len(), 16);
        assert_eq!(escape(&format!("{long}<")), format!("{long}&lt;"));
        assert_eq!(
            escape(&format!("{long}{long}'")),
            format!("{long}{long}&#39;")
        );
        assert_eq!(escape(&format!("\"{long}")), format!("&quot;{long}"));
        assert_eq!(escape(&format!("{long}{long}")), format!("{long}{long}"));
        assert_eq!(
            format!("<p>{}</p>", super::Escaped("a > b")),
            "<p>a &gt; b</p>"
        );
    }

    /// A unit decides its first page; what it leaves off follows right after it.
    #[test]
    fn a_unit_decides_its_first_page_and_nothing_is_left_out() {
        let c = contract();
        let unit = c
            .responsible_unit
            .clone()
            .unwrap_or_else(|| panic!("a unit"));
        let mut profile = Profile::default_profile();
        profile
            .first_page
            .units
            .push(crate::fhir::profile::UnitFirstPage {
                hsa_id: unit.hsa_id.to_string(),
                shows: vec![
                    FirstPageElement::NextStep,
                    FirstPageElement::Phone,
                    FirstPageElement::NextAgreedTime,
                ],
            });
        let shows = profile.first_page_of(Some(&unit.hsa_id));
        let first = first_page(&c, None, shows);
        let off = off_first_page(&c, None, shows);
        assert!(
            first.contains(&format!("telefon {}", unit.phone)),
            "{first}"
        );
        assert!(
            !first.contains("telefontider") && !first.contains("Mina fasta kontakter"),
            "{first}"
        );
        let step = first
            .find("Mitt nästa steg")
            .unwrap_or_else(|| panic!("{first}"));
        let time = first
            .find("Överenskomna tider")
            .unwrap_or_else(|| panic!("{first}"));
        assert!(step < time, "in the unit's order: {first}");
        assert!(
            off.contains("telefontider") && off.contains("Mina fasta kontakter"),
            "{off}"
        );
        // Another unit's contract keeps the default first page.
        assert_eq!(profile.first_page_of(None), FirstPageElement::ALL);
        let whole = care_plan_div(&c, &profile);
        for heading in [
            "Mina fasta kontakter",
            "Överenskomna tider",
            "Mitt nästa steg",
        ] {
            assert_eq!(whole.matches(heading).count(), 1, "{heading} once: {whole}");
        }
    }
}
