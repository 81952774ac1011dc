//! The `nexmark` connector: the person, auction and bid streams of the Nexmark
//! benchmark, generated as nexmark-rs (RisingWave) and Beam/Flink do.
//!
//! One global event sequence is cut into groups of 50 events: in each, event
//! 0 is a person, 1..=3 auctions and 4..=49 bids (the usual 1 : 3 : 46 mix).
//! A table exposes one kind (`'table'`); its row `k` is the `k`-th event of
//! that kind, so `person`, `auction` and `bid` tables over the same seed and
//! event count are one consistent stream: every bid's auction and bidder and
//! every auction's seller are ids that the other tables generate (or will
//! soon, within nexmark-rs's small id lead).
//!
//! Values follow nexmark-rs's rules: ids from 1000, hot auctions (half the
//! bids go to the newest hundred-block of auctions), hot bidders and sellers
//! (three quarters), prices `round(10^(6u) * 100)` cents, categories 10..=14,
//! half the bids on four hot channels (Google, Facebook, Baidu, Apple), the
//! rest on 10,000 `channel-N` channels each with its URL, and an `extra`
//! column padding rows to nexmark-rs's average sizes. Event `n` happens at
//! `base.time + n / events.per.second`, minus a deterministic jitter of up
//! to `out.of.orderness`.

mod columns;

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::plan_err;
use datafusion::error::Result;

use self::columns::{Column, Pools};
use super::rng::Rng;
use super::{
    GeneratorProvider, GeneratorTable, RowSource, compatible, parse_count, parse_duration_ms,
    parse_timestamp_ms, take_parsed,
};
use crate::connectors::{Boundedness, Options};

/// Events per group, and each kind's share of a group.
const TOTAL_PROPORTION: u64 = 50;
const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const BID_PROPORTION: u64 = 46;

/// The first person, auction and category ids.
const FIRST_PERSON_ID: i64 = 1000;
const FIRST_AUCTION_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
/// How many categories auctions fall in.
const NUM_CATEGORIES: u64 = 5;

/// How many recent people bid and sell, and how many recent auctions get bids.
const ACTIVE_PEOPLE: u64 = 1000;
const IN_FLIGHT_AUCTIONS: u64 = 100;
/// How far past the newest person or auction a random id may reach.
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;

/// One in `ratio` picks is cold (random); the rest are hot.
const HOT_AUCTION_RATIO: u64 = 2;
const HOT_SELLER_RATIO: u64 = 4;
const HOT_BIDDER_RATIO: u64 = 4;
const HOT_CHANNEL_RATIO: u64 = 2;
/// Hot ids are the first of the newest block of this many ids.
const HOT_ID_BLOCK: i64 = 100;

/// The default first event time: 2015-07-15 00:00:00 UTC, Beam's and
/// RisingWave's fixed base time.
pub const DEFAULT_BASE_TIME_MS: i64 = 1_436_918_400_000;
/// The default event-time rate: nexmark-rs's 10,000 events per second.
pub const DEFAULT_EVENTS_PER_SECOND: u64 = 10_000;

/// The options the nexmark connector accepts, for error messages.
pub const ACCEPTED_OPTIONS: &[&str] = &[
    "connector",
    "table",
    "events",
    "seed",
    "base.time",
    "events.per.second",
    "out.of.orderness",
    "rate",
];

/// The three Nexmark event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A new person (seller or bidder).
    Person,
    /// A new auction.
    Auction,
    /// A bid on an auction.
    Bid,
}

impl EventKind {
    /// The kind named `name` (`bid`, `bids`, ...).
    fn parse(name: &str) -> Option<Self> {
        match name.to_lowercase().as_str() {
            "person" | "persons" | "people" => Some(Self::Person),
            "auction" | "auctions" => Some(Self::Auction),
            "bid" | "bids" => Some(Self::Bid),
            _ => None,
        }
    }

