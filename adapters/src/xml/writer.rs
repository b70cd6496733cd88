//! The deterministic XML writer (two spaces a level, `\n` line ends) every XML encoder uses.

/// A deterministic, indented XML writer (two spaces a level, `\n` line ends).
pub(crate) struct Writer {
    pub out: String,
    depth: usize,
}

impl Writer {
    pub fn new(declaration: &str) -> Writer {
        let mut out = String::with_capacity(4096);
        out.push_str(declaration);
        out.push('\n');
        Writer { out, depth: 0 }
    }

    /// Starts at a given indentation depth with no declaration (a fragment).
    pub fn fragment(depth: usize) -> Writer {
        Writer { out: String::with_capacity(4096), depth }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            self.out.push_str(&quick_xml::escape::escape(*v));
            self.out.push('"');
        }
    }

    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        self.tag(name, attrs);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    pub fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// `<name attrs>text</name>`, or `<name attrs/>` when text is empty.
    pub fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.indent();
        self.tag(name, attrs);
        if text.is_empty() {
            self.out.push_str("/>\n");
        } else {
            self.out.push('>');
            self.out.push_str(&quick_xml::escape::minimal_escape(text));
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push_str(">\n");
        }
    }

    /// A leaf only when the value is present (Zhejiang omits absent values).
    pub fn opt_leaf(&mut self, name: &str, text: &str) {
        if !text.is_empty() {
            self.leaf(name, &[], text);
        }
    }
}
