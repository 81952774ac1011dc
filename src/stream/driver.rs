//! The graph driver: runs a planned continuous query.
//!
//! Each source is read on its own task, a few events ahead of the operators
//! (bounded channels), so decoding and the operators use more than one core
//! and a slow pipeline slows its sources. One task pushes the sources' events
//! through the [`Graph`] and sends the rows that reach the sink into a bounded
//! channel, so a slow reader (a pipe, a terminal) slows everything down and
//! memory stays flat. Dropping the result stream stops every task.
//!
//! Which source goes next: in a bounded replay (every source ends), always the
//! one with the lowest watermark (the first on a tie), so a replay's result
//! never depends on timing; with a live source, whichever has events first,
//! taken in turn so that no source starves another.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::FutureExt;
use tokio::sync::mpsc::{Receiver, Sender};

use super::changelog::with_changes;
use super::checkpoint::manifest::{FileIdentity, FilePosition, SourcePosition};
use super::checkpoint::{self, CheckpointOptions, Checkpointer, Output};
use super::graph::{Graph, data_rows};
use super::metrics::StreamMetrics;
use super::operator::{END_OF_INPUT, Event, NO_WATERMARK, Nanos};
use super::source::Source;
use crate::connectors::follow::FilePositions;
use crate::plan::SourceCatalog;
use crate::sql::Emit;

/// Batches in flight between the pipeline and its reader.
const OUTPUT_CHANNEL_CAPACITY: usize = 2;

/// How often the pipeline task publishes its operators' counters.
const OPERATOR_METRICS_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Source events read ahead of the operators, per source.
const SOURCE_CHANNEL_CAPACITY: usize = 2;

/// Run `plan` continuously; rows come out as windows close. With a
/// checkpoint directory the query checkpoints and resumes; a sink that reads
/// this stream of rows only is at-least-once from the last checkpoint.
pub async fn execute(
    state: &SessionState,
    plan: &LogicalPlan,
    emit: Option<Emit>,
    catalog: &SourceCatalog,
    metrics: Arc<StreamMetrics>,
) -> Result<SendableRecordBatchStream> {
    let (schema, outputs) = execute_outputs(state, plan, emit, catalog, metrics).await?;
    let rows = futures::StreamExt::filter_map(outputs, |output| async move {
        match output {
            Ok(Output::Rows(batch)) => Some(Ok(batch)),
            Ok(Output::Barrier(barrier)) => {
                checkpoint::acknowledge(barrier);
                None
            }
            Err(e) => Some(Err(e)),
        }
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rows)))
}

/// The result of a continuous query with its checkpoints' barriers among the
/// rows, for a sink that stages files per checkpoint (exactly-once).
pub type Outputs = futures::stream::BoxStream<'static, Result<Output>>;

