//! Remote paths through object_store: a `file` connector table and DataFusion's
//! own `CREATE EXTERNAL TABLE` read a CSV served over HTTP on loopback.
//!
//! The server is Python's `http.server` (python3 is installed by `.ci/run`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &std::path::Path) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "http.server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, port }
}

fn sluice(sql: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["-e", sql])
        .output()
        .expect("sluice runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tables_read_csv_over_http() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("sales.csv"), "region,amount\neu,10\nus,5\neu,7\n").expect("write");
    let server = serve(dir.path());
    let url = format!("http://127.0.0.1:{}/sales.csv", server.port);

    let (ok, out, err) = sluice(&format!(
        "CREATE TABLE sales (region VARCHAR, amount BIGINT) WITH ('connector' = 'file', 'path' = '{url}', 'format' = 'csv');
         SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY region;"
    ));
    assert!(ok, "{err}");
    assert_eq!(out, "region,total\neu,17\nus,5\n");

    let (ok, out, err) = sluice(&format!(
        "CREATE EXTERNAL TABLE s STORED AS CSV LOCATION '{url}'; SELECT count(*) AS n FROM s;"
    ));
    assert!(ok, "{err}");
    assert_eq!(out, "n\n3\n");

    let (ok, _, err) = sluice(&format!(
        "CREATE TABLE gone WITH ('connector' = 'file', 'path' = 'http://127.0.0.1:{}/gone.csv')",
        server.port
    ));
    assert!(!ok);
    assert!(err.contains("file not found: 'http://127.0.0.1:"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}
