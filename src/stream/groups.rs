//! Aggregation state shared by the windowed operators: DataFusion's own
//! `GroupValues` (key to group index) and `GroupsAccumulator`s (an
//! `Accumulator` adapted where an aggregate has no groups version, as
//! DataFusion's hash aggregate does), and the assembly of output rows.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{GroupsAccumulatorAdapter, PhysicalExpr};
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

/// Which window bound a group column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowColumn {
    /// `window_start`.
    Start,
    /// `window_end`.
    End,
    /// `window_time` (`window_end` - 1 ms).
    Time,
}

impl WindowColumn {
    /// This bound of the window `[start, end)`.
    pub fn of(self, start: super::operator::Nanos, end: super::operator::Nanos) -> super::operator::Nanos {
        match self {
            WindowColumn::Start => start,
            WindowColumn::End => end,
            WindowColumn::Time => end - super::operator::MILLISECOND,
        }
    }
}

/// One GROUP BY column of the output.
#[derive(Debug, Clone)]
pub enum GroupColumn {
    /// A window bound, set by the operator.
    Window(WindowColumn),
    /// A key, the `i`th of the grouping keys.
    Key(usize),
}

/// An aggregate with its `FILTER (WHERE ...)`.
pub type Aggregate = (Arc<AggregateFunctionExpr>, Option<Arc<dyn PhysicalExpr>>);

/// Each aggregate's argument columns and filter column for some rows.
pub type Arguments = Vec<(Vec<ArrayRef>, Option<ArrayRef>)>;

/// The keys and aggregates of a GROUP BY, planned.
#[derive(Clone)]
pub struct Aggregates {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_schema: SchemaRef,
    aggregates: Vec<Aggregate>,
}

impl Aggregates {
    /// Group by `keys` (of types `key_fields`) and compute `aggregates`.
    pub fn try_new(
        keys: Vec<Arc<dyn PhysicalExpr>>,
        key_fields: Vec<FieldRef>,
        aggregates: Vec<Aggregate>,
    ) -> Result<Self> {
        for (aggregate, _) in &aggregates {
            // An ordered-set aggregate's WITHIN GROUP (ORDER BY v) names its
            // argument and the direction, which its accumulator reads when
            // made; the order rows come in changes no exact result
            // (`percentile_cont` sorts what it keeps), only a t-digest's
            // estimate (`approx_percentile_cont`), as batch's partitions do.
            if !aggregate.order_bys().is_empty() && !aggregate.fun().supports_within_group_clause() {
                return plan_err!(
                    "{} has an ORDER BY inside the aggregate, which windowed aggregates do not support in continuous mode yet",
                    aggregate.name()
                );
            }
        }
        Ok(Self {
            keys,
            key_schema: Arc::new(Schema::new(key_fields)),
            aggregates,
        })
    }

    /// The same aggregates grouped by `extra` key columns too, after the
    /// keys (the operator supplies their values).
    pub fn with_extra_keys(&self, extra: Vec<FieldRef>) -> Self {
        let fields = self
            .key_schema
            .fields()
            .iter()
            .cloned()
            .chain(extra)
            .collect::<Vec<_>>();
        Self {
            keys: self.keys.clone(),
            key_schema: Arc::new(Schema::new(fields)),
            aggregates: self.aggregates.clone(),
        }
    }

    /// The grouping keys' types.
    pub fn key_types(&self) -> Vec<DataType> {
        self.key_schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect()
    }

    /// The aggregates, with their filters.
    pub fn aggregates(&self) -> &[Aggregate] {
        &self.aggregates
    }

    /// The aggregates' names, for EXPLAIN.
    pub fn names(&self) -> Vec<&str> {
        self.aggregates.iter().map(|(a, _)| a.name()).collect()
    }

    /// Empty state.
    pub fn new_groups(&self) -> Result<Groups> {
        let values = if self.key_schema.fields().is_empty() {
            None
        } else {
            Some(new_group_values(
                Arc::clone(&self.key_schema),
                &GroupOrdering::None,
            )?)
        };
        let accumulators = self
            .aggregates
            .iter()
            .map(|(aggregate, _)| new_accumulator(aggregate))
            .collect::<Result<Vec<_>>>()?;
        Ok(Groups {
            values,
            accumulators,
            count: 0,
            indices: Vec::new(),
        })
    }

