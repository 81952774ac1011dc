//! The operator graph of a continuous query: sources at the leaves, operators
//! with input ports, one sink at the root.
//!
//! Every node has one output, so the graph is a tree but for its leaves: a
//! node feeds exactly one port of one node (or the sink), and a source feeds
//! one port, or several when its scans share one reader (stdin, which can
//! be read once: each of its scans gets every event). Single-input operators pass
//! events through; a multi-input operator sits behind a [`WatermarkMerge`],
//! which holds each input's watermark and gives the operator their minimum
//! (an ended input counts as +infinity) and rows whose watermarks are capped
//! by the other inputs' current ones, so lateness after a merge stays
//! defined and results never depend on which input ran ahead.

use std::sync::Arc;

use datafusion::common::internal_err;
use datafusion::error::Result;
use datafusion::execution::TaskContext;

use super::checkpoint::StateSnapshot;
use super::idle::{IdleInputs, floor_watermarks};
use super::metrics::OperatorStats;
use super::operator::{
    END_OF_INPUT, Event, MultiInputOperator, NO_WATERMARK, Nanos, Operator, RowWatermarks,
};
use super::source::SourceSpec;

/// A node of the graph.
pub type NodeId = usize;

/// State parts the graph keeps beside an operator's own (a double underscore:
/// no operator names its parts so).
const NODE_ENDED: &str = "__node_ended";
const NODE_ROWS: &str = "__node_rows";
const MERGE_CURRENT: &str = "__merge_current";
const MERGE_ENDED: &str = "__merge_ended";
const MERGE_MERGED: &str = "__merge_merged";

/// Where the rows of a planned sub-query come out: a source's own output, or
/// a node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Source `i`, before any operator.
    Source(usize),
    /// A node's output.
    Node(NodeId),
}

/// Where a source or node sends its events: a port of a node, or the sink.
type Target = Option<(NodeId, usize)>;

enum NodeKind {
    Single(Box<dyn Operator>),
    Multi {
        operator: Box<dyn MultiInputOperator>,
        merge: WatermarkMerge,
    },
}

struct Node {
    kind: NodeKind,
    /// The node's inputs, in port order (for EXPLAIN).
    inputs: Vec<Tail>,
    output: Target,
    /// It has sent its end: later events are dropped (a LIMIT that is done).
    ended: bool,
    /// Rows given to it and rows it passed on (metrics).
    rows_in: u64,
    rows_out: u64,
    /// The most state it held, as last read (see [`Graph::track_peaks`]).
    peak_rows: usize,
    peak_bytes: usize,
    /// Time spent in it.
    busy: std::time::Duration,
}

impl Node {
    /// The state it holds now (rows, bytes), kept as its peak if larger.
    fn read_peaks(&mut self) -> (usize, usize) {
        let (rows, bytes) = match &self.kind {
            NodeKind::Single(o) => (o.state_rows(), o.state_bytes()),
            NodeKind::Multi { operator, .. } => (operator.state_rows(), operator.state_bytes()),
        };
        self.peak_rows = self.peak_rows.max(rows);
        self.peak_bytes = self.peak_bytes.max(bytes);
        (rows, bytes)
    }
}

/// Builds a [`Graph`] bottom-up, as the planner walks the plan.
#[derive(Default)]
pub struct GraphBuilder {
    /// Each source and where its events go (none yet, or the sink: `None`).
    sources: Vec<(SourceSpec, Vec<Target>)>,
    nodes: Vec<Node>,
}

impl GraphBuilder {
    /// A new source; its rows come out at the returned tail. A shared
    /// source ([`SourceSpec::shared`]) is the same source each time its
    /// table comes again.
    pub fn source(&mut self, spec: SourceSpec) -> Tail {
        let same = |(other, _): &(SourceSpec, Vec<Target>)| other.shared && other.table == spec.table;
        if spec.shared
            && let Some(existing) = self.sources.iter().position(same)
        {
            return Tail::Source(existing);
        }
        self.sources.push((spec, Vec::new()));
        Tail::Source(self.sources.len() - 1)
    }

    /// `operator` after `input`.
    pub fn chain(&mut self, input: Tail, operator: Box<dyn Operator>) -> Tail {
        self.add(NodeKind::Single(operator), vec![input])
    }

