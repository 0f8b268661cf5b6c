//! The `dogpipe` command line, thin over the library.

mod aggregate;
mod blast;
mod decode;
mod json;
mod logs;
mod parse;
mod run;

use std::process::ExitCode;

const USAGE: &str = "dogpipe — DogStatsD and container logs data plane

usage:
  dogpipe run [--config datadog.yaml]
      The node agent: DogStatsD on 127.0.0.1:8125 (DD_* settings), flushed every 15 s to the
      intake with DD_API_KEY, else to ./dogpipe-out/.
  dogpipe parse [--origin-detection-client] < packets
      Parse DogStatsD packets from stdin; print one JSON object per message.
  dogpipe logs decode [--format auto|cri|docker|raw] [--max-message-bytes N] [--rules JSON] FILE...
      Decode container log files (CRI, Docker json-file or plain); print one JSON object per
      message: message, status, stream, time, truncated, offset.
  dogpipe aggregate [--flush-interval SECONDS] [--hostname HOST] < timed messages
      Replay DogStatsD messages on a simulated clock (`@<unix_seconds>` lines); print the
      series, sketches, events and service checks each flush would send, one JSON object a line.
  dogpipe decode [--path PATH] [--encoding E] [--max-bytes N] FILE…
      Decompress and decode payload bodies (or a file sink's requests.jsonl) into JSON lines.
  dogpipe blast --corpus FILE (--udp HOST:PORT | --uds PATH | --uds-stream PATH) [--rate R] [--duration S] [--contexts N]
      Replay a DogStatsD corpus at a paced rate (a load generator).
  dogpipe health [--port N]
      Exit 0 when the running dogpipe answers its liveness endpoint (DD_HEALTH_PORT, default 5555).
  dogpipe help";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run::run(args.get(1..).unwrap_or_default()),
        Some("parse") => parse::run(args.get(1..).unwrap_or_default()),
        Some("logs") => logs::run(args.get(1..).unwrap_or_default()),
        Some("aggregate") => aggregate::run(args.get(1..).unwrap_or_default()),
        Some("decode") => decode::run(args.get(1..).unwrap_or_default()),
        Some("blast") => blast::run(args.get(1..).unwrap_or_default()),
        Some("health") => health(args.get(1..).unwrap_or_default()),
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

fn health(args: &[String]) -> Result<(), String> {
    let port = match args {
        [] => dogpipe::Settings::from_process(None)
            .map_err(|e| e.to_string())?
            .parsed("health_port", "a port number", |s| s.parse::<u16>().ok())
            .map_err(|e| e.to_string())?
            .unwrap_or(5555),
        [flag, port] if flag == "--port" => port
            .parse()
            .map_err(|_| format!("health: --port `{port}` is not a port number"))?,
        _ => return Err("usage: dogpipe health [--port N]".into()),
    };
    dogpipe::check_health(port)?;
    println!("ok");
    Ok(())
}
