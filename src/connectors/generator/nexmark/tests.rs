use std::collections::{BTreeMap, HashSet};

use arrow::array::AsArray;
use arrow::datatypes::{Int64Type, TimestampMillisecondType};

use super::*;
use datafusion::catalog::TableProvider;

fn source(kind: EventKind, config: NexmarkConfig) -> NexmarkSource {
    NexmarkSource::new(config, kind)
}

fn config(events: u64) -> NexmarkConfig {
    NexmarkConfig {
        events: Some(events),
        ..NexmarkConfig::default()
    }
}

fn column_index(kind: EventKind, name: &str) -> usize {
    kind.columns()
        .iter()
        .position(|(n, _)| *n == name)
        .expect("known column")
}

fn ints(s: &NexmarkSource, name: &str, rows: std::ops::Range<u64>) -> Vec<i64> {
    let array = &s.generate(&[column_index(s.kind, name)], rows).expect("generate")[0];
    if let Some(ts) = array.as_primitive_opt::<TimestampMillisecondType>() {
        return ts.values().to_vec();
    }
    array.as_primitive::<Int64Type>().values().to_vec()
}

fn strings(s: &NexmarkSource, name: &str, rows: std::ops::Range<u64>) -> Vec<String> {
    let array = &s.generate(&[column_index(s.kind, name)], rows).expect("generate")[0];
    array
        .as_string_view()
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect()
}

fn opts(pairs: &[(&str, &str)]) -> Options {
    Options::try_new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid")
}

#[test]
fn event_mix_is_1_3_46_per_50_events() {
    let mut counts = BTreeMap::new();
    for e in 0..5_000 {
        *counts.entry(EventKind::of_event(e).name()).or_insert(0) += 1;
    }
    assert_eq!(counts["person"], 100);
    assert_eq!(counts["auction"], 300);
    assert_eq!(counts["bid"], 4_600);
    for kind in [EventKind::Person, EventKind::Auction, EventKind::Bid] {
        let events: Vec<u64> = (0..kind.count_in(5_000)).map(|k| kind.event_of(k)).collect();
        let expected: Vec<u64> = (0..5_000).filter(|&e| EventKind::of_event(e) == kind).collect();
        assert_eq!(events, expected, "{}", kind.name());
    }
}

#[test]
fn bounded_counts_are_exact() {
    assert_eq!(EventKind::Bid.count_in(10_000), 9_200);
    assert_eq!(EventKind::Auction.count_in(10_000), 600);
    assert_eq!(EventKind::Person.count_in(10_000), 200);
    // Events 50 (person), 51 and 52 (auctions) of a second group.
    assert_eq!(EventKind::Person.count_in(53), 2);
    assert_eq!(EventKind::Auction.count_in(53), 5);
    assert_eq!(EventKind::Bid.count_in(53), 46);
    assert_eq!(EventKind::Bid.count_in(0), 0);
    assert_eq!(source(EventKind::Bid, config(1_000_005)).rows(), Some(920_001));
}

#[test]
fn same_seed_same_rows_whatever_the_batches() {
    let a = source(EventKind::Bid, config(100_000));
    let b = source(EventKind::Bid, config(100_000));
    let all: Vec<usize> = (0..7).collect();
    let whole = a.generate(&all, 0..5_000).expect("generate");
    let first = b.generate(&all, 0..1_234).expect("generate");
    let second = b.generate(&all, 1_234..5_000).expect("generate");
    for (i, column) in whole.iter().enumerate() {
        let joined = arrow::compute::concat(&[first[i].as_ref(), second[i].as_ref()]).expect("concat");
        assert_eq!(column.as_ref(), joined.as_ref(), "column {i}");
    }
    let other = source(
        EventKind::Bid,
        NexmarkConfig {
            seed: 7,
            ..config(100_000)
        },
    );
    assert_ne!(ints(&a, "price", 0..100), ints(&other, "price", 0..100));
    assert_ne!(strings(&a, "extra", 0..100), strings(&other, "extra", 0..100));
}