    /// `operator` over `inputs`, in port order.
    pub fn merge(&mut self, inputs: Vec<Tail>, operator: Box<dyn MultiInputOperator>) -> Result<Tail> {
        if inputs.len() != operator.inputs() {
            return internal_err!(
                "{} takes {} inputs, given {}",
                operator.name(),
                operator.inputs(),
                inputs.len()
            );
        }
        let timeouts = inputs.iter().map(|&input| self.idle_timeout(input)).collect();
        let merge = WatermarkMerge::with_idle_timeouts(timeouts);
        Ok(self.add(NodeKind::Multi { operator, merge }, inputs))
    }

    /// How long the rows out of `tail` may pause before its input to a
    /// merge is idle: the longest idle timeout of the sources under it, if
    /// every one has one.
    fn idle_timeout(&self, tail: Tail) -> Option<std::time::Duration> {
        match tail {
            Tail::Source(s) => self.sources[s].0.idle_timeout,
            Tail::Node(n) => self.nodes[n]
                .inputs
                .iter()
                .map(|&input| self.idle_timeout(input))
                .collect::<Option<Vec<_>>>()?
                .into_iter()
                .max(),
        }
    }

    fn add(&mut self, kind: NodeKind, inputs: Vec<Tail>) -> Tail {
        let id = self.nodes.len();
        for (port, input) in inputs.iter().enumerate() {
            let target = Some((id, port));
            match *input {
                Tail::Source(s) => self.sources[s].1.push(target),
                Tail::Node(n) => self.nodes[n].output = target,
            }
        }
        self.nodes.push(Node {
            kind,
            inputs,
            output: None,
            ended: false,
            rows_in: 0,
            rows_out: 0,
            peak_rows: 0,
            peak_bytes: 0,
            busy: std::time::Duration::ZERO,
        });
        Tail::Node(id)
    }

    /// The graph whose rows come out at `root`.
    pub fn finish(mut self, root: Tail) -> Result<Graph> {
        if let Tail::Source(s) = root {
            self.sources[s].1.push(None); // straight to the sink
        }
        // Every source and node but the root must feed something.
        let dangling = |target: &Target, tail: Tail| target.is_none() && tail != root;
        if self.sources.is_empty() {
            return internal_err!("a continuous query's graph has no source");
        }
        if self.sources.iter().any(|(_, targets)| targets.is_empty())
            || self
                .nodes
                .iter()
                .enumerate()
                .any(|(i, n)| dangling(&n.output, Tail::Node(i)))
        {
            return internal_err!("a continuous query's graph has an output that goes nowhere");
        }
        let (sources, targets) = self.sources.into_iter().unzip();
        Ok(Graph {
            sources,
            source_targets: targets,
            nodes: self.nodes,
            root,
            track_peaks: false,
        })
    }
}

/// A built operator graph: push a source's events in, take the sink's out.
pub struct Graph {
    /// What each source reads (taken by the driver when it starts them).
    pub sources: Vec<SourceSpec>,
    /// Where each source's events go: one port, or several for a shared
    /// source; `None` is the sink.
    source_targets: Vec<Vec<Target>>,
    nodes: Vec<Node>,
    root: Tail,
    /// Read each node's state after every push it takes, for its peak.
    track_peaks: bool,
}

impl Graph {
    /// Read each operator's state after every push, so that its peak is
    /// exact (EXPLAIN ANALYZE); otherwise peaks are read when counters are.
    pub fn track_peaks(&mut self, track: bool) {
        self.track_peaks = track;
    }

    /// Push events of source `source` through the graph; what reaches the sink.
    pub fn push(&mut self, source: usize, events: Vec<Event>) -> Result<Vec<Event>> {
        let Some(targets) = self.source_targets.get(source) else {
            return internal_err!("no source {source} in the graph");
        };
        if let [target] = targets.as_slice() {
            return self.push_to(*target, events);
        }
        // A shared source: each scan of it, in turn, gets every event.
        let mut out = Vec::new();
        for k in 0..targets.len() {
            let target = self.source_targets[source][k];
            out.extend(self.push_to(target, events.clone())?);
        }
        Ok(out)
    }

