//! The templates the gateway offers (see [`crate::domain::Template`]): one JSON file per
//! template in the directory `[templates] dir` names, read when the gateway starts and
//! checked whole (a file that breaks a rule stops the start, naming the file and the
//! field). `serve --demo` offers the examples in `templates/` when no directory is set.

use std::path::Path;

use crate::domain::{HsaId, Template};

/// The example templates shipped with the gateway, by file name.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "diabetes-typ-1-barn.json",
        include_str!("../templates/diabetes-typ-1-barn.json"),
    ),
    (
        "hjartsvikt.json",
        include_str!("../templates/hjartsvikt.json"),
    ),
    ("ra-psvf.json", include_str!("../templates/ra-psvf.json")),
];

/// The templates on offer, in id order; ids are unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Templates(Vec<Template>);

impl Templates {
    /// The examples in `templates/` (checked by a test).
    pub fn examples() -> Result<Templates, String> {
        Self::from_texts(
            EXAMPLES
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned())),
        )
    }

    /// Every `*.json` file in `dir`.
    pub fn load_dir(dir: &Path) -> Result<Templates, String> {
        let read = |e: std::io::Error| format!("templates.dir {}: {e}", dir.display());
        let mut texts = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read)? {
            let path = entry.map_err(read)?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                texts.push((path.display().to_string(), text));
            }
        }
        Self::from_texts(texts)
    }

    /// Templates from `(name, JSON text)` pairs; an error names the file and the field.
    pub fn from_texts(
        texts: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Templates, String> {
        let mut all: Vec<Template> = Vec::new();
        for (name, text) in texts {
            let de = &mut serde_json::Deserializer::from_str(&text);
            let template: Template = serde_path_to_error::deserialize(de)
                .map_err(|e| format!("{name}: {}: {}", e.path(), e.inner()))?;
            if let Err(violations) = template.check() {
                let why: Vec<String> = violations
                    .iter()
                    .map(|v| format!("{}: {v}", v.field()))
                    .collect();
                return Err(format!("{name}: {}", why.join("; ")));
            }
            if all.iter().any(|t| t.id == template.id) {
                return Err(format!(
                    "{name}: the id '{}' is taken by another template",
                    template.id
                ));
            }
            all.push(template);
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Templates(all))
    }

    /// The templates `unit` may use (every one when `None`: an operator's view).
    pub fn for_unit<'a>(&'a self, unit: Option<&'a HsaId>) -> impl Iterator<Item = &'a Template> {
        self.0
            .iter()
            .filter(move |t| unit.is_none() || t.is_for(unit))
    }

    pub fn get(&self, id: &str) -> Option<&Template> {
        self.0.iter().find(|t| t.id == id)
    }

    pub fn all(&self) -> &[Template] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_are_valid_templates() {
        let examples = Templates::examples().unwrap();
        let ids: Vec<&str> = examples.all().iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["diabetes-typ-1-barn", "hjartsvikt", "ra-psvf"]);
    }

    #[test]
    fn a_broken_template_is_named_with_its_field() {
        let text = |s: &str| vec![("mall.json".to_owned(), s.to_owned())];
        let unknown = Templates::from_texts(text(
            r#"{"id": "a", "title": "A", "diagnosisGroup": "A", "what": 1}"#,
        ));
        assert!(
            unknown
                .unwrap_err()
                .starts_with("mall.json: what: unknown field")
        );
        let warning = r#"{"id": "a", "title": "A", "diagnosisGroup": "A", "commitments": [
            {"id": "x", "who": {"kind": "patient"}, "what": "Feber", "situation": "warningSign"}]}"#;
        assert_eq!(
            Templates::from_texts(text(warning)).unwrap_err(),
            "mall.json: agreement.commitments[0].whereToTurn: a warning sign must say where the person turns"
        );
        let twice = Templates::from_texts(
            [(
                "a.json",
                r#"{"id": "a", "title": "A", "diagnosisGroup": "A"}"#,
            ); 2]
                .map(|(n, t)| (n.to_owned(), t.to_owned())),
        );
        assert!(twice.unwrap_err().contains("taken by another template"));
    }

    #[test]
    fn a_unit_sees_the_regions_templates_and_its_own() {
        let examples = Templates::examples().unwrap();
        let diabetes = HsaId::parse("SE2321000016-BDM1").unwrap();
        let other = HsaId::parse("SE2321000016-1A2B").unwrap();
        let ids = |unit| {
            examples
                .for_unit(unit)
                .map(|t| t.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(Some(&diabetes)),
            ["diabetes-typ-1-barn", "hjartsvikt", "ra-psvf"]
        );
        assert_eq!(ids(Some(&other)), ["hjartsvikt", "ra-psvf"]);
        assert_eq!(ids(None).len(), 3);
    }

    #[test]
    fn a_directory_of_files_loads() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in EXAMPLES {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        std::fs::write(dir.path().join("README.txt"), "not a template").unwrap();
        assert_eq!(Templates::load_dir(dir.path()), Templates::examples());
        assert!(Templates::load_dir(&dir.path().join("none")).is_err());
    }
}
