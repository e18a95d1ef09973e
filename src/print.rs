//! The person's contract on paper: one self-contained HTML page in Swedish (`lang="sv"`,
//! no external assets, a print stylesheet for A4). The first page holds what the source
//! texts require there — the responsible unit's name, phone number and phone hours, the
//! fast vårdkontakt and fast läkarkontakt and how to reach them, the next step and the
//! next agreed time; then the rest of the contract in the words of the seeds' "Hemma"
//! list and "Mitt kvitto". The content is the narrative's (`fhir::narrative`), so paper,
//! portal and journal say the same.

use crate::fhir::Profile;
use crate::fhir::narrative::{escape, first_page, off_first_page, rest};
use crate::store::Record;
use crate::swedish;

/// Readable on screen and at 200 % zoom (relative sizes, one column that reflows), dark
/// text on white (contrast well above 7:1), A4 with the first page on its own sheet.
const STYLE: &str = "
:root { color: #111; background: #fff; font-family: system-ui, sans-serif; line-height: 1.5; }
body { margin: 0 auto; max-width: 46rem; padding: 1.5rem; font-size: 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 0.5rem; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 0.4rem; border-bottom: 1px solid #555; }
ul { padding-left: 1.4rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #555; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
.forsta-sidan { border: 2px solid #111; padding: 1rem 1.25rem; }
footer { margin-top: 2rem; font-size: 0.9rem; color: #333; }
@page { size: A4; margin: 18mm 16mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  .forsta-sidan { border: none; padding: 0; break-after: page; page-break-after: always; }
  h2 { break-after: avoid; page-break-after: avoid; }
  tr, li { break-inside: avoid; page-break-inside: avoid; }
}
";

/// The printable page of one stored version, as of now: its first page names the next
/// agreed time from now and the contacts who have not left.
pub fn page(record: &Record, profile: &Profile) -> String {
    page_at(record, profile, jiff::Timestamp::now())
}

/// The printable page as of `now`.
pub fn page_at(record: &Record, profile: &Profile, now: jiff::Timestamp) -> String {
    let c = &record.revision.contract;
    let title = match c.patient.name.as_deref() {
        Some(name) => format!("Patientkontrakt för {name}"),
        None => "Patientkontrakt".to_owned(),
    };
    let shows = profile.first_page_of(c.responsible_unit.as_ref().map(|u| &u.hsa_id));
    let updated = swedish::instant(record.revision.recorded_at);
    format!(
        concat!(
            "<!DOCTYPE html>\n",
            r#"<html xmlns="http://www.w3.org/1999/xhtml" lang="sv" xml:lang="sv"><head>"#,
            r#"<meta charset="utf-8" /><meta name="viewport" content="width=device-width, initial-scale=1" />"#,
            "<title>{title}</title><style>{style}</style></head><body><main>",
            r#"<section class="forsta-sidan" aria-label="Första sidan">{first}</section>"#,
            r#"<section aria-label="Mitt kontrakt">{off}{rest}</section>"#,
            "<footer><p>Version {version}, senast ändrad {updated}. Kontrakt {id}.</p></footer>",
            "</main></body></html>\n"
        ),
        title = escape(&title),
        style = STYLE,
        first = first_page(c, Some(now), shows),
        off = off_first_page(c, Some(now), shows),
        rest = rest(c),
        version = record.revision.version,
        updated = escape(&updated),
        id = escape(record.id.as_str()),
    )
}

/// The page as the person reads it: headings, lines and list items as plain text, the
/// markup and the stylesheet left out (for the golden pages under `fixtures/print/`).
pub fn as_text(page: &str) -> String {
    let body = page
        .split_once("<main>")
        .map_or(page, |(_, b)| b)
        .split("</main>")
        .next()
        .unwrap_or_default();
    let mut out = String::new();
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let tag = &rest[start + 1..start + end];
        let name = tag
            .trim_start_matches('/')
            .split([' ', '/'])
            .next()
            .unwrap_or_default();
        let closing = tag.starts_with('/');
        match (name, closing) {
            ("h1", false) => out.push_str("\n\n# "),
            ("h2", false) => out.push_str("\n\n## "),
            ("li", false) => out.push_str("\n- "),
            ("tr", false) | ("p", false) | ("footer", false) => out.push('\n'),
            ("section", false) => out.push_str("\n\n----"),
            ("td" | "th", false) => out.push_str(" | "),
            _ => {}
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let text = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut joined = lines.join("\n");
    while joined.contains("\n\n\n") {
        joined = joined.replace("\n\n\n", "\n\n");
    }
    format!(
        "{}\n",
        joined.trim().trim_start_matches("----").trim_start()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContractId, Version};
    use crate::store::{Change, Revision};

    /// Each situation a fixture stands for, on paper as the person reads it on 1
    /// December 2026 at 09:00: `fixtures/print/{name}.txt`, to read and review. After a
    /// deliberate change, `PKGW_UPDATE_GOLDEN=1 cargo test --lib print::tests`.
    #[test]
    fn every_situation_reads_as_its_golden_page() {
        let now: jiff::Timestamp = "2026-12-01T08:00:00Z".parse().unwrap();
        let update = std::env::var_os("PKGW_UPDATE_GOLDEN").is_some();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/print");
        for (name, contract) in crate::demo::contracts().unwrap() {
            let record = Record {
                id: ContractId::parse(name).unwrap(),
                revision: Revision {
                    version: Version::FIRST,
                    recorded_at: "2026-11-02T14:30:00Z".parse().unwrap(),
                    change: Change::from_source("api"),
                    contract,
                    foreign_fhir: None,
                    deleted: false,
                    unchanged: Default::default(),
                },
            };
            let text = as_text(&page_at(&record, &Profile::default_profile(), now));
            let path = dir.join(format!("{name}.txt"));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{}: {e}; PKGW_UPDATE_GOLDEN=1 writes it", path.display())
            });
            assert_eq!(
                text, golden,
                "{name}: the printed page differs from its golden"
            );
        }
    }

    #[test]
    fn the_text_keeps_what_is_read_and_drops_the_markup() {
        let page = "<html><head><style>h1 { }</style></head><body><main><h1>Patientkontrakt</h1><p>Kontraktet gäller &amp; följs.</p><ul><li>Ett</li><li>Två</li></ul></main></body></html>";
        assert_eq!(
            as_text(page),
            "# Patientkontrakt\nKontraktet gäller & följs.\n- Ett\n- Två\n"
        );
    }
}