#[test]
fn times_follow_the_rate_and_stay_within_out_of_orderness() {
    let in_order = source(EventKind::Bid, config(100_000));
    let times = ints(&in_order, "date_time", 0..20_000);
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    // Bid 0 is event 4: 0.4 ms after the base time, truncated.
    assert_eq!(times[0], DEFAULT_BASE_TIME_MS);
    // 10,000 events per second: the last of 20,000 bids (event 21,739) is at 2.17 s.
    assert_eq!(times[19_999], DEFAULT_BASE_TIME_MS + 2_173);

    let jittered = source(
        EventKind::Bid,
        NexmarkConfig {
            out_of_orderness_ms: 500,
            ..config(100_000)
        },
    );
    let late = ints(&jittered, "date_time", 0..20_000);
    let mut max_seen = late[0];
    let mut out_of_order = 0;
    for (t, in_order) in late.iter().zip(&times) {
        assert!(*t <= *in_order && *t >= in_order - 500);
        assert!(max_seen - t <= 500);
        if *t < max_seen {
            out_of_order += 1;
        }
        max_seen = max_seen.max(*t);
    }
    assert!(out_of_order > 10_000, "{out_of_order}");
    assert_eq!(late, ints(&jittered, "date_time", 0..20_000));

    let auctions = source(EventKind::Auction, config(100_000));
    let created = ints(&auctions, "date_time", 0..2_000);
    let expires = ints(&auctions, "expires", 0..2_000);
    assert!(created.iter().zip(&expires).all(|(c, e)| e > c && *e <= c + 334));
}

#[test]
fn ids_are_consistent_between_streams() {
    let events = 200_000;
    let people = source(EventKind::Person, config(events));
    let auctions = source(EventKind::Auction, config(events));
    let bids = source(EventKind::Bid, config(events));
    let person_ids = ints(&people, "id", 0..people.rows().expect("bounded"));
    let auction_ids = ints(&auctions, "id", 0..auctions.rows().expect("bounded"));
    assert_eq!(person_ids, (1000..1000 + 4_000).collect::<Vec<_>>());
    assert_eq!(auction_ids, (1000..1000 + 12_000).collect::<Vec<_>>());

    let sellers = ints(&auctions, "seller", 0..12_000);
    let bid_auctions = ints(&bids, "auction", 0..bids.rows().expect("bounded"));
    let bidders = ints(&bids, "bidder", 0..bids.rows().expect("bounded"));
    let known_people: HashSet<i64> = person_ids.iter().copied().collect();
    let known_auctions: HashSet<i64> = auction_ids.iter().copied().collect();
    // Sellers and bidders reach at most PERSON_ID_LEAD past the newest person,
    // bids AUCTION_ID_LEAD past the newest auction; nearly all are known.
    let share = |values: &[i64], known: &HashSet<i64>| {
        values.iter().filter(|v| known.contains(v)).count() as f64 / values.len() as f64
    };
    assert!(share(&sellers, &known_people) > 0.99);
    assert!(share(&bidders, &known_people) > 0.99);
    assert!(share(&bid_auctions, &known_auctions) > 0.99);
    assert!(
        bid_auctions
            .iter()
            .all(|&a| (1000..1000 + 12_000 + 10).contains(&a))
    );

    // Hot auctions: half the bids go to a multiple of 100 (plus the first id).
    let hot = bid_auctions.iter().filter(|&&a| (a - 1000) % 100 == 0).count() as f64;
    let ratio = hot / bid_auctions.len() as f64;
    assert!((0.45..0.6).contains(&ratio), "{ratio}");
    // Each bid's auction exists by its time: not newer than the newest + lead.
    for (k, a) in bid_auctions.iter().enumerate().take(10_000) {
        let e = EventKind::Bid.event_of(k as u64);
        assert!(*a <= 1000 + last_base0_auction_id(e) + AUCTION_ID_LEAD as i64);
    }
}

#[test]
fn values_look_like_nexmark() {
    let bids = source(EventKind::Bid, config(100_000));
    let prices = ints(&bids, "price", 0..50_000);
    assert!(prices.iter().all(|p| (100..=100_000_000).contains(p)));
    let channels = strings(&bids, "channel", 0..50_000);
    let urls = strings(&bids, "url", 0..50_000);
    let hot = channels
        .iter()
        .filter(|c| HOT_CHANNEL_NAMES.contains(&c.as_str()))
        .count() as f64
        / channels.len() as f64;
    assert!((0.45..0.55).contains(&hot), "{hot}");
    let mut url_of = BTreeMap::new();
    for (c, u) in channels.iter().zip(&urls) {
        assert!(
            u.starts_with("https://www.nexmark.com/") && u.contains("item.htm?query=1"),
            "{u}"
        );
        assert_eq!(
            url_of.entry(c.clone()).or_insert_with(|| u.clone()),
            u,
            "one URL per channel"
        );
        assert!(HOT_CHANNEL_NAMES.contains(&c.as_str()) || c.starts_with("channel-"));
    }
    let extra = strings(&bids, "extra", 0..1_000);
    assert!(extra.iter().all(|e| (54..=82).contains(&e.len())));

    let auctions = source(EventKind::Auction, config(100_000));
    let categories: HashSet<i64> = ints(&auctions, "category", 0..6_000).into_iter().collect();
    assert_eq!(categories, (10..15).collect());
    let initial = ints(&auctions, "initial_bid", 0..6_000);
    let reserve = ints(&auctions, "reserve", 0..6_000);
    assert!(initial.iter().zip(&reserve).all(|(i, r)| r > i));
    let names = strings(&auctions, "item_name", 0..1_000);
    assert!(names.iter().all(|n| n.len() <= 19 && n.trim() == n));

    let people = source(EventKind::Person, config(100_000));
    let cards = strings(&people, "credit_card", 0..1_000);
    assert!(cards.iter().all(|c| c.len() == 19 && c.split(' ').count() == 4));
    let emails = strings(&people, "email_address", 0..1_000);
    assert!(emails.iter().all(|e| e.contains('@') && e.ends_with(".com")));
    let states = strings(&people, "state", 0..1_000);
    assert!(
        states
            .iter()
            .all(|s| ["AZ", "CA", "ID", "OR", "WA", "WY"].contains(&s.as_str()))
    );
    let full_names = strings(&people, "name", 0..1_000);
    assert!(full_names.iter().all(|n| n.split(' ').count() == 2));
}

