//! The Nexmark columns, each generated on its own in a tight loop over a
//! batch of rows: a column's values for an event depend only on the seed,
//! the event number and the column (its salt), never on other columns.
//! Columns that nexmark-rs draws together (an auction's initial bid and
//! reserve, a bid's channel and URL) share a salt and repeat the same draws.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, TimestampMillisecondArray};
use arrow::datatypes::DataType;

use super::*;
use crate::connectors::generator::views::{StringPool, TextPool, ViewColumn};

/// Salt of the per-event time jitter (not a column).
pub const SALT_JITTER: u64 = 1_000;
/// Salt shared by an auction's initial bid and reserve.
const SALT_PRICES: u64 = 1_001;
/// Salt shared by a bid's channel and URL.
const SALT_CHANNEL: u64 = 1_002;

/// Bytes of random text that string columns slice.
const TEXT_POOL_BYTES: usize = 64 * 1024;
/// Channels besides the hot ones, as nexmark-rs.
const CHANNELS: u64 = 10_000;
/// The hot channels; half the bids are on one of them.
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
/// Events between an auction and the one 100 auctions later: an auction's
/// length is random up to twice the event time this spans.
const AUCTION_HORIZON_EVENTS: u64 = IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION / AUCTION_PROPORTION;

const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];

/// Every column of the three streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// person.id
    PersonId,
    /// person.name
    Name,
    /// person.email_address
    Email,
    /// person.credit_card
    CreditCard,
    /// person.city
    City,
    /// person.state
    State,
    /// auction.id
    AuctionId,
    /// auction.item_name
    ItemName,
    /// auction.description
    Description,
    /// auction.initial_bid
    InitialBid,
    /// auction.reserve
    Reserve,
    /// auction.expires
    Expires,
    /// auction.seller
    Seller,
    /// auction.category
    Category,
    /// bid.auction
    BidAuction,
    /// bid.bidder
    Bidder,
    /// bid.price
    Price,
    /// bid.channel
    Channel,
    /// bid.url
    Url,
    /// date_time of every stream
    DateTime,
    /// extra of every stream
    Extra,
}

/// The person stream's columns.
pub const PERSON: &[(&str, Column)] = &[
    ("id", Column::PersonId),
    ("name", Column::Name),
    ("email_address", Column::Email),
    ("credit_card", Column::CreditCard),
    ("city", Column::City),
    ("state", Column::State),
    ("date_time", Column::DateTime),
    ("extra", Column::Extra),
];

/// The auction stream's columns.
pub const AUCTION: &[(&str, Column)] = &[
    ("id", Column::AuctionId),
    ("item_name", Column::ItemName),
    ("description", Column::Description),
    ("initial_bid", Column::InitialBid),
    ("reserve", Column::Reserve),
    ("date_time", Column::DateTime),
    ("expires", Column::Expires),
    ("seller", Column::Seller),
    ("category", Column::Category),
    ("extra", Column::Extra),
];

/// The bid stream's columns.
pub const BID: &[(&str, Column)] = &[
    ("auction", Column::BidAuction),
    ("bidder", Column::Bidder),
    ("price", Column::Price),
    ("channel", Column::Channel),
    ("url", Column::Url),
    ("date_time", Column::DateTime),
    ("extra", Column::Extra),
];

impl Column {
    /// The column's Arrow type.
    pub fn data_type(self) -> DataType {
        use Column::*;
        match self {
            DateTime | Expires => timestamp_type(),
            Name | Email | CreditCard | City | State | ItemName | Description | Channel | Url | Extra => {
                DataType::Utf8View
            }
            PersonId | AuctionId | InitialBid | Reserve | Seller | Category | BidAuction | Bidder | Price => {
                DataType::Int64
            }
        }
    }

    /// The seed salt of the column's own draws.
    fn salt(self) -> u64 {
        self as u64
    }
}

/// How to declare a column of type `t` in SQL, for error messages.
pub fn sql_type(t: &DataType) -> &'static str {
    match t {
        DataType::Int64 => "BIGINT",
        DataType::Timestamp(..) => "TIMESTAMP(3)",
        _ => "VARCHAR",
    }
}

/// Strings made once per table.
#[derive(Debug)]
pub struct Pools {
    /// Random lower-case text with a space about every 13 characters.
    text: TextPool,
    /// The 4 hot channels, then `channel-0` .. `channel-9999`.
    channels: StringPool,
    /// Each channel's URL, in the same order.
    urls: StringPool,
    /// Every first name + last name.
    names: StringPool,
    /// US cities.
    cities: StringPool,
    /// US states.
    states: StringPool,
}

