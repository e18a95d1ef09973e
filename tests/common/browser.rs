//! What a person sees: a headless Chromium (Debian `chromium`, installed by
//! `scripts/test.sh`) that loads a page from the running gateway, and Python's XML
//! parser for well-formedness.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// A tool `scripts/test.sh` installs, by its full path.
pub fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{name} is not installed: run scripts/test.sh (it installs Debian chromium and poppler-utils)"
    );
    String::from_utf8_lossy(&found.stdout).trim().to_owned()
}

/// Runs headless Chromium on `url` with `what` (e.g. `--screenshot=FILE`), in a profile
/// of its own under `dir`; off the async runtime, since the gateway it loads from runs
/// on it.
pub async fn chromium(url: &str, what: String, dir: &Path) -> Output {
    let (chromium, url, profile) = (tool("chromium"), url.to_owned(), dir.join("profile"));
    tokio::task::spawn_blocking(move || {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
                "--window-size=1000,1400",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(what)
            .arg(url)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// A screenshot of `url` as PNG bytes; asserts that Chromium made one.
pub async fn screenshot(url: &str, dir: &Path) -> Vec<u8> {
    let png = dir.join("screenshot.png");
    let shot = chromium(url, format!("--screenshot={}", png.display()), dir).await;
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    std::fs::read(&png).unwrap()
}

/// Whether `text` is well-formed XML, by Python's standard parser.
pub fn well_formed(text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page.xml");
    std::fs::write(&file, text.trim_start_matches("<!DOCTYPE html>\n")).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])",
        ])
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
