//! The `dogpipe` command line, thin over the library.

mod blast;
mod json;
mod parse;

use std::process::ExitCode;

const USAGE: &str = "dogpipe — DogStatsD and container logs data plane

usage:
  dogpipe parse [--origin-detection-client] < packets
      Parse DogStatsD packets from stdin; print one JSON object per message.
  dogpipe blast --corpus FILE (--udp HOST:PORT | --uds PATH | --uds-stream PATH) [--rate R] [--duration S] [--contexts N]
      Replay a DogStatsD corpus at a paced rate (a load generator).
  dogpipe help";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("parse") => parse::run(args.get(1..).unwrap_or_default()),
        Some("blast") => blast::run(args.get(1..).unwrap_or_default()),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dogpipe: {message}");
            ExitCode::from(2)
        }
    }
}
