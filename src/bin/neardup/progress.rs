//! Progress bars and warnings on standard error, behind the library's observer trait.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use neardup::input::{Problem, ProblemKind};
use neardup::{Observer, Stage};

use crate::args::ProgressArg;

/// Problems printed one by one before neardup only counts them.
const SHOWN_PROBLEMS: u64 = 50;

pub struct Terminal {
    multi: MultiProgress,
    bars: Mutex<HashMap<Stage, ProgressBar>>,
    show_bars: bool,
    quiet: bool,
    /// `--strict`: the first problem stops the run and is the error printed, so it is
    /// not printed as a warning too.
    strict: bool,
    problems: AtomicU64,
    /// The first problem met, for the one line `--quiet` still prints.
    first_problem: Mutex<Option<String>>,
    /// The first missing field met and the fields its record has, for a hint when no
    /// record had it (`{"url":…,"body":…}` failed every record with no word of
    /// --id-field).
    first_missing: Mutex<Option<(String, Vec<String>)>>,
    /// `dedup`'s run, and whether it has --rejects: its warnings say what becomes of the
    /// record in its output, not that it is skipped.
    dedup: Option<bool>,
}

impl Terminal {
    /// After a run that found no document: when records lacked the id or text field, one
    /// hint naming the fields the first of them has, and the flags that name them.
    pub fn hint_fields(&self, documents: u64) {
        if documents > 0 {
            return;
        }
        let Some((field, present)) = self.first_missing.lock().expect("problem lock").take() else {
            return;
        };
        let present: Vec<String> = present.iter().map(|f| format!("{f:?}")).collect();
        let has = if present.is_empty() {
            "no fields".to_string()
        } else {
            format!("the fields {}", present.join(", "))
        };
        eprintln!(
            "neardup: hint: no document was read: records lack the field {field:?}, and the \
             first such record has {has}; name the id and text fields with --id-field and \
             --text-field"
        );
    }

    /// Bars as `--progress` and `--quiet` ask: `auto` draws them when standard error is a
    /// terminal, `always` even when it is not.
    pub fn new(progress: ProgressArg, quiet: bool) -> Self {
        let (show_bars, target) = match progress {
            _ if quiet => (false, ProgressDrawTarget::hidden()),
            ProgressArg::Never => (false, ProgressDrawTarget::hidden()),
            ProgressArg::Auto if !std::io::stderr().is_terminal() => {
                (false, ProgressDrawTarget::hidden())
            }
            // indicatif hides its stderr target off a terminal; a raw term target does not
            // (`always`), and ours drops what cannot be written.
            ProgressArg::Auto | ProgressArg::Always => (
                true,
                ProgressDrawTarget::term_like_with_hz(
                    Box::new(Lenient(console::Term::stderr())),
                    20,
                ),
            ),
        };
        Terminal {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            show_bars,
            quiet,
            strict: false,
            problems: AtomicU64::new(0),
            first_problem: Mutex::new(None),
            first_missing: Mutex::new(None),
            dedup: None,
        }
    }

    /// A terminal for a `--strict` run (when `strict`).
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Warnings for `dedup` (`rejects`: with a --rejects file).
    pub fn dedup(mut self, rejects: bool) -> Self {
        self.dedup = Some(rejects);
        self
    }

    /// A problem as a warning says it, with what becomes of the record.
    fn shown(&self, problem: &Problem) -> String {
        let Some(rejects) = self.dedup else {
            return problem.to_string();
        };
        let rejected = problem.kind.is_malformed_record()
            || matches!(
                problem.kind,
                ProblemKind::DuplicateId {
                    same_text: false,
                    ..
                }
            );
        let outcome = match &problem.kind {
            ProblemKind::DuplicateId {
                same_text: true, ..
            } => "; this record is dropped as a copy of it (--report lists it)",
            _ if rejected && rejects => "; this record goes to --rejects",
            _ if rejected => "; this record is not written (--rejects FILE keeps such records)",
            ProblemKind::MissingField { .. }
            | ProblemKind::WrongType { .. }
            | ProblemKind::EmptyText
            | ProblemKind::NoWords => "; this record is written unchanged, not compared",
            _ => "",
        };
        format!("{}{outcome}", problem.fact())
    }

    /// Prints a line on standard error without tearing the progress bars.
    pub fn println(&self, line: &str) {
        // `MultiProgress::println` drops the line when the bars are hidden; `suspend`
        // clears the bars (if drawn), prints, and redraws.
        self.multi.suspend(|| eprintln!("{line}"));
    }

    /// The exit code of a run that skipped `bad` records or inputs: 2 if any. `--quiet`
    /// hides each warning, but a quiet run's exit 2 must not go unexplained (a cron job
    /// with a mistyped file name), so one line still says how many and names the first.
    pub fn exit_code(&self, bad: u64) -> ExitCode {
        if bad == 0 {
            return ExitCode::SUCCESS;
        }
        if self.quiet {
            let first = self.first_problem.lock().expect("problem lock").take();
            eprintln!(
                "neardup: {bad} bad record{s} or unreadable input{s} skipped{first}; run without \
                 --quiet to see each",
                s = if bad == 1 { "" } else { "s" },
                first = first
                    .map(|p| format!(", the first: {p}"))
                    .unwrap_or_default(),
            );
        }
        ExitCode::from(2)
    }

    /// How many problems were not printed.
    pub fn hidden_problems(&self) -> u64 {
        self.problems
            .load(Ordering::Relaxed)
            .saturating_sub(SHOWN_PROBLEMS)
    }
}