    /// The stream's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Auction => "auction",
            Self::Bid => "bid",
        }
    }

    /// Where this kind's events start in a group of 50, and how many there are.
    fn slots(self) -> (u64, u64) {
        match self {
            Self::Person => (0, PERSON_PROPORTION),
            Self::Auction => (PERSON_PROPORTION, AUCTION_PROPORTION),
            Self::Bid => (PERSON_PROPORTION + AUCTION_PROPORTION, BID_PROPORTION),
        }
    }

    /// The kind of global event `event`.
    pub fn of_event(event: u64) -> Self {
        match event % TOTAL_PROPORTION {
            r if r < PERSON_PROPORTION => Self::Person,
            r if r < PERSON_PROPORTION + AUCTION_PROPORTION => Self::Auction,
            _ => Self::Bid,
        }
    }

    /// The global event number of this kind's `k`-th event.
    #[inline(always)]
    pub fn event_of(self, k: u64) -> u64 {
        let (first, count) = self.slots();
        (k / count) * TOTAL_PROPORTION + first + k % count
    }

    /// How many of the first `events` events are of this kind.
    pub fn count_in(self, events: u64) -> u64 {
        let (first, count) = self.slots();
        let partial = (events % TOTAL_PROPORTION).saturating_sub(first).min(count);
        (events / TOTAL_PROPORTION) * count + partial
    }

    /// The stream's columns, in order.
    fn columns(self) -> &'static [(&'static str, Column)] {
        match self {
            Self::Person => columns::PERSON,
            Self::Auction => columns::AUCTION,
            Self::Bid => columns::BID,
        }
    }

    /// The stream's standard schema (snake_case names, as RisingWave and
    /// nexmark-rs): BIGINT ids and amounts, VARCHAR text, TIMESTAMP(3) times.
    pub fn schema(self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns()
            .iter()
            .map(|(name, column)| Field::new(*name, column.data_type(), false))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

/// The settings of a Nexmark stream.
#[derive(Debug, Clone, PartialEq)]
pub struct NexmarkConfig {
    /// Seeds every random choice.
    pub seed: u64,
    /// Total events of all kinds; `None` for an unbounded stream.
    pub events: Option<u64>,
    /// The time of event 0, ms since the epoch.
    pub base_time_ms: i64,
    /// Events per second of event time.
    pub events_per_second: u64,
    /// The most an event's time lags its in-order time, in ms.
    pub out_of_orderness_ms: u64,
    /// Wall-clock events per second for unbounded runs; `None` for as fast
    /// as possible. Kept for the continuous executor.
    pub rate: Option<u64>,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            events: None,
            base_time_ms: DEFAULT_BASE_TIME_MS,
            events_per_second: DEFAULT_EVENTS_PER_SECOND,
            out_of_orderness_ms: 0,
            rate: None,
        }
    }
}

impl NexmarkConfig {
    /// The in-order time of event `event`, in ms.
    #[inline(always)]
    fn timestamp(&self, event: u64) -> i64 {
        let offset = u128::from(event) * 1000 / u128::from(self.events_per_second);
        self.base_time_ms
            .saturating_add(i64::try_from(offset).unwrap_or(i64::MAX))
    }

    /// The time event `event` carries: in-order time minus its jitter.
    #[inline(always)]
    fn date_time(&self, event: u64) -> i64 {
        let ts = self.timestamp(event);
        if self.out_of_orderness_ms == 0 {
            return ts;
        }
        let jitter = Rng::for_row(self.seed, event, columns::SALT_JITTER).below(self.out_of_orderness_ms + 1);
        ts - jitter as i64
    }
}

/// The base-0 id of the newest person at event `event`.
#[inline(always)]
// Written for any proportions; with one person per group the `min` is constant.
#[allow(clippy::unnecessary_min_or_max)]
fn last_base0_person_id(event: u64) -> i64 {
    let epoch = event / TOTAL_PROPORTION;
    let offset = (event % TOTAL_PROPORTION).min(PERSON_PROPORTION - 1);
    (epoch * PERSON_PROPORTION + offset) as i64
}

