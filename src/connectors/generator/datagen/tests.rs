use arrow::array::AsArray;
use arrow::datatypes::{Decimal128Type, Field, Float64Type, Schema, TimestampMillisecondType};

use super::*;

fn opts(pairs: &[(&str, &str)]) -> Options {
    Options::try_new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid")
}

fn schema(fields: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

/// Every column of `rows` rows of a datagen table.
fn generate(
    fields: &[(&str, DataType)],
    pairs: &[(&str, &str)],
    rows: u64,
) -> (GeneratorTable, Vec<ArrayRef>) {
    let table = create_table(Some(schema(fields)), opts(pairs)).expect("valid options");
    let source = DatagenSource {
        schema: schema(fields),
        ..source_of(fields, pairs)
    };
    let columns: Vec<usize> = (0..fields.len()).collect();
    let arrays = source.generate(&columns, 0..rows).expect("generate");
    (table, arrays)
}

/// The source a table's options describe (tests drive it directly).
fn source_of(fields: &[(&str, DataType)], pairs: &[(&str, &str)]) -> DatagenSource {
    let mut o = opts(pairs);
    let seed = o.take("seed").map(|s| s.parse().expect("seed")).unwrap_or(0);
    let mut specs = Vec::new();
    for (i, (name, t)) in fields.iter().enumerate() {
        let values = o
            .take_prefixed(&format!("fields.{name}."))
            .into_iter()
            .collect::<Vec<_>>();
        let (spec, _) = column_spec(name, t, FieldOptions { values }, i as u64).expect("valid column");
        specs.push(spec);
    }
    let mut rng = Rng::new(seed, 1);
    DatagenSource {
        schema: schema(fields),
        columns: specs,
        seed,
        text: TextPool::new(TEXT_POOL_BYTES, || b'a' + rng.below(26) as u8),
        rows_per_second: None,
    }
}

fn err(fields: &[(&str, DataType)], pairs: &[(&str, &str)]) -> String {
    create_table(Some(schema(fields)), opts(pairs))
        .expect_err("invalid")
        .to_string()
}

#[test]
fn random_values_respect_their_ranges() {
    let fields = [
        ("small", DataType::Int16),
        ("x", DataType::Float64),
        ("amount", DataType::Decimal128(10, 2)),
        ("ts", DataType::Timestamp(TimeUnit::Millisecond, None)),
        ("name", DataType::Utf8),
        ("flag", DataType::Boolean),
        ("day", DataType::Date32),
    ];
    let (table, arrays) = generate(
        &fields,
        &[
            ("rows", "10000"),
            ("seed", "3"),
            ("rows-per-second", "500"),
            ("fields.small.min", "-5"),
            ("fields.small.max", "5"),
            ("fields.x.min", "1.5"),
            ("fields.x.max", "2.5"),
            ("fields.amount.min", "0.5"),
            ("fields.amount.max", "99.99"),
            ("fields.ts.min", "2024-01-01 00:00:00"),
            ("fields.ts.max", "2024-01-02 00:00:00"),
            ("fields.name.length", "8"),
            ("fields.day.min", "2024-02-01"),
            ("fields.day.max", "2024-02-03"),
        ],
        10_000,
    );
    assert_eq!(table.provider.rows(), Some(10_000));
    assert_eq!(table.provider.rate(), Some(500));
    assert_eq!(table.description, "10000 rows, seed 3");
    let small = arrays[0].as_primitive::<Int16Type>().values();
    assert!(small.iter().all(|v| (-5..=5).contains(v)));
    assert!((-5..=5).all(|v| small.contains(&v)), "every value occurs");
    let x = arrays[1].as_primitive::<Float64Type>().values();
    assert!(x.iter().all(|v| (1.5..2.5).contains(v)));
    let amount = arrays[2].as_primitive::<Decimal128Type>().values();
    assert!(amount.iter().all(|v| (50..=9_999).contains(v)));
    let ts = arrays[3].as_primitive::<TimestampMillisecondType>().values();
    assert!(
        ts.iter()
            .all(|v| (1_704_067_200_000..=1_704_153_600_000).contains(v))
    );
    let names = arrays[4].as_string_view();
    assert!(
        names
            .iter()
            .all(|n| n.is_some_and(|n| n.len() == 8 && n.is_ascii()))
    );
    let flags = arrays[5].as_boolean();
    let trues = flags.true_count();
    assert!((4_500..5_500).contains(&trues), "{trues}");
    let days = arrays[6].as_primitive::<arrow::datatypes::Date32Type>().values();
    assert!(days.iter().all(|d| (19_754..=19_756).contains(d)));
}

#[test]
fn sequences_count_up_and_bound_the_table() {
    let fields = [
        ("id", DataType::Int64),
        ("ts", DataType::Timestamp(TimeUnit::Millisecond, None)),
        ("label", DataType::Utf8View),
    ];
    let pairs = [
        ("fields.id.kind", "sequence"),
        ("fields.id.start", "10"),
        ("fields.id.end", "19"),
        ("fields.ts.kind", "sequence"),
        ("fields.ts.start", "2024-01-01T00:00:00Z"),
        ("fields.ts.step", "250 ms"),
        ("fields.label.kind", "sequence"),
        ("fields.label.start", "7"),
        ("fields.label.step", "2"),
    ];
    let (table, arrays) = generate(&fields, &pairs, 10);
    assert_eq!(table.provider.rows(), Some(10), "the id sequence has 10 values");
    assert_eq!(table.boundedness, Boundedness::Bounded);
    assert_eq!(
        arrays[0].as_primitive::<Int64Type>().values().to_vec(),
        (10..20).collect::<Vec<_>>()
    );
    let ts = arrays[1].as_primitive::<TimestampMillisecondType>().values();
    assert_eq!(ts[3] - ts[0], 750);
    assert_eq!(arrays[2].as_string_view().value(2), "11");

    let mut with_rows = pairs.to_vec();
    with_rows.push(("rows", "4"));
    let table = create_table(Some(schema(&fields)), opts(&with_rows)).expect("valid");
    assert_eq!(table.provider.rows(), Some(4));
    let unbounded = create_table(Some(schema(&fields[1..])), opts(&pairs[3..])).expect("valid");
    assert_eq!(unbounded.boundedness, Boundedness::Unbounded);
}

#[test]
fn strings_vary_in_length_and_nulls_follow_the_rate() {
    let fields = [("s", DataType::Utf8View), ("n", DataType::Int32)];
    let pairs = [
        ("seed", "9"),
        ("fields.s.length", "20"),
        ("fields.s.var-len", "true"),
        ("fields.n.null-rate", "0.25"),
    ];
    let (_, arrays) = generate(&fields, &pairs, 8_000);
    let lengths: std::collections::HashSet<usize> = arrays[0]
        .as_string_view()
        .iter()
        .map(|s| s.map_or(0, str::len))
        .collect();
    assert_eq!(lengths, (1..=20).collect());
    let nulls = arrays[1].null_count();
    assert!((1_800..2_200).contains(&nulls), "{nulls}");
    // The same rows, generated in two halves, are the same.
    let source = source_of(&fields, &pairs);
    let a = source.generate(&[1], 0..3_000).expect("generate");
    let b = source.generate(&[1], 3_000..8_000).expect("generate");
    let joined = arrow::compute::concat(&[a[0].as_ref(), b[0].as_ref()]).expect("concat");
    assert_eq!(joined.as_ref(), arrays[1].as_ref());
}

#[test]
fn option_errors_say_what_is_wrong() {
    let e = create_table(None, opts(&[])).expect_err("no columns").to_string();
    assert!(e.contains("datagen connector needs declared columns"), "{e}");
    let fields = [("id", DataType::Int32), ("ok", DataType::Boolean)];
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("rowz", "1")],
            "unknown option 'rowz' for connector 'datagen'; it accepts: connector, rows",
        ),
        (
            &[("fields.idd.kind", "random")],
            "option 'fields.idd.kind' names no column of the table; its columns are: id, ok",
        ),
        (&[("fields.id.lenght", "3")], "unknown option 'fields.id.lenght'"),
        (
            &[("fields.id.length", "3")],
            "does not apply to random Int32 column 'id'; it takes: kind, min, max, null-rate",
        ),
        (&[("fields.id.max", "3000000000")], "out of range for Int32"),
        (
            &[("fields.id.min", "5"), ("fields.id.max", "1")],
            "'fields.id.max' (1) is below 'fields.id.min' (5)",
        ),
        (
            &[("fields.ok.kind", "sequence")],
            "BOOLEAN, which has no sequence",
        ),
        (
            &[("fields.id.kind", "serial")],
            "must be 'random' or 'sequence', not 'serial'",
        ),
        (&[("rows", "1"), ("number-of-rows", "2")], "give one"),
    ];
    for (pairs, expected) in cases {
        let e = err(&fields, pairs);
        assert!(e.contains(expected), "{e}");
    }
    let e = err(&[("l", DataType::new_list(DataType::Int32, true))], &[]);
    assert!(e.contains("datagen cannot generate column 'l'"), "{e}");
}

#[test]
fn decimals_parse_at_their_scale() {
    assert_eq!(parse_decimal("12.5", 2), Some(1_250));
    assert_eq!(parse_decimal("-0.01", 2), Some(-1));
    assert_eq!(parse_decimal("3", 0), Some(3));
    assert_eq!(parse_decimal("1.234", 2), None);
    assert_eq!(parse_decimal("1.230", 2), Some(123));
    assert_eq!(parse_decimal("x", 2), None);
}
