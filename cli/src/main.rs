//! `jestha`: the Jestha Edge command-line client.
//!
//! `main` parses the arguments, runs the command and turns its failure into
//! the error line on stderr and the exit code (`failure`). Everything that
//! decides something is a plain module with its own tests; only `http`
//! touches the network, and only `store` the config directory.

mod api_url;
mod args;
mod client;
mod commands;
mod failure;
#[cfg(test)]
mod fake;
mod http;
mod oauth;
mod render;
mod retry;
mod store;
mod tus;
mod ui;
mod upload;

use std::process::ExitCode;

use clap::Parser;

/// `n` random bytes as hex, from the operating system's CSPRNG.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("the operating system's random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let ui = ui::Ui::from_env(cli.json);
    match commands::run(cli, ui, commands::Env::from_process()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            ui.fail(&f);
            ExitCode::from(f.exit() as u8)
        }
    }
}
