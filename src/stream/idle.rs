//! Idle inputs: a source that sends nothing for its
//! `'scan.watermark.idle-timeout'` stops holding back the watermark of the
//! union or join it feeds (Flink's option and meaning).
//!
//! A merge's watermark is the minimum of its inputs', so one quiet input
//! holds every window after the merge open. An input with a timeout that has
//! sent no event for that long is left out of the minimum, and out of the cap
//! on other inputs' rows, until it sends again. Its rows then arrive under
//! the merge's watermark at least (the watermark never goes back), so a row
//! for a window that closed meanwhile is late, and counted, as in Flink.
//! Idleness is wall-clock time, so only inputs that never end have a timeout:
//! a bounded replay's result never depends on timing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::operator::{Nanos, RowWatermarks};

/// When each input of a merge last sent an event, and how long it may be
/// quiet before it is idle.
#[derive(Debug)]
pub struct IdleInputs {
    /// Per input: its idle timeout (`None`: it always holds the watermark).
    timeouts: Vec<Option<Duration>>,
    /// Per input: when its last event came (at first, when the merge was made).
    last_seen: Vec<Instant>,
}

impl IdleInputs {
    /// Inputs with these timeouts, each seen now.
    pub fn new(timeouts: Vec<Option<Duration>>) -> Self {
        let now = Instant::now();
        Self {
            last_seen: vec![now; timeouts.len()],
            timeouts,
        }
    }

    /// Whether any input can become idle (else nothing here costs a clock read).
    pub fn any(&self) -> bool {
        self.timeouts.iter().any(Option::is_some)
    }

    /// Input `port` sent an event.
    pub fn seen(&mut self, port: usize) {
        if self.timeouts.get(port).is_some_and(Option::is_some) {
            self.last_seen[port] = Instant::now();
        }
    }

    /// Whether input `port` has been quiet past its timeout at `now`.
    pub fn is_idle(&self, port: usize, now: Instant) -> bool {
        match self.timeouts.get(port) {
            Some(Some(timeout)) => now.saturating_duration_since(self.last_seen[port]) >= *timeout,
            _ => false,
        }
    }

    /// Which inputs hold the merged watermark now: all but the idle ones
    /// (an ended input holds at +infinity), and none when every input still
    /// open is idle (then the watermark waits rather than jump).
    pub fn holding(&self, ended: &[bool]) -> Vec<bool> {
        if !self.any() {
            return vec![true; ended.len()];
        }
        let now = Instant::now();
        let holding: Vec<bool> = (0..ended.len())
            .map(|i| ended[i] || !self.is_idle(i, now))
            .collect();
        match (0..ended.len()).any(|i| holding[i] && !ended[i]) {
            true => holding,
            false => vec![false; ended.len()],
        }
    }
}

/// Row watermarks no earlier than `floor`: an input back from idleness may be
/// behind the merged watermark, which never goes back.
pub fn floor_watermarks(watermarks: &RowWatermarks, floor: Nanos) -> RowWatermarks {
    match watermarks {
        RowWatermarks::Constant(w) => RowWatermarks::Constant((*w).max(floor)),
        RowWatermarks::PerRow(values) if values.values().iter().any(|w| *w < floor) => RowWatermarks::PerRow(
            Arc::new(values.values().iter().map(|w| (*w).max(floor)).collect()),
        ),
        RowWatermarks::PerRow(_) => watermarks.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_is_idle_once_quiet_for_its_timeout_and_active_once_it_sends() {
        let mut inputs = IdleInputs::new(vec![Some(Duration::from_millis(50)), None]);
        assert!(inputs.any());
        let start = Instant::now();
        assert!(!inputs.is_idle(0, start));
        let later = start + Duration::from_millis(60);
        assert!(inputs.is_idle(0, later));
        // No timeout, never idle.
        assert!(!inputs.is_idle(1, later + Duration::from_secs(3600)));
        inputs.seen(0);
        assert!(!inputs.is_idle(0, Instant::now()));
        assert!(!IdleInputs::new(vec![None, None]).any());
    }

    #[test]
    fn when_every_open_input_is_idle_none_holds() {
        let inputs = IdleInputs::new(vec![Some(Duration::ZERO), Some(Duration::ZERO), None]);
        // Input 2 has no timeout: it and the ended input 0 hold.
        assert_eq!(inputs.holding(&[true, false, false]), vec![true, false, true]);
        let inputs = IdleInputs::new(vec![Some(Duration::ZERO), Some(Duration::ZERO)]);
        // An ended input alone would let the watermark jump to +infinity.
        assert_eq!(inputs.holding(&[true, false]), vec![false, false]);
    }

    #[test]
    fn rows_back_from_idleness_arrive_under_the_merged_watermark() {
        let rows = RowWatermarks::PerRow(Arc::new(arrow::array::Int64Array::from(vec![1, 5, 9])));
        let floored = floor_watermarks(&rows, 6);
        assert_eq!((0..3).map(|i| floored.get(i)).collect::<Vec<_>>(), vec![6, 6, 9]);
        assert_eq!(floor_watermarks(&RowWatermarks::Constant(2), 6).get(0), 6);
    }
}
