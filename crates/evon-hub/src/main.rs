//! `evon-hub`: the hub's service and command line.

mod cli;
mod commands;
mod firewall;
mod fixtures;
mod hooks;
mod management;
mod openvpn;
mod settings;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    commands::init_logging(&cli.command);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the cause chain joined, never a backtrace or a panic.
            let message: Vec<String> = error.chain().map(ToString::to_string).collect();
            let line = message
                .join(": ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("evon-hub: error: {line}");
            ExitCode::from(commands::exit_code(&error))
        }
    }
}
