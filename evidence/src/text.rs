//! The signed and hashed texts: `key=value` lines, each ended by one line feed, values escaped so
//! that no value can end its line early or pose as another key (`%` → `%25`, line feed → `%0A`,
//! carriage return → `%0D`; nothing else changes).

/// Builds one signed or hashed text.
pub(crate) struct Lines(String);

impl Lines {
    /// A text whose first line is `header` (a fixed word naming the form and its version).
    pub(crate) fn new(header: &str) -> Lines {
        Lines(format!("{header}\n"))
    }

    /// Appends `key=value\n`, the value escaped.
    pub(crate) fn field(mut self, key: &str, value: &str) -> Lines {
        self.0.push_str(key);
        self.0.push('=');
        for c in value.chars() {
            match c {
                '%' => self.0.push_str("%25"),
                '\n' => self.0.push_str("%0A"),
                '\r' => self.0.push_str("%0D"),
                c => self.0.push(c),
            }
        }
        self.0.push('\n');
        self
    }

    /// The text's bytes (UTF-8).
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_forge_lines() {
        let forged = Lines::new("h").field("a", "1\nb=2").into_bytes();
        let honest = Lines::new("h").field("a", "1").field("b", "2").into_bytes();
        assert_ne!(forged, honest);
        assert_eq!(String::from_utf8(forged).unwrap(), "h\na=1%0Ab=2\n");
        assert_eq!(String::from_utf8(Lines::new("h").field("a", "%0A\r").into_bytes()).unwrap(), "h\na=%250A%0D\n");
    }
}
