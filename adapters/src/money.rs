//! Money: canonical fen (分) as integers, partners' yuan as decimal strings with exactly two
//! decimals. Never a float.

/// Text that is not an amount in yuan with exactly two decimals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not an amount in yuan with exactly two decimals (e.g. 128.00)")]
pub struct AmountError {
    /// The text as given.
    pub text: String,
    /// Why the digits did not parse, when they got that far.
    #[source]
    pub source: Option<std::num::ParseIntError>,
}

/// Parses yuan with exactly two decimals and no sign or separators (`"689.00"`) into fen.
pub fn parse_yuan(text: &str) -> Result<i64, AmountError> {
    let expected = || AmountError { text: text.to_string(), source: None };
    let (whole, frac) = text.split_once('.').ok_or_else(expected)?;
    if whole.is_empty()
        || whole.len() > 15
        || frac.len() != 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (whole.len() > 1 && whole.starts_with('0'))
    {
        return Err(expected());
    }
    let because = |e| AmountError { text: text.to_string(), source: Some(e) };
    let yuan: i64 = whole.parse().map_err(because)?;
    let fen: i64 = frac.parse().map_err(because)?;
    Ok(yuan * 100 + fen)
}

/// Formats fen as yuan with exactly two decimals (`68900` → `"689.00"`).
pub fn format_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_round_trip() {
        for fen in [0, 1, 99, 100, 68_900, 12_345_678_901] {
            assert_eq!(parse_yuan(&format_yuan(fen)), Ok(fen));
        }
        assert_eq!(format_yuan(68_900), "689.00");
        assert_eq!(format_yuan(5), "0.05");
    }

    #[test]
    fn strict_yuan() {
        for bad in ["689", "689.0", "689.000", "-1.00", "1,000.00", " 1.00", "01.00", ".50", "1e3.00", ""] {
            assert!(parse_yuan(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_yuan("0.50"), Ok(50));
    }
}
