//! Moving a whole store from one backend to another (`yrdx store copy`): every row of every
//! table, ids kept (a partner may hold delivery ids), then counts and a checksum compared.

use super::{Store, StoreError};
use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// How a column's values are kept, the same on every backend (a backend maps each to its own
/// column type: `Int` is SQLite's INTEGER and PostgreSQL's INTEGER, `BigInt` PostgreSQL's BIGINT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// A 64-bit integer (ids, instants in milliseconds).
    BigInt,
    /// A 32-bit integer (attempts, stages, sequence numbers).
    Int,
    /// A 64-bit integer that may be absent.
    OptBigInt,
    /// Text.
    Text,
    /// Text that may be absent.
    OptText,
    /// Bytes (documents, packages).
    Bytes,
    /// A flag.
    Bool,
}

/// One column of a copied table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The column's name in both backends' schemas.
    pub name: &'static str,
    /// How its values are kept.
    pub kind: ColumnType,
}

const fn col(name: &'static str, kind: ColumnType) -> Column {
    Column { name, kind }
}

/// A table as a copy sees it: the columns both backends share and the key that orders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// The table's name.
    pub name: &'static str,
    /// Its columns, in the order a [`Row`]'s values follow.
    pub columns: &'static [Column],
    /// The columns that order it uniquely (text keys compare bytewise on both backends, so both
    /// export a table in the same order and their checksums compare).
    pub key: &'static [&'static str],
}

impl Table {
    /// The column named `name`'s position in a row.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The column list, comma-separated, for a statement.
    pub fn column_list(&self) -> String {
        self.columns.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
    }

    /// The `INSERT` of one row: the table's columns, then `extra` ones a backend derives, with
    /// the backend's placeholder for parameter `n` (from 1) written by `mark`.
    pub fn insert_sql(&self, extra: &[&str], mark: impl Fn(usize) -> String) -> String {
        let columns: Vec<&str> = self.columns.iter().map(|c| c.name).chain(extra.iter().copied()).collect();
        let marks: Vec<String> = (1..=columns.len()).map(mark).collect();
        format!("INSERT INTO {} ({}) VALUES ({})", self.name, columns.join(", "), marks.join(", "))
    }
}

use ColumnType::{BigInt, Bool, Bytes, Int, OptBigInt, OptText, Text};

/// The tables of a store, in the order they are copied. Columns a backend derives from others
/// (PostgreSQL's record lookup keys) are not copied: the target derives them again.
pub const TABLES: [Table; 9] = [
    Table {
        name: "messages",
        columns: &[
            col("sender", Text),
            col("message_id", Text),
            col("digest", Text),
            col("document", Bytes),
            col("reply", Bytes),
            col("received_at_ms", BigInt),
            col("audit_position", OptBigInt),
            col("document_sm3", Text),
        ],
        key: &["sender", "message_id"],
    },
    Table {
        name: "records",
        columns: &[
            col("kind", Text),
            col("record_id", Text),
            col("sender", Text),
            col("message_id", Text),
            col("canonical", Text),
            col("stored_at_ms", BigInt),
        ],
        key: &["kind", "record_id"],
    },
    Table {
        name: "deliveries",
        columns: &[
            col("seq", BigInt),
            col("recipient", Text),
            col("message_id", Text),
            col("attempt", Int),
            col("visible_at_ms", BigInt),
            col("acked", Bool),
            col("created_at_ms", BigInt),
        ],
        key: &["seq"],
    },
    Table { name: "delivery_documents", columns: &[col("seq", BigInt), col("document", Bytes)], key: &["seq"] },
    Table {
        name: "samr_outbox",
        columns: &[
            col("seq", BigInt),
            col("kind", Text),
            col("record_id", Text),
            col("canonical", Text),
            col("created_at_ms", BigInt),
            col("package", OptText),
        ],
        key: &["seq"],
    },
    Table {
        name: "samr_packages",
        columns: &[
            col("number", Text),
            col("day", Text),
            col("sequence", Int),
            col("package_type", Text),
            col("bytes", Bytes),
            col("state", Text),
            col("attempts", Int),
            col("next_attempt_ms", BigInt),
            col("reason", Text),
            col("created_at_ms", BigInt),
        ],
        key: &["number"],
    },
    Table {
        name: "overdue_notices",
        columns: &[col("case_id", Text), col("status", Int), col("sent_at_ms", BigInt)],
        key: &["case_id", "status"],
    },
    Table {
        name: "audit_log",
        columns: &[col("position", BigInt), col("at_ms", BigInt), col("entry", Text)],
        key: &["position"],
    },
    Table { name: "audit_heads", columns: &[col("position", BigInt), col("head", Text)], key: &["position"] },
];

/// The copied table named `name`.
pub fn table_named(name: &str) -> Result<&'static Table, StoreError> {
    TABLES.iter().find(|t| t.name == name).ok_or_else(|| StoreError::Config(format!("no table {name} to copy")))
}

/// One value of a copied row, backend-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An absent optional value.
    Null,
    /// An integer (of either width).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A flag.
    Bool(bool),
}

impl Value {
    /// The text, when it is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// One stored row of a copied table: its values in the table's column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The table it belongs to.
    pub table: &'static Table,
    /// One value per column of `table`.
    pub values: Vec<Value>,
}

