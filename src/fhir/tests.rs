use serde_json::Value;

use super::*;
use crate::demo;
use crate::domain::{ContractId, Status};

fn id() -> ContractId {
    ContractId::parse("8f9a3c1e-0b6d-4d0f-9a51-3b2c7e4d5f60").unwrap()
}

#[test]
fn every_fixture_round_trips_with_every_profile() {
    for profile in [
        Profile::default_profile(),
        Profile::built_in("cosmic").unwrap(),
    ] {
        for (name, contract) in demo::contracts().unwrap() {
            let resources = to_fhir(&id(), &contract, &profile);
            let back = from_fhir(&resources, &profile)
                .unwrap_or_else(|e| panic!("{name} ({}): {e}", profile.name));
            assert_eq!(back, contract, "{name} with {}", profile.name);
        }
    }
}

#[test]
fn every_resource_fits_the_typed_r4_model_without_losing_an_element() {
    for (name, contract) in demo::contracts().unwrap() {
        let resources = to_fhir(&id(), &contract, &Profile::default_profile());
        for r in resources.all() {
            let kind = r["resourceType"].as_str().unwrap();
            let rewritten = match kind {
                "CarePlan" => fhir_wire::write_care_plan(&fhir_wire::parse_care_plan(r).unwrap()),
                "CareTeam" => fhir_wire::write_care_team(&fhir_wire::parse_care_team(r).unwrap()),
                "Goal" => fhir_wire::write_goal(&fhir_wire::parse_goal(r).unwrap()),
                "Appointment" => {
                    fhir_wire::write_appointment(&fhir_wire::parse_appointment(r).unwrap())
                }
                other => panic!("unexpected {other}"),
            }
            .unwrap();
            assert_eq!(
                &rewritten, r,
                "{name}: {kind} changed through the typed model"
            );
        }
    }
}

/// Golden files: `fixtures/fhir/<fixture>.json` is the Bundle each fixture maps to with
/// the default profile. Regenerate (and review the diff) with
/// `PKGW_UPDATE_GOLDEN=1 cargo test --lib fhir::tests::golden`.
#[test]
fn golden_files_match() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fhir");
    let update = std::env::var("PKGW_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    for (name, contract) in demo::contracts().unwrap() {
        let bundle = to_fhir(&id(), &contract, &Profile::default_profile()).to_bundle();
        let path = dir.join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(&bundle).unwrap() + "\n";
        // Written straight from the mapping, without a `Value`: the same bytes.
        let (id, profile) = (id(), Profile::default_profile());
        let written = to_json(&id, &contract, &profile).into_bundle();
        assert_eq!(
            serde_json::to_string_pretty(&written).unwrap() + "\n",
            text,
            "{name}"
        );
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with PKGW_UPDATE_GOLDEN=1 to create it)",
                path.display()
            )
        });
        assert_eq!(
            text,
            golden,
            "{name}: output differs from {}",
            path.display()
        );
        let back = from_fhir(
            &ContractResources::from_bundle(&serde_json::from_str(&golden).unwrap()).unwrap(),
            &Profile::default_profile(),
        )
        .unwrap();
        assert_eq!(
            back, contract,
            "{name}: golden file maps back to the fixture"
        );
    }
}

