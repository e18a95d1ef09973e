//! A PostgreSQL server of a test's own (the machine's binaries, its own data directory
//! and port, loopback only), never the shared test server: for tests that stop, kill or
//! replicate it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The machine's PostgreSQL binaries (`/usr/lib/postgresql/<version>/bin`), newest first.
fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries in /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("initdb")
}

/// A PostgreSQL server of the test's own, on its own port.
pub struct OwnPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl OwnPostgres {
    /// A new server with an empty database.
    pub fn start() -> OwnPostgres {
        let pg = OwnPostgres::unstarted();
        pg.run("initdb", &["-U", "postgres", "--auth=trust", "-N", "-D"]);
        pg.up();
        pg
    }

    /// A streaming replica of `primary` (hot standby, read-only), started from a base
    /// backup of it and following its WAL.
    pub fn replica_of(primary: &OwnPostgres) -> OwnPostgres {
        let pg = OwnPostgres::unstarted();
        let port = primary.port.to_string();
        pg.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "-D",
            ],
        );
        pg.up();
        pg
    }

    /// A free port and an empty directory for a server, owned by the user it runs as.
    fn unstarted() -> OwnPostgres {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("pkgw-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            // PostgreSQL refuses to run as root: its files are the postgres user's.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
        OwnPostgres {
            bin: pg_bin(),
            dir,
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// One of the server's programs, run as the postgres user when the test is root.
    fn program(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// Runs one of the server's programs, with the data directory as its last argument.
    fn run(&self, program: &str, args: &[&str]) {
        let status = self
            .program(program)
            .args(args)
            .arg(self.data())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{program} {args:?}");
    }

    pub fn up(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &["-w", "-t", "30", "-o", &options, "-l"]
                .into_iter()
                .chain([self.dir.join("log").to_str().unwrap(), "start", "-D"])
                .collect::<Vec<_>>(),
        );
    }

    /// A fast shutdown: sessions are ended, open transactions rolled back.
    pub fn down(&self) {
        self.run("pg_ctl", &["-w", "-m", "fast", "stop", "-D"]);
    }

    /// The server process killed with SIGKILL (its backends then end themselves).
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.data().join("postmaster.pid")).unwrap();
        let pid = pid.lines().next().unwrap().trim().to_owned();
        let status = Command::new("kill").args(["-9", &pid]).status().unwrap();
        assert!(status.success());
        // Wait until it is gone, and its backends with it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            || Path::new(&format!("/proc/{pid}")).exists()
        {
            assert!(Instant::now() < deadline, "the killed server lingers");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .program("pg_ctl")
            .args(["-m", "immediate", "stop", "-D"])
            .arg(self.data())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Waits until `ready` holds (at most 60 s).
pub async fn wait_for<F, Fut>(ready: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready().await {
        assert!(Instant::now() < deadline, "not reached in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
