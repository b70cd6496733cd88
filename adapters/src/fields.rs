//! What the field tables of the JSON formats share (Jiangsu's `jiangsu/records.rs`, Beijing's
//! `beijing/records.rs`): [`Acc`], where a field's value lives in a canonical record, written with
//! [`acc!`]. Each format's table type says how the value is spelled in that format.

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
