//! Mapping profiles: the codes, identifier systems and extension URLs one target system
//! uses, loaded from `mappings/*.toml`. A new EHR is a new file, not new code.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::domain::{IdentifierError, PersonId, Reservnummer, ReservnummerScheme};

/// The profiles shipped in the binary, by name.
const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../mappings/default.toml")),
    ("cosmic", include_str!("../../mappings/cosmic.toml")),
];

/// A coded value: system, code and display text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Code {
    pub system: String,
    pub code: String,
    pub display: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifiers {
    pub personnummer: String,
    pub samordningsnummer: String,
    pub hsa_id: String,
    /// The contract's business identifier (its id in this gateway).
    pub contract: String,
    /// An agreed time's id within its contract.
    pub agreed_time: String,
    /// A linked plan's id within its contract.
    pub linked_plan: String,
    /// `meta.tag` system naming the system a change came from.
    pub origin: String,
    pub personnummer_aliases: Vec<String>,
    pub samordningsnummer_aliases: Vec<String>,
    pub hsa_id_aliases: Vec<String>,
    /// The region's reservnummer systems (usually from the settings' `[[reservnummer]]`).
    #[serde(default)]
    pub reservnummer: Vec<ReservnummerScheme>,
}

impl Identifiers {
    /// Whether `system` names a personnummer or samordningsnummer (or an alias).
    pub fn is_number_system(&self, system: &str) -> bool {
        [&self.personnummer, &self.samordningsnummer]
            .into_iter()
            .chain(&self.personnummer_aliases)
            .chain(&self.samordningsnummer_aliases)
            .any(|s| s == system)
    }

    /// The person an identifier names: by a number system the number (which tells
    /// whether it is a personnummer or samordningsnummer), by a reservnummer system a
    /// reservnummer of that region's form.
    pub fn person(&self, system: &str, value: &str) -> Result<PersonId, PersonError> {
        if self.is_number_system(system) {
            if value.contains('|') {
                return Err(PersonError::Value(IdentifierError::NotDigits));
            }
            return PersonId::parse(value).map_err(PersonError::Value);
        }
        if self.reservnummer.iter().any(|r| r.system == system) {
            let r = Reservnummer::new(system, value).map_err(PersonError::Value)?;
            r.check(&self.reservnummer).map_err(PersonError::Value)?;
            return Ok(PersonId::Reservnummer(r));
        }
        Err(PersonError::System(system.to_owned()))
    }

    /// Whether `person` is one this region knows how to identify: a reservnummer must be
    /// one of its systems, in that system's form.
    pub fn check_person(&self, person: &PersonId) -> Result<(), IdentifierError> {
        match person {
            PersonId::Reservnummer(r) => r.check(&self.reservnummer),
            PersonId::Personnummer(_) | PersonId::Samordningsnummer(_) => Ok(()),
        }
    }

    /// The identifier system and value of `person`.
    pub fn identifier_of<'a>(&'a self, person: &'a PersonId) -> (&'a str, String) {
        match person {
            PersonId::Personnummer(p) => (&self.personnummer, p.to_string()),
            PersonId::Samordningsnummer(s) => (&self.samordningsnummer, s.to_string()),
            PersonId::Reservnummer(r) => (r.system(), r.value().to_owned()),
        }
    }

    /// The id of `person`'s `Patient`: the number, or for a reservnummer the region's
    /// key and the value (`sll-99123456-0001`); `None` for a reservnummer of a system
    /// no longer configured.
    pub fn patient_id(&self, person: &PersonId) -> Option<String> {
        match person {
            PersonId::Reservnummer(r) => self
                .reservnummer
                .iter()
                .find(|s| s.system == r.system())
                .map(|s| format!("{}-{}", s.key, r.value())),
            other => Some(other.to_string()),
        }
    }

    /// The person a `Patient` id names (see [`Identifiers::patient_id`]).
    pub fn person_of_patient_id(&self, id: &str) -> Option<PersonId> {
        if let Ok(number) = PersonId::parse(id) {
            return (!matches!(number, PersonId::Reservnummer(_))).then_some(number);
        }
        let (key, value) = id.split_once('-')?;
        let scheme = self.reservnummer.iter().find(|s| s.key == key)?;
        self.person(&scheme.system, value).ok()
    }
}

/// Why an identifier names no person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonError {
    /// Not a system that identifies persons here.
    System(String),
    /// The value is not one of the system.
    Value(IdentifierError),
}

