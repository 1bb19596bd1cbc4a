//! Terminal output: colour, width, verbosity, and how problems are printed.

use std::io::{IsTerminal, Write};

use crate::diag::{Problems, Style, render};

pub struct Ui {
    /// Colour on stderr (diagnostics).
    pub color: bool,
    /// Colour on stdout (plans).
    pub color_out: bool,
    pub width: usize,
    /// -1 quiet, 0 normal, 1+ verbose.
    pub verbosity: i8,
}

impl Ui {
    pub fn new(cli: &super::Cli) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let allowed = !cli.no_color && !no_color_env;
        let color = allowed && std::io::stderr().is_terminal();
        let color_out = allowed && std::io::stdout().is_terminal();
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100);
        let verbosity = if cli.quiet { -1 } else { cli.verbose as i8 };
        Ui {
            color,
            color_out,
            width,
            verbosity,
        }
    }

    /// Before the command line is parsed: no colour unless stderr is a terminal and NO_COLOR
    /// is unset, the default verbosity.
    pub fn plain() -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ui {
            color: !no_color_env && std::io::stderr().is_terminal(),
            color_out: false,
            width: std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(100),
            verbosity: 0,
        }
    }

    pub fn style(&self) -> Style {
        Style {
            color: self.color,
            width: self.width,
        }
    }

    /// Prints problems to stderr; warnings only when not quiet.
    pub fn problems(&self, problems: &Problems) {
        let mut err = std::io::stderr().lock();
        for p in &problems.list {
            if !p.is_error() && self.verbosity < 0 {
                continue;
            }
            let _ = write!(err, "{}", render(p, self.style()));
        }
    }

    /// Prints one problem to stderr.
    pub fn problem(&self, p: &crate::diag::Problem) {
        eprint!("{}", render(p, self.style()));
    }

    /// A line for the user on stdout, unless quiet.
    pub fn say(&self, line: impl AsRef<str>) {
        if self.verbosity >= 0 {
            println!("{}", line.as_ref());
        }
    }

    pub fn detail(&self, line: impl AsRef<str>) {
        if self.verbosity >= 1 {
            println!("{}", line.as_ref());
        }
    }
}

/// "1 runner", "2 runners".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}
