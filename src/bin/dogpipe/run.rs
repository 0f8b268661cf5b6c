//! `dogpipe run`: the node agent ([`dogpipe::Agent`]) until SIGTERM or SIGINT.

use dogpipe::{Agent, Settings};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const USAGE: &str = "usage: dogpipe run [--config datadog.yaml]";

pub fn run(args: &[String]) -> Result<(), String> {
    let config_path = match args {
        [] => None,
        [flag, path] if flag == "--config" => Some(path.as_str()),
        _ => return Err(USAGE.into()),
    };
    let settings = Settings::from_process(config_path).map_err(|e| e.to_string())?;
    for name in settings.unknown_variables() {
        eprintln!("dogpipe: note: {name} is not a setting dogpipe reads; ignored");
    }
    let term = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&term))
            .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    let agent = Agent::start(&settings, |line| eprintln!("{line}")).map_err(|e| e.to_string())?;
    while !term.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("dogpipe: stopping: flushing everything and delivering what is queued");
    if agent.stop() {
        Ok(())
    } else {
        Err("stopped with payloads still undelivered after the grace period (spooled if DD_FORWARDER_SPOOL_DIR is set, else dropped and counted)".into())
    }
}
