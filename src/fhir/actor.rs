//! Who does something (the person, their network, a care role) as a FHIR Reference, and
//! the person's identity as a Patient reference by identifier.

use serde_json::Value;

use super::Profile;
use super::json::{
    Json, MappingError, complex, ext_str, extension, identifier, object, opt_string, str_of,
};
use super::profile::PersonError;
use crate::domain::{Actor, HsaId, Patient};

/// A reference to the person, by personnummer, samordningsnummer or reservnummer.
pub fn patient_reference<'a>(patient: &'a Patient, profile: &'a Profile) -> Json<'a> {
    let (system, value) = profile.identifiers.identifier_of(&patient.id);
    let mut r = object! { "type": "Patient", "identifier": identifier(system, value) };
    r.put("display", patient.name.as_deref());
    r
}

/// The person from a Patient reference; any accepted identifier system will do: the
/// personnummer's and samordningsnummer's (and their aliases), and the region's
/// reservnummer systems, each value in its system's form.
pub fn patient_from(
    reference: &Value,
    expression: &str,
    profile: &Profile,
) -> Result<Patient, MappingError> {
    let ident = reference.get("identifier").ok_or_else(|| {
        MappingError::new(
            format!("{expression}.identifier"),
            "must identify the person by personnummer, samordningsnummer or reservnummer",
        )
    })?;
    let system = str_of(ident, "system").unwrap_or_default();
    let value = str_of(ident, "value").unwrap_or_default();
    let id = profile
        .identifiers
        .person(system, value)
        .map_err(|e| match e {
            PersonError::System(_) => {
                MappingError::new(format!("{expression}.identifier.system"), e)
            }
            PersonError::Value(_) => MappingError::new(format!("{expression}.identifier.value"), e),
        })?;
    Ok(Patient {
        id,
        name: str_of(reference, "display").map(str::to_owned),
    })
}

/// A Reference for who does something.
pub fn actor_reference<'a>(
    actor: &'a Actor,
    patient: &'a Patient,
    profile: &'a Profile,
) -> Json<'a> {
    let url = &profile.extensions.actor_detail;
    match actor {
        Actor::Patient => patient_reference(patient, profile),
        Actor::Network { name, relation } => {
            let mut r = object! { "type": "RelatedPerson", "display": name.as_str() };
            if let Some(rel) = opt_string("relation", relation.as_deref()) {
                r.put("extension", vec![complex(url, vec![rel])]);
            }
            r
        }
        Actor::Care {
            role,
            name,
            unit,
            organization,
        } => {
            let mut r = object! { "type": "PractitionerRole", "display": role.as_str() };
            let parts: Vec<Json> = [
                opt_string("name", name.as_deref()),
                opt_string("unit", unit.as_ref().map(HsaId::as_str)),
                opt_string("organization", organization.as_deref()),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !parts.is_empty() {
                r.put("extension", vec![complex(url, parts)]);
            }
            r
        }
    }
}

/// Who does something, from a Reference written by [`actor_reference`].
pub fn actor_from(
    reference: &Value,
    expression: &str,
    profile: &Profile,
) -> Result<Actor, MappingError> {
    let detail = extension(reference, &profile.extensions.actor_detail);
    let sub = |key: &str| {
        detail
            .and_then(|d| ext_str(d, key, "valueString"))
            .map(str::to_owned)
    };
    let display = || {
        str_of(reference, "display")
            .map(str::to_owned)
            .ok_or_else(|| MappingError::new(format!("{expression}.display"), "is missing"))
    };
    match str_of(reference, "type") {
        Some("Patient") => Ok(Actor::Patient),
        Some("RelatedPerson") => Ok(Actor::Network {
            name: display()?,
            relation: sub("relation"),
        }),
        Some("PractitionerRole" | "Practitioner" | "Organization" | "CareTeam") => {
            let unit = sub("unit")
                .map(|u| HsaId::parse(&u))
                .transpose()
                .map_err(|e| MappingError::new(format!("{expression}.extension"), e))?;
            Ok(Actor::Care {
                role: display()?,
                name: sub("name"),
                unit,
                organization: sub("organization"),
            })
        }
        other => Err(MappingError::new(
            format!("{expression}.type"),
            format!(
                "must be Patient, RelatedPerson or PractitionerRole, got {}",
                other.unwrap_or("nothing")
            ),
        )),
    }
}
