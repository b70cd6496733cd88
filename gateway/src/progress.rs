//! Progress of long offline work (`yrdx translate` of many files, `yrdx conformance run`, the
//! bench), always on stderr so that stdout keeps only the command's output (translated
//! documents, reports). On a terminal, an `indicatif` bar; elsewhere (a CI log, a pipe) one plain
//! line each time another tenth of the work is done: `translate: 30% (3/10 files)`.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

/// Where the progress goes.
enum Sink {
    /// A bar redrawn in place (stderr is a terminal).
    Bar(indicatif::ProgressBar),
    /// Plain lines, one per tenth.
    Lines(Box<dyn Write + Send>),
}

struct State {
    done: u64,
    /// Tenths already announced by a line.
    tenths_shown: u64,
    sink: Sink,
}

/// The progress of `total` units of one piece of work.
pub struct Progress {
    what: String,
    unit: String,
    total: u64,
    state: Mutex<State>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").field("what", &self.what).field("total", &self.total).finish_non_exhaustive()
    }
}

impl Progress {
    /// Progress of `what` (`translate`) over `total` `unit`s (`files`) on stderr: a bar when
    /// stderr is a terminal, plain lines otherwise.
    pub fn on_stderr(what: &str, unit: &str, total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} {elapsed_precise} (left {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(what.to_string());
            bar.set_message(unit.to_string());
            Progress::with_sink(what, unit, total, Sink::Bar(bar))
        } else {
            Progress::lines(what, unit, total, Box::new(std::io::stderr()))
        }
    }

    /// Progress as plain lines into `out` (what [`Progress::on_stderr`] does off a terminal).
    pub fn lines(what: &str, unit: &str, total: u64, out: Box<dyn Write + Send>) -> Progress {
        Progress::with_sink(what, unit, total, Sink::Lines(out))
    }

    fn with_sink(what: &str, unit: &str, total: u64, sink: Sink) -> Progress {
        Progress {
            what: what.to_string(),
            unit: unit.to_string(),
            total,
            state: Mutex::new(State { done: 0, tenths_shown: 0, sink }),
        }
    }

    /// Whether a bar is drawn (stderr is a terminal).
    pub fn is_bar(&self) -> bool {
        matches!(self.state.lock().unwrap_or_else(PoisonError::into_inner).sink, Sink::Bar(_))
    }

    /// `n` more units are done.
    pub fn advance(&self, n: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let done = state.done.saturating_add(n).min(self.total);
        self.show(&mut state, done);
    }

    /// `done` units are done in all (never more than the total; never going back).
    pub fn set(&self, done: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let done = done.min(self.total).max(state.done);
        self.show(&mut state, done);
    }

    fn show(&self, state: &mut State, done: u64) {
        state.done = done;
        let tenths = done.saturating_mul(10).checked_div(self.total).unwrap_or(0);
        match &mut state.sink {
            Sink::Bar(bar) => bar.set_position(done),
            Sink::Lines(out) => {
                if tenths > state.tenths_shown {
                    // Several tenths at once (fewer than ten units): one line, at the latest.
                    let percent = done.saturating_mul(100) / self.total.max(1);
                    let _ = writeln!(out, "{}: {percent}% ({done}/{} {})", self.what, self.total, self.unit);
                    let _ = out.flush();
                }
            }
        }
        state.tenths_shown = state.tenths_shown.max(tenths);
    }

    /// A line of its own (a failed case, a finding): above the bar on a terminal, as it is
    /// otherwise.
    pub fn println(&self, line: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut state.sink {
            Sink::Bar(bar) => bar.println(line),
            Sink::Lines(out) => {
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
    }

    /// The work is over: the bar is cleared (the command's own summary follows).
    pub fn finish(&self) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Sink::Bar(bar) = &state.sink {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
                .lines()
                .map(String::from)
                .collect()
        }
    }

    #[test]
    fn off_a_terminal_one_line_per_tenth() {
        let out = Captured::default();
        let p = Progress::lines("translate", "files", 20, Box::new(out.clone()));
        assert!(!p.is_bar());
        for _ in 0..20 {
            p.advance(1);
        }
        let lines = out.lines();
        assert_eq!(lines.len(), 10, "{lines:?}");
        assert_eq!(lines[0], "translate: 10% (2/20 files)");
        assert_eq!(lines[4], "translate: 50% (10/20 files)");
        assert_eq!(lines[9], "translate: 100% (20/20 files)");
    }

    #[test]
    fn few_units_and_jumps_give_one_line_each_and_never_past_the_total() {
        let out = Captured::default();
        let p = Progress::lines("gateway run", "ms", 3, Box::new(out.clone()));
        p.advance(1);
        p.advance(1);
        p.println("case X failed");
        p.advance(5);
        p.set(1);
        assert_eq!(
            out.lines(),
            ["gateway run: 33% (1/3 ms)", "gateway run: 66% (2/3 ms)", "case X failed", "gateway run: 100% (3/3 ms)"]
        );
        let out = Captured::default();
        let p = Progress::lines("bench", "ms", 1000, Box::new(out.clone()));
        p.set(450);
        p.set(1000);
        assert_eq!(out.lines(), ["bench: 45% (450/1000 ms)", "bench: 100% (1000/1000 ms)"]);
        let out = Captured::default();
        Progress::lines("nothing", "files", 0, Box::new(out.clone())).advance(1);
        assert!(out.lines().is_empty());
    }
}