/// The base-0 id of the newest auction at event `event` (-1 before any).
#[inline(always)]
fn last_base0_auction_id(event: u64) -> i64 {
    let epoch = (event / TOTAL_PROPORTION) as i64;
    let offset = event % TOTAL_PROPORTION;
    if offset < PERSON_PROPORTION {
        (epoch - 1) * AUCTION_PROPORTION as i64 + AUCTION_PROPORTION as i64 - 1
    } else if offset >= PERSON_PROPORTION + AUCTION_PROPORTION {
        epoch * AUCTION_PROPORTION as i64 + AUCTION_PROPORTION as i64 - 1
    } else {
        epoch * AUCTION_PROPORTION as i64 + (offset - PERSON_PROPORTION) as i64
    }
}

/// A random recent person: one of the last 1000 people, or up to 10 ahead.
#[inline(always)]
fn next_base0_person_id(event: u64, rng: &mut Rng) -> i64 {
    let people = last_base0_person_id(event) + 1;
    let active = people.min(ACTIVE_PEOPLE as i64);
    people - active + rng.below(active as u64 + PERSON_ID_LEAD) as i64
}

/// A random recent auction: one of the last 100, or up to 10 ahead.
#[inline(always)]
fn next_base0_auction_id(event: u64, rng: &mut Rng) -> i64 {
    let last = last_base0_auction_id(event);
    let min = (last - IN_FLIGHT_AUCTIONS as i64).max(0);
    min + rng.below((last - min + 1) as u64 + AUCTION_ID_LEAD) as i64
}

/// A price in cents, log-uniform between $1 and $1,000,000.
#[inline(always)]
fn next_price(rng: &mut Rng) -> i64 {
    ((rng.unit() * 6.0 * std::f64::consts::LN_10).exp() * 100.0).round() as i64
}

/// One Nexmark stream as a row source.
#[derive(Debug)]
pub struct NexmarkSource {
    /// The stream's settings.
    config: NexmarkConfig,
    /// Which stream.
    kind: EventKind,
    /// Its standard schema.
    schema: SchemaRef,
    /// Strings made once per table (channels, URLs, random text).
    pools: Pools,
}

impl NexmarkSource {
    /// The `kind` stream of `config`.
    pub fn new(config: NexmarkConfig, kind: EventKind) -> Self {
        let pools = Pools::new(config.seed);
        Self {
            config,
            kind,
            schema: kind.schema(),
            pools,
        }
    }

    /// How many rows the stream has (`None`: unbounded).
    pub fn rows(&self) -> Option<u64> {
        self.config.events.map(|e| self.kind.count_in(e))
    }
}

impl RowSource for NexmarkSource {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn generate(&self, columns: &[usize], rows: std::ops::Range<u64>) -> Result<Vec<ArrayRef>> {
        let all = self.kind.columns();
        columns
            .iter()
            .map(|&i| match all.get(i) {
                Some((_, column)) => Ok(columns::generate(
                    &self.config,
                    self.kind,
                    &self.pools,
                    *column,
                    rows.clone(),
                )),
                None => datafusion::common::internal_err!("nexmark {} has no column {i}", self.kind.name()),
            })
            .collect()
    }

    /// `'rate'` counts events of all kinds; this stream gets its share.
    fn rate(&self) -> Option<u64> {
        self.config
            .rate
            .map(|r| self.kind.count_in(r.saturating_mul(TOTAL_PROPORTION)) / TOTAL_PROPORTION)
    }
}