impl std::fmt::Display for PersonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PersonError::System(system) => write!(
                f,
                "'{system}' is not a personnummer, samordningsnummer or reservnummer system"
            ),
            PersonError::Value(e) => e.fmt(f),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activities {
    pub staying_well: Code,
    pub getting_worse: Code,
    pub warning_sign: Code,
    pub next_step: Code,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    pub fast_vardkontakt: Code,
    pub fast_lakarkontakt: Code,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingModes {
    pub in_person: Code,
    pub phone: Code,
    pub video: Code,
    pub home_visit: Code,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extensions {
    pub parts_discussed: String,
    pub initiated_by: String,
    pub where_to_turn: String,
    pub actor_detail: String,
    pub primary_contact: String,
    pub contact_channel: String,
    pub phone_hours: String,
    pub linked_plan: String,
    /// Patientens kunskapsstöd: a link, on the CarePlan or a commitment's activity.
    pub knowledge_support: String,
    /// The person's *"vi är överens"* (when), on the CarePlan.
    #[serde(default = "agreement_confirmed")]
    pub agreement_confirmed: String,
    /// The code system of why the person asks to be contacted
    /// (`CommunicationRequest.reasonCode`).
    #[serde(default = "contact_reason")]
    pub contact_reason: String,
}

fn agreement_confirmed() -> String {
    "https://pkgw.example/fhir/StructureDefinition/agreement-confirmed".into()
}

fn contact_reason() -> String {
    "https://pkgw.example/fhir/CodeSystem/kontaktorsak".into()
}

/// What a unit may put on the contract's first page, beside its name (seed 002: "the
/// unit decides which information the first page holds, e.g. the unit's name, phone
/// number and phone hours").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstPageElement {
    Phone,
    PhoneHours,
    ContactServices,
    NextStep,
    NextAgreedTime,
    FixedContacts,
}

impl FirstPageElement {
    /// Every element, in the order the first page shows them unless a unit says other.
    pub const ALL: [FirstPageElement; 6] = [
        FirstPageElement::Phone,
        FirstPageElement::PhoneHours,
        FirstPageElement::ContactServices,
        FirstPageElement::NextStep,
        FirstPageElement::NextAgreedTime,
        FirstPageElement::FixedContacts,
    ];
}

/// `[first_page]`: what the first page shows, and per unit what it chose. What a unit
/// leaves off its first page follows right after it: nothing is left out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstPage {
    #[serde(default = "all_elements")]
    pub shows: Vec<FirstPageElement>,
    #[serde(default)]
    pub units: Vec<UnitFirstPage>,
}

impl Default for FirstPage {
    fn default() -> Self {
        Self {
            shows: all_elements(),
            units: Vec::new(),
        }
    }
}

fn all_elements() -> Vec<FirstPageElement> {
    FirstPageElement::ALL.to_vec()
}

/// One unit's first page: the elements it shows, in its order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitFirstPage {
    pub hsa_id: String,
    pub shows: Vec<FirstPageElement>,
}

/// One target system's codes and URLs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// What the first page of the narrative and the printed page shows, per unit.
    #[serde(default)]
    pub first_page: FirstPage,
    pub identifiers: Identifiers,
    pub category: Code,
    pub activities: Activities,
    pub roles: Roles,
    pub meeting_modes: MeetingModes,
    pub extensions: Extensions,
}

/// Why a profile cannot be used; the message names the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping profile {source_name}: {message}")]
pub struct ProfileError {
    source_name: String,
    message: String,
}

impl Profile {
    /// A profile shipped with the gateway (`default`, `cosmic`).
    pub fn built_in(name: &str) -> Result<Profile, ProfileError> {
        let (_, text) = BUILT_IN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ProfileError {
                source_name: name.to_owned(),
                message: format!(
                    "no such built-in profile; known: {}",
                    BUILT_IN
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        Self::parse(text, &format!("mappings/{name}.toml"))
    }

    /// The gateway's own profile.
    pub fn default_profile() -> Profile {
        // The built-in default is checked by a test; failing here is a build defect.
        Self::built_in("default").unwrap_or_else(|e| panic!("{e}"))
    }

    /// Loads a profile from a file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
            source_name: name.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &name)
    }