impl Pools {
    /// The pools of a table seeded `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed, 0);
        let text = TextPool::new(TEXT_POOL_BYTES, || random_char(&mut rng, b' '));
        let mut channels: Vec<String> = HOT_CHANNELS.iter().map(|c| c.to_string()).collect();
        let mut urls: Vec<String> = HOT_CHANNELS.iter().map(|_| base_url(&mut rng)).collect();
        for n in 0..CHANNELS {
            channels.push(format!("channel-{n}"));
            let mut url = base_url(&mut rng);
            if rng.below(2) == 0 {
                url.push_str(&format!(
                    "&channel_id={}",
                    (n as i32).reverse_bits().unsigned_abs()
                ));
            }
            urls.push(url);
        }
        let names = FIRST_NAMES
            .iter()
            .flat_map(|first| LAST_NAMES.iter().map(move |last| format!("{first} {last}")));
        Self {
            text,
            channels: StringPool::new(channels),
            urls: StringPool::new(urls),
            names: StringPool::new(names),
            cities: StringPool::new(US_CITIES),
            states: StringPool::new(US_STATES),
        }
    }
}

/// A lower-case letter, or `special` one time in 13 (nexmark-rs's strings).
fn random_char(rng: &mut Rng, special: u8) -> u8 {
    if rng.below(13) == 0 {
        special
    } else {
        b'a' + rng.below(26) as u8
    }
}

/// A random string of 3 to `max_len - 1` characters.
fn random_string(rng: &mut Rng, max_len: u64, special: u8, out: &mut String) {
    let len = 3 + rng.below(max_len - 3);
    out.extend((0..len).map(|_| char::from(random_char(rng, special))));
}

/// An item URL, as nexmark-rs: `https://www.nexmark.com/xxx/xxx/xxx/item.htm?query=1`.
fn base_url(rng: &mut Rng) -> String {
    let mut url = String::from("https://www.nexmark.com/");
    for _ in 0..3 {
        random_string(rng, 5, b'_', &mut url);
        url.push('/');
    }
    url.push_str("item.htm?query=1");
    url
}

/// The shortest `extra` and how many lengths above it, for a row of about
/// `current` bytes padded towards `average` (nexmark-rs: the target ± 20 %).
const fn extra_lengths(average: u64, current: u64) -> (u64, u64) {
    let desired = average - current;
    let delta = (desired + 2) / 5;
    (desired - delta, 2 * delta + 1)
}

/// `extra` lengths per stream: rows average 200 (person), 500 (auction) and
/// 100 (bid) bytes; the other columns take about 58, 110 and 32.
fn extra_range(kind: EventKind) -> (u64, u64) {
    match kind {
        EventKind::Person => extra_lengths(200, 58),
        EventKind::Auction => extra_lengths(500, 110),
        EventKind::Bid => extra_lengths(100, 32),
    }
}

fn int64s(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

fn timestamps(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter_values(values))
}

/// A string column of views picked per event from `pool`.
fn picks(pool: &StringPool, events: impl Iterator<Item = u64>, pick: impl Fn(u64) -> usize) -> ArrayRef {
    let mut column = ViewColumn::new(events.size_hint().0, Some(pool.buffer()));
    for e in events {
        column.push_view(pool.view(pick(e)));
    }
    column.finish()
}

/// A string column of random slices of the text pool, `min..min + span`
/// bytes long.
fn slices(
    pools: &Pools,
    events: impl Iterator<Item = u64>,
    seed: u64,
    salt: u64,
    lengths: (u64, u64),
    trim: bool,
) -> ArrayRef {
    let (min, span) = lengths;
    let room = (pools.text.len() as u64).saturating_sub(min + span);
    let mut column = ViewColumn::new(events.size_hint().0, Some(pools.text.buffer()));
    for e in events {
        let mut rng = Rng::for_row(seed, e, salt);
        let len = min + rng.below(span);
        let offset = rng.below(room);
        column.push_view(pools.text.slice(offset as usize, len as usize, trim));
    }
    column.finish()
}

/// A string column made row by row with `write`.
fn made(
    events: impl Iterator<Item = u64>,
    seed: u64,
    salt: u64,
    write: impl Fn(&mut Rng, &mut String),
) -> ArrayRef {
    let mut column = ViewColumn::new(events.size_hint().0, None);
    let mut s = String::with_capacity(32);
    for e in events {
        s.clear();
        write(&mut Rng::for_row(seed, e, salt), &mut s);
        column.push_str(&s);
    }
    column.finish()
}

