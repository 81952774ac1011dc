//! Regenerates the bundled sample data in `testdata/`:
//!
//! ```text
//! cargo run --example gen_testdata
//! ```
//!
//! The output is deterministic: a fixed seed drives a small inline PRNG
//! (SplitMix64), so the committed files only change when this program does.
//! `testdata/README.md` describes the tables and the `CREATE TABLE`
//! statements that read them.
//!
//! - `customers.csv`  500 rows: customer_id, name, country, signup_date
//! - `products.parquet` 200 rows: product_id, name, category, price
//! - `orders.csv`     5,000 rows over about three days, out of order by < 30 s
//! - `bids.ndjson`    5,000 Nexmark-style bids over about ten minutes, out of
//!   order by < 3 s (so a 4 s watermark delay sees no late rows)

use std::error::Error;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{Duration, NaiveDate, NaiveDateTime, Timelike};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const SEED: u64 = 0x5111_CE20_2611;
const CUSTOMERS: usize = 500;
const PRODUCTS: usize = 200;
const ORDERS: usize = 5_000;
const BIDS: usize = 5_000;

/// ISO 8601 with milliseconds, no zone: `2026-03-01T10:15:30.123`.
const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3f";

fn main() -> Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    std::fs::create_dir_all(&dir)?;
    let mut rng = Rng::new(SEED);

    let customers = customers(&mut rng);
    let products = products(&mut rng);
    write(&dir.join("customers.csv"), &customers_csv(&customers))?;
    write_products_parquet(&dir.join("products.parquet"), &products)?;
    write(&dir.join("orders.csv"), &orders_csv(&mut rng, &products))?;
    write(&dir.join("bids.ndjson"), &bids_ndjson(&mut rng))?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)?;
    println!("wrote {} ({} bytes)", path.display(), text.len());
    Ok(())
}

/// SplitMix64: tiny, fast, and good enough for sample data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }

    /// One of `items`, uniformly.
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as i64) as usize]
    }

    /// One of `items`, by weight.
    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut left = self.range(0, i64::from(total)) as u32;
        for (item, weight) in items {
            if left < *weight {
                return *item;
            }
            left -= weight;
        }
        items[items.len() - 1].0
    }
}

struct Customer {
    id: i64,
    name: String,
    country: &'static str,
    signup: NaiveDate,
}

const FIRST_NAMES: &[&str] = &[
    "Ada", "Ben", "Chloe", "Diego", "Elif", "Farah", "Goran", "Hana", "Ivan", "Julia", "Kenji", "Lena",
    "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Victor", "Wen", "Ximena",
    "Yusuf", "Zoe",
];
const LAST_NAMES: &[&str] = &[
    "Almeida", "Brandt", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jansen",
    "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Singh", "Tanaka", "Novak",
    "Weber", "Yilmaz",
];
const COUNTRIES: &[(&str, u32)] = &[
    ("US", 30),
    ("DE", 14),
    ("GB", 12),
    ("FR", 10),
    ("JP", 8),
    ("BR", 7),
    ("IN", 7),
    ("CA", 5),
    ("ES", 4),
    ("NL", 3),
];

fn customers(rng: &mut Rng) -> Vec<Customer> {
    let first_day = NaiveDate::from_ymd_opt(2023, 1, 1).expect("valid date");
    (1..=CUSTOMERS as i64)
        .map(|id| Customer {
            id,
            name: format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES)),
            country: rng.weighted(COUNTRIES),
            signup: first_day + Duration::days(rng.range(0, 1_155)),
        })
        .collect()
}

fn customers_csv(customers: &[Customer]) -> String {
    let mut out = String::from("customer_id,name,country,signup_date\n");
    for c in customers {
        let _ = writeln!(out, "{},{},{},{}", c.id, c.name, c.country, c.signup);
    }
    out
}

struct Product {
    id: i64,
    name: String,
    category: &'static str,
    price: f64,
}

/// Category, its nouns, and its price range in whole currency units.
const CATEGORIES: &[(&str, &[&str], (i64, i64))] = &[
    (
        "Electronics",
        &["Headphones", "Charger", "Speaker", "Keyboard", "Monitor"],
        (15, 400),
    ),
    (
        "Books",
        &["Novel", "Cookbook", "Atlas", "Guide", "Anthology"],
        (8, 45),
    ),
    ("Home", &["Lamp", "Kettle", "Blanket", "Vase", "Clock"], (12, 150)),
    (
        "Garden",
        &["Hose", "Planter", "Shears", "Bench", "Lantern"],
        (10, 220),
    ),
    (
        "Toys",
        &["Puzzle", "Robot", "Kite", "Train Set", "Board Game"],
        (7, 90),
    ),
    (
        "Sports",
        &["Racket", "Yoga Mat", "Bottle", "Helmet", "Backpack"],
        (9, 180),
    ),
    (
        "Clothing",
        &["Jacket", "Scarf", "Sneakers", "Hoodie", "Cap"],
        (12, 160),
    ),
    (
        "Beauty",
        &["Serum", "Shampoo", "Perfume", "Lotion", "Brush"],
        (5, 80),
    ),
];
const ADJECTIVES: &[&str] = &[
    "Classic",
    "Compact",
    "Deluxe",
    "Eco",
    "Essential",
    "Nordic",
    "Pro",
    "Smart",
    "Urban",
    "Vintage",
];

