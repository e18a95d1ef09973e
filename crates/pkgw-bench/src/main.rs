//! `pkgw-bench`: what `scripts/load.sh` sets the gateway beside, measured in the same run.
//!
//! - `pkgw-bench serve FILE ADDR`: the least an HTTP server can do with the same answer —
//!   axum on tokio, `FILE`'s bytes (a response the gateway gave) for every GET, as
//!   `application/fhir+json`. The gateway's throughput over this one's is how close it
//!   is to what the machine can serve at all.
//! - `pkgw-bench commits URL SECONDS CONCURRENCY`: the disk's durable commit rate — tiny
//!   transactions (one INSERT each) committed as fast as they go, on SQLite (WAL,
//!   `synchronous = FULL` as the gateway's store) or PostgreSQL, from `CONCURRENCY` tasks.
//!   Prints commits per second.
//! - `pkgw-bench sql URL STATEMENT`: runs one SQL statement, printing the first column
//!   of the rows it gives (the load script makes and drops its PostgreSQL database with
//!   it, and reads PostgreSQL's checkpoint counters, with no `psql` needed).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use sqlx::Row;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["serve", file, addr] => serve(file, addr).await,
        ["commits", url, seconds, concurrency] => {
            match (seconds.parse(), concurrency.parse()) {
                (Ok(s), Ok(c)) => commits(url, s, c).await,
                _ => Err("SECONDS and CONCURRENCY are whole numbers".into()),
            }
        }
        ["sql", url, statement] => sql(url, statement).await,
        _ => Err("usage: pkgw-bench serve FILE ADDR | commits URL SECONDS CONCURRENCY | sql URL STATEMENT".into()),
    };
    if let Err(e) = result {
        eprintln!("pkgw-bench: {e}");
        std::process::exit(1);
    }
}

async fn serve(file: &str, addr: &str) -> Result<(), String> {
    let body: &'static [u8] = Vec::leak(std::fs::read(file).map_err(|e| format!("{file}: {e}"))?);
    let app = Router::new().fallback(move || async move {
        (
            [(CONTENT_TYPE, "application/fhir+json; charset=utf-8")],
            body,
        )
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    println!("serving {} bytes on {}", body.len(), addr);
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

async fn commits(url: &str, seconds: u64, concurrency: u32) -> Result<(), String> {
    sqlx::any::install_default_drivers();
    let sqlite = url.starts_with("sqlite:");
    let options = AnyConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    let pool = AnyPoolOptions::new()
        // SQLite has one writer, as in the gateway's store.
        .max_connections(if sqlite { 1 } else { concurrency.max(1) })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous = FULL")
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query("DROP TABLE IF EXISTS bench_commits")
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query("CREATE TABLE bench_commits (n BIGINT NOT NULL, v TEXT NOT NULL)")
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (pool, done) = (pool.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    let n = done.fetch_add(1, Ordering::Relaxed) as i64;
                    let mut tx = pool.begin().await?;
                    sqlx::query("INSERT INTO bench_commits (n, v) VALUES ($1, $2)")
                        .bind(n)
                        .bind("x")
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                }
                Ok::<(), sqlx::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = done.load(Ordering::Relaxed) as f64 / elapsed;
    sqlx::query("DROP TABLE bench_commits")
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
    println!("{rate:.0}");
    Ok(())
}

async fn sql(url: &str, statement: &str) -> Result<(), String> {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(|e| e.to_string())?;
    // A statement that gives rows prints their first column, one row per line.
    let rows = sqlx::query(statement)
        .fetch_all(&pool)
        .await
        .map_err(|e| e.to_string())?;
    for row in rows {
        if let Ok(text) = row.try_get::<String, _>(0) {
            println!("{text}");
        }
    }
    Ok(())
}
