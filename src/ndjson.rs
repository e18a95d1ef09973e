//! Bulk export and import of contracts as NDJSON: one contract per line, with its whole
//! history (`{"id": …, "versions": [oldest … newest]}`). Both directions stream, so a
//! store of millions of contracts needs memory for one contract at a time.

use futures_util::TryStreamExt;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use crate::store::{History, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum NdjsonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Writes every contract as one line; returns how many were written.
pub async fn export<W: AsyncWrite + Unpin>(store: &Store, out: &mut W) -> Result<u64, NdjsonError> {
    let mut stream = store.export();
    let mut written = 0;
    let mut line = Vec::with_capacity(16 * 1024);
    while let Some(history) = stream.try_next().await? {
        line.clear();
        serde_json::to_writer(&mut line, &history)?;
        line.push(b'\n');
        out.write_all(&line).await?;
        written += 1;
    }
    out.flush().await?;
    Ok(written)
}

/// A line that could not be imported, and why.
#[derive(Debug)]
pub struct Rejected {
    /// 1-based line number in the input.
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: u64,
    pub rejected: Vec<Rejected>,
}

/// Imports every line; each contract is stored whole or not at all. Lines that fail
/// (bad JSON, a broken invariant, an id already in the store) are reported and skipped.
pub async fn import<R: AsyncBufRead + Unpin>(
    store: &Store,
    input: R,
) -> Result<ImportReport, NdjsonError> {
    let mut lines = input.lines();
    let mut report = ImportReport::default();
    let mut number = 0;
    while let Some(line) = lines.next_line().await? {
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let outcome = match serde_json::from_str::<History>(&line) {
            Err(e) => Err(format!("not a contract history: {e}")),
            Ok(history) => match store.import(history).await {
                Ok(_) => Ok(()),
                Err(e @ (StoreError::Database(_) | StoreError::Corrupt(_))) => return Err(e.into()),
                Err(e) => Err(e.to_string()),
            },
        };
        match outcome {
            Ok(()) => report.imported += 1,
            Err(reason) => report.rejected.push(Rejected {
                line: number,
                reason,
            }),
        }
    }
    Ok(report)
}
