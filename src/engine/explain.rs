//! What `EXPLAIN` adds to DataFusion's rows: the executor and why, the
//! windows' lowering, a continuous query's operators; and errors that name
//! the source they came from.

use super::*;

impl Engine {
    pub(super) fn explain_executor(&self) -> bool {
        self.options().explain_executor
    }
}

/// Errors met while reading (a value that does not parse, a file that went
/// away) name the connector tables the query reads, so the user knows which
/// file to look at.
pub(super) fn with_source_context(
    stream: SendableRecordBatchStream,
    choice: &ExecutorChoice,
) -> SendableRecordBatchStream {
    let tables: Vec<String> = choice
        .sources
        .iter()
        .filter(|s| s.description != crate::plan::DATAFUSION_TABLE)
        .map(|s| format!("'{}' ({})", s.table, s.description))
        .collect();
    if tables.is_empty() {
        return stream;
    }
    let context = match tables.as_slice() {
        [one] => format!("reading table {one}"),
        many => format!("reading tables {}", many.join(", ")),
    };
    let schema = stream.schema();
    // Errors reach us wrapped (a repartition shares them as `Shared`), so the
    // kind is judged at the root: faults of the query or of Sluice are not
    // about the data and get no reading context.
    let stream = stream.map_err(move |e| match e.find_root() {
        DataFusionError::Plan(_)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Internal(_)
        | DataFusionError::Configuration(_)
        | DataFusionError::SchemaError(..) => e,
        _ => e.context(context.clone()),
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
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
