//! Turning canonical field paths (`items[2].severity`) into a partner's own paths through a table.

/// Looks a canonical path up in `table` — pairs of a canonical pattern, with `[]` for each list
/// index, and a partner template with `{}` for each index — and returns the partner path.
/// Indices are shifted by `index_base` (1 for XPath). The longest matching prefix wins, so a
/// table entry for `seller` also covers `seller.uscc` when that has no entry of its own.
pub(crate) fn map_path(table: &[(&str, &str)], canonical: &str, index_base: usize) -> Option<String> {
    map_path_by(
        |pattern| table.iter().find(|(p, _)| *p == pattern).map(|(_, t)| (*t).to_string()),
        canonical,
        index_base,
    )
}

/// [`map_path`] with the templates from a function of the pattern (a field table's lookup).
pub(crate) fn map_path_by(
    template_of: impl Fn(&str) -> Option<String>,
    canonical: &str,
    index_base: usize,
) -> Option<String> {
    let mut pattern = String::with_capacity(canonical.len());
    let mut indices = Vec::new();
    let mut rest = canonical;
    while let Some(open) = rest.find('[') {
        pattern.push_str(&rest[..open]);
        let close = rest[open..].find(']')? + open;
        indices.push(rest[open + 1..close].parse::<usize>().ok()?);
        pattern.push_str("[]");
        rest = &rest[close + 1..];
    }
    pattern.push_str(rest);
    let mut candidate = pattern.as_str();
    loop {
        if let Some(template) = template_of(candidate) {
            let mut out = String::with_capacity(template.len() + 8);
            let mut idx = indices.iter();
            let mut parts = template.split("{}");
            if let Some(first) = parts.next() {
                out.push_str(first);
            }
            for part in parts {
                out.push_str(&(idx.next().copied().unwrap_or(0) + index_base).to_string());
                out.push_str(part);
            }
            return Some(out);
        }
        match candidate.rfind(['.', '[']) {
            Some(cut) => candidate = &candidate[..cut],
            None => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[(&str, &str)] = &[
        ("seller", "Seller"),
        ("seller.uscc", "Seller/CreditCode"),
        ("items[]", "Items/Item[{}]"),
        ("items[].severity", "Items/Item[{}]/@severity"),
    ];

    #[test]
    fn maps_with_indices_and_prefixes() {
        assert_eq!(map_path(TABLE, "seller.uscc", 1).as_deref(), Some("Seller/CreditCode"));
        assert_eq!(map_path(TABLE, "seller.name", 1).as_deref(), Some("Seller"));
        assert_eq!(map_path(TABLE, "items[2].severity", 1).as_deref(), Some("Items/Item[3]/@severity"));
        assert_eq!(map_path(TABLE, "items[0].name", 0).as_deref(), Some("Items/Item[0]"));
        assert_eq!(map_path(TABLE, "quantity", 0), None);
    }
}
