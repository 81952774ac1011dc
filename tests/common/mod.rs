//! Servers the CLI tests start on loopback: Python's `http.server` and
//! moto's S3 server (`.ci/run` installs both: python3, and
//! `pip install 'moto[server]'`).
#![allow(dead_code)] // each test crate uses its own share of these

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, killed when dropped.
pub struct Server {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
}

impl Server {
    /// Kill it now (a store that stops answering).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Start a server that takes its port from `args`, on a free loopback port,
/// and wait until it accepts connections.
pub fn start(dir: &std::path::Path, program: &str, args: impl Fn(u16) -> Vec<String>) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(program)
        .args(args(port))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); .ci/run installs it"));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{program} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, port }
}

/// moto's S3 server on loopback, with `buckets` made (through boto3, which
/// comes with moto) and `objects` put in them (`(bucket, key, body)`).
pub fn moto(dir: &std::path::Path, buckets: &[&str], objects: &[(&str, &str, &[u8])]) -> Server {
    let server = start(dir, "moto_server", |port| {
        vec!["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()]
    });
    let mut script = String::from(
        "import sys, boto3\n\
         s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='k', aws_secret_access_key='s', region_name='us-east-1')\n",
    );
    for bucket in buckets {
        script.push_str(&format!("s3.create_bucket(Bucket='{bucket}')\n"));
    }
    for (bucket, key, body) in objects {
        let body: Vec<String> = body.iter().map(|b| b.to_string()).collect();
        script.push_str(&format!(
            "s3.put_object(Bucket='{bucket}', Key='{key}', Body=bytes([{}]))\n",
            body.join(",")
        ));
    }
    let made = Command::new("python3")
        .args(["-c", &script, &endpoint(&server)])
        .status()
        .expect("python3 runs");
    assert!(made.success(), "could not make the buckets");
    server
}

/// The server's URL.
pub fn endpoint(server: &Server) -> String {
    format!("http://127.0.0.1:{}", server.port)
}

/// The usual AWS environment pointing at a moto `server` (moto takes any
/// credentials).
pub fn s3_env(server: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "k".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "s".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ENDPOINT", endpoint(server)),
        ("AWS_ALLOW_HTTP", "true".to_string()),
    ]
}

/// The `sluice` binary run in `dir` with CSV output, `args` and the SQL
/// `sql`, stdin closed.
pub fn sluice(dir: &std::path::Path, args: &[&str], sql: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .current_dir(dir)
        .args(["--format", "csv"])
        .args(args)
        .args(["-e", sql])
        .stdin(Stdio::null());
    command
}

/// The highest checkpoint with a manifest in the checkpoint directory `dir`.
pub fn latest_checkpoint(dir: &std::path::Path) -> Option<u64> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("_manifest.json").exists())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok())
        .max()
}

/// Wait until `done`, or `limit`, polling.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Send `child` the signal `name` (`TERM`, `INT`), as `kill -NAME` does.
pub fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{name} {}", child.id());
}

/// `got` and `want` hold the same rows as often; else how many, and the
/// first rows lost and repeated.
pub fn assert_same_multiset(what: &str, got: &[String], want: &[String]) {
    let count = |rows: &[String]| {
        let mut counts: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for row in rows {
            *counts.entry(row.clone()).or_default() += 1;
        }
        counts
    };
    let (got_counts, want_counts) = (count(got), count(want));
    let mut lost: Vec<&String> = want_counts
        .iter()
        .filter(|(r, n)| got_counts.get(*r).copied().unwrap_or(0) < **n)
        .map(|(r, _)| r)
        .collect();
    let mut extra: Vec<&String> = got_counts
        .iter()
        .filter(|(r, n)| want_counts.get(*r).copied().unwrap_or(0) < **n)
        .map(|(r, _)| r)
        .collect();
    lost.sort();
    extra.sort();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "{what}: {} rows, {} wanted; {} lost (first {:?}), {} extra or repeated (first {:?})",
        got.len(),
        want.len(),
        lost.len(),
        lost.iter().take(3).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(3).collect::<Vec<_>>(),
    );
}