/// Run `plan` continuously: its schema, and its rows with a barrier after the
/// rows each checkpoint covers.
pub async fn execute_outputs(
    state: &SessionState,
    plan: &LogicalPlan,
    emit: Option<Emit>,
    catalog: &SourceCatalog,
    metrics: Arc<StreamMetrics>,
) -> Result<(arrow::datatypes::SchemaRef, Outputs)> {
    let pipeline = super::plan(state, plan, emit, catalog, Arc::clone(&metrics)).await?;
    let schema = Arc::clone(&pipeline.schema);
    let mut graph = pipeline.graph;
    graph.track_peaks(metrics.track_peaks.load(Ordering::Relaxed));
    let options = CheckpointOptions::of(state);
    let checkpoints = Checkpointer::open(state, &options, &mut graph, &schema, &metrics).await?;
    let (checkpointer, positions) = match checkpoints {
        Some((checkpointer, positions)) => (Some(checkpointer), positions),
        None => (None, None),
    };
    graph.open(state.task_ctx()).await?;
    let replay = graph.sources.iter().all(|s| s.bounded);
    let mut sources = Vec::with_capacity(graph.sources.len());
    let mut notices = Vec::new();
    for (i, spec) in std::mem::take(&mut graph.sources).into_iter().enumerate() {
        let (table, provider) = (spec.table.clone(), Arc::clone(&spec.provider));
        let position = positions.as_ref().and_then(|p| p.get(i));
        let source = Source::resumed(spec, state, position, checkpointer.is_some()).await?;
        notices.extend(source.notices().iter().cloned());
        sources.push((source, position.cloned()));
        // The scan made the counts of bad rows this run skips, and of bytes unread.
        metrics.watch_source(&table, provider.as_ref());
    }
    if let Ok(mut shown) = metrics.notices.lock() {
        shown.extend(notices);
    }
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Output>>(OUTPUT_CHANNEL_CAPACITY);
    // With checkpoints the pipeline task itself stops on a signal, after a
    // last checkpoint; without, the reader stops it (below).
    let listens = checkpointer.is_some();
    // The pipeline starts when its rows are first asked for, so that what
    // the setup says (the checkpoint it resumed from, in `metrics.notices`)
    // is shown before any row and any new checkpoint.
    let changes = (pipeline.changes, pipeline.tick);
    let start = move || {
        let task = tokio::spawn(run(
            graph,
            sources,
            replay,
            changes,
            sender.clone(),
            metrics,
            checkpointer,
        ));
        // Dropping the result stream stops the pipeline task itself, not only
        // its watcher (a dropped join handle would leave the task running until
        // it next sends a row, which a selective query may not do for long).
        let pipeline_task = AbortTaskOnDrop(task.abort_handle());
        let errors = sender;
        // The task's own failure (a panic) reaches the reader as an error.
        let watcher = tokio::spawn(async move {
            if let Err(e) = task.await
                && !e.is_cancelled()
            {
                let _ = errors
                    .send(Err(DataFusionError::Internal(format!(
                        "the continuous query stopped: {e}"
                    ))))
                    .await;
            }
        });
        (AbortOnDrop(watcher), pipeline_task)
    };
    let pipeline = Pipeline::NotStarted(Box::new(start));
    // A signal ends the query with an error saying so (the caller then
    // reports what it left out); the pipeline stops when the stream drops.
    let stop: futures::future::BoxFuture<'static, &'static str> = match listens {
        true => Box::pin(std::future::pending()),
        false => Box::pin(super::stop::stop_signal()),
    };
    let stream = futures::stream::unfold(
        (receiver, pipeline, Some(stop)),
        |(mut receiver, pipeline, stop)| async move {
            let mut stop = stop?;
            let pipeline = pipeline.running();
            tokio::select! {
                item = receiver.recv() => item.map(|item| (item, (receiver, pipeline, Some(stop)))),
                signal = &mut stop => {
                    let stopped = DataFusionError::Execution(format!("stopped by {signal}"));
                    Some((Err(stopped), (receiver, pipeline, None)))
                }
            }
        },
    );
    Ok((schema, Box::pin(stream)))
}

/// The pipeline's tasks: started when the result is first read, stopped
/// when it is dropped.
enum Pipeline {
    NotStarted(Box<dyn FnOnce() -> (AbortOnDrop, AbortTaskOnDrop) + Send>),
    Running { _tasks: (AbortOnDrop, AbortTaskOnDrop) },
}

