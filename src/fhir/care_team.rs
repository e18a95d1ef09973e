//! The fixed care contacts and the responsible unit as a `CareTeam`: each fast
//! vårdkontakt and fast läkarkontakt a participant (role, period, channels), the unit the
//! managing organization, with its phone and phone hours as the team's telecom.
//!
//! Phone hours: R4's `ContactPoint` has no opening hours, so each set of hours is an
//! extension (profile key `extensions.phone_hours`) on the `ContactPoint`, shaped like
//! R4's `availableTime`: `daysOfWeek` codes, `availableStartTime` and `availableEndTime`.
//! A contact's channels (phone with hours, message, video, web booking, e-service) are
//! `contact_channel` extensions on the participant, which has no `telecom` of its own.

use serde_json::Value;

use super::Profile;
use super::actor::patient_reference;
use super::care_plan::array;
use super::json::{
    Json, MappingError, complex, concept, ext, ext_str, extension, extensions, has_coding,
    identifier, object, opt_string, parse_at, str_of, text_at,
};
use crate::domain::{
    CareContact, Channel, ContactRole, Contract, ContractId, HsaId, Period, PhoneHours,
    PhoneNumber, ResponsibleUnit, Status, Weekday,
};

/// A reference to the responsible unit, by HSA-id.
pub fn unit_reference<'a>(unit: &'a ResponsibleUnit, profile: &'a Profile) -> Json<'a> {
    object! { "type": "Organization", "identifier": identifier(&profile.identifiers.hsa_id, unit.hsa_id.as_str()), "display": unit.name.as_str() }
}

pub fn to_care_team<'a>(
    id: &'a ContractId,
    contract: &'a Contract,
    profile: &'a Profile,
) -> Json<'a> {
    let status = match contract.status {
        Status::Draft => "proposed",
        Status::Active => "active",
        Status::OnHold => "suspended",
        Status::Completed | Status::Revoked => "inactive",
    };
    let mut team = object! {
        "resourceType": "CareTeam",
        "id": id.as_str(),
        "identifier": vec![identifier(&profile.identifiers.contract, id.as_str())],
        "status": status,
        "category": vec![concept(&profile.category)],
        "name": "Fast vårdkontakt och ansvarig enhet",
        "subject": patient_reference(&contract.patient, profile),
    };
    let participants: Vec<Json> = contract
        .care_contacts
        .iter()
        .map(|c| participant(c, profile))
        .collect();
    team.put("participant", participants);
    if let Some(unit) = &contract.responsible_unit {
        // The unit's own contact services, as the contacts' are: channel extensions.
        let mut organization = unit_reference(unit, profile);
        let channels: Vec<Json> = unit
            .channels
            .iter()
            .map(|c| channel_extension(c, profile))
            .collect();
        organization.put("extension", channels);
        team.put("managingOrganization", vec![organization]);
        let mut phone = object! { "system": "phone", "value": unit.phone.as_str(), "use": "work" };
        phone.put("extension", hours_extensions(&unit.phone_hours, profile));
        team.put("telecom", vec![phone]);
    }
    team
}

/// The contacts and the responsible unit from a CareTeam.
pub fn from_care_team(
    team: &Value,
    profile: &Profile,
) -> Result<(Vec<CareContact>, Option<ResponsibleUnit>), MappingError> {
    let contacts = array(team, "participant")
        .iter()
        .enumerate()
        .map(|(i, p)| contact_from(p, &format!("CareTeam.participant[{i}]"), profile))
        .collect::<Result<_, _>>()?;
    let unit = match array(team, "managingOrganization").first() {
        None => None,
        Some(org) => {
            let path = "CareTeam.managingOrganization[0]";
            let hsa_id = org
                .get("identifier")
                .ok_or_else(|| {
                    MappingError::new(
                        format!("{path}.identifier"),
                        "the unit must be identified by HSA-id",
                    )
                })
                .and_then(|i| {
                    parse_at(
                        i,
                        "value",
                        &format!("{path}.identifier.value"),
                        HsaId::parse,
                    )
                })?;
            let phone = array(team, "telecom")
                .iter()
                .find(|t| str_of(t, "system") == Some("phone"))
                .ok_or_else(|| {
                    MappingError::new(
                        "CareTeam.telecom",
                        "the responsible unit's phone number is missing",
                    )
                })?;
            Some(ResponsibleUnit {
                hsa_id,
                name: text_at(org, "display", &format!("{path}.display"))?,
                phone: parse_at(phone, "value", "CareTeam.telecom.value", PhoneNumber::parse)?,
                phone_hours: hours_from(phone, "CareTeam.telecom.extension", profile)?,
                channels: array(org, "extension")
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| {
                        str_of(e, "url") == Some(profile.extensions.contact_channel.as_str())
                    })
                    .map(|(i, e)| channel_from(e, &format!("{path}.extension[{i}]"), profile))
                    .collect::<Result<_, _>>()?,
            })
        }
    };
    Ok((contacts, unit))
}

