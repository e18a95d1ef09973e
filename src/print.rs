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
    let c = &record.revision.contract;
    let title = match c.patient.name.as_deref() {
        Some(name) => format!("Patientkontrakt för {name}"),
        None => "Patientkontrakt".to_owned(),
    };
    let shows = profile.first_page_of(c.responsible_unit.as_ref().map(|u| &u.hsa_id));
    let now = jiff::Timestamp::now();
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
