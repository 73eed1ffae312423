//! Usage errors worded as docker's CLI (28.x) words them: the message, the
//! command's usage line, where to find help, and exit code 125 for flag
//! errors, 1 for the rest.

use super::Cli;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::CommandFactory;
use std::error::Error as _;

/// `pier ps [OPTIONS]` for the verb path `ps` (clap's usage line).
pub fn usage_line(path: &str) -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let mut cur = &cmd;
    for word in path.split_whitespace() {
        match cur.find_subcommand(word) {
            Some(c) => cur = c,
            None => break,
        }
    }
    let usage = cur.clone().render_usage().to_string();
    usage
        .trim()
        .strip_prefix("Usage:")
        .unwrap_or(&usage)
        .trim()
        .to_string()
}

fn context(e: &clap::Error, k: ContextKind) -> String {
    match e.get(k) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(", "),
        _ => String::new(),
    }
}

/// The message and exit code for a parse error, or None when clap's own
/// output is the answer (help, version).
pub fn usage_message(e: &clap::Error, path: &str) -> Option<(String, i32)> {
    let command = if path.is_empty() {
        "pier".to_string()
    } else {
        format!("pier {path}")
    };
    let flag_error = |msg: String| {
        let usage = usage_line(path);
        Some((
            format!("{msg}\n\nUsage:  {usage}\n\nRun '{command} --help' for more information"),
            125,
        ))
    };
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        | ErrorKind::MissingSubcommand => None,
        ErrorKind::InvalidSubcommand => {
            let sub = context(e, ContextKind::InvalidSubcommand);
            // The verb path ends with the unknown word itself.
            let parent = path.strip_suffix(sub.as_str()).unwrap_or(path).trim();
            let command = format!("pier {parent}").trim().to_string();
            // A command group also shows its usage line.
            let usage = if parent.is_empty() {
                String::new()
            } else {
                format!("\n\nUsage:  {}", usage_line(parent))
            };
            Some((
                format!("pier: unknown command: {command} {sub}{usage}\n\nRun '{command} --help' for more information"),
                1,
            ))
        }
        ErrorKind::UnknownArgument => {
            let arg = context(e, ContextKind::InvalidArg);
            let arg = arg.split('=').next().unwrap_or(&arg).to_string();
            if arg.starts_with("--") {
                flag_error(format!("unknown flag: {arg}"))
            } else if arg.starts_with('-') {
                let c = arg.trim_start_matches('-').chars().next().unwrap_or('?');
                flag_error(format!("unknown shorthand flag: '{c}' in {arg}"))
            } else {
                // A word where none is taken: cobra's "accepts no arguments".
                Some((
                    format!("pier: '{command}' accepts no arguments\n\nUsage:  {}\n\nRun '{command} --help' for more information", usage_line(path)),
                    1,
                ))
            }
        }
        ErrorKind::MissingRequiredArgument
        | ErrorKind::TooFewValues
        | ErrorKind::WrongNumberOfValues => Some((
            format!(
                "pier: '{command}' requires at least 1 argument\n\nUsage:  {}\n\nSee '{command} --help' for more information",
                usage_line(path)
            ),
            1,
        )),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = context(e, ContextKind::InvalidArg);
            let flag = arg.split_whitespace().next().unwrap_or(&arg).to_string();
            let value = context(e, ContextKind::InvalidValue);
            let reason = e
                .source()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "invalid value".into());
            flag_error(format!(
                "invalid argument \"{value}\" for \"{flag}\" flag: {reason}"
            ))
        }
        _ => {
            let msg = e.to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            flag_error(first)
        }
    }
}
