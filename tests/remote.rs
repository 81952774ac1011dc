//! Remote paths through object_store: `file` connector tables and DataFusion's
//! own statements read (and `COPY` writes) files served on loopback, over HTTP
//! by Python's `http.server` and over S3 by moto's S3 server.
//!
//! `.ci/run` installs both (python3, and `pip install 'moto[server]'`).

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{endpoint, moto, s3_env, start};

fn sluice(sql: &str) -> (bool, String, String) {
    sluice_with_env(sql, &[])
}

fn sluice_with_env(sql: &str, env: &[(&str, String)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["-e", sql])
        .envs(env.iter().map(|(k, v)| (k, v)))
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
    let server = start(dir.path(), "python3", |port| {
        ["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"]
            .map(String::from)
            .to_vec()
    });
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

    // A bad value is named by the file's URL and its line, counted from 1.
    std::fs::write(dir.path().join("bad.csv"), "region,amount\neu,10\nus,x\n").expect("write");
    let (ok, _, err) = sluice(&format!(
        "CREATE TABLE bad (region VARCHAR, amount BIGINT) WITH ('connector' = 'file', 'path' = 'http://127.0.0.1:{}/bad.csv', 'format' = 'csv');
         SELECT sum(amount) FROM bad;",
        server.port
    ));
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "file http://127.0.0.1:{}/bad.csv line 3: Error while parsing value 'x' as type 'Int64' in column 2 ('amount')",
            server.port
        )),
        "{err}"
    );

    let (ok, _, err) = sluice(&format!(
        "CREATE TABLE gone WITH ('connector' = 'file', 'path' = 'http://127.0.0.1:{}/gone.csv')",
        server.port
    ));
    assert!(!ok);
    assert!(err.contains("file not found: 'http://127.0.0.1:"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn tables_read_and_copy_writes_s3() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = moto(
        dir.path(),
        &["lake"],
        &[
            ("lake", "sales/a.csv", b"region,amount\neu,10\nus,5\n"),
            ("lake", "events/a.ndjson", b"{\"n\": 1}\n"),
            ("lake", "events/b.ndjson", b"{\"n\": 2}\n{\"n\": 5.7}\n"),
        ],
    );
    let endpoint = endpoint(&server);

    // Credentials and endpoint from the WITH options...
    let (ok, out, err) = sluice(&format!(
        "CREATE TABLE sales WITH ('connector' = 'file', 'path' = 's3://lake/sales/', 'format' = 'csv',
            's3.endpoint' = '{endpoint}', 's3.allow_http' = 'true', 's3.region' = 'us-east-1',
            's3.access_key_id' = 'k', 's3.secret_access_key' = 's');
         SELECT region, amount FROM sales ORDER BY region;"
    ));
    assert!(ok, "{err}");
    assert_eq!(out, "region,amount\neu,10\nus,5\n");

    // A bad value under a prefix is named by its object's URL and line.
    let (ok, _, err) = sluice(&format!(
        "CREATE TABLE events (n BIGINT) WITH ('connector' = 'file', 'path' = 's3://lake/events/', 'format' = 'json',
            's3.endpoint' = '{endpoint}', 's3.allow_http' = 'true', 's3.region' = 'us-east-1',
            's3.access_key_id' = 'k', 's3.secret_access_key' = 's');
         SELECT sum(n) FROM events;"
    ));
    assert!(!ok);
    assert!(
        err.contains(
            "file s3://lake/events/b.ndjson line 2: column 'n' is BIGINT but the value is 5.7, a number with a fraction"
        ),
        "{err}"
    );

    // ...or from the usual AWS environment, for DataFusion's COPY as well.
    let env = s3_env(&server);
    let (ok, out, err) = sluice_with_env(
        "CREATE TABLE sales WITH ('connector' = 'file', 'path' = 's3://lake/sales/a.csv');
         COPY (SELECT region, amount * 2 AS doubled FROM sales) TO 's3://lake/out/doubled.parquet';
         CREATE TABLE doubled WITH ('connector' = 'file', 'path' = 's3://lake/out/', 'format' = 'parquet');
         SELECT sum(doubled) AS total FROM doubled;",
        &env,
    );
    assert!(ok, "{err}");
    assert!(out.ends_with("total\n30\n"), "{out}");
}

#[test]
fn an_unreachable_host_fails_in_seconds_naming_it_and_the_cause() {
    // A loopback port nothing listens on: the connection is refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let credentials = "'s3.allow_http' = 'true', 's3.region' = 'us-east-1', \
                       's3.access_key_id' = 'k', 's3.secret_access_key' = 's'";
    for (path, extra) in [
        (format!("http://127.0.0.1:{port}/a.csv"), String::new()),
        (
            "s3://lake/a.csv".to_string(),
            format!(", 's3.endpoint' = 'http://127.0.0.1:{port}', {credentials}"),
        ),
    ] {
        let started = Instant::now();
        let (ok, _, err) = sluice(&format!(
            "CREATE TABLE t WITH ('connector' = 'file', 'path' = '{path}', 'format' = 'csv'{extra})"
        ));
        assert!(!ok);
        assert!(
            err.contains(&format!("cannot read '{path}': Connection refused")),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
    }
}
