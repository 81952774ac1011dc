//! `EXPLAIN ANALYZE` of a continuous query over bounded sources: the replay
//! is run to its end, then each operator's rows in and out and the state it
//! still held are shown (batch's EXPLAIN ANALYZE is DataFusion's own).

use super::*;

impl Engine {
    /// Run the replay of `analyze`'s query and describe what each operator did.
    pub(super) async fn analyze_continuous(
        &self,
        analyze: &datafusion::logical_expr::Analyze,
        emit: Option<crate::sql::Emit>,
        choice: &ExecutorChoice,
    ) -> Result<StatementOutput> {
        if choice
            .sources
            .iter()
            .any(|s| s.boundedness != crate::connectors::Boundedness::Bounded)
        {
            return Err(DataFusionError::NotImplemented(format!(
                "EXPLAIN ANALYZE runs the query to its end, and this one does not end ({}); use EXPLAIN to see its operators, or give its sources an end (an event count, 'bounded' = 'true')",
                choice.explanation()
            ))
            .into());
        }
        // An INSERT streams its query into the table: the query is what runs.
        let query = match analyze.input.as_ref() {
            LogicalPlan::Dml(insert) => insert.input.as_ref(),
            other => other,
        };
        let metrics = Arc::new(StreamMetrics::default());
        metrics
            .track_peaks
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let started = std::time::Instant::now();
        let mut rows = stream::execute(
            &self.continuous_state(),
            query,
            emit,
            &self.catalog,
            Arc::clone(&metrics),
        )
        .await?;
        while let Some(batch) = futures::StreamExt::next(&mut rows).await {
            batch?;
        }
        let elapsed = started.elapsed();
        let snapshot = metrics.snapshot();
        let mut lines = vec![("executor".to_string(), choice.explanation())];
        lines.extend(snapshot.operators.iter().map(|o| {
            (
                "continuous operator".to_string(),
                format!(
                    "{}: rows in {}, rows out {}, {:.1} ms, peak state {} rows ({} bytes), state rows at the end {}",
                    o.name,
                    o.rows_in,
                    o.rows_out,
                    o.busy_ns as f64 / 1e6,
                    o.peak_state_rows,
                    o.peak_state_bytes,
                    o.state_rows
                ),
            )
        }));
        lines.push((
            "continuous query".to_string(),
            format!(
                "rows in {}, rows out {}, late rows {}, {:.3} s",
                snapshot.rows_in,
                snapshot.rows_out,
                snapshot.late_rows,
                elapsed.as_secs_f64()
            ),
        ));
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("plan_type", arrow::datatypes::DataType::Utf8, false),
            arrow::datatypes::Field::new("plan", arrow::datatypes::DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from_iter_values(
                    lines.iter().map(|(k, _)| k.as_str()),
                )) as ArrayRef,
                Arc::new(StringArray::from_iter_values(
                    lines.iter().map(|(_, v)| v.as_str()),
                )),
            ],
        )
        .map_err(DataFusionError::from)?;
        Ok(StatementOutput {
            stream: Box::pin(MemoryStream::try_new(vec![batch], schema, None)?),
            returns_rows: true,
            executor: Some(choice.clone()),
            metrics: None,
            physical: None,
            null_event_times: Vec::new(),
        })
    }
}
