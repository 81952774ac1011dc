//! The sessions queries plan in: the continuous executor's (no batch window
//! lowering, one ordered partition), and object stores for the paths a
//! statement names.

use super::*;

impl Engine {
    /// The session as the continuous executor plans with: windows stay window
    /// nodes (no batch lowering), a `WHERE` over a SESSION window moves into
    /// its aggregate (see [`SessionWhereIntoAggregate`]), and scans read one
    /// ordered partition.
    pub(super) fn continuous_state(&self) -> SessionState {
        let state = self.ctx.state();
        // The catalog is shared with the session: building must not create
        // (and so replace) the default one.
        let mut config = state
            .config()
            .clone()
            .with_create_default_catalog_and_schema(false);
        config.options_mut().execution.target_partitions = 1;
        if let Some(ms) = self.options().emit_interval_ms {
            let every = std::time::Duration::from_millis(ms);
            config = config.with_extension(Arc::new(crate::stream::EmitInterval(every)));
        }
        config.options_mut().optimizer.repartition_file_scans = false;
        // No ScalarSubqueryExec runs a stream's subquery to its end first:
        // scalar subqueries become joins (see crate::plan::scalar_subqueries).
        config
            .options_mut()
            .optimizer
            .enable_physical_uncorrelated_scalar_subquery = false;
        let mut analyzer_rules = Analyzer::new().rules;
        analyzer_rules.push(Arc::new(SessionWhereIntoAggregate));
        // The single-distinct rewrite splits `count(DISTINCT v)` into two
        // chained aggregates; over a SESSION window that makes two session
        // operators, the outer one sessionizing the inner one's output
        // (wrong bounds). The continuous aggregates keep DISTINCT themselves.
        let optimizer_rules = state
            .optimizers()
            .iter()
            .filter(|rule| rule.name() != SINGLE_DISTINCT_RULE)
            .cloned()
            .collect();
        SessionStateBuilder::new_from_existing(state)
            .with_config(config)
            .with_analyzer_rules(analyzer_rules)
            .with_optimizer_rules(optimizer_rules)
            .build()
    }
}

impl Engine {
    /// The session's `sluice.*` settings as they are now.
    pub fn options(&self) -> SluiceOptions {
        self.ctx
            .state()
            .config_options()
            .extensions
            .get::<SluiceOptions>()
            .cloned()
            .unwrap_or_default()
    }
}

impl Engine {
    /// Remote locations in DataFusion's own statements need their object store
    /// registered before planning, as connector tables do.
    pub(super) fn register_object_stores(&self, statement: &DFStatement) -> datafusion::error::Result<()> {
        let runtime = self.ctx.runtime_env();
        match statement {
            DFStatement::CreateExternalTable(create) => create
                .locations
                .iter()
                .try_for_each(|location| object_stores::register_for_location(&runtime, location, &[])),
            DFStatement::CopyTo(copy) => object_stores::register_for_location(&runtime, &copy.target, &[]),
            _ => Ok(()),
        }
    }
}

/// The first remote location a DataFusion statement names, to explain a
/// store's error by (see `object_stores::explain_error`).
pub(super) fn remote_location(statement: &DFStatement) -> Option<&str> {
    match statement {
        DFStatement::CreateExternalTable(create) => create.locations.first().map(String::as_str),
        DFStatement::CopyTo(copy) => Some(copy.target.as_str()),
        _ => None,
    }
}

/// DataFusion's `SingleDistinctToGroupBy`, left out of continuous planning.
pub(super) const SINGLE_DISTINCT_RULE: &str = "single_distinct_aggregation_to_group_by";
