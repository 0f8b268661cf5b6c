//! Forwarding: payloads to the intake over HTTP, or to files.
