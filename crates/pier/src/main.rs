//! `pier`: parses the command line and hands it to `cli`.

// A client: a blocking call holds up only its own command. (The daemon's
// code lives in pier-server and pier-engine.)
#![allow(clippy::disallowed_methods)]

mod cli;
mod format;

use clap::{CommandFactory, Parser};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = pier_compose::plugin::metadata(&args) {
        std::process::exit(code);
    }
    let parsed = match cli::Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => std::process::exit(cli::usage_error(e, &args)),
    };
    if parsed.cmd.is_none() {
        if parsed.version {
            cli::println(&format!("Pier version {}", env!("CARGO_PKG_VERSION")));
            std::process::exit(0);
        }
        let _ = cli::Cli::command().print_help();
        std::process::exit(0);
    }
    cli::stream::install_panic_hook();
    let runtime = if cli::is_daemon(&parsed) {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pier: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(cli::dispatch(parsed)) {
        Ok(code) => code,
        Err(e) => {
            let (message, code) = cli::failure(&e);
            if let Some(m) = message {
                eprintln!("{m}");
            }
            code
        }
    };
    cli::stream::restore_terminal();
    std::process::exit(code);
}
