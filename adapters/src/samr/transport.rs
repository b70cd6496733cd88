//! The wire facts of SAMR's HTTP intake interface, shared by the gateway's pusher and the
//! conformance suite that plays the pusher's part, so that both speak the same interface.

/// The `Content-Type` of a POSTed data package: XML in GB18030, the packages' encoding.
pub const PACKAGE_CONTENT_TYPE: &str = "application/xml; charset=GB18030";

/// The seconds a `Retry-After` header value asks the sender to wait: the value trimmed and
/// read as a whole number of seconds. An HTTP date or anything else unreadable gives `None`
/// (the sender then keeps its own back-off).
pub fn retry_after_seconds(header_value: &str) -> Option<u64> {
    header_value.trim().parse::<u64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_whole_seconds_around_white_space() {
        assert_eq!(retry_after_seconds("120"), Some(120));
        assert_eq!(retry_after_seconds(" 7 "), Some(7));
        assert_eq!(retry_after_seconds("0"), Some(0));
    }

    #[test]
    fn retry_after_refuses_dates_negatives_and_fractions() {
        assert_eq!(retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT"), None);
        assert_eq!(retry_after_seconds("-1"), None);
        assert_eq!(retry_after_seconds("1.5"), None);
        assert_eq!(retry_after_seconds(""), None);
    }

    #[test]
    fn package_content_type_names_gb18030() {
        assert_eq!(PACKAGE_CONTENT_TYPE, "application/xml; charset=GB18030");
    }
}
