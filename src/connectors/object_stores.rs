//! Object stores for remote paths: `s3://` and `http(s)://` locations are
//! served by `object_store`, registered with the session on first use (as
//! datafusion-cli does), so both our connector tables and DataFusion's own
//! `CREATE EXTERNAL TABLE ... LOCATION 's3://...'` and `COPY TO` reach them.

use std::str::FromStr;
use std::sync::Arc;

use datafusion::common::{exec_datafusion_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::http::HttpBuilder;
use object_store::{ClientConfigKey, ClientOptions, ObjectStore};
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
            // A host that does not answer fails in seconds, naming it,
            // rather than after the operating system's minutes.
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                CONNECT_TIMEOUT,
            );
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
            let client = ClientOptions::new()
                .with_allow_http(url.scheme() == "http")
                .with_config(ClientConfigKey::ConnectTimeout, CONNECT_TIMEOUT);
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

/// How long connecting to a remote store's host may take.
const CONNECT_TIMEOUT: &str = "5 seconds";

/// A remote store's error in words a user can act on. With no credentials
/// in the table's options or the environment, object_store's S3 client asks
/// the instance metadata service for a role, and its refusal (a 403 from
/// 169.254.169.254) says nothing of the cause: say that no credentials were
/// found and which settings give them. A host that cannot be reached is
/// named with the cause (a refused connection, an unknown name), which
/// object_store's "error sending request" leaves out.
pub fn explain_error(location: &str, error: DataFusionError) -> DataFusionError {
    let text = error.to_string();
    if text.contains("error sending request") {
        return exec_datafusion_err!("cannot read '{location}': {}; {text}", root_cause(&error));
    }
    let s3 = location.starts_with("s3://") || location.starts_with("s3a://");
    if s3 && (text.contains("169.254.169.254") || text.contains("/latest/api/token")) {
        return exec_datafusion_err!(
            "no AWS credentials were found for '{location}' (none in the table's options or the environment, and no instance role): \
             set 's3.access_key_id' and 's3.secret_access_key' in WITH (...), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; \
             for a public bucket, 's3.skip_signature' = 'true'"
        );
    }
    error
}

/// The innermost cause of `error` (what its `source` chain ends at), such
/// as `Connection refused (os error 111)` under an HTTP client's "error
/// sending request".
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
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
    fn an_s3_path_without_credentials_says_so() {
        let refused = DataFusionError::External(
            "Generic S3 error: Error performing PUT http://169.254.169.254/latest/api/token - 403 Forbidden"
                .into(),
        );
        let message = explain_error("s3://bucket/x.csv", refused).to_string();
        assert!(
            message.contains("no AWS credentials were found for 's3://bucket/x.csv'"),
            "{message}"
        );
        assert!(
            message.contains("'s3.access_key_id'") && message.contains("AWS_ACCESS_KEY_ID"),
            "{message}"
        );
        // Other errors, and other schemes, pass as they are.
        let other = explain_error("s3://bucket/x.csv", DataFusionError::Plan("no such file".into()));
        assert_eq!(other.to_string(), "Error during planning: no such file");
    }

    #[test]
    fn bad_s3_option_is_named() {
        let rt = RuntimeEnv::default();
        let err =
            register_for_location(&rt, "s3://b/x", &[("colour".into(), "red".into())]).expect_err("bad key");
        assert!(err.to_string().contains("s3.colour"), "{err}");
    }
}
