//! What the user sees: results on stdout (the API's JSON with `--json`),
//! everything else — notes, waits, progress, errors — on stderr, coloured only
//! on a terminal and never when `NO_COLOR` is set.

use std::ffi::OsStr;
use std::io::IsTerminal;

use console::style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::failure::Failure;

/// Whether stderr gets colour: a terminal, and `NO_COLOR` absent or empty
/// (no-color.org: "when present and not an empty string").
pub fn colour_enabled(no_color: Option<&OsStr>, stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub json: bool,
    pub colour: bool,
    /// Whether a progress bar can be drawn (stderr is a terminal).
    pub interactive: bool,
}

impl Ui {
    pub fn from_env(json: bool) -> Ui {
        let tty = std::io::stderr().is_terminal();
        let colour = colour_enabled(std::env::var_os("NO_COLOR").as_deref(), tty);
        // Our own styles, clap's and indicatif's all go through these switches.
        console::set_colors_enabled(colour);
        console::set_colors_enabled_stderr(colour);
        Ui { json, colour, interactive: tty }
    }

    /// A line for the person at the terminal, never for a script's stdout.
    pub fn note(&self, message: &str) {
        eprintln!("{message}");
    }

    pub fn warn(&self, message: &str) {
        eprintln!("{} {message}", style("warning:").yellow().bold());
    }

    /// A failure on stderr: `error: <code>: <message>`, or the JSON envelope with `--json`.
    pub fn fail(&self, f: &Failure) {
        if self.json {
            eprintln!("{}", f.to_json());
        } else {
            eprintln!("{} {f}", style("error:").red().bold());
        }
    }

    /// One JSON document on stdout.
    pub fn print_json(&self, value: &serde_json::Value) {
        println!("{value}");
    }

    /// An upload's progress bar on stderr (drawn only on a terminal).
    pub fn progress(&self, total: u64, what: &str) -> ProgressBar {
        if !self.interactive {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let template = if self.colour {
            "{msg} {bar:30.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} {eta}"
        } else {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}"
        };
        if let Ok(s) = ProgressStyle::with_template(template) {
            bar.set_style(s.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        bar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_turns_colour_off_unless_it_is_empty() {
        assert!(colour_enabled(None, true));
        assert!(!colour_enabled(Some(OsStr::new("1")), true));
        assert!(!colour_enabled(Some(OsStr::new("false")), true), "any non-empty value counts");
        assert!(colour_enabled(Some(OsStr::new("")), true));
    }

    #[test]
    fn a_pipe_never_gets_colour() {
        assert!(!colour_enabled(None, false));
    }
}
