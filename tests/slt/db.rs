//! `sqllogictest::AsyncDB` over a `sluice::Engine`: every record goes through
//! Sluice's front end (split, parse, execute), as the CLI runs it.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use futures::TryStreamExt;
use sluice::{Engine, SluiceError};
use sqllogictest::DBOutput;

use super::normalize::{PathTokens, SltColumnType, column_types, convert_batches};

/// Why a record's SQL failed, worded as DataFusion's runner words it so that
/// upstream's `statement error <regex>` lines match.
#[derive(Debug, thiserror::Error)]
pub enum SltError {
    /// The engine refused or failed the statement.
    #[error("DataFusion error: {}", .0.source.strip_backtrace())]
    Engine(#[from] SluiceError),
    /// A result could not be turned into text.
    #[error("Arrow error: {0}")]
    Arrow(#[from] ArrowError),
}

/// One sqllogictest connection: a shared engine plus how to print paths.
pub struct SluiceDb {
    engine: Arc<Engine>,
    paths: PathTokens,
}

impl SluiceDb {
    /// A connection to `engine`; `paths` tokenizes directories in results.
    pub fn new(engine: Arc<Engine>, paths: PathTokens) -> Self {
        Self { engine, paths }
    }

    /// Run every statement of `sql`; the last one's rows are the result.
    async fn run_statements(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), SluiceError> {
        let mut last = None;
        for tokens in self.engine.split(sql)? {
            let statement = self.engine.parse(&tokens)?;
            let output = self.engine.execute(&statement).await?;
            let schema = output.stream.schema();
            let batches: Vec<RecordBatch> = output.stream.try_collect().await?;
            last = Some((schema, batches));
        }
        last.ok_or_else(|| {
            SluiceError::from(datafusion::error::DataFusionError::Plan(
                "no SQL statement was provided".into(),
            ))
        })
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for SluiceDb {
    type Error = SltError;
    type ColumnType = SltColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<SltColumnType>, SltError> {
        let (schema, batches) = self.run_statements(sql).await?;
        let types = column_types(schema.fields());
        let rows = convert_batches(&batches, &schema, &self.paths)?;
        if rows.is_empty() && types.is_empty() {
            Ok(DBOutput::StatementComplete(0))
        } else {
            Ok(DBOutput::Rows { types, rows })
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "sluice"
    }

    async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
