//! `DESCRIBE` with the watermark, and the table list of the REPL's `\d`.

use super::*;

impl Engine {
    /// `DESCRIBE t` of a table with a watermark gets a `watermark` column
    /// holding the expression on the event-time column's row (as Flink shows it).
    pub(super) async fn describe_watermark(
        &self,
        table: &sqlparser::ast::ObjectName,
        output: StatementOutput,
    ) -> datafusion::error::Result<StatementOutput> {
        let normalize = self
            .ctx
            .state()
            .config_options()
            .sql_parser
            .enable_ident_normalization;
        let reference = datafusion::sql::planner::object_name_to_table_reference(table.clone(), normalize)?;
        let Some(provider) = self.ctx.table_provider(reference).await.ok() else {
            return Ok(output);
        };
        let Some(watermark) = self.catalog.source_of(&provider).and_then(|s| s.watermark) else {
            return Ok(output);
        };
        let batches: Vec<RecordBatch> = output.stream.try_collect().await?;
        let mut out = Vec::with_capacity(batches.len());
        let mut schema = None;
        for batch in batches {
            let names = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
            let names = names
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| DataFusionError::Internal("DESCRIBE's first column is not text".into()))?;
            let marks: StringArray = names
                .iter()
                .map(|name| (name == Some(watermark.column.as_str())).then_some(watermark.sql.as_str()))
                .collect();
            let mut columns = batch.columns().to_vec();
            columns.push(Arc::new(marks));
            let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
            fields.push(Arc::new(arrow::datatypes::Field::new(
                "watermark",
                arrow::datatypes::DataType::Utf8,
                true,
            )));
            let batch_schema = Arc::new(arrow::datatypes::Schema::new(fields));
            out.push(RecordBatch::try_new(Arc::clone(&batch_schema), columns)?);
            schema = Some(batch_schema);
        }
        let schema = schema.unwrap_or_else(|| Arc::new(arrow::datatypes::Schema::empty()));
        Ok(StatementOutput {
            stream: Box::pin(MemoryStream::try_new(out, schema, None)?),
            returns_rows: output.returns_rows,
            executor: output.executor,
            metrics: None,
            physical: None,
            null_event_times: Vec::new(),
        })
    }
}

impl Engine {
    /// Every table of the session (not information_schema), with what backs
    /// it: `(schema, name, kind, source)`, sorted. For the REPL's `\d`.
    pub async fn tables(&self) -> Result<Vec<[String; 4]>> {
        let mut rows = Vec::new();
        for catalog_name in self.ctx.catalog_names() {
            let Some(catalog) = self.ctx.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                if schema_name == "information_schema" {
                    continue;
                }
                for table_name in schema.table_names() {
                    let Some(provider) = schema.table(&table_name).await? else {
                        continue;
                    };
                    let kind = match provider.table_type() {
                        datafusion::logical_expr::TableType::View => "view",
                        _ => "table",
                    };
                    let source = match (self.catalog.source_of(&provider), provider.get_table_definition()) {
                        (Some(info), _) => {
                            format!("{} {} ({})", info.connector, info.description, info.boundedness)
                        }
                        (None, Some(definition)) => definition.to_string(),
                        (None, None) => crate::plan::DATAFUSION_TABLE.to_string(),
                    };
                    rows.push([schema_name.clone(), table_name, kind.to_string(), source]);
                }
            }
        }
        rows.sort();
        Ok(rows)
    }
}

/// The table a `DESCRIBE t` statement names.
pub(super) fn described_table(statement: &DFStatement) -> Option<&sqlparser::ast::ObjectName> {
    match statement {
        DFStatement::Statement(s) => match s.as_ref() {
            sqlparser::ast::Statement::ExplainTable { table_name, .. } => Some(table_name),
            _ => None,
        },
        _ => None,
    }
}
