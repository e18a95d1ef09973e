//! JSON in and out. Request bodies are read by [`JsonBody`], which answers malformed
//! input in our error format, naming the field: 400 for text that is not JSON, 422 for
//! JSON that is not a valid value (an unknown field, a bad personnummer, …).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::error::{ApiError, Issue};

/// A JSON request body, deserialized with the path of any error kept.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes =
            Bytes::from_request(req, state)
                .await
                .map_err(|rejection: BytesRejection| {
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::PayloadTooLarge
                    } else {
                        ApiError::bad_request("body", rejection.body_text())
                    }
                })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses `bytes` as a `T`, naming the field of the first error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            "body".to_owned()
        } else {
            path
        };
        classify(field, e.into_inner())
    })?;
    de.end().map_err(|e| classify("body".into(), e))?;
    Ok(value)
}

fn classify(field: String, error: serde_json::Error) -> ApiError {
    let is_data = error.is_data();
    let issue = Issue {
        field,
        message: error.to_string(),
    };
    if is_data {
        ApiError::Invalid(vec![issue])
    } else {
        ApiError::BadRequest(issue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Contract;

    fn error(json: &str) -> ApiError {
        parse::<Contract>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        assert!(matches!(error("{\"status\": "), ApiError::BadRequest(_)));
        let trailing = parse::<serde_json::Value>(b"{} trailing").unwrap_err();
        assert!(
            matches!(trailing, ApiError::BadRequest(ref i) if i.field == "body"),
            "{trailing:?}"
        );
    }

    #[test]
    fn invalid_values_name_their_field() {
        let body = r#"{"status":"active","patient":{"id":"191212121213"},"initiatedBy":"staff"}"#;
        match error(body) {
            ApiError::Invalid(issues) => {
                assert_eq!(issues[0].field, "patient.id");
                assert!(
                    issues[0].message.contains("check digit"),
                    "{}",
                    issues[0].message
                );
            }
            other => panic!("{other:?}"),
        }
        let body = r#"{"status":"aktiv","patient":{"id":"191212121212"},"initiatedBy":"staff"}"#;
        assert!(matches!(error(body), ApiError::Invalid(i) if i[0].field == "status"));
    }
}