fn participant<'a>(c: &'a CareContact, profile: &'a Profile) -> Json<'a> {
    let role = match c.role {
        ContactRole::FastVardkontakt => &profile.roles.fast_vardkontakt,
        ContactRole::FastLakarkontakt => &profile.roles.fast_lakarkontakt,
    };
    let mut member = object! { "type": "Practitioner", "display": c.name.as_str() };
    if let Some(hsa) = &c.hsa_id {
        member.put(
            "identifier",
            identifier(&profile.identifiers.hsa_id, hsa.as_str()),
        );
    }
    if let Some(title) = opt_string("title", c.title.as_deref()) {
        member.put(
            "extension",
            vec![complex(&profile.extensions.actor_detail, vec![title])],
        );
    }
    let mut period = object! { "start": c.period.start.to_string() };
    if let Some(end) = c.period.end {
        period.put("end", end.to_string());
    }
    let mut p = object! { "id": c.id.as_str(), "role": vec![concept(role)], "member": member, "period": period };
    if let Some(unit) = &c.unit {
        p.put(
            "onBehalfOf",
            object! { "type": "Organization", "identifier": identifier(&profile.identifiers.hsa_id, unit.as_str()) },
        );
    }
    let mut ext_list = vec![ext(
        &profile.extensions.primary_contact,
        "valueBoolean",
        c.primary,
    )];
    ext_list.extend(c.channels.iter().map(|ch| channel_extension(ch, profile)));
    p.put("extension", ext_list);
    p
}

