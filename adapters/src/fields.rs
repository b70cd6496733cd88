//! What the field tables of the JSON formats share (Jiangsu's `jiangsu/records.rs`, Beijing's
//! `beijing/records.rs`): a [`Field`] — a partner key, once, with the canonical path it holds and
//! how it is read and written — and [`Acc`], where the value lives in a canonical record,
//! written with [`acc!`]. Each format's `Io` says how a value is spelled in that format.

/// One partner key of a record, in a format whose codecs are `I`.
pub(crate) struct Field<I> {
    /// The partner's key (`CYDBH`, `sampleNo`).
    pub key: &'static str,
    /// The canonical path it holds (`sample_id`, `seller.uscc`), as the domain rules name it.
    pub path: &'static str,
    /// How its value is read and written.
    pub io: I,
}

/// The key of the field holding canonical `path` (`""` when the table has none).
pub(crate) fn key_of<I>(table: &[Field<I>], path: &str) -> &'static str {
    table.iter().find(|f| f.path == path).map_or("", |f| f.key)
}

/// Where a value lives in a record: `get` for encoding (`None`: the optional part holding it is
/// absent), `slot` for decoding (creating the optional part).
pub(crate) struct Acc<R, V: 'static> {
    pub get: for<'r> fn(&'r R) -> Option<&'r V>,
    pub slot: fn(&mut R) -> &mut V,
}

/// An accessor for a field of the record (`acc!(sample_id)`), a field of one of its optional parts
/// (`acc!(seller.uscc)`) or an optional part itself (`acc!(product?)`).
macro_rules! acc {
    ($f:ident) => {
        $crate::fields::Acc { get: |r| Some(&r.$f), slot: |r| &mut r.$f }
    };
    ($o:ident ?) => {
        $crate::fields::Acc { get: |r| r.$o.as_ref(), slot: |r| r.$o.get_or_insert_with(Default::default) }
    };
    ($o:ident . $f:ident) => {
        $crate::fields::Acc {
            get: |r| r.$o.as_ref().map(|p| &p.$f),
            slot: |r| &mut r.$o.get_or_insert_with(Default::default).$f,
        }
    };
}
pub(crate) use acc;
