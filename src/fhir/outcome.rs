//! `OperationOutcome`: how every FHIR error and validation report is written: a severity,
//! an issue code, a human message and the FHIRPath `expression` of the element.

use serde_json::{Value, json};

use super::MappingError;
use crate::domain::Violations;

/// One issue of an OperationOutcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// `error` or `warning` (FHIR's `issue-severity`).
    pub severity: &'static str,
    /// FHIR's `issue-type`: `structure`, `value`, `invariant`, `not-supported`, ….
    pub code: &'static str,
    pub diagnostics: String,
    pub expression: Option<String>,
}

impl Issue {
    pub fn error(
        code: &'static str,
        diagnostics: impl Into<String>,
        expression: Option<String>,
    ) -> Self {
        Self {
            severity: "error",
            code,
            diagnostics: diagnostics.into(),
            expression,
        }
    }
}

impl From<&MappingError> for Issue {
    fn from(e: &MappingError) -> Self {
        Issue::error("structure", e.message.clone(), Some(e.expression.clone()))
    }
}

/// Issues for broken contract rules; expressions are the contract's JSON paths.
pub fn invariant_issues(v: &Violations) -> Vec<Issue> {
    v.iter()
        .map(|v| {
            Issue::error(
                "invariant",
                v.to_string(),
                Some(format!("Patientkontrakt.{}", v.field())),
            )
        })
        .collect()
}

/// An OperationOutcome with these issues; with none, a single `information` issue.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    let issues: Vec<Value> = if issues.is_empty() {
        vec![
            json!({ "severity": "information", "code": "informational", "diagnostics": "no problems found" }),
        ]
    } else {
        issues
            .iter()
            .map(|i| {
                let mut v =
                    json!({ "severity": i.severity, "code": i.code, "diagnostics": i.diagnostics });
                if let (Some(e), Some(m)) = (&i.expression, v.as_object_mut()) {
                    m.insert("expression".into(), json!([e]));
                }
                v
            })
            .collect()
    };
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}