fn contact_from(p: &Value, path: &str, profile: &Profile) -> Result<CareContact, MappingError> {
    let role = if has_coding(array(p, "role").first(), &profile.roles.fast_vardkontakt) {
        ContactRole::FastVardkontakt
    } else if has_coding(array(p, "role").first(), &profile.roles.fast_lakarkontakt) {
        ContactRole::FastLakarkontakt
    } else {
        return Err(MappingError::new(
            format!("{path}.role"),
            "is neither fast vårdkontakt nor fast läkarkontakt in this profile",
        ));
    };
    let member = p
        .get("member")
        .ok_or_else(|| MappingError::new(format!("{path}.member"), "is missing"))?;
    let period = p
        .get("period")
        .ok_or_else(|| MappingError::new(format!("{path}.period"), "is missing"))?;
    let start = parse_at(
        period,
        "start",
        &format!("{path}.period.start"),
        str::parse::<jiff::Timestamp>,
    )?;
    let end = match str_of(period, "end") {
        Some(_) => Some(parse_at(
            period,
            "end",
            &format!("{path}.period.end"),
            str::parse::<jiff::Timestamp>,
        )?),
        None => None,
    };
    let hsa = |r: Option<&Value>, field: &str| -> Result<Option<HsaId>, MappingError> {
        r.and_then(|r| r.get("identifier"))
            .map(|i| {
                parse_at(
                    i,
                    "value",
                    &format!("{path}.{field}.identifier.value"),
                    HsaId::parse,
                )
            })
            .transpose()
    };
    let channels = extensions(p, &profile.extensions.contact_channel)
        .enumerate()
        .map(|(i, e)| channel_from(e, &format!("{path}.extension[{i}]"), profile))
        .collect::<Result<_, _>>()?;
    Ok(CareContact {
        id: str_of(p, "id")
            .map(str::to_owned)
            .unwrap_or_else(|| path.to_owned()),
        role,
        primary: extension(p, &profile.extensions.primary_contact)
            .and_then(|e| e.get("valueBoolean"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        name: text_at(member, "display", &format!("{path}.member.display"))?,
        title: extension(member, &profile.extensions.actor_detail)
            .and_then(|d| ext_str(d, "title", "valueString"))
            .map(str::to_owned),
        hsa_id: hsa(Some(member), "member")?,
        unit: hsa(p.get("onBehalfOf"), "onBehalfOf")?,
        period: Period { start, end },
        channels,
    })
}

fn channel_extension<'a>(ch: &'a Channel, profile: &'a Profile) -> Json<'a> {
    let (kind, value, name, hours): (&str, &str, Option<&str>, &[PhoneHours]) = match ch {
        Channel::Phone { number, hours } => ("phone", number.as_str(), None, hours),
        Channel::Message { via } => ("message", via, None, &[]),
        Channel::Video { via } => ("video", via, None, &[]),
        Channel::WebBooking { url } => ("webBooking", url, None, &[]),
        Channel::Kallelse { via } => ("kallelse", via, None, &[]),
        Channel::EService { name, url } => (
            "eService",
            url.as_deref().unwrap_or_default(),
            Some(name),
            &[],
        ),
    };
    let mut parts = vec![ext("kind", "valueCode", kind)];
    if !value.is_empty() {
        parts.push(ext("value", "valueString", value));
    }
    parts.extend(opt_string("name", name));
    parts.extend(hours_extensions(hours, profile));
    complex(&profile.extensions.contact_channel, parts)
}

fn channel_from(e: &Value, path: &str, profile: &Profile) -> Result<Channel, MappingError> {
    let value = ext_str(e, "value", "valueString").map(str::to_owned);
    let need = |v: Option<String>| {
        v.ok_or_else(|| MappingError::new(format!("{path}.value"), "is missing"))
    };
    Ok(match ext_str(e, "kind", "valueCode") {
        Some("phone") => Channel::Phone {
            number: PhoneNumber::parse(&need(value)?)
                .map_err(|err| MappingError::new(format!("{path}.value"), err))?,
            hours: hours_from(e, path, profile)?,
        },
        Some("message") => Channel::Message { via: need(value)? },
        Some("video") => Channel::Video { via: need(value)? },
        Some("webBooking") => Channel::WebBooking { url: need(value)? },
        Some("kallelse") => Channel::Kallelse { via: need(value)? },
        Some("eService") => Channel::EService {
            name: ext_str(e, "name", "valueString")
                .map(str::to_owned)
                .ok_or_else(|| MappingError::new(format!("{path}.name"), "is missing"))?,
            url: value,
        },
        other => {
            return Err(MappingError::new(
                format!("{path}.kind"),
                format!("unknown contact channel {}", other.unwrap_or("(none)")),
            ));
        }
    })
}

/// Phone hours as extensions shaped like R4's `availableTime`.
fn hours_extensions<'a>(hours: &'a [PhoneHours], profile: &'a Profile) -> Vec<Json<'a>> {
    hours
        .iter()
        .map(|h| {
            let mut parts: Vec<Json> = h
                .days()
                .iter()
                .map(|d| ext("daysOfWeek", "valueCode", d.code()))
                .collect();
            parts.push(ext(
                "availableStartTime",
                "valueTime",
                h.opens().to_string(),
            ));
            parts.push(ext("availableEndTime", "valueTime", h.closes().to_string()));
            complex(&profile.extensions.phone_hours, parts)
        })
        .collect()
}

fn hours_from(
    element: &Value,
    path: &str,
    profile: &Profile,
) -> Result<Vec<PhoneHours>, MappingError> {
    extensions(element, &profile.extensions.phone_hours)
        .map(|e| {
            let days = extensions(e, "daysOfWeek")
                .map(|d| {
                    serde_json::from_value::<Weekday>(
                        d.get("valueCode").cloned().unwrap_or_default(),
                    )
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| MappingError::new(format!("{path}.daysOfWeek"), err))?;
            let time = |key: &str| {
                ext_str(e, key, "valueTime")
                    .and_then(|t| t.parse::<jiff::civil::Time>().ok())
                    .ok_or_else(|| {
                        MappingError::new(format!("{path}.{key}"), "must be a time hh:mm:ss")
                    })
            };
            PhoneHours::new(days, time("availableStartTime")?, time("availableEndTime")?)
                .map_err(|err| MappingError::new(path, err))
        })
        .collect()
}
