//! What `EXPLAIN` adds to DataFusion's rows: the executor and why, the
//! windows' lowering, a continuous query's operators; and errors that name
//! the source they came from.

use super::*;
use crate::connectors::locate::BadRowLocator;
use datafusion::common::exec_datafusion_err;
use futures::StreamExt;

impl Engine {
    pub(super) fn explain_executor(&self) -> bool {
        self.options().explain_executor
    }
}

/// Errors met while reading (a value that does not parse, a file that went
/// away) name the connector tables the query reads, so the user knows which
/// file to look at.
///
/// A bad row of a local CSV or JSON table is named by its file, line and
/// column: the tables' `locators` read the files again to find it (arrow's
/// own line numbers count from 0 and from a split file's byte range).
///
/// A continuous `replay`'s errors already name the table: only a bad value
/// (arrow's error, which names no file and counts lines from 0) is located;
/// others (a stop, a fault) are left as the executor gave them.
pub(super) fn with_source_context(
    stream: SendableRecordBatchStream,
    choice: &ExecutorChoice,
    locators: Vec<Arc<BadRowLocator>>,
    replay: bool,
) -> SendableRecordBatchStream {
    let Some(context) = reading_context(choice).filter(|_| !replay || !locators.is_empty()) else {
        return stream;
    };
    let schema = stream.schema();
    let locators = Arc::new(locators);
    let stream = stream.then(move |item| {
        let context = context.clone();
        let locators = Arc::clone(&locators);
        async move {
            let e = match item {
                Ok(batch) => return Ok(batch),
                Err(e) => e,
            };
            // Errors reach us wrapped (a repartition shares them as
            // `Shared`), so the kind is judged at the root: faults of the
            // query or of Sluice are not about the data and get no reading
            // context.
            let about_data = match e.find_root() {
                DataFusionError::ArrowError(..) => true,
                DataFusionError::Plan(_)
                | DataFusionError::NotImplemented(_)
                | DataFusionError::Internal(_)
                | DataFusionError::Configuration(_)
                | DataFusionError::SchemaError(..) => false,
                _ => !replay,
            };
            if !about_data {
                return Err(e);
            }
            match locate(locators).await {
                Some(place) => Err(exec_datafusion_err!("{context}: {place}")),
                None if replay => Err(e),
                None => Err(e.context(context)),
            }
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

/// `reading table 't' (description)`, naming the connector tables `choice`
/// reads, or `None` when it reads none.
fn reading_context(choice: &ExecutorChoice) -> Option<String> {
    let tables: Vec<String> = choice
        .sources
        .iter()
        .filter(|s| s.description != crate::plan::DATAFUSION_TABLE)
        .map(|s| format!("'{}' ({})", s.table, s.description))
        .collect();
    match tables.as_slice() {
        [] => None,
        [one] => Some(format!("reading table {one}")),
        many => Some(format!("reading tables {}", many.join(", "))),
    }
}

/// The first bad row of the `locators`' files, read again.
async fn locate(locators: Arc<Vec<Arc<BadRowLocator>>>) -> Option<String> {
    for locator in locators.iter() {
        if let Some(place) = locator.locate().await {
            return Some(place);
        }
    }
    None
}

/// EXPLAIN's rows are `(plan_type, plan)`; put Sluice's own first: the
/// executor and why, then how each window was lowered.
pub(super) async fn prepend_explain_rows(
    stream: SendableRecordBatchStream,
    rows: Vec<(String, String)>,
) -> datafusion::error::Result<SendableRecordBatchStream> {
    let schema = stream.schema();
    let batches: Vec<RecordBatch> = stream.try_collect().await?;
    if schema.fields().len() != 2 {
        let stream = MemoryStream::try_new(batches, schema, None)?;
        return Ok(Box::pin(stream));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(kind, _)| kind.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, text)| text.as_str()),
        )),
    ];
    let first = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    let all = std::iter::once(first).chain(batches).collect();
    Ok(Box::pin(MemoryStream::try_new(all, schema, None)?))
}
