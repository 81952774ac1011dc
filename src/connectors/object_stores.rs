//! Object stores for remote paths: `s3://` and `http(s)://` locations are
//! served by `object_store`, registered with the session on first use (as
//! datafusion-cli does), so both our connector tables and DataFusion's own
//! `CREATE EXTERNAL TABLE ... LOCATION 's3://...'` and `COPY TO` reach them.

use std::str::FromStr;
use std::sync::Arc;

use datafusion::common::{exec_datafusion_err, plan_err};
use datafusion::error::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::http::HttpBuilder;
use object_store::{ClientOptions, ObjectStore};
use url::Url;

/// Register the object store that serves `location`, if it is remote.
///
/// `s3_options` are S3 settings without their `s3.` prefix (`region`,
/// `endpoint`, `access_key_id`, `allow_http`, ...), applied over the usual
/// `AWS_*` environment variables.
pub fn register_for_location(
    runtime: &RuntimeEnv,
    location: &str,
    s3_options: &[(String, String)],
) -> Result<()> {
    let Ok(url) = Url::parse(location) else {
        return Ok(()); // a local path
    };
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" | "s3a" => {
            let bucket = url.host_str().unwrap_or_default();
            if bucket.is_empty() {
                return plan_err!("'{location}' names no bucket: write s3://bucket/path");
            }
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            for (key, value) in s3_options {
                let config_key = AmazonS3ConfigKey::from_str(&key.replace('-', "_"))
                    .map_err(|_| exec_datafusion_err!("unknown S3 option 's3.{key}'"))?;
                builder = builder.with_config(config_key, value);
            }
            Arc::new(
                builder
                    .build()
                    .map_err(|e| exec_datafusion_err!("S3 store for '{location}': {e}"))?,
            )
        }
        "http" | "https" => {
            if !s3_options.is_empty() {
                return plan_err!("'s3.' options are for s3:// paths, not '{location}'");
            }
            // Plain http:// is what the user wrote: allow it for this store.
            let client = ClientOptions::new().with_allow_http(url.scheme() == "http");
            Arc::new(
                HttpBuilder::new()
                    .with_url(store_root(&url))
                    .with_client_options(client)
                    .build()
                    .map_err(|e| exec_datafusion_err!("HTTP store for '{location}': {e}"))?,
            )
        }
        // file:// and schemes registered by someone else are left alone.
        _ => return Ok(()),
    };
    let root = Url::parse(&store_root(&url)).map_err(|e| exec_datafusion_err!("{e}"))?;
    runtime.register_object_store(&root, store);
    Ok(())
}

/// `scheme://host[:port]`: the part of a URL that picks the store.
fn store_root(url: &Url) -> String {
    let mut root = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        root.push_str(&format!(":{port}"));
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::object_store::ObjectStoreUrl;

    #[test]
    fn local_paths_need_no_store() {
        let rt = RuntimeEnv::default();
        register_for_location(&rt, "testdata/orders.csv", &[]).expect("local");
    }

    #[test]
    fn http_and_s3_stores_are_registered_by_root() {
        let rt = RuntimeEnv::default();
        register_for_location(&rt, "http://127.0.0.1:8123/data/a.csv", &[]).expect("http");
        let url = ObjectStoreUrl::parse("http://127.0.0.1:8123").expect("url");
        assert!(rt.object_store(&url).is_ok());
        register_for_location(
            &rt,
            "s3://bucket/x.parquet",
            &[("region".into(), "eu-west-1".into())],
        )
        .expect("s3");
        assert!(
            rt.object_store(ObjectStoreUrl::parse("s3://bucket").expect("url"))
                .is_ok()
        );
    }

    #[test]
    fn bad_s3_option_is_named() {
        let rt = RuntimeEnv::default();
        let err =
            register_for_location(&rt, "s3://b/x", &[("colour".into(), "red".into())]).expect_err("bad key");
        assert!(err.to_string().contains("s3.colour"), "{err}");
    }
}