impl Pipeline {
    /// Started, if it was not yet.
    fn running(self) -> Self {
        match self {
            Self::NotStarted(start) => Self::Running { _tasks: start() },
            running => running,
        }
    }
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Stops a task, by its abort handle, when dropped.
struct AbortTaskOnDrop(tokio::task::AbortHandle);

impl Drop for AbortTaskOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One source as the driver sees it.
struct Input {
    table: String,
    events: Receiver<Result<Vec<Event>>>,
    _reader: Option<AbortOnDrop>,
    /// Its latest watermark.
    watermark: Nanos,
    /// It sent its end (or its reader stopped).
    ended: bool,
    /// Rows the graph has taken from it, over every run (its position for a
    /// checkpoint, and a generator's).
    rows: u64,
    /// Rows of this run's scan taken (those it passes over included): the
    /// count a followed file's positions go by.
    rows_now: u64,
    /// A followed file's positions in its files.
    files: Option<FilePositions>,
    /// The positions it resumed from, kept while the source is not read
    /// (it had ended).
    resumed_files: Vec<FilePosition>,
    /// The local files it reads once.
    read_once: Vec<FileIdentity>,
}

impl Input {
    fn position(&mut self) -> SourcePosition {
        let files = match &mut self.files {
            Some(files) => files.at(self.rows_now),
            None => self.resumed_files.clone(),
        };
        SourcePosition {
            table: self.table.clone(),
            rows: self.rows,
            ended: self.ended,
            watermark: self.watermark,
            files,
            read_once: self.read_once.clone(),
        }
    }
}

/// What ended the pipeline's wait for its next events.
enum Next {
    Events(usize, Result<Vec<Event>>),
    /// Every source ended.
    Done,
    /// A signal, by name.
    Stop(&'static str),
}

/// The pipeline task: source events through the graph to the channel.
async fn run(
    mut graph: Graph,
    sources: Vec<(Source, Option<SourcePosition>)>,
    replay: bool,
    (changes, tick): (bool, Option<std::time::Duration>),
    output: Sender<Result<Output>>,
    metrics: Arc<StreamMetrics>,
    mut checkpointer: Option<Checkpointer>,
) {
    let mut inputs: Vec<Input> = sources
        .into_iter()
        .map(|(mut source, position)| {
            let table = source.table().to_string();
            let position = position.unwrap_or(SourcePosition {
                table: table.clone(),
                rows: 0,
                ended: false,
                watermark: NO_WATERMARK,
                files: Vec::new(),
                read_once: Vec::new(),
            });
            let files = source.take_file_positions();
            let read_once = source.read_once().to_vec();
            let passed_over = source.rows_to_pass_over();
            // A source that had ended before the checkpoint is not read again.
            let (events, reader) = match position.ended {
                true => (tokio::sync::mpsc::channel(1).1, None),
                false => {
                    let (events, reader) = read_ahead(source);
                    (events, Some(reader))
                }
            };
            Input {
                table,
                events,
                _reader: reader,
                watermark: position.watermark,
                ended: position.ended,
                rows: position.rows,
                rows_now: passed_over,
                files: files.filter(|_| !position.ended),
                resumed_files: position.files,
                read_once,
            }
        })
        .collect();
    let mut turn = 0;
    let mut published = std::time::Instant::now();
    // With checkpoints the task stops itself on a signal, after a checkpoint.
    let mut stop: futures::future::BoxFuture<'static, &'static str> = match checkpointer {
        Some(_) => Box::pin(super::stop::stop_signal()),
        None => Box::pin(std::future::pending()),
    };
    loop {
        let next = tokio::select! {
            biased;
            signal = &mut stop => Next::Stop(signal),
            next = async {
                if replay {
                    next_by_watermark(&mut inputs).await
                } else {
                    turn += 1;
                    let next = next_as_they_come(&mut inputs, turn);
                    // A checkpoint falls due while the sources are quiet too.
                    let wait = [tick, checkpointer.as_ref().map(Checkpointer::due_in)].into_iter().flatten().min();
                    match wait {
                        None => next.await,
                        // Quiet sources: one's watermark again (each in turn), so
                        // that operators on the clock (`sluice.emit.interval`) emit
                        // what waits, and the checkpoint due below is taken.
                        Some(every) => match tokio::time::timeout(every, next).await {
                            Ok(next) => next,
                            Err(_) => (0..inputs.len())
                                .map(|k| (turn + k) % inputs.len())
                                .find(|&i| !inputs[i].ended)
                                .map(|i| (i, Ok(vec![Event::Watermark(inputs[i].watermark)]))),
                        },
                    }
                }
            } => match next {
                Some((i, events)) => Next::Events(i, events),
                None => Next::Done,
            },
        };
        let (i, events) = match next {
            Next::Events(i, events) => (i, events),
            Next::Done => {
                metrics
                    .state_rows
                    .store(graph.state_rows() as u64, Ordering::Relaxed);
                metrics.publish_operators(graph.operator_stats());
                // The last checkpoint says the query finished, so a rerun
                // does not emit its tail again.
                checkpoint(&mut checkpointer, &mut graph, &mut inputs, true, true, &output).await;
                return; // every source ended
            }
            Next::Stop(signal) => {
                if checkpoint(&mut checkpointer, &mut graph, &mut inputs, false, true, &output).await {
                    let stopped = DataFusionError::Execution(format!("stopped by {signal}"));
                    let _ = output.send(Err(stopped)).await;
                }
                return;
            }
        };
        let events = match events {
            Ok(events) => events,
            Err(e) => {
                let e = e.context(format!("reading table '{}'", inputs[i].table));
                if checkpointer.is_some() {
                    // Everything before the bad row is committed; a restart
                    // (with the row fixed or skipped) goes on from it.
                    if checkpoint(&mut checkpointer, &mut graph, &mut inputs, false, true, &output).await {
                        let _ = output.send(Err(e)).await;
                    }
                    return;
                }
                // A bad row or a truncated last line: what came before it
                // goes through, as if the input ended there, then the error.
                let flushed = end_every_input(&mut graph, &mut inputs).and_then(|ev| sink_rows(ev, changes));
                for batch in flushed.unwrap_or_default() {
                    if output.send(Ok(Output::Rows(batch))).await.is_err() {
                        return;
                    }
                }
                let _ = output.send(Err(e)).await;
                return;
            }
        };
        let input = &mut inputs[i];
        for event in &events {
            match event {
                Event::Data(batch) => {
                    let rows = batch.batch.num_rows() as u64;
                    input.rows += rows;
                    input.rows_now += rows;
                    metrics.rows_in.fetch_add(rows, Ordering::Relaxed);
                }
                Event::Watermark(w) => input.watermark = input.watermark.max(*w),
                Event::End => input.ended = true,
            }
        }
        // The marks of a followed file's rows taken do not pile up.
        if let Some(files) = &mut input.files {
            files.advance(input.rows_now);
        }
        let result = graph.push(i, events);
        let table = input.table.clone();
        let watermark = inputs.iter().map(|i| i.watermark).min().unwrap_or(NO_WATERMARK);
        metrics.watermark.store(watermark, Ordering::Relaxed);
        if let Ok(events) = &result {
            metrics.rows_out.fetch_add(data_rows(events), Ordering::Relaxed);
        }
        // Operators' counters and the state's rows, for `--metrics`: a few
        // times a second, and once more when the query ends (below). Not
        // after every batch: an operator may count its state by walking it
        // (a Top-N's keys: a fifth of q18's time when read per batch).
        if published.elapsed() >= OPERATOR_METRICS_EVERY || graph.is_finished() {
            metrics
                .state_rows
                .store(graph.state_rows() as u64, Ordering::Relaxed);
            metrics.publish_operators(graph.operator_stats());
            published = std::time::Instant::now();
        }
        let batches = result.and_then(|events| sink_rows(events, changes));
        let batches = match batches {
            Ok(batches) => batches,
            Err(e) => {
                let e = e.context(format!("reading table '{table}'"));
                let _ = output.send(Err(e)).await;
                return;
            }
        };
        for batch in batches {
            if output.send(Ok(Output::Rows(batch))).await.is_err() {
                return; // the reader is gone
            }
        }
        if graph.is_finished() {
            checkpoint(&mut checkpointer, &mut graph, &mut inputs, true, true, &output).await;
            return;
        }
        if checkpointer.as_ref().is_some_and(Checkpointer::due)
            && !checkpoint(&mut checkpointer, &mut graph, &mut inputs, false, false, &output).await
        {
            return;
        }
    }
}

/// Take a checkpoint if the query takes them; whether the query may go on
/// (a failed checkpoint ends it, with the error sent to the reader). The
/// `last` one, after which the query stops, is waited for; the others are
/// written while the query goes on.
async fn checkpoint(
    checkpointer: &mut Option<Checkpointer>,
    graph: &mut Graph,
    inputs: &mut [Input],
    finished: bool,
    last: bool,
    output: &Sender<Result<Output>>,
) -> bool {
    let Some(checkpointer) = checkpointer else {
        return true;
    };
    let positions = inputs.iter_mut().map(Input::position).collect();
    match checkpointer.take(graph, positions, finished, last, output).await {
        Ok(()) => true,
        Err(e) => {
            let _ = output.send(Err(checkpoint::failed(e))).await;
            false
        }
    }
}

/// Close every input that is still open (its watermark to the end, then its
/// end), so that every window and buffer emits what it holds.
fn end_every_input(graph: &mut Graph, inputs: &mut [Input]) -> Result<Vec<Event>> {
    let mut out = Vec::new();
    for (i, input) in inputs.iter_mut().enumerate() {
        if !input.ended {
            input.ended = true;
            out.extend(graph.push(i, vec![Event::Watermark(END_OF_INPUT), Event::End])?);
        }
    }
    Ok(out)
}

/// The rows among events that reached the sink, as the query's output.
fn sink_rows(events: Vec<Event>, changes: bool) -> Result<Vec<RecordBatch>> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Data(b) if b.batch.num_rows() > 0 => Some(b),
            _ => None,
        })
        .map(|rows| match changes {
            true => Ok(with_changes(&rows.batch, rows.changes.as_ref())?),
            false => Ok(rows.batch),
        })
        .collect()
}