    /// Parses and checks a profile's text; `source_name` is used in error messages.
    pub fn parse(text: &str, source_name: &str) -> Result<Profile, ProfileError> {
        let error = |message: String| ProfileError {
            source_name: source_name.to_owned(),
            message,
        };
        let profile: Profile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            error(match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_owned(),
            })
        })?;
        profile.check().map_err(|(key, value, why)| {
            let line = text.find(&value).map(|at| line_of(text, at));
            error(match line {
                Some(line) => format!("line {line}: {key}: {why}"),
                None => format!("{key}: {why}"),
            })
        })?;
        crate::domain::check_schemes(&profile.identifiers.reservnummer)
            .map_err(|why| error(format!("identifiers.reservnummer{why}")))?;
        Ok(profile)
    }

    /// This profile, knowing the region's reservnummer `schemes` too (the settings'
    /// `[[reservnummer]]`, checked there); a scheme the profile has of its own is kept.
    pub fn with_reservnummer(mut self, schemes: &[ReservnummerScheme]) -> Profile {
        for scheme in schemes {
            let known = &self.identifiers.reservnummer;
            if !known
                .iter()
                .any(|s| s.system == scheme.system || s.key == scheme.key)
            {
                self.identifiers.reservnummer.push(scheme.clone());
            }
        }
        self
    }

    /// What the first page shows for a contract of `unit`, in order.
    pub fn first_page_of(&self, unit: Option<&crate::domain::HsaId>) -> &[FirstPageElement] {
        unit.and_then(|u| {
            self.first_page
                .units
                .iter()
                .find(|f| f.hsa_id == u.as_str())
        })
        .map_or(&self.first_page.shows, |f| &f.shows)
    }

    /// Every code the profile defines, with its key.
    pub(crate) fn codes(&self) -> Vec<(&'static str, &Code)> {
        let (a, r, m) = (&self.activities, &self.roles, &self.meeting_modes);
        vec![
            ("category", &self.category),
            ("activities.staying_well", &a.staying_well),
            ("activities.getting_worse", &a.getting_worse),
            ("activities.warning_sign", &a.warning_sign),
            ("activities.next_step", &a.next_step),
            ("roles.fast_vardkontakt", &r.fast_vardkontakt),
            ("roles.fast_lakarkontakt", &r.fast_lakarkontakt),
            ("meeting_modes.in_person", &m.in_person),
            ("meeting_modes.phone", &m.phone),
            ("meeting_modes.video", &m.video),
            ("meeting_modes.home_visit", &m.home_visit),
        ]
    }

    /// Every URI the profile defines, with its key.
    fn uris(&self) -> Vec<(String, &str)> {
        let (i, e) = (&self.identifiers, &self.extensions);
        let mut uris: Vec<(String, &str)> = vec![
            ("identifiers.personnummer".into(), &i.personnummer),
            ("identifiers.samordningsnummer".into(), &i.samordningsnummer),
            ("identifiers.hsa_id".into(), &i.hsa_id),
            ("identifiers.contract".into(), &i.contract),
            ("identifiers.agreed_time".into(), &i.agreed_time),
            ("identifiers.linked_plan".into(), &i.linked_plan),
            ("identifiers.origin".into(), &i.origin),
            ("extensions.parts_discussed".into(), &e.parts_discussed),
            ("extensions.initiated_by".into(), &e.initiated_by),
            ("extensions.where_to_turn".into(), &e.where_to_turn),
            ("extensions.actor_detail".into(), &e.actor_detail),
            ("extensions.primary_contact".into(), &e.primary_contact),
            ("extensions.contact_channel".into(), &e.contact_channel),
            ("extensions.phone_hours".into(), &e.phone_hours),
            ("extensions.linked_plan".into(), &e.linked_plan),
            ("extensions.knowledge_support".into(), &e.knowledge_support),
            (
                "extensions.agreement_confirmed".into(),
                &e.agreement_confirmed,
            ),
            ("extensions.contact_reason".into(), &e.contact_reason),
        ];
        for (key, code) in self.codes() {
            uris.push((format!("{key}.system"), &code.system));
        }
        uris
    }

    /// Checks what the types cannot: URIs are absolute, codes are not empty, and no two
    /// concepts share a system and code. Returns (key, offending value, why).
    fn check(&self) -> Result<(), (String, String, &'static str)> {
        for (key, uri) in self.uris() {
            if !is_absolute_uri(uri) {
                return Err((
                    key,
                    uri.to_owned(),
                    "must be an absolute URI (http(s)://… or urn:…)",
                ));
            }
        }
        let choices = std::iter::once(("first_page.shows".to_owned(), &self.first_page.shows, ""))
            .chain(self.first_page.units.iter().map(|u| {
                (
                    "first_page.units.shows".to_owned(),
                    &u.shows,
                    u.hsa_id.as_str(),
                )
            }));
        for (key, shows, unit) in choices {
            if !unit.is_empty() && crate::domain::HsaId::parse(unit).is_err() {
                return Err((
                    "first_page.units.hsa_id".into(),
                    unit.to_owned(),
                    "is not an HSA-id",
                ));
            }
            if !shows.contains(&FirstPageElement::NextStep) {
                return Err((
                    key,
                    "shows".into(),
                    "must show next_step: the person always knows the next step",
                ));
            }
        }
        let mut seen = HashSet::new();
        for (key, code) in self.codes() {
            if code.code.trim().is_empty() || code.code.chars().any(char::is_whitespace) {
                return Err((
                    format!("{key}.code"),
                    code.code.clone(),
                    "must be a code without spaces",
                ));
            }
            if !seen.insert((&code.system, &code.code)) {
                return Err((
                    format!("{key}.code"),
                    code.code.clone(),
                    "is used for two concepts in the same system",
                ));
            }
        }
        Ok(())
    }
}