    /// Push `events` into `target` and on to the sink; what reaches it.
    fn push_to(&mut self, target: Target, events: Vec<Event>) -> Result<Vec<Event>> {
        let mut target = target;
        let mut events = events;
        while let Some((id, port)) = target {
            let node = &mut self.nodes[id];
            if node.ended {
                return Ok(vec![]);
            }
            let started = std::time::Instant::now();
            let mut out = Vec::with_capacity(events.len());
            let is_end = |e: &Event| matches!(e, Event::End);
            for event in events {
                // What this event produces; nothing before it is an end.
                let start = out.len();
                if let Event::Data(rows) = &event {
                    node.rows_in += rows.batch.num_rows() as u64;
                }
                match &mut node.kind {
                    NodeKind::Single(operator) => {
                        match event {
                            Event::Data(batch) => operator.process(batch, &mut out)?,
                            Event::Watermark(w) => operator.on_watermark(w, &mut out)?,
                            Event::End => operator.on_end(&mut out)?,
                        }
                        if operator.is_finished() && !out[start..].iter().any(is_end) {
                            operator.on_end(&mut out)?;
                        }
                    }
                    NodeKind::Multi { operator, merge } => {
                        merge.push(port, event, operator.as_mut(), &mut out)?
                    }
                }
                if let Some(end) = out[start..].iter().position(is_end) {
                    // Nothing follows an end.
                    out.truncate(start + end + 1);
                    node.ended = true;
                    break;
                }
            }
            node.rows_out += data_rows(&out);
            node.busy += started.elapsed();
            if self.track_peaks {
                node.read_peaks();
            }
            events = out;
            target = node.output;
        }
        Ok(events)
    }

    /// Open every operator (load lookup tables, register state with the
    /// memory pool), before the first event.
    pub async fn open(&mut self, task: Arc<TaskContext>) -> Result<()> {
        for node in &mut self.nodes {
            match &mut node.kind {
                NodeKind::Single(operator) => operator.open(Arc::clone(&task)).await?,
                NodeKind::Multi { operator, .. } => operator.open(Arc::clone(&task)).await?,
            }
        }
        Ok(())
    }

    /// Every node's state at a checkpoint, with its merge's watermarks and
    /// counters; nodes with nothing to keep are left out. An operator that
    /// cannot save its state is an error naming it.
    pub fn snapshot(&mut self) -> Result<Vec<(NodeId, StateSnapshot)>> {
        let mut states = Vec::new();
        for (id, node) in self.nodes.iter_mut().enumerate() {
            let mut state = StateSnapshot::default();
            match &mut node.kind {
                NodeKind::Single(operator) => operator.snapshot(&mut state)?,
                NodeKind::Multi { operator, merge } => {
                    operator.snapshot(&mut state)?;
                    merge.snapshot(&mut state);
                }
            }
            if node.ended {
                state.put_value(NODE_ENDED, 1);
            }
            if !state.is_empty() {
                state.put_values(NODE_ROWS, vec![node.rows_in as i64, node.rows_out as i64]);
                states.push((id, state));
            }
        }
        Ok(states)
    }

    /// Take back the states [`Graph::snapshot`] wrote, before any event.
    pub fn restore(&mut self, states: &std::collections::BTreeMap<NodeId, StateSnapshot>) -> Result<()> {
        for (&id, state) in states {
            let Some(node) = self.nodes.get_mut(id) else {
                return internal_err!("the checkpoint has state for node {id}, which the graph lacks");
            };
            let name = match &mut node.kind {
                NodeKind::Single(operator) => {
                    operator.restore(state)?;
                    operator.name()
                }
                NodeKind::Multi { operator, merge } => {
                    operator.restore(state)?;
                    merge.restore(state)?;
                    operator.name()
                }
            };
            node.ended = state.value(NODE_ENDED).is_ok();
            if let [rows_in, rows_out] = state.values(NODE_ROWS)? {
                (node.rows_in, node.rows_out) = (*rows_in as u64, *rows_out as u64);
            } else {
                return internal_err!("the checkpoint's counters of {name} are malformed");
            }
        }
        Ok(())
    }

    /// Whether the sink has had its end: the query is over.
    pub fn is_finished(&self) -> bool {
        match self.root {
            Tail::Node(id) => self.nodes[id].ended,
            Tail::Source(_) => false,
        }
    }