/// The index into the channel and URL pools of event `e`'s bid.
#[inline(always)]
fn channel_index(seed: u64, e: u64) -> usize {
    let mut rng = Rng::for_row(seed, e, SALT_CHANNEL);
    if rng.below(HOT_CHANNEL_RATIO) > 0 {
        rng.below(HOT_CHANNELS.len() as u64) as usize
    } else {
        HOT_CHANNELS.len() + rng.below(CHANNELS) as usize
    }
}

/// Column `column` of the `kind` stream for its rows (ordinals) `rows`.
pub fn generate(
    config: &NexmarkConfig,
    kind: EventKind,
    pools: &Pools,
    column: Column,
    rows: Range<u64>,
) -> ArrayRef {
    let seed = config.seed;
    let salt = column.salt();
    let events = rows.map(move |k| kind.event_of(k));
    let rng = move |e: u64| Rng::for_row(seed, e, salt);
    match column {
        Column::PersonId => int64s(events.map(|e| FIRST_PERSON_ID + last_base0_person_id(e))),
        Column::AuctionId => int64s(events.map(|e| FIRST_AUCTION_ID + last_base0_auction_id(e))),
        Column::Seller => int64s(events.map(|e| {
            let mut r = rng(e);
            let base0 = if r.below(HOT_SELLER_RATIO) > 0 {
                (last_base0_person_id(e) / HOT_ID_BLOCK) * HOT_ID_BLOCK
            } else {
                next_base0_person_id(e, &mut r)
            };
            FIRST_PERSON_ID + base0
        })),
        Column::Category => int64s(events.map(|e| FIRST_CATEGORY_ID + rng(e).below(NUM_CATEGORIES) as i64)),
        Column::InitialBid => int64s(events.map(|e| next_price(&mut Rng::for_row(seed, e, SALT_PRICES)))),
        Column::Reserve => int64s(events.map(|e| {
            let mut r = Rng::for_row(seed, e, SALT_PRICES);
            next_price(&mut r) + next_price(&mut r)
        })),
        Column::BidAuction => int64s(events.map(|e| {
            let mut r = rng(e);
            let base0 = if r.below(HOT_AUCTION_RATIO) > 0 {
                (last_base0_auction_id(e) / HOT_ID_BLOCK) * HOT_ID_BLOCK
            } else {
                next_base0_auction_id(e, &mut r)
            };
            FIRST_AUCTION_ID + base0
        })),
        Column::Bidder => int64s(events.map(|e| {
            let mut r = rng(e);
            let base0 = if r.below(HOT_BIDDER_RATIO) > 0 {
                (last_base0_person_id(e) / HOT_ID_BLOCK) * HOT_ID_BLOCK + 1
            } else {
                next_base0_person_id(e, &mut r)
            };
            FIRST_PERSON_ID + base0
        })),
        Column::Price => int64s(events.map(|e| next_price(&mut rng(e)))),
        Column::DateTime => timestamps(events.map(|e| config.date_time(e))),
        Column::Expires => timestamps(events.map(|e| {
            let horizon = config.timestamp(e + AUCTION_HORIZON_EVENTS) - config.timestamp(e);
            let length = 1 + rng(e).below((horizon * 2).max(1) as u64) as i64;
            config.date_time(e) + length
        })),
        Column::Channel => picks(&pools.channels, events, |e| channel_index(seed, e)),
        Column::Url => picks(&pools.urls, events, |e| channel_index(seed, e)),
        Column::Name => picks(&pools.names, events, |e| {
            rng(e).below(pools.names.len() as u64) as usize
        }),
        Column::City => picks(&pools.cities, events, |e| {
            rng(e).below(pools.cities.len() as u64) as usize
        }),
        Column::State => picks(&pools.states, events, |e| {
            rng(e).below(pools.states.len() as u64) as usize
        }),
        Column::Email => made(events, seed, salt, |r, s| {
            random_string(r, 7, b'a', s);
            s.push('@');
            random_string(r, 5, b'a', s);
            s.push_str(".com");
        }),
        Column::CreditCard => made(events, seed, salt, |r, s| {
            for i in 0..4 {
                if i > 0 {
                    s.push(' ');
                }
                let n = r.below(10_000);
                for d in [1000, 100, 10, 1] {
                    s.push(char::from(b'0' + (n / d % 10) as u8));
                }
            }
        }),
        Column::ItemName => slices(pools, events, seed, salt, (3, 17), true),
        Column::Description => slices(pools, events, seed, salt, (3, 97), true),
        Column::Extra => slices(pools, events, seed, salt, extra_range(kind), false),
    }
}