impl Row {
    /// The value of the column named `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.table.position(name).and_then(|i| self.values.get(i))
    }

    /// Feeds the row, unambiguously, into a checksum: the table, then each value tagged with its
    /// type (so no two different rows hash the same way).
    fn hash_into(&self, h: &mut Sha256) {
        h.update((self.table.name.len() as u64).to_be_bytes());
        h.update(self.table.name.as_bytes());
        for v in &self.values {
            let bytes = |h: &mut Sha256, tag: u8, b: &[u8]| {
                h.update([tag]);
                h.update((b.len() as u64).to_be_bytes());
                h.update(b);
            };
            match v {
                Value::Null => h.update([0]),
                Value::Int(n) => {
                    h.update([1]);
                    h.update(n.to_be_bytes());
                }
                Value::Text(t) => bytes(h, 2, t.as_bytes()),
                Value::Bytes(b) => bytes(h, 3, b),
                Value::Bool(b) => h.update([4, *b as u8]),
            }
        }
    }
}

/// Reading and writing whole tables, for moving a store.
#[async_trait]
pub trait StoreCopy: Send + Sync {
    /// Up to `limit` rows of `table` (one of [`TABLES`]) after the first `offset`, in the
    /// table's key order.
    async fn export_rows(&self, table: &'static str, offset: u64, limit: usize) -> Result<Vec<Row>, StoreError>;
    /// Writes rows as they are (ids kept) in one transaction; rows already present are an error.
    async fn import_rows(&self, rows: Vec<Row>) -> Result<(), StoreError>;
    /// Rows in `table` (one of [`TABLES`]).
    async fn count_rows(&self, table: &'static str) -> Result<u64, StoreError>;
    /// Makes the store's own id sequences continue after the imported ids.
    async fn after_import(&self) -> Result<(), StoreError>;
}

/// Rows and checksum of one table, on both sides of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    /// Table name.
    pub table: &'static str,
    /// Rows in the source.
    pub source_rows: u64,
    /// Rows in the target after the copy.
    pub target_rows: u64,
    /// SHA-256 over the source's rows, hex.
    pub source_sha256: String,
    /// SHA-256 over the target's rows, hex.
    pub target_sha256: String,
}

impl TableCount {
    /// Whether the table arrived whole.
    pub fn matches(&self) -> bool {
        self.source_rows == self.target_rows && self.source_sha256 == self.target_sha256
    }
}

/// What a copy did, table by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Each table's counts and checksums.
    pub tables: Vec<TableCount>,
}

impl CopyReport {
    /// Whether every table arrived whole.
    pub fn verified(&self) -> bool {
        self.tables.iter().all(TableCount::matches)
    }
}

const PAGE: usize = 500;

/// Copies every table of `from` into `to` (which must hold none of the rows yet), then reads both
/// back and compares counts and checksums. `progress` is told (table, rows copied so far, rows
/// in the source table).
pub async fn copy_store(
    from: &dyn Store,
    to: &dyn Store,
    mut progress: impl FnMut(&'static str, u64, u64) + Send,
) -> Result<CopyReport, StoreError> {
    let mut report = CopyReport::default();
    for table in TABLES.iter().map(|t| t.name) {
        let total = from.count_rows(table).await?;
        progress(table, 0, total);
        let mut offset = 0u64;
        let mut source = Sha256::new();
        loop {
            let rows = from.export_rows(table, offset, PAGE).await?;
            if rows.is_empty() {
                break;
            }
            offset += rows.len() as u64;
            for r in &rows {
                r.hash_into(&mut source);
            }
            to.import_rows(rows).await?;
            progress(table, offset, total);
        }
        let (target_rows, target) = digest_table(to, table).await?;
        report.tables.push(TableCount {
            table,
            source_rows: offset,
            target_rows,
            source_sha256: hex::encode(source.finalize()),
            target_sha256: target,
        });
    }
    to.after_import().await?;
    Ok(report)
}

/// Counts and hashes a table's rows in key order.
pub async fn digest_table(store: &dyn Store, table: &'static str) -> Result<(u64, String), StoreError> {
    let mut h = Sha256::new();
    let mut offset = 0u64;
    loop {
        let rows = store.export_rows(table, offset, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        offset += rows.len() as u64;
        for r in &rows {
            r.hash_into(&mut h);
        }
    }
    Ok((offset, hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(rows: &[Row]) -> String {
        let mut h = Sha256::new();
        rows.iter().for_each(|r| r.hash_into(&mut h));
        hex::encode(h.finalize())
    }

    #[test]
    fn every_table_orders_by_its_own_columns() {
        for t in &TABLES {
            assert!(t.key.iter().all(|k| t.position(k).is_some()), "{}: key outside its columns", t.name);
        }
        assert!(matches!(table_named("secrets"), Err(StoreError::Config(m)) if m.contains("secrets")));
        assert_eq!(
            table_named("audit_heads").unwrap().insert_sql(&["extra"], |n| format!("${n}")),
            "INSERT INTO audit_heads (position, head, extra) VALUES ($1, $2, $3)"
        );
    }

    #[test]
    fn the_checksum_tells_apart_rows_that_print_alike() {
        let outbox = table_named("samr_outbox").unwrap();
        let row = |package: Value| Row {
            table: outbox,
            values: vec![
                Value::Int(1),
                Value::Text("FXBS".into()),
                Value::Text("FX-1".into()),
                Value::Text("{}".into()),
                Value::Int(5),
                package,
            ],
        };
        assert_ne!(digest(&[row(Value::Null)]), digest(&[row(Value::Text(String::new()))]));
        assert_ne!(digest(&[row(Value::Text("ab".into()))]), digest(&[row(Value::Bytes(b"ab".to_vec()))]));
        // Values run into each other only with their lengths written.
        let heads = table_named("audit_heads").unwrap();
        let head = |p, h: &str| Row { table: heads, values: vec![Value::Int(p), Value::Text(h.into())] };
        assert_ne!(digest(&[head(1, "ab"), head(2, "c")]), digest(&[head(1, "a"), head(2, "bc")]));
        assert_eq!(row(Value::Null).get("record_id").and_then(Value::as_text), Some("FX-1"));
    }
}
