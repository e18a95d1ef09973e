//! The person's view: every fixture contract as a printable Swedish page over a real
//! socket — self-contained, well-formed, with the first page as the source texts require —
//! and a headless Chromium (Debian `chromium`, installed by `scripts/test.sh`) that loads
//! it from the running gateway, takes a screenshot and prints it to PDF, whose first page
//! (read with `pdftotext`) names the responsible unit, its phone number and phone hours.

// Tests panic on what they did not expect; helpers outside #[test] functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::TestDb;
use common::app::spawn_app;
use common::browser::{chromium, screenshot, tool, well_formed};
use pkgw::store::Change;

/// Text with every run of whitespace as one space.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn every_fixture_prints_as_a_self_contained_swedish_page(db: &TestDb) {
    let app = spawn_app(db).await;
    for (name, contract) in pkgw::demo::contracts().unwrap() {
        let record = app
            .store
            .create(contract.clone(), Change::from_source("api"))
            .await
            .unwrap();
        let response = app
            .client
            .get(app.url(&format!("/contracts/{}/print", record.id)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        assert!(
            response.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'")
        );
        let page = response.text().await.unwrap();
        assert!(page.contains(r#"lang="sv""#), "{name}");
        assert!(
            !page.contains("src=") && !page.contains("href=") && !page.contains("<script"),
            "{name}: no external assets"
        );
        well_formed(&page).unwrap_or_else(|e| panic!("{name}: {e}"));
        let first = page
            .split(r#"<section aria-label="Mitt kontrakt">"#)
            .next()
            .unwrap();
        if let Some(unit) = &contract.responsible_unit {
            let first = words(first);
            assert!(
                first.contains(&words(&pkgw::fhir::narrative::escape(&unit.name))),
                "{name}: the unit on the first page"
            );
            assert!(
                first.contains(unit.phone.as_str()),
                "{name}: its phone number"
            );
            let hours = pkgw::swedish::all_phone_hours(&unit.phone_hours);
            assert!(
                first.contains(&words(&hours)),
                "{name}: its phone hours {hours}"
            );
        }
        for part in pkgw::domain::Part::ALL {
            if let Some(why) = &contract.discussed.get(part).not_applicable {
                assert!(
                    page.contains(&pkgw::fhir::narrative::escape(why)),
                    "{name}: {part} says it does not apply"
                );
            }
        }
        assert!(page.contains(&format!("Version {}", record.revision.version)));
    }
}

async fn chromium_prints_the_unit_on_the_first_page(db: &TestDb) {
    let pdftotext = tool("pdftotext");
    let app = spawn_app(db).await;
    let contract = common::fixture("hjartsvikt-primarvard");
    let unit = contract.responsible_unit.clone().unwrap();
    let record = app
        .store
        .create(contract, Change::from_source("api"))
        .await
        .unwrap();
    let url = app.url(&format!("/contracts/{}/print", record.id));
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("kontrakt.pdf");
    let printed = chromium(
        &url,
        format!("--print-to-pdf={}", pdf.display()),
        dir.path(),
    )
    .await;
    assert!(
        pdf.exists(),
        "no PDF: {}",
        String::from_utf8_lossy(&printed.stderr)
    );
    assert!(
        screenshot(&url, dir.path()).await.len() > 10_000,
        "the screenshot is not blank"
    );
    let text = Command::new(pdftotext)
        .args(["-f", "1", "-l", "1"])
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    let first_page = words(&String::from_utf8_lossy(&text.stdout));
    assert!(first_page.contains(&words(&unit.name)), "{first_page}");
    assert!(first_page.contains(unit.phone.as_str()), "{first_page}");
    assert!(
        first_page.contains(&words(&pkgw::swedish::all_phone_hours(&unit.phone_hours))),
        "{first_page}"
    );
    // The rest of the contract is on the pages after it.
    assert!(
        !first_page.contains("Vi har samtalat om delarna"),
        "{first_page}"
    );
}

on_both_backends!(
    every_fixture_prints_as_a_self_contained_swedish_page,
    chromium_prints_the_unit_on_the_first_page,
);
