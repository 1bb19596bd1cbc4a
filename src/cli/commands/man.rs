//! `runnerform man`: the manual page in roff, generated from the command-line definition so
//! that it documents exactly the flags this binary has.

use std::io::Write;

use crate::exit::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> Exit {
    let man = clap_mangen::Man::new(crate::cli::command())
        .section("1")
        .manual("runnerform manual");
    let mut page = Vec::new();
    if man.render(&mut page).is_err() {
        return Exit::Error;
    }
    match std::io::stdout().lock().write_all(&page) {
        Ok(()) => Exit::Success,
        Err(_) => Exit::Error,
    }
}