    /// A copy of `groups`' partial state, leaving `groups` as it was (its
    /// accumulators can only be read by draining them, so they are drained
    /// and merged back).
    pub fn copy_out(&self, groups: &mut Groups) -> Result<Partial> {
        let partial = std::mem::replace(groups, self.new_groups()?).freeze()?;
        groups.merge(&partial)?;
        Ok(partial)
    }

    /// The partial state of `rows` groups from the columns
    /// [`Partial::columns`] gave.
    pub fn partial_from(&self, columns: &[ArrayRef], rows: usize) -> Result<Partial> {
        let keys = self.key_schema.fields().len();
        let mut states = Vec::with_capacity(self.aggregates.len());
        let mut at = keys;
        for (aggregate, _) in &self.aggregates {
            let width = aggregate.state_fields()?.len();
            match columns.get(at..at + width) {
                Some(state) => states.push(state.to_vec()),
                None => {
                    return plan_err!(
                        "a checkpoint's partial state of {} has too few columns",
                        aggregate.name()
                    );
                }
            }
            at += width;
        }
        if at != columns.len() || columns.iter().any(|c| c.len() != rows) {
            return plan_err!(
                "a checkpoint's partial state has {} columns, not the {at} its aggregates keep",
                columns.len()
            );
        }
        Ok(Partial {
            keys: columns[..keys].to_vec(),
            states,
            groups: rows,
        })
    }

    /// The key columns over `batch`.
    pub fn evaluate_keys(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        self.keys
            .iter()
            .map(|k| k.evaluate(batch)?.into_array(batch.num_rows()))
            .collect()
    }

