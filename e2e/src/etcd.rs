//! The fleet's etcd: one process, each cluster's apiserver under its own key prefix.

use std::{path::Path, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

use crate::{HarnessError, process::ManagedProcess, slots::Slot, tools::Tools, wait};

/// Slot ports used by etcd (client, peer) on the fleet's first slot.
const CLIENT_PORT: u16 = 1;
const PEER_PORT: u16 = 2;

/// A running etcd and the URL apiservers reach it on.
#[derive(Debug)]
pub struct Etcd {
    /// The process.
    pub process: ManagedProcess,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    client_port: u16,
}

impl Etcd {
    /// Starts etcd with its data in `data_dir`, on ports of `slot`.
    pub fn start(
        tools: &Tools,
        data_dir: &Path,
        log_file: &Path,
        slot: &Slot,
    ) -> Result<Self, HarnessError> {
        let client_port = slot.port(CLIENT_PORT);
        let peer = format!("http://127.0.0.1:{}", slot.port(PEER_PORT));
        let url = format!("http://127.0.0.1:{client_port}");
        let args = vec![
            "--name=fleet".to_string(),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls={url}"),
            format!("--advertise-client-urls={url}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=fleet={peer}"),
            // Test data: durability is not wanted, speed is.
            "--unsafe-no-fsync=true".into(),
            "--quota-backend-bytes=4294967296".into(),
            "--auto-compaction-retention=1".into(),
            "--log-level=warn".into(),
        ];
        let process = ManagedProcess::spawn(
            "etcd",
            &tools.etcd,
            &args,
            &[],
            log_file.to_path_buf(),
            slot,
        )?;
        Ok(Self {
            process,
            url,
            client_port,
        })
    }

    /// Waits until etcd reports itself healthy.
    pub async fn wait_healthy(&mut self, limit: Duration) -> Result<(), HarnessError> {
        let (process, port) = (&mut self.process, self.client_port);
        wait::until_ok("etcd to report health", limit, || {
            let running = process.check_running();
            async move {
                running?;
                let healthy = timeout(Duration::from_secs(2), is_healthy(port)).await;
                Ok(matches!(healthy, Ok(Ok(true))).then_some(()))
            }
        })
        .await
    }
}

/// Whether etcd on `port` answers `/health` with `"health":"true"`.
async fn is_healthy(port: u16) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response.contains("\"health\":\"true\""))
}
