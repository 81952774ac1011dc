//! The cause of a failed write, kept for the message.
//!
//! DataFusion's file writers report a failure to finish a file as "Error
//! encountered while finalizing writes!", dropping the object store's error,
//! which says what happened ("No space left on device"). A
//! [`RecordingStore`] wraps the store a write goes to and keeps the last error
//! of a write, so [`Recorder::explain`] can put it back in the message.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::error::DataFusionError;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
};

/// The last write error seen, shared by a store and its uploads.
type Slot = Arc<Mutex<Option<String>>>;

/// An object store that keeps the last error of a write.
#[derive(Debug)]
pub struct RecordingStore {
    inner: Arc<dyn ObjectStore>,
    last_error: Slot,
}

/// What a [`RecordingStore`] recorded, for the writes of one statement.
#[derive(Debug, Clone)]
pub struct Recorder(Slot);

impl Recorder {
    /// Forget earlier errors (a new statement starts).
    pub fn clear(&self) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = None;
        }
    }

    /// `error` with the store's error that caused it, when one was recorded
    /// and the message does not already say it.
    pub fn explain(&self, error: DataFusionError, target: &str) -> DataFusionError {
        let recorded = self.0.lock().ok().and_then(|mut s| s.take());
        match recorded {
            Some(cause) if !error.to_string().contains(&cause) => {
                DataFusionError::Execution(format!("cannot write '{target}': {cause}"))
            }
            _ => error,
        }
    }
}

/// The recorders of the stores wrapped so far, by the wrapper's address (a
/// store is wrapped once, however many writes use it).
static RECORDERS: std::sync::LazyLock<Mutex<std::collections::HashMap<usize, Recorder>>> =
    std::sync::LazyLock::new(Mutex::default);

fn address(store: &Arc<dyn ObjectStore>) -> usize {
    Arc::as_ptr(store) as *const () as usize
}

/// The recorder of the store that `url`'s writes go to, wrapping that store
/// in a [`RecordingStore`] the first time.
pub fn recorder_for(
    runtime: &datafusion::execution::runtime_env::RuntimeEnv,
    url: &datafusion::datasource::listing::ListingTableUrl,
) -> datafusion::error::Result<Recorder> {
    let store = runtime.object_store(url)?;
    let mut recorders = RECORDERS
        .lock()
        .map_err(|_| DataFusionError::Internal("the write recorders' lock is poisoned".into()))?;
    if let Some(recorder) = recorders.get(&address(&store)) {
        return Ok(recorder.clone());
    }
    let (wrapped, recorder) = RecordingStore::wrap(store);
    let wrapped: Arc<dyn ObjectStore> = wrapped;
    recorders.insert(address(&wrapped), recorder.clone());
    runtime.register_object_store(url.object_store().as_ref(), wrapped);
    Ok(recorder)
}

impl RecordingStore {
    /// Wrap `inner`; the recorder reads what it records.
    pub fn wrap(inner: Arc<dyn ObjectStore>) -> (Arc<Self>, Recorder) {
        let last_error: Slot = Arc::default();
        let store = Arc::new(Self {
            inner,
            last_error: Arc::clone(&last_error),
        });
        (store, Recorder(last_error))
    }

    /// The recorder of this store.
    pub fn recorder(&self) -> Recorder {
        Recorder(Arc::clone(&self.last_error))
    }
}

fn record<T>(slot: &Slot, result: Result<T>) -> Result<T> {
    if let Err(e) = &result
        && let Ok(mut last) = slot.lock()
    {
        *last = Some(super::file_sink::io_cause(e));
    }
    result
}

impl fmt::Display for RecordingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

#[async_trait]
impl ObjectStore for RecordingStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        record(
            &self.last_error,
            self.inner.put_opts(location, payload, opts).await,
        )
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let upload = record(
            &self.last_error,
            self.inner.put_multipart_opts(location, opts).await,
        )?;
        Ok(Box::new(RecordingUpload {
            inner: upload,
            last_error: Arc::clone(&self.last_error),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        record(&self.last_error, self.inner.copy_opts(from, to, options).await)
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        record(&self.last_error, self.inner.rename_opts(from, to, options).await)
    }
}

/// An upload whose errors are recorded.
#[derive(Debug)]
struct RecordingUpload {
    inner: Box<dyn MultipartUpload>,
    last_error: Slot,
}

#[async_trait]
impl MultipartUpload for RecordingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let part = self.inner.put_part(data);
        let slot = Arc::clone(&self.last_error);
        Box::pin(async move { record(&slot, part.await) })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        record(&self.last_error, self.inner.complete().await)
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn the_cause_of_a_failed_write_is_kept() {
        let (store, recorder) = RecordingStore::wrap(Arc::new(InMemory::new()));
        store
            .put(&Path::from("a"), PutPayload::from_static(b"x"))
            .await
            .expect("a put");
        let generic = DataFusionError::Internal("Error encountered while finalizing writes!".into());
        assert!(recorder.explain(generic, "t").to_string().contains("finalizing"));
        // A rename of nothing fails: that error is what explains the next one.
        assert!(store.rename(&Path::from("none"), &Path::from("b")).await.is_err());
        let generic = DataFusionError::Internal("Error encountered while finalizing writes!".into());
        let explained = recorder.explain(generic, "out.csv").to_string();
        assert!(
            explained.starts_with("Execution error: cannot write 'out.csv': "),
            "{explained}"
        );
        assert!(explained.contains("none"), "{explained}");
    }
}
