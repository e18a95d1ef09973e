//! The cap on the size of any answer (`server.answer_limit_bytes`): an answer over it is
//! replaced by an error that says so (400, OperationOutcome `too-costly` on the FHIR
//! API), before the guard records what was given. Searches page (`_count`, at most
//! 1000), batches stop performing entries once their answer has reached the cap, and
//! `_include`s count towards it as they are gathered, so the answer is refused before it
//! is built whole, not after.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;

use super::fhir::FhirError;
use super::{ApiError, AppState};

/// The bytes `value` takes as compact JSON, counted without keeping them.
pub(crate) fn json_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Why an answer is not given: it would be `size` bytes, over `limit`.
pub(crate) fn too_large(size: usize, limit: usize) -> String {
    format!(
        "the answer would be {size} bytes, over the gateway's limit of {limit} (server.answer_limit_bytes): ask for less (a smaller _count, fewer entries or fewer _include)"
    )
}

/// Replaces an answer over the cap by the error. (Streamed answers, the export files,
/// have no known size and are not capped here.)
pub(super) async fn cap(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let fhir = request.uri().path().starts_with("/fhir");
    let response = next.run(request).await;
    let limit = state.answer_bytes;
    match response.body().size_hint().exact() {
        Some(size) if size > limit as u64 => {
            let message = too_large(size as usize, limit);
            if fhir {
                FhirError::TooCostly {
                    message,
                    expression: None,
                }
                .into_response()
            } else {
                ApiError::bad_request("answer", message).into_response()
            }
        }
        _ => response,
    }
}