fn products(rng: &mut Rng) -> Vec<Product> {
    (1..=PRODUCTS as i64)
        .map(|id| {
            let (category, nouns, (lo, hi)) = *rng.pick(CATEGORIES);
            let cents = rng.range(lo * 100, hi * 100);
            // Prices end in .99, .49 or are whole-ish, as shops like them.
            let cents = match cents % 3 {
                0 => cents / 100 * 100 + 99,
                1 => cents / 100 * 100 + 49,
                _ => cents,
            };
            Product {
                id,
                name: format!("{} {}", rng.pick(ADJECTIVES), rng.pick(nouns)),
                category,
                price: cents as f64 / 100.0,
            }
        })
        .collect()
}

fn write_products_parquet(path: &Path, products: &[Product]) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("product_id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("price", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from_iter_values(products.iter().map(|p| p.id))),
            Arc::new(StringArray::from_iter_values(products.iter().map(|p| &p.name))),
            Arc::new(StringArray::from_iter_values(products.iter().map(|p| p.category))),
            Arc::new(Float64Array::from_iter_values(products.iter().map(|p| p.price))),
        ],
    )?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(File::create(path)?, schema, Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    println!("wrote {} ({} rows)", path.display(), products.len());
    Ok(())
}

const STATUSES: &[(&str, u32)] = &[
    ("completed", 70),
    ("shipped", 15),
    ("cancelled", 8),
    ("returned", 5),
    ("pending", 2),
];

/// Orders over about three days from 2026-03-01, busier by day than by
/// night. One order in ten is stamped up to 30 s earlier than its place in
/// the file, as events from several shop servers arrive.
fn orders_csv(rng: &mut Rng, products: &[Product]) -> String {
    let mut out = String::from("order_id,customer_id,product_id,quantity,amount,status,order_time\n");
    let mut clock = start_of("2026-03-01T00:00:00");
    for order_id in 1..=ORDERS as i64 {
        let daytime = (9..=21).contains(&clock.hour());
        let mean_gap_ms = if daytime { 30_000 } else { 110_000 };
        clock += Duration::milliseconds(rng.range(0, 2 * mean_gap_ms));
        let order_time = if rng.unit() < 0.1 {
            clock - Duration::milliseconds(rng.range(1, 30_000))
        } else {
            clock
        };
        // Three orders in ten come from the 50 regulars.
        let customer_id = if rng.unit() < 0.3 {
            rng.range(1, 51) * 7 % CUSTOMERS as i64 + 1
        } else {
            rng.range(1, CUSTOMERS as i64 + 1)
        };
        let product = rng.pick(products);
        let quantity = rng.weighted(&[(1, 60), (2, 25), (3, 10), (4, 3), (5, 2)]);
        let discount = if rng.unit() < 0.15 { 0.9 } else { 1.0 };
        let amount = product.price * quantity as f64 * discount;
        let _ = writeln!(
            out,
            "{order_id},{customer_id},{},{quantity},{amount:.2},{},{}",
            product.id,
            rng.weighted(STATUSES),
            order_time.format(TIMESTAMP_FORMAT)
        );
    }
    out
}

const CHANNELS: &[(&str, u32)] = &[("Google", 4), ("Facebook", 3), ("Baidu", 2), ("Apple", 1)];

/// Nexmark-style bids (columns as in Nexmark: auction, bidder, price in
/// cents, channel, url, date_time) over about ten minutes from
/// 2026-03-01T12:00:00. About 8 bids a second on a moving set of hot
/// auctions; one bid in ten is stamped up to 3 s early (out of order, but
/// never late for a `date_time - INTERVAL '4' SECOND` watermark).
fn bids_ndjson(rng: &mut Rng) -> String {
    let mut out = String::new();
    let mut clock = start_of("2026-03-01T12:00:00");
    for i in 0..BIDS as i64 {
        clock += Duration::milliseconds(rng.range(0, 240));
        let date_time = if rng.unit() < 0.1 {
            clock - Duration::milliseconds(rng.range(1, 3_000))
        } else {
            clock
        };
        let auction = 1_000 + i / 50 + rng.range(0, 20);
        // Half the bids come from 100 eager bidders.
        let bidder = if rng.unit() < 0.5 {
            2_000 + rng.range(0, 100) * 9 % 1_000
        } else {
            2_000 + rng.range(0, 1_000)
        };
        // Prices climb as an auction ages, with noise.
        let price = 100 + (auction % 37) * 250 + (i % 50) * 40 + rng.range(0, 2_000);
        let channel = rng.weighted(CHANNELS);
        let url = format!(
            "https://www.nexmark.com/{}/item.htm?query=1&channel_id={}",
            channel.to_lowercase(),
            rng.range(1, 10_000)
        );
        let _ = writeln!(
            out,
            r#"{{"auction":{auction},"bidder":{bidder},"price":{price},"channel":"{channel}","url":"{url}","date_time":"{}"}}"#,
            date_time.format(TIMESTAMP_FORMAT)
        );
    }
    out
}

fn start_of(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").expect("valid start time")
}