/// The settings and stream named by a table's options. `table_name` stands in
/// for a missing `'table'` option when it names a stream (`bid`, `bids`, ...).
fn parse_options(table_name: &str, options: &mut Options) -> Result<(NexmarkConfig, EventKind)> {
    let kind = match options.take("table") {
        Some(name) => match EventKind::parse(&name) {
            Some(kind) => kind,
            None => return plan_err!("option 'table' must be 'person', 'auction' or 'bid', not '{name}'"),
        },
        None => match EventKind::parse(table_name) {
            Some(kind) => kind,
            None => {
                return plan_err!(
                    "missing option 'table': add 'table' = 'bid', 'auction' or 'person' to choose the Nexmark stream"
                );
            }
        },
    };
    let defaults = NexmarkConfig::default();
    let count = "a whole number such as 1000000";
    let config = NexmarkConfig {
        events: take_parsed(options, "events", count, parse_count)?,
        seed: take_parsed(options, "seed", count, parse_count)?.unwrap_or(defaults.seed),
        base_time_ms: take_parsed(
            options,
            "base.time",
            "a timestamp such as '2015-07-15 00:00:00' (UTC unless it has a zone)",
            parse_timestamp_ms,
        )?
        .unwrap_or(defaults.base_time_ms),
        events_per_second: match take_parsed(options, "events.per.second", count, parse_count)? {
            Some(0) => return plan_err!("option 'events.per.second' must be at least 1"),
            Some(n) => n,
            None => defaults.events_per_second,
        },
        out_of_orderness_ms: take_parsed(
            options,
            "out.of.orderness",
            "a duration such as '4 s' or '500 ms'",
            parse_duration_ms,
        )?
        .unwrap_or(0),
        rate: match take_parsed(options, "rate", count, parse_count)? {
            Some(0) => return plan_err!("option 'rate' must be at least 1 event per second"),
            other => other,
        },
    };
    Ok((config, kind))
}

/// Map declared columns onto the stream's, by name; each type must be one the
/// generated values cast to. Returns the stream column of each declared one.
fn match_declared(kind: EventKind, declared: &Schema) -> Result<Vec<usize>> {
    let stream = kind.schema();
    let names = || crate::connectors::column_names(&stream);
    declared
        .fields()
        .iter()
        .map(|d| {
            let Some((i, f)) = stream
                .fields()
                .iter()
                .enumerate()
                .find(|(_, f)| f.name().eq_ignore_ascii_case(d.name()))
            else {
                return plan_err!(
                    "column '{}' is not in the Nexmark {} stream; its columns are: {}",
                    d.name(),
                    kind.name(),
                    names()
                );
            };
            if !compatible(f.data_type(), d.data_type()) {
                return plan_err!(
                    "column '{}' of the Nexmark {} stream is {}, but the table declares {}: declare it {}",
                    d.name(),
                    kind.name(),
                    f.data_type(),
                    d.data_type(),
                    columns::sql_type(f.data_type())
                );
            }
            Ok(i)
        })
        .collect()
}

/// Build a Nexmark table from its options (`'connector'` already taken).
pub fn create_table(
    table_name: &str,
    declared: Option<SchemaRef>,
    mut options: Options,
) -> Result<GeneratorTable> {
    let (config, kind) = parse_options(table_name, &mut options)?;
    options.finish("nexmark", ACCEPTED_OPTIONS)?;
    let (schema, source_columns) = match declared {
        None => {
            let schema = kind.schema();
            let all = (0..schema.fields().len()).collect();
            (schema, all)
        }
        Some(declared) => {
            let mapping = match_declared(kind, &declared)?;
            (declared, mapping)
        }
    };
    let description = match config.events {
        Some(events) => format!("{}, {events} events, seed {}", kind.name(), config.seed),
        None => format!("{}, unbounded, seed {}", kind.name(), config.seed),
    };
    let source = NexmarkSource::new(config, kind);
    let rows = source.rows();
    let boundedness = if rows.is_some() {
        Boundedness::Bounded
    } else {
        Boundedness::Unbounded
    };
    Ok(GeneratorTable {
        provider: Arc::new(GeneratorProvider::new(
            Arc::new(source),
            schema,
            source_columns,
            rows,
        )),
        description,
        boundedness,
    })
}

/// The schema's time type: TIMESTAMP(3).
fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

#[cfg(test)]
mod tests;