/// Replaces every code system, code and display of `from` with `to`'s, in all strings.
fn translate(value: &mut Value, pairs: &[(String, String)]) {
    match value {
        Value::String(s) => {
            if let Some((_, to)) = pairs.iter().find(|(from, _)| from == s) {
                *s = to.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| translate(v, pairs)),
        Value::Object(o) => o.values_mut().for_each(|v| translate(v, pairs)),
        _ => {}
    }
}

#[test]
fn profiles_differ_only_in_the_codes_they_define() {
    let (default, cosmic) = (
        Profile::default_profile(),
        Profile::built_in("cosmic").unwrap(),
    );
    let pairs: Vec<(String, String)> = cosmic
        .codes()
        .into_iter()
        .zip(default.codes())
        .flat_map(|((_, c), (_, d))| {
            [
                (c.system.clone(), d.system.clone()),
                (c.code.clone(), d.code.clone()),
                (c.display.clone(), d.display.clone()),
            ]
        })
        .collect();
    for (name, contract) in demo::contracts().unwrap() {
        let mut from_cosmic = to_fhir(&id(), &contract, &cosmic).to_bundle();
        let from_default = to_fhir(&id(), &contract, &default).to_bundle();
        assert_ne!(
            from_cosmic, from_default,
            "{name}: the profiles should differ"
        );
        translate(&mut from_cosmic, &pairs);
        assert_eq!(from_cosmic, from_default, "{name}");
    }
}

#[test]
fn errors_name_the_fhir_element() {
    let contract = demo::contracts().unwrap().remove(0).1;
    let profile = Profile::default_profile();
    let mut r = to_fhir(&id(), &contract, &profile);
    r.care_plan["subject"]["identifier"]["value"] = "195208239814".into();
    let err = from_fhir(&r, &profile).unwrap_err();
    assert_eq!(err.expression, "CarePlan.subject.identifier.value", "{err}");
    assert!(err.message.contains("check digit"), "{err}");

    let mut r = to_fhir(&id(), &contract, &profile);
    r.care_plan["status"] = "unknown".into();
    let err = from_fhir(&r, &profile).unwrap_err();
    assert_eq!(err.expression, "CarePlan.status", "{err}");

    let mut r = to_fhir(&id(), &contract, &profile);
    r.appointments[0]["resourceType"] = "CarePlan".into();
    let err = from_fhir(&r, &profile).unwrap_err();
    assert_eq!(err.expression, "Appointment.resourceType", "{err}");

    let mut r = to_fhir(&id(), &contract, &profile);
    r.care_team["participant"][0]["role"][0]["coding"][0]["code"] = "okand".into();
    let err = from_fhir(&r, &profile).unwrap_err();
    assert_eq!(err.expression, "CareTeam.participant[0].role", "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// Any contract the types allow, not only the fixtures, maps to FHIR and back unchanged,
    /// with either profile.
    #[test]
    fn generated_contracts_round_trip(contract in crate::domain::arbitrary::contract(), cosmic in proptest::prelude::any::<bool>()) {
        let profile = if cosmic { Profile::built_in("cosmic").unwrap() } else { Profile::default_profile() };
        let resources = to_fhir(&id(), &contract, &profile);
        // Written straight from the mapping, without a `Value`: the same bytes.
        let written = to_json(&id(), &contract, &profile).into_bundle().to_vec();
        proptest::prop_assert_eq!(written, serde_json::to_vec(&resources.to_bundle()).unwrap());
        let back = from_fhir(&resources, &profile);
        proptest::prop_assert_eq!(back, Ok(contract));
    }
}

/// A structural check of narrative XHTML: well-formed (every tag closed in order), only
/// the elements the narrative uses and FHIR allows, attributes only on the root `div`
/// (and a table header's `scope`), and only the five XML entities.
fn check_xhtml(div: &str) -> Result<(), String> {
    const ALLOWED: [&str; 13] = [
        "div", "h1", "h2", "p", "b", "ul", "li", "table", "thead", "tbody", "tr", "th", "td",
    ];
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = div;
    let mut first = true;
    while let Some(open) = rest.find(['<', '&']) {
        let (text, tail) = rest.split_at(open);
        if text.contains('>') {
            return Err(format!("stray '>' in {text:?}"));
        }
        if let Some(entity) = tail.strip_prefix('&') {
            let end = entity.find(';').ok_or("unterminated entity")?;
            if !["amp", "lt", "gt", "quot", "#39"].contains(&&entity[..end]) {
                return Err(format!("entity &{};", &entity[..end]));
            }
            rest = &entity[end + 1..];
            continue;
        }
        let close = tail.find('>').ok_or("unterminated tag")?;
        let tag = &tail[1..close];
        rest = &tail[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop() != Some(name) {
                return Err(format!("</{name}> closes the wrong element"));
            }
            if stack.is_empty() && !rest.is_empty() {
                return Err("content after the root div".into());
            }
            continue;
        }
        let (name, attributes) = tag.split_once(' ').unwrap_or((tag, ""));
        if !ALLOWED.contains(&name) {
            return Err(format!("element <{name}> is not allowed"));
        }
        let header_scope = name == "th" && attributes == r#"scope="col""#;
        if first != (name == "div") || (!first && !attributes.is_empty() && !header_scope) {
            return Err(format!("<{tag}>: only the root div carries attributes"));
        }
        if first && !attributes.contains(r#"xmlns="http://www.w3.org/1999/xhtml""#) {
            return Err("the root div must declare the XHTML namespace".into());
        }
        first = false;
        stack.push(name);
    }
    if stack.is_empty() && !first {
        Ok(())
    } else {
        Err(format!("unclosed {stack:?}"))
    }
}

#[test]
fn the_xhtml_check_catches_what_it_should() {
    let ok = r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>a &amp; b</p></div>"#;
    assert_eq!(check_xhtml(ok), Ok(()));
    for bad in [
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>a</div>"#,
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><script>x</script></div>"#,
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>a & b</p></div>"#,
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p class="x">a</p></div>"#,
        r#"<div><p>a</p></div>"#,
    ] {
        assert!(check_xhtml(bad).is_err(), "{bad}");
    }
}

#[test]
fn every_fixture_has_a_well_formed_swedish_narrative() {
    for (name, contract) in demo::contracts().unwrap() {
        let plan = to_fhir(&id(), &contract, &Profile::default_profile()).care_plan;
        assert_eq!(plan["text"]["status"], "generated");
        let div = plan["text"]["div"].as_str().unwrap();
        assert_eq!(check_xhtml(div), Ok(()), "{name}");
        let unit = contract.responsible_unit.as_ref().unwrap();
        assert!(
            div.contains(&narrative::escape(&unit.name)) && div.contains(unit.phone.as_str()),
            "{name}: unit first"
        );
        assert!(div.contains("telefontider"), "{name}: phone hours");
        // The person always knows the next step, while the contract applies.
        if !matches!(contract.status, Status::Completed | Status::Revoked) {
            assert!(div.contains("Mitt nästa steg"), "{name}: next step");
        }
    }
    let diabetes = to_fhir(
        &id(),
        &crate::demo::contracts()
            .unwrap()
            .into_iter()
            .find(|(n, _)| *n == "ung-diabetes")
            .unwrap()
            .1,
        &Profile::default_profile(),
    );
    assert!(
        diabetes.care_plan["text"]["div"]
            .as_str()
            .unwrap()
            .contains("Gäller inte just nu: Inga andra planer i vården")
    );
}

/// The narrative as the person reads it: whole sentences in one voice, "senast" only
/// before a deadline, no word said twice, titles small mid-sentence, and nothing that
/// sounds like a legal document.
#[test]
fn the_person_reads_plain_swedish() {
    let contracts = demo::contracts().unwrap();
    let div_of = |contract: &crate::domain::Contract| {
        let plan = to_fhir(&id(), contract, &Profile::default_profile()).care_plan;
        plan["text"]["div"].as_str().unwrap().to_owned()
    };
    let by_name = |name: &str| {
        contracts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c.clone())
            .unwrap()
    };
    for (name, contract) in &contracts {
        let div = div_of(contract);
        for wrong in [
            "Jag: ",
            "Gäller inte för mig",
            "Status:",
            "återkallat",
            "Dr. ",
            "via videosamtal via",
            "Min vårdplan: Min vårdplan",
            "Min fasta vårdkontakt<",
            "samtal 2",
            "inte samtalat ännu",
            "Det vården gör",
        ] {
            assert!(!div.contains(wrong), "{name}: {wrong:?} in {div}");
        }
        let status = crate::swedish::status_sentence(contract.status);
        assert!(div.contains(status), "{name}: {status}");
    }
    // A deadline is "senast", a fixed day is "den".
    let heart = div_of(&by_name("hjartsvikt-primarvard"));
    assert!(
        heart.contains("(senast 8 december 2026) – det gör jag"),
        "{heart}"
    );
    assert!(
        heart.contains("Sara Ek – fast läkarkontakt, specialist i allmänmedicin"),
        "{heart}"
    );
    assert!(heart.contains("<h2>Mina fasta kontakter</h2>"), "{heart}");
    assert!(
        heart.contains("<h2>Kunskapsstöd för mig</h2><ul><li>Hjärtsvikt – att leva med och ta hand om sig själv (1177, för hjärtsvikt, granskad 12 maj 2026): https://www.1177.se/"),
        "{heart}"
    );
    assert!(
        heart.contains(". Läs mer: Varningstecken vid hjärtsvikt (1177): https://"),
        "{heart}"
    );
    assert!(
        heart.contains("<p>Enhetens kontaktvägar: webbtidbok: https://www.1177.se/; kallelser via 1177 Vårdguidens e-tjänster.</p>"),
        "the unit's own contact services, kallelser too: {heart}"
    );
    assert!(
        heart.contains("Kontaktvägar: videosamtal via 1177"),
        "{heart}"
    );
    assert!(
        heart.contains("<h2>Det vården och omsorgen gör</h2>"),
        "{heart}"
    );
    assert!(
        heart.contains("<li>Väga mig varje morgon"),
        "the person's own item, in their voice: {heart}"
    );
    assert!(
        heart.contains("Överenskommelse: vi samtalade om det den 2 november 2026."),
        "{heart}"
    );
    let cancer = div_of(&by_name("cancer-min-vardplan"));
    assert!(
        cancer.contains("(den 3 december 2026)") && !cancer.contains("senast 3 december"),
        "{cancer}"
    );
    assert!(
        cancer.contains("<li>Min vårdplan – bröstcancer. Samordnas av"),
        "{cancer}"
    );
    // One voice: what does not apply is said plainly, whoever wrote the reason.
    let diabetes = div_of(&by_name("ung-diabetes"));
    assert!(
        diabetes.contains("<p>Gäller inte just nu: Alva vill inte"),
        "{diabetes}"
    );
    // No name: no "för personen"; a contract that no longer applies says so plainly.
    let mut unnamed = by_name("hjartsvikt-primarvard");
    unnamed.patient.name = None;
    unnamed.status = crate::domain::Status::Revoked;
    let div = div_of(&unnamed);
    assert!(
        div.contains("<h1>Patientkontrakt</h1>") && !div.contains("personen"),
        "{div}"
    );
    assert!(div.contains("Kontraktet gäller inte längre."), "{div}");
    // Not yet discussed: a whole sentence.
    let mut early = by_name("hjartsvikt-primarvard");
    early.discussed.agreed_time = crate::domain::Discussion::default();
    assert!(div_of(&early).contains("Överenskommen tid: vi har inte samtalat om det ännu."));
}

proptest::proptest! {
    #[test]
    fn generated_narratives_are_well_formed(contract in crate::domain::arbitrary::contract()) {
        let div = narrative::care_plan_div(&contract, &Profile::default_profile());
        proptest::prop_assert_eq!(check_xhtml(&div), Ok(()), "{}", div);
    }
}

#[test]
fn provenance_round_trips_and_fits_the_typed_model() {
    let transfer = crate::domain::TransferNote {
        from: crate::domain::UnitRef {
            hsa_id: crate::domain::HsaId::parse("SE2321000016-GER2").unwrap(),
            name: "Geriatriska kliniken".into(),
        },
        to: crate::domain::UnitRef {
            hsa_id: crate::domain::HsaId::parse("SE2321000016-VC01").unwrap(),
            name: "Vårdcentralen Solna".into(),
        },
        at: "2026-11-20T12:00:00Z".parse().unwrap(),
        kind: "hospital-to-primary-care".into(),
    };
    for (version, author, reason, transfer) in [
        (1, None, None, None),
        (
            3,
            Some("Anna Berg"),
            Some("Ny fast vårdkontakt efter utskrivning"),
            None,
        ),
        (4, Some("Johan Persson"), Some("Utskriven"), Some(transfer)),
        // A change the person made from a portal, with their own token.
        (5, Some("Patient/194003129865"), None, None),
    ] {
        let p = VersionProvenance {
            version: crate::domain::Version::try_from(version).unwrap(),
            recorded: "2026-11-20T12:00:00.123456Z".parse().unwrap(),
            source: "cosmic-sös".into(),
            author: author.map(str::to_owned),
            reason: reason.map(str::to_owned),
            transfer,
            targets: vec![format!("CarePlan/{}", id()), format!("Goal/{}-mal-1", id())],
        };
        let v = to_provenance(&id(), &p);
        assert_eq!(
            v["target"][0]["reference"],
            format!("CarePlan/{}/_history/{version}", id())
        );
        let typed = fhir_wire::parse_provenance(&v).unwrap();
        assert_eq!(fhir_wire::write_provenance(&typed).unwrap(), v);
        assert_eq!(from_provenance(&v), Ok(p));
    }
}

#[test]
fn operation_outcomes_name_the_element() {
    let issue = outcome::Issue::from(&MappingError::new("CarePlan.status", "is missing"));
    let oo = outcome::operation_outcome(&[issue]);
    assert_eq!(oo["issue"][0]["expression"][0], "CarePlan.status");
    assert_eq!(oo["issue"][0]["severity"], "error");
    fhir_wire::parse_operation_outcome(&oo).unwrap();
    assert_eq!(
        outcome::operation_outcome(&[])["issue"][0]["severity"],
        "information"
    );
}

#[test]
fn content_the_contract_does_not_model_survives_the_next_version() {
    let profile = Profile::default_profile();
    let contract = demo::contracts().unwrap().remove(0).1;
    let mut received = to_fhir(&id(), &contract, &profile);
    let note = serde_json::json!([{ "text": "Patienten föredrar telefon på förmiddagen" }]);
    let their_extension =
        serde_json::json!({ "url": "urn:oid:1.2.752.78.9.1", "valueString": "COSMIC-journal-123" });
    let their_category = serde_json::json!({ "coding": [{ "system": "http://snomed.info/sct", "code": "734163000", "display": "Care plan" }] });
    received.care_plan["note"] = note.clone();
    received.care_plan["encounter"] = serde_json::json!({ "reference": "Encounter/e1" });
    // An element another resource type maps (Goal.description) is foreign on a CarePlan.
    received.care_plan["description"] = "Planen i korthet".into();
    received.care_plan["extension"]
        .as_array_mut()
        .unwrap()
        .push(their_extension.clone());
    received.care_plan["category"]
        .as_array_mut()
        .unwrap()
        .push(their_category.clone());
    received.appointments[0]["comment"] = "Ta med läkemedelslistan".into();
    let their_activity = serde_json::json!({ "detail": { "code": { "text": "Fysioterapi" }, "status": "scheduled", "description": "Sjukgymnastik två gånger i veckan" } });
    received.care_plan["activity"]
        .as_array_mut()
        .unwrap()
        .push(their_activity.clone());
    received.care_team["note"] = note.clone();

    let back = from_fhir(&received, &profile).unwrap();
    assert_eq!(
        back, contract,
        "foreign content does not change the contract"
    );
    let residue = residue::Residue::of(&received, &profile);

    // The next version, written out with the residue, carries it all unchanged.
    let mut next = back.clone();
    next.agreement
        .what_matters
        .push("Att få träffa barnbarnen".into());
    let mut out = to_fhir(&id(), &next, &profile);
    residue.restore(&mut out);
    assert_eq!(out.care_plan["note"], note);
    assert_eq!(out.care_plan["encounter"]["reference"], "Encounter/e1");
    assert_eq!(out.care_plan["description"], "Planen i korthet");
    assert!(
        out.care_plan["extension"]
            .as_array()
            .unwrap()
            .contains(&their_extension)
    );
    assert!(
        out.care_plan["category"]
            .as_array()
            .unwrap()
            .contains(&their_category)
    );
    assert_eq!(out.appointments[0]["comment"], "Ta med läkemedelslistan");
    assert_eq!(
        out.care_plan["activity"].as_array().unwrap().last(),
        Some(&their_activity)
    );
    assert_eq!(out.care_team["note"], note);
    // …and nothing of ours twice: the profile's own extensions and category appear once.
    assert_eq!(out.care_plan["category"].as_array().unwrap().len(), 2);
    assert_eq!(from_fhir(&out, &profile).unwrap(), next);
    // Without foreign content there is no residue.
    assert!(residue::Residue::of(&to_fhir(&id(), &contract, &profile), &profile).is_empty());
}

/// What a real unit records round-trips: a phone line open around the clock (`24:00`),
/// 1177 as a number, no phone hours at all, a commitment carried by the municipality.
#[test]
fn what_real_units_record_round_trips() {
    use crate::domain::{Actor, PhoneHours, PhoneNumber};
    let (_, mut contract) = demo::contracts()
        .unwrap()
        .into_iter()
        .find(|(n, _)| *n == "hjartsvikt-primarvard")
        .unwrap();
    let unit = contract.responsible_unit.as_mut().unwrap();
    unit.phone = PhoneNumber::parse("1177").unwrap();
    unit.phone_hours = vec![PhoneHours::from_words("mon-sun 00:00-24:00").unwrap()];
    contract.agreement.commitments[0].who = Actor::Care {
        role: "Hemtjänst".into(),
        name: None,
        unit: None,
        organization: Some("Danderyds kommun, hemtjänsten".into()),
    };
    let profile = Profile::default_profile();
    let resources = to_fhir(&id(), &contract, &profile);
    assert_eq!(from_fhir(&resources, &profile).unwrap(), contract);
    let div = resources.care_plan["text"]["div"].as_str().unwrap();
    assert!(
        div.contains("telefon 1177, telefontider mån–sön dygnet runt"),
        "{div}"
    );
    assert!(div.contains("Danderyds kommun, hemtjänsten"), "{div}");
    contract
        .responsible_unit
        .as_mut()
        .unwrap()
        .phone_hours
        .clear();
    contract.validate().unwrap();
    let resources = to_fhir(&id(), &contract, &profile);
    assert_eq!(from_fhir(&resources, &profile).unwrap(), contract);
}

/// A next step's day maps to the activity's scheduled period: a deadline as its end, a
/// fixed day as start and end; any other period cannot be kept as sent.
#[test]
fn a_next_steps_deadline_and_day_map_to_its_period() {
    let contracts = demo::contracts().unwrap();
    let cancer = &contracts
        .iter()
        .find(|(n, _)| *n == "cancer-min-vardplan")
        .unwrap()
        .1;
    let plan = to_fhir(&id(), cancer, &Profile::default_profile()).care_plan;
    let step = plan["activity"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["detail"]["description"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Tredje")
        })
        .unwrap();
    assert_eq!(
        step["detail"]["scheduledPeriod"],
        serde_json::json!({ "start": "2026-12-03", "end": "2026-12-03" })
    );
    let mut resources = to_fhir(&id(), cancer, &Profile::default_profile());
    let back = crate::fhir::from_fhir(&resources, &Profile::default_profile()).unwrap();
    assert_eq!(back.next_step, cancer.next_step);
    for activity in resources.care_plan["activity"].as_array_mut().unwrap() {
        if activity["detail"]["scheduledPeriod"]["start"].is_string() {
            activity["detail"]["scheduledPeriod"]["start"] = "2026-12-01".into();
        }
    }
    let refused = crate::fhir::from_fhir(&resources, &Profile::default_profile()).unwrap_err();
    assert!(refused.to_string().contains("scheduledPeriod"), "{refused}");
}

/// A person known by a region's reservnummer round-trips under the region's system, and
/// only where the region is configured; their Patient id is the region's key and value.
#[test]
fn a_reservnummer_round_trips_in_its_regions_system() {
    use crate::domain::{Pattern, PersonId, ReservnummerScheme};
    let scheme = ReservnummerScheme {
        region: "Region Stockholm".into(),
        system: "urn:oid:1.2.752.97.3.1.3".into(),
        key: "sll".into(),
        pattern: Pattern::new(r"99\d{6}-\d{4}").unwrap(),
    };
    let (_, mut contract) = demo::contracts().unwrap().remove(0);
    contract.patient.id = PersonId::parse("urn:oid:1.2.752.97.3.1.3|99123456-0001").unwrap();
    let profile = Profile::default_profile().with_reservnummer(&[scheme]);
    let resources = to_fhir(&id(), &contract, &profile);
    assert_eq!(
        resources.care_plan["subject"]["identifier"],
        serde_json::json!({ "system": "urn:oid:1.2.752.97.3.1.3", "value": "99123456-0001" })
    );
    assert_eq!(from_fhir(&resources, &profile).unwrap(), contract);
    for cosmic in [false, true] {
        let other = if cosmic {
            Profile::built_in("cosmic").unwrap()
        } else {
            Profile::default_profile()
        };
        let refused = from_fhir(&to_fhir(&id(), &contract, &other), &other).unwrap_err();
        assert!(
            refused
                .message
                .contains("not a personnummer, samordningsnummer or reservnummer system"),
            "{refused:?}"
        );
    }
    let ids = &profile.identifiers;
    let patient_id = ids.patient_id(&contract.patient.id).unwrap();
    assert_eq!(patient_id, "sll-99123456-0001");
    assert_eq!(
        ids.person_of_patient_id(&patient_id),
        Some(contract.patient.id.clone())
    );
    // A number is its own id; nothing else names a person.
    let pnr = PersonId::parse("191212121212").unwrap();
    assert_eq!(ids.person_of_patient_id("191212121212"), Some(pnr));
    assert_eq!(ids.person_of_patient_id("sll-12345"), None);
    assert_eq!(ids.person_of_patient_id("vgr-99123456-0001"), None);
}
