//! The client as a second process: this binary re-executed with the hidden
//! `--http-client ADDR` flag. It writes its [`ClientReport`] as one JSON
//! object on stdout; its stderr is ours.

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::client::{ClientConfig, ClientReport};

/// A running client process.
pub(crate) struct ClientProcess {
    child: Child,
    stdout: std::thread::JoinHandle<String>,
}

impl ClientProcess {
    /// Starts the client against `addr` with `cfg`'s load and faults.
    pub(crate) fn start(cfg: &ClientConfig, addr: SocketAddr) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let rates = cfg.faults;
        let mut command = Command::new(exe);
        command
            .arg("--http-client")
            .arg(addr.to_string())
            .arg("--connections")
            .arg(cfg.connections.to_string())
            .arg("--duration")
            .arg(cfg.duration.as_secs_f64().to_string())
            .arg("--seed")
            .arg(cfg.seed.to_string())
            .arg("--client-threads")
            .arg(cfg.threads.to_string())
            .arg("--vanish-request-rate")
            .arg(rates.vanish_request.to_string())
            .arg("--vanish-response-rate")
            .arg(rates.vanish_response.to_string())
            .arg("--malformed-rate")
            .arg(rates.malformed.to_string())
            .arg("--slowloris-rate")
            .arg(rates.slowloris.to_string())
            .arg("--silent-rate")
            .arg(rates.silent.to_string());
        if cfg.requests != u64::MAX {
            command.arg("--requests").arg(cfg.requests.to_string());
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the client process: {e}"))?;
        let mut out = child
            .stdout
            .take()
            .ok_or("the client process has no stdout")?;
        let stdout = std::thread::Builder::new()
            .name("stress-client-out".into())
            .spawn(move || {
                let mut text = String::new();
                let _ = out.read_to_string(&mut text);
                text
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(ClientProcess { child, stdout })
    }

    /// Waits for the client to exit (killing it at `deadline`) and reads
    /// its report. Blocks: run it on a blocking thread.
    pub(crate) fn finish(mut self, deadline: Instant) -> Result<ClientReport, String> {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let _ = self.stdout.join();
                    return Err("the client process did not exit in time: killed".into());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("cannot wait for the client process: {e}")),
            }
        };
        let text = self
            .stdout
            .join()
            .map_err(|_| "the client's output reader panicked")?;
        if !status.success() {
            return Err(format!("the client process failed: {status}"));
        }
        serde_json::from_str(text.trim())
            .map_err(|e| format!("the client's report is not JSON ({e}): {text:?}"))
    }
}
