//! `runnerform completions SHELL`: a completion script, generated from the same definition
//! that parses the command line, so it can never offer a flag that does not exist.

use std::io::Write;

use crate::exit::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: &Args) -> Exit {
    let mut cmd = crate::cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "runnerform", &mut script);
    // A closed pipe (`| head`) is not worth a panic.
    match std::io::stdout().lock().write_all(&script) {
        Ok(()) => Exit::Success,
        Err(_) => Exit::Error,
    }
}