    /// Rows held in state by every operator that reports it.
    pub fn state_rows(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match &n.kind {
                NodeKind::Single(operator) => operator.state_rows(),
                NodeKind::Multi { operator, .. } => operator.state_rows(),
            })
            .sum()
    }

    /// Each operator's rows in and out and state rows, in the order they
    /// were built (inputs before the nodes they feed).
    pub fn operator_stats(&mut self) -> Vec<OperatorStats> {
        self.nodes
            .iter_mut()
            .map(|n| {
                let (state_rows, state_bytes) = n.read_peaks();
                let name = match &n.kind {
                    NodeKind::Single(o) => o.name(),
                    NodeKind::Multi { operator, .. } => operator.name(),
                };
                OperatorStats {
                    name,
                    rows_in: n.rows_in,
                    rows_out: n.rows_out,
                    state_rows: state_rows as u64,
                    state_bytes: state_bytes as u64,
                    peak_state_rows: n.peak_rows as u64,
                    peak_state_bytes: n.peak_bytes as u64,
                    busy_ns: n.busy.as_nanos().min(u64::MAX as u128) as u64,
                }
            })
            .collect()
    }

    /// The graph as text, in the order rows flow (EXPLAIN): a source, then
    /// the operators after it; the inputs of a merge are indented above it.
    pub fn explain(&self) -> Vec<String> {
        let mut lines = Vec::new();
        self.explain_tail(self.root, 0, &mut lines);
        lines
    }

    fn explain_tail(&self, tail: Tail, depth: usize, lines: &mut Vec<String>) {
        let indent = "  ".repeat(depth);
        match tail {
            Tail::Source(s) => lines.push(format!(
                "{indent}Source: {}{}{}",
                self.sources[s].table,
                match (self.sources[s].processing_time, self.sources[s].idle_timeout) {
                    (true, _) => " (processing time: its watermark is the wall clock)".to_string(),
                    (false, Some(t)) =>
                        format!(" (idle after {t:?} without rows: then it holds no merge's watermark)"),
                    (false, None) => String::new(),
                },
                match self.sources[s].shared {
                    true => " (one reader, shared by every scan of it)",
                    false => "",
                }
            )),
            Tail::Node(id) => {
                let node = &self.nodes[id];
                let (name, state, inner) = match &node.kind {
                    NodeKind::Single(o) => (o.name(), o.state(), depth),
                    NodeKind::Multi { operator, .. } => (operator.name(), operator.state(), depth + 1),
                };
                let name = match state {
                    Some(state) => format!("{name}; state: {state}"),
                    None => name,
                };
                let merges = node.inputs.len() > 1;
                for (port, input) in node.inputs.iter().enumerate() {
                    if merges {
                        lines.push(format!("{indent}  [input {}]", port + 1));
                    }
                    self.explain_tail(*input, inner, lines);
                }
                lines.push(format!("{indent}{name}"));
            }
        }
    }
}

/// The time of a multi-input node: each input's watermark, merged by the
/// minimum.
pub struct WatermarkMerge {
    /// Each input's latest watermark; [`END_OF_INPUT`] once it ended.
    current: Vec<Nanos>,
    ended: Vec<bool>,
    /// The minimum last given to the operator.
    merged: Nanos,
    /// Inputs quiet past their idle timeout are left out of the minimum.
    idle: IdleInputs,
}

impl WatermarkMerge {
    /// A merge of `inputs` inputs, none with a watermark yet.
    pub fn new(inputs: usize) -> Self {
        Self::with_idle_timeouts(vec![None; inputs])
    }

    /// A merge whose inputs stop holding its watermark once quiet for their
    /// timeouts (see [`IdleInputs`]).
    pub fn with_idle_timeouts(timeouts: Vec<Option<std::time::Duration>>) -> Self {
        let inputs = timeouts.len();
        Self {
            current: vec![NO_WATERMARK; inputs],
            ended: vec![false; inputs],
            merged: NO_WATERMARK,
            idle: IdleInputs::new(timeouts),
        }
    }