/// Standard error for the bars, whose writes never fail: `MultiProgress::suspend`
/// unwraps them, so a closed pipe (`--progress always 2>&1 | head -1`) panicked the run.
#[derive(Debug)]
struct Lenient(console::Term);

impl indicatif::TermLike for Lenient {
    fn width(&self) -> u16 {
        self.0.size().1
    }

    fn height(&self) -> u16 {
        self.0.size().0
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        let _ = self.0.move_cursor_up(n);
        Ok(())
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        let _ = self.0.move_cursor_down(n);
        Ok(())
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        let _ = self.0.move_cursor_right(n);
        Ok(())
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        let _ = self.0.move_cursor_left(n);
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        let _ = self.0.write_line(s);
        Ok(())
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        let _ = self.0.write_str(s);
        Ok(())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        let _ = self.0.clear_line();
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

fn style(stage: Stage, known_total: bool) -> ProgressStyle {
    let template = match (stage, known_total) {
        (Stage::Read, true) => {
            "{prefix:>10} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}"
        }
        (_, true) => "{prefix:>10} [{bar:30}] {human_pos}/{human_len} {rate} eta {eta}",
        (Stage::Read, false) => "{prefix:>10} {spinner} {binary_bytes} {binary_bytes_per_sec}",
        (_, false) => "{prefix:>10} {spinner} {human_pos} {elapsed}",
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
        // Whole items a second: indicatif's {per_sec} gave four decimals ("1,234.5678/s").
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", indicatif::HumanFloatCount(state.per_sec()));
            },
        )
}

impl Observer for Terminal {
    fn stage_started(&self, stage: Stage, total: Option<u64>) {
        if !self.show_bars {
            return;
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        bar.set_style(style(stage, total.is_some()));
        bar.set_prefix(stage.name());
        bar.enable_steady_tick(Duration::from_millis(120));
        let bar = self.multi.add(bar);
        self.bars.lock().expect("progress lock").insert(stage, bar);
    }

    fn advanced(&self, stage: Stage, amount: u64) {
        if let Some(bar) = self.bars.lock().expect("progress lock").get(&stage) {
            bar.inc(amount);
        }
    }

    fn stage_finished(&self, stage: Stage) {
        if let Some(bar) = self.bars.lock().expect("progress lock").remove(&stage) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn problem(&self, problem: &Problem) {
        let seen = self.problems.fetch_add(1, Ordering::Relaxed) + 1;
        if let ProblemKind::MissingField { field, present } = &problem.kind {
            self.first_missing
                .lock()
                .expect("problem lock")
                .get_or_insert_with(|| (field.clone(), present.clone()));
        }
        if self.strict {
            return;
        }
        if self.quiet {
            if seen == 1 {
                *self.first_problem.lock().expect("problem lock") = Some(self.shown(problem));
            }
            return;
        }
        if seen <= SHOWN_PROBLEMS {
            self.println(&format!("neardup: warning: {}", self.shown(problem)));
        }
        if seen == SHOWN_PROBLEMS + 1 {
            self.println("neardup: warning: more bad records; only counting them from now on (see the summary)");
        }
    }

    fn cancelled(&self) -> bool {
        stop::requested().is_some()
    }
}

/// Ctrl-C and SIGTERM during a batch run: the first asks the run to stop (the library
/// asks [`Terminal`] between pieces of work, the writers between records), so that no
/// temporary file and no part of a set of outputs is left; a second exits at once.
pub mod stop {
    use std::io::{self, Write};
    use std::path::PathBuf;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicI32, Ordering};

    use signal_hook::consts::{SIGINT, SIGTERM};

    /// The signal received, 0 before any.
    static SIGNAL: AtomicI32 = AtomicI32::new(0);
    static INSTALLED: OnceLock<()> = OnceLock::new();
    /// The run's `--checkpoint`, for the message: it keeps what it saved.
    pub static CHECKPOINT: OnceLock<PathBuf> = OnceLock::new();

    /// Installs the handlers (once); signals before this end the process as usual.
    pub fn install() -> anyhow::Result<()> {
        if INSTALLED.get().is_some() {
            return Ok(());
        }
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
            .map_err(|e| anyhow::anyhow!("installing signal handlers: {e}"))?;
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
                    // The user insists: leave now.
                    std::process::exit(128 + signal);
                }
            }
        });
        let _ = INSTALLED.set(());
        Ok(())
    }

    /// The signal that asked the run to stop, if any.
    pub fn requested() -> Option<i32> {
        match SIGNAL.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        }
    }

    /// The error a writer returns once a stop was asked.
    pub fn error() -> io::Error {
        // Not `Interrupted`, which `write_all` and `BufWriter` retry.
        io::Error::other("stopped by a signal")
    }

    /// The line printed for a stopped run, and its exit status (128 + the signal).
    pub fn report(signal: i32) -> (String, u8) {
        let name = if signal == SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        let mut line = format!("neardup: stopped: {name} received; no output written");
        if let Some(dir) = CHECKPOINT.get() {
            line += &format!(
                " (the checkpoint {} keeps the fingerprints saved so far: run again to resume)",
                crate::shown_path(dir)
            );
        }
        (line, (128 + signal) as u8)
    }

    /// A writer that fails once a stop was asked, checked at each write (one per record
    /// or less), so that the write stage stops between records.
    pub struct Stoppable<W>(pub W);

    impl<W: Write> Write for Stoppable<W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if requested().is_some() {
                return Err(error());
            }
            self.0.write(buf)
        }

        fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            if requested().is_some() {
                return Err(error());
            }
            self.0.write_all(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            self.0.flush()
        }
    }
}