    /// The key columns and the aggregates' arguments over `batch`.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<(Vec<ArrayRef>, Arguments)> {
        let rows = batch.num_rows();
        let keys = self.evaluate_keys(batch)?;
        let arguments = self
            .aggregates
            .iter()
            .map(|(aggregate, filter)| {
                let values = aggregate
                    .expressions()
                    .iter()
                    .map(|e| e.evaluate(batch)?.into_array(rows))
                    .collect::<Result<Vec<_>>>()?;
                let filter = filter
                    .as_ref()
                    .map(|f| f.evaluate(batch)?.into_array(rows))
                    .transpose()?;
                Ok((values, filter))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((keys, arguments))
    }
}

/// Rows `rows` of evaluated keys and arguments.
pub fn take_rows(
    keys: &[ArrayRef],
    arguments: &Arguments,
    rows: &UInt32Array,
) -> Result<(Vec<ArrayRef>, Arguments)> {
    let pick = |a: &ArrayRef| -> Result<ArrayRef> { Ok(take(a, rows, None)?) };
    let keys = keys.iter().map(pick).collect::<Result<Vec<_>>>()?;
    let arguments = arguments
        .iter()
        .map(|(values, filter)| {
            let values = values.iter().map(pick).collect::<Result<Vec<_>>>()?;
            Ok((values, filter.as_ref().map(pick).transpose()?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((keys, arguments))
}

/// Groups and their accumulators.
pub struct Groups {
    /// `None` without keys: every row is group 0.
    values: Option<Box<dyn GroupValues>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    count: usize,
    indices: Vec<usize>,
}

/// Frozen partial state: keys and each aggregate's state columns.
#[derive(Clone)]
pub struct Partial {
    keys: Vec<ArrayRef>,
    states: Vec<Vec<ArrayRef>>,
    groups: usize,
}

impl Partial {
    /// How many groups it holds.
    pub fn len(&self) -> usize {
        self.groups
    }

    /// Whether it holds no group.
    pub fn is_empty(&self) -> bool {
        self.groups == 0
    }

    /// Its columns for a checkpoint: the keys, then each aggregate's state
    /// columns ([`Aggregates::partial_from`] reads them back).
    pub fn columns(&self) -> Vec<ArrayRef> {
        self.keys
            .iter()
            .chain(self.states.iter().flatten())
            .cloned()
            .collect()
    }

    /// Bytes held by its arrays.
    pub fn size(&self) -> usize {
        self.keys
            .iter()
            .chain(self.states.iter().flatten())
            .map(|a| a.get_array_memory_size())
            .sum()
    }
}

impl Groups {
    /// How many groups there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Bytes held: the group keys and every accumulator's state.
    pub fn size(&self) -> usize {
        self.values.as_ref().map_or(0, |v| v.size())
            + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
            + self.indices.capacity() * std::mem::size_of::<usize>()
    }

    /// Whether there is no group.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Aggregate `rows` rows.
    pub fn update(&mut self, keys: &[ArrayRef], arguments: &Arguments, rows: usize) -> Result<()> {
        self.intern(keys, rows)?;
        for (accumulator, (values, filter)) in self.accumulators.iter_mut().zip(arguments) {
            let filter = filter.as_ref().map(as_boolean).transpose()?;
            accumulator.update_batch(values, &self.indices, filter, self.count)?;
        }
        Ok(())
    }

    /// Make the one group of a GROUP BY without keys exist over no rows, so
    /// it evaluates as SQL says (`count(*)` 0, `sum` NULL).
    pub fn update_one_group(&mut self, keys: &[ArrayRef], arguments: &Arguments) -> Result<()> {
        if self.values.is_some() || !keys.is_empty() {
            return Ok(());
        }
        self.indices.clear();
        self.count = 1;
        for (accumulator, (values, filter)) in self.accumulators.iter_mut().zip(arguments) {
            let filter = filter.as_ref().map(as_boolean).transpose()?;
            accumulator.update_batch(values, &self.indices, filter, 1)?;
        }
        Ok(())
    }

    /// Group indices of `rows` rows with `keys` into `self.indices`.
    fn intern(&mut self, keys: &[ArrayRef], rows: usize) -> Result<()> {
        match &mut self.values {
            Some(values) => {
                values.intern(keys, &mut self.indices)?;
                self.count = values.len();
            }
            None => {
                self.indices.clear();
                self.indices.resize(rows, 0);
                if rows > 0 {
                    self.count = 1;
                }
            }
        }
        Ok(())
    }

    /// The partial state of every group.
    pub fn freeze(mut self) -> Result<Partial> {
        let keys = match &mut self.values {
            Some(values) => values.emit(EmitTo::All)?,
            None => vec![],
        };
        let states = self
            .accumulators
            .iter_mut()
            .map(|a| a.state(EmitTo::All))
            .collect::<Result<Vec<_>>>()?;
        Ok(Partial {
            keys,
            states,
            groups: self.count,
        })
    }

    /// Fold a partial state in.
    pub fn merge(&mut self, partial: &Partial) -> Result<()> {
        if partial.groups == 0 {
            return Ok(());
        }
        self.intern(&partial.keys, partial.groups)?;
        for (accumulator, state) in self.accumulators.iter_mut().zip(&partial.states) {
            accumulator.merge_batch(state, &self.indices, self.count)?;
        }
        Ok(())
    }

    /// Every group's keys and final values.
    pub fn finish(mut self) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>)> {
        let keys = match &mut self.values {
            Some(values) => values.emit(EmitTo::All)?,
            None => vec![],
        };
        let values = self
            .accumulators
            .iter_mut()
            .map(|a| a.evaluate(EmitTo::All))
            .collect::<Result<Vec<_>>>()?;
        Ok((keys, values))
    }
}

/// An aggregate's output rows: group columns (keys from `keys`, window bounds
/// from `window`), then the aggregates' `values`, cast to `schema` where an
/// aggregate's type differs only in spelling from the planned one.
pub fn assemble(
    schema: &SchemaRef,
    group_columns: &[GroupColumn],
    keys: &[ArrayRef],
    values: Vec<ArrayRef>,
    rows: usize,
    window: impl Fn(WindowColumn, &DataType) -> Result<ArrayRef>,
) -> Result<RecordBatch> {
    let fields = schema.fields();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.len());
    for (column, field) in group_columns.iter().zip(fields.iter()) {
        columns.push(match column {
            GroupColumn::Key(i) => Arc::clone(&keys[*i]),
            GroupColumn::Window(bound) => window(*bound, field.data_type())?,
        });
    }
    columns.extend(values);
    let columns = columns
        .into_iter()
        .zip(fields.iter())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                Ok(arrow::compute::cast(&c, f.data_type())?)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &options,
    )?)
}

/// An aggregate's FILTER column as booleans, or an error naming its type.
pub fn as_boolean(array: &ArrayRef) -> Result<&BooleanArray> {
    match array.data_type() {
        DataType::Boolean => Ok(array.as_boolean()),
        other => plan_err!("an aggregate's FILTER must be boolean, not {other}"),
    }
}

/// A groups accumulator for `aggregate`.
fn new_accumulator(aggregate: &Arc<AggregateFunctionExpr>) -> Result<Box<dyn GroupsAccumulator>> {
    if aggregate.groups_accumulator_supported() {
        aggregate.create_groups_accumulator()
    } else {
        let aggregate = Arc::clone(aggregate);
        Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
            aggregate.create_accumulator()
        })))
    }
}