    /// The minimum over every holding input but `port`.
    fn others(&self, port: usize) -> Nanos {
        let holding = self.idle.holding(&self.ended);
        self.current
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != port && holding[i])
            .map(|(_, w)| *w)
            .min()
            .unwrap_or(END_OF_INPUT)
    }

    /// Take one event of input `port`.
    pub fn push(
        &mut self,
        port: usize,
        event: Event,
        operator: &mut dyn MultiInputOperator,
        out: &mut Vec<Event>,
    ) -> Result<()> {
        if port >= self.current.len() {
            return internal_err!("{} has no input {port}", operator.name());
        }
        self.idle.seen(port);
        match event {
            Event::Data(mut batch) => {
                let cap = self.others(port);
                batch.watermarks = cap_watermarks(&batch.watermarks, cap);
                if self.idle.any() {
                    // Back from idleness, an input's rows may be behind the
                    // merged watermark, which never goes back.
                    batch.watermarks = floor_watermarks(&batch.watermarks, self.merged);
                }
                operator.process(port, batch, out)
            }
            Event::Watermark(w) => {
                self.current[port] = self.current[port].max(w);
                self.advance(operator, out)
            }
            Event::End => {
                if self.ended[port] {
                    return Ok(());
                }
                self.ended[port] = true;
                self.current[port] = END_OF_INPUT;
                operator.on_input_end(port, out)?;
                if self.ended.iter().all(|e| *e) {
                    self.advance(operator, out)?;
                    operator.on_end(out)
                } else {
                    self.advance(operator, out)
                }
            }
        }
    }

    /// Its watermarks, for a checkpoint.
    pub fn snapshot(&self, into: &mut StateSnapshot) {
        into.put_values(MERGE_CURRENT, self.current.clone());
        into.put_values(MERGE_ENDED, self.ended.iter().map(|e| i64::from(*e)).collect());
        into.put_value(MERGE_MERGED, self.merged);
    }

    /// Take back the watermarks [`WatermarkMerge::snapshot`] kept.
    pub fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        let current = from.values(MERGE_CURRENT)?;
        let ended = from.values(MERGE_ENDED)?;
        if current.len() != self.current.len() || ended.len() != self.ended.len() {
            return internal_err!(
                "the checkpoint's merge has {} inputs, the graph's {}",
                current.len(),
                self.current.len()
            );
        }
        self.current = current.to_vec();
        self.ended = ended.iter().map(|e| *e != 0).collect();
        self.merged = from.value(MERGE_MERGED)?;
        Ok(())
    }

    fn advance(&mut self, operator: &mut dyn MultiInputOperator, out: &mut Vec<Event>) -> Result<()> {
        let holding = self.idle.holding(&self.ended);
        let Some(merged) = (0..self.current.len())
            .filter(|&i| holding[i])
            .map(|i| self.current[i])
            .min()
        else {
            return Ok(()); // every open input is idle: the watermark waits
        };
        if merged > self.merged {
            self.merged = merged;
            operator.on_watermark(merged, out)?;
        }
        Ok(())
    }
}

/// The rows of the data events among `events`.
pub fn data_rows(events: &[Event]) -> u64 {
    events
        .iter()
        .map(|e| match e {
            Event::Data(rows) => rows.batch.num_rows() as u64,
            _ => 0,
        })
        .sum()
}

/// Row watermarks no later than `cap`.
fn cap_watermarks(watermarks: &RowWatermarks, cap: Nanos) -> RowWatermarks {
    match watermarks {
        RowWatermarks::Constant(w) => RowWatermarks::Constant((*w).min(cap)),
        RowWatermarks::PerRow(values) => {
            if cap == END_OF_INPUT || values.values().iter().all(|w| *w <= cap) {
                return watermarks.clone();
            }
            let capped: arrow::array::Int64Array = values.values().iter().map(|w| (*w).min(cap)).collect();
            RowWatermarks::PerRow(Arc::new(capped))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_watermarks_keep_the_earlier_of_row_and_cap() {
        let rows = RowWatermarks::PerRow(Arc::new(arrow::array::Int64Array::from(vec![1, 5, 9])));
        let capped = cap_watermarks(&rows, 6);
        assert_eq!((0..3).map(|i| capped.get(i)).collect::<Vec<_>>(), vec![1, 5, 6]);
        assert_eq!(cap_watermarks(&RowWatermarks::Constant(9), 6).get(0), 6);
    }
}