const HOT_CHANNEL_NAMES: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

#[test]
fn options_configure_the_stream() {
    let table = create_table(
        "t",
        None,
        opts(&[
            ("table", "Auction"),
            ("events", "1_000"),
            ("seed", "7"),
            ("base.time", "2024-01-01 00:00:00"),
            ("events.per.second", "1000"),
            ("out.of.orderness", "2 s"),
            ("rate", "5000"),
        ]),
    )
    .expect("valid options");
    assert_eq!(table.description, "auction, 1000 events, seed 7");
    assert_eq!(table.boundedness, Boundedness::Bounded);
    assert_eq!(table.provider.rows(), Some(60));
    assert_eq!(
        table.provider.rate(),
        Some(300),
        "auctions are 3 in 50 of 5000 events/s"
    );

    let unbounded = create_table("bids", None, opts(&[])).expect("named after the stream");
    assert_eq!(unbounded.boundedness, Boundedness::Unbounded);
    assert_eq!(unbounded.description, "bid, unbounded, seed 0");
    assert_eq!(
        unbounded.provider.schema().field(5).data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, None)
    );

    let mut o = opts(&[("events.per.second", "20"), ("out.of.orderness", "250ms")]);
    let (config, kind) = parse_options("person", &mut o).expect("valid");
    assert_eq!(
        (config.events_per_second, config.out_of_orderness_ms, kind),
        (20, 250, EventKind::Person)
    );
}

/// A table name, declared columns, options, and the error they give.
type ErrorCase<'a> = (&'a str, Option<SchemaRef>, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn option_errors_say_what_is_wrong() {
    let declared =
        |name: &str, t: DataType| Some(Arc::new(Schema::new(vec![Field::new(name, t, true)])) as SchemaRef);
    let cases: &[ErrorCase] = &[
        ("t", None, &[("events", "10")], "missing option 'table'"),
        (
            "t",
            None,
            &[("table", "bidz")],
            "option 'table' must be 'person', 'auction' or 'bid', not 'bidz'",
        ),
        (
            "bid",
            None,
            &[("events", "lots")],
            "option 'events' must be a whole number",
        ),
        (
            "bid",
            None,
            &[("evnts", "10")],
            "unknown option 'evnts' for connector 'nexmark'; it accepts: connector, table, events",
        ),
        (
            "bid",
            None,
            &[("events.per.second", "0")],
            "'events.per.second' must be at least 1",
        ),
        (
            "bid",
            None,
            &[("base.time", "soon")],
            "option 'base.time' must be a timestamp",
        ),
        (
            "bid",
            declared("bidderr", DataType::Int64),
            &[],
            "column 'bidderr' is not in the Nexmark bid stream; its columns are: auction, bidder, price, channel, url, date_time, extra",
        ),
        (
            "bid",
            declared("price", DataType::Utf8),
            &[],
            "column 'price' of the Nexmark bid stream is Int64, but the table declares Utf8: declare it BIGINT",
        ),
    ];
    for (table, schema, pairs, expected) in cases {
        let e = create_table(table, schema.clone(), opts(pairs))
            .expect_err("invalid")
            .to_string();
        assert!(e.contains(expected), "{e}");
    }
}

#[test]
fn declared_columns_may_be_a_subset_in_any_order() {
    let declared = Arc::new(Schema::new(vec![
        Field::new(
            "DATE_TIME",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("price", DataType::Int32, true),
        Field::new("url", DataType::Utf8, true),
    ]));
    let table = create_table(
        "bid",
        Some(Arc::clone(&declared) as SchemaRef),
        opts(&[("events", "100")]),
    )
    .expect("compatible");
    assert_eq!(table.provider.schema(), declared as SchemaRef);
    assert_eq!(
        match_declared(EventKind::Bid, &table.provider.schema()).expect("known"),
        vec![5, 2, 4]
    );
}
