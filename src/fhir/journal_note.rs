//! The journal note: a `DocumentReference` the EHR files in the person's journal under
//! the journal keyword (seed 002: *"sökord överenskommelse-patientkontrakt"* in the
//! unit's templates), so the contract can be read in the journal and through 1177's
//! journal view.
//!
//! One note per version that changed what the person and care agreed (see
//! [`Contract::agreed_parts_eq`]): its id names that version
//! (`{contract}-anteckning-v{N}`), its `date` is when it was recorded, its `type` the
//! profile's keyword (`category`: Cosmic's "Överenskommelse - patientkontrakt"), and
//! its content the contract's narrative — the four parts, which parts were discussed
//! and when, the person's confirmation — as XHTML, in `text` and as the attachment.
//!
//! `DocumentReference` rather than a `Composition` document Bundle: a journal takes a
//! note as one resource with its text, keyword, author and date (what 1177's journal view
//! shows), and the note points at the CarePlan (`context.related`) for the structure.

use base64::Engine;
use jiff::Timestamp;
use serde_json::Value;

use super::actor::patient_reference;
use super::json::{Json, concept, object};
use super::{Profile, narrative};
use crate::domain::{Contract, ContractId, Version};

/// The note's resource id: the contract's id and the version it records.
pub fn journal_note_id(contract: &ContractId, version: Version) -> String {
    format!("{contract}-anteckning-v{version}")
}

/// What a note records: the contract as of `version`, recorded at `recorded`, by
/// `author` (as the client identified itself).
#[derive(Debug, Clone, Copy)]
pub struct NoteOf<'a> {
    pub id: &'a ContractId,
    pub contract: &'a Contract,
    pub version: Version,
    pub recorded: Timestamp,
    pub author: Option<&'a str>,
}

pub fn to_journal_note(note: NoteOf<'_>, profile: &Profile) -> Value {
    let NoteOf {
        id,
        contract,
        version,
        recorded,
        author,
    } = note;
    let div = narrative::care_plan_div(contract, profile);
    let title = format!("Patientkontrakt, version {version}");
    let mut resource = object! {
        "resourceType": "DocumentReference",
        "id": journal_note_id(id, version),
        "text": object! { "status": "generated", "div": div.as_str() },
        "status": "current",
        "docStatus": "final",
        "type": concept(&profile.category),
        "category": vec![concept(&profile.category)],
        "subject": patient_reference(&contract.patient, profile),
        "date": recorded.to_string(),
    };
    let unit = contract
        .responsible_unit
        .as_ref()
        .map(|u| super::care_team::unit_reference(u, profile));
    let mut authors: Vec<Json> = unit.iter().cloned().collect();
    if let Some(author) = author {
        authors.push(object! { "display": author });
    }
    resource.put("author", authors);
    resource.put("custodian", unit);
    resource.put("description", title.as_str());
    let page = format!(
        "<!DOCTYPE html><html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"sv\"><head><meta charset=\"utf-8\"/><title>{}</title></head><body>{div}</body></html>",
        narrative::escape(&title)
    );
    resource.put(
        "content",
        vec![object! {
            "attachment": object! {
                "contentType": "application/xhtml+xml",
                "language": "sv",
                "data": base64::engine::general_purpose::STANDARD.encode(page),
                "title": title.as_str(),
                "creation": recorded.to_string(),
            },
        }],
    );
    resource.put(
        "context",
        object! { "related": vec![object! { "reference": format!("CarePlan/{id}") }] },
    );
    resource.into()
}