/// The next events of the open source with the lowest watermark (a replay).
async fn next_by_watermark(inputs: &mut [Input]) -> Option<(usize, Result<Vec<Event>>)> {
    let i = (0..inputs.len())
        .filter(|&i| !inputs[i].ended)
        .min_by_key(|&i| inputs[i].watermark)?;
    Some((i, receive(&mut inputs[i]).await))
}

/// The next events of whichever open source has some first, starting the
/// search at a different source each turn.
async fn next_as_they_come(inputs: &mut [Input], turn: usize) -> Option<(usize, Result<Vec<Event>>)> {
    let count = inputs.len();
    // Each future borrows its own input; the losers are dropped, and a
    // channel's receive can be dropped without losing what it would take.
    let mut waiting: Vec<_> = inputs
        .iter_mut()
        .enumerate()
        .filter(|(_, input)| !input.ended)
        .map(|(i, input)| {
            let rank = (i + count - turn % count) % count;
            (rank, async move { (i, receive(input).await) }.boxed())
        })
        .collect();
    if waiting.is_empty() {
        return None;
    }
    waiting.sort_by_key(|(rank, _)| *rank);
    let (result, _, _) = futures::future::select_all(waiting.into_iter().map(|(_, f)| f)).await;
    Some(result)
}

/// The next events of one source; when its reader stops without an end (it
/// failed, or was stopped), an end.
async fn receive(input: &mut Input) -> Result<Vec<Event>> {
    match input.events.recv().await {
        Some(events) => events,
        None => Ok(vec![Event::End]),
    }
}

/// Read a source on its own task, a few events ahead of the operators; the
/// channel is bounded, so a slow pipeline slows the source. The reader stops
/// when the returned guard is dropped.
fn read_ahead(mut source: Source) -> (Receiver<Result<Vec<Event>>>, AbortOnDrop) {
    let (sender, receiver) = tokio::sync::mpsc::channel(SOURCE_CHANNEL_CAPACITY);
    let reader = tokio::spawn(async move {
        while let Some(events) = source.next().await {
            if sender.send(events).await.is_err() {
                return; // the pipeline stopped
            }
        }
    });
    (receiver, AbortOnDrop(reader))
}