fn is_absolute_uri(s: &str) -> bool {
    let valid_chars = !s.is_empty() && !s.chars().any(char::is_whitespace);
    valid_chars && (s.starts_with("http://") || s.starts_with("https://") || s.starts_with("urn:"))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile may list the region's reservnummer itself; a bad one is named.
    #[test]
    fn a_profile_may_list_a_regions_reservnummer() {
        let text = include_str!("../../mappings/default.toml");
        let scheme = "\n[[identifiers.reservnummer]]\nregion = \"Region Stockholm\"\nsystem = \"urn:oid:1.2.752.97.3.1.3\"\nkey = \"sll\"\npattern = '99\\d{6}-?\\d{4}'\n";
        let profile = Profile::parse(&format!("{text}{scheme}"), "region.toml").unwrap();
        let person = profile
            .identifiers
            .person("urn:oid:1.2.752.97.3.1.3", "99123456-0001")
            .unwrap();
        assert_eq!(
            profile.identifiers.patient_id(&person).as_deref(),
            Some("sll-99123456-0001")
        );
        let bad = scheme.replace("key = \"sll\"", "key = \"SLL\"");
        let err = Profile::parse(&format!("{text}{bad}"), "region.toml").unwrap_err();
        assert!(
            err.to_string().contains("identifiers.reservnummer[0].key"),
            "{err}"
        );
    }

    #[test]
    fn the_built_in_profiles_load() {
        let default = Profile::default_profile();
        assert_eq!(
            default.identifiers.personnummer,
            "http://electronichealth.se/identifier/personnummer"
        );
        let cosmic = Profile::built_in("cosmic").unwrap();
        assert_ne!(cosmic.category, default.category);
        assert_eq!(cosmic.identifiers, default.identifiers);
        assert!(
            Profile::built_in("nope")
                .unwrap_err()
                .to_string()
                .contains("default, cosmic")
        );
    }

    #[test]
    fn a_units_first_page_is_read_and_keeps_the_next_step() {
        let text = include_str!("../../mappings/default.toml");
        let with_unit = format!(
            "{text}\n[first_page]\nunits = [{{ hsa_id = \"SE2321000016-1A2B\", shows = [\"next_step\", \"phone\"] }}]\n"
        );
        let profile = Profile::parse(&with_unit, "unit.toml").unwrap();
        let unit = crate::domain::HsaId::parse("SE2321000016-1A2B").unwrap();
        assert_eq!(
            profile.first_page_of(Some(&unit)),
            [FirstPageElement::NextStep, FirstPageElement::Phone]
        );
        let without = with_unit.replace("[\"next_step\", \"phone\"]", "[\"phone\"]");
        let err = Profile::parse(&without, "unit.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("next_step") && err.contains("first_page"),
            "{err}"
        );
        let not_hsa = with_unit.replace("SE2321000016-1A2B", "vardcentralen");
        let err = Profile::parse(&not_hsa, "unit.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("HSA-id"), "{err}");
    }

    #[test]
    fn errors_name_the_line() {
        let text = include_str!("../../mappings/default.toml");
        let typo = text.replace("where_to_turn = ", "wher_to_turn = ");
        let line = typo
            .lines()
            .position(|l| l.starts_with("wher_to_turn"))
            .unwrap()
            + 1;
        let err = Profile::parse(&typo, "typo.toml").unwrap_err().to_string();
        assert!(
            err.contains("typo.toml") && err.contains(&format!("line {line}")),
            "{err}"
        );

        let relative = text.replace(
            "\"https://pkgw.example/fhir/StructureDefinition/phone-hours\"",
            "\"phone-hours\"",
        );
        let line = relative
            .lines()
            .position(|l| l.contains("\"phone-hours\""))
            .unwrap()
            + 1;
        let err = Profile::parse(&relative, "rel.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("line {line}")) && err.contains("extensions.phone_hours"),
            "{err}"
        );

        let twice = text.replace("code = \"om-jag-blir-samre\"", "code = \"ma-bra\"");
        let err = Profile::parse(&twice, "twice.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("activities.getting_worse.code") && err.contains("two concepts"),
            "{err}"
        );
    }
}
