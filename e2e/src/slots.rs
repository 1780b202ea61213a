//! Machine-wide slots: each running local cluster holds one, which gives it a range of pod IPs
//! (see [`crate::pod_network`]) and a block of TCP ports, unique among all the fleets that run at
//! once on this machine (parallel tests, or several checkouts).
//!
//! A slot is a lock file held for the cluster's lifetime; the operating system releases it when
//! the holder dies, however it dies. Each slot also records the processes started under it, and
//! names the network namespace of the fleet whose first cluster holds it, so that whoever takes
//! the slot next kills and removes what a killed test process left behind.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    process::Command,
};

use crate::HarnessError;

/// First and last slot number (on loopback, 127.0.x.x is left to the host's own services).
const SLOTS: std::ops::RangeInclusive<u8> = 1..=crate::pod_network::MAX_SLOTS;
/// First TCP port of slot 1; slot `s` owns `PORT_BASE + PORTS_PER_SLOT * s ..` (below the
/// kernel's ephemeral range, so outgoing connections do not take them).
const PORT_BASE: u16 = 21_000;
/// TCP ports each slot owns.
pub const PORTS_PER_SLOT: u16 = 4;

/// A held slot. Dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    number: u8,
    pids_file: PathBuf,
    _lock: File,
}

impl Slot {
    /// Takes the lowest free slot, reaping processes a dead holder left behind.
    pub fn acquire() -> Result<Self, HarnessError> {
        for number in SLOTS {
            let Some(slot) = Self::try_take(number)? else {
                continue;
            };
            slot.reap_leftovers();
            if slot.ports().all(port_is_free) {
                return Ok(slot);
            }
        }
        Err(HarnessError::NoFreeSlot)
    }

    /// Kills the processes and removes the network of every slot whose holder died without
    /// stopping them (a test process killed by a signal or a timeout cannot run its clean-up).
    pub fn reap_abandoned() -> Result<(), HarnessError> {
        let with_network = crate::pod_network::slots_with_network();
        for number in SLOTS {
            let left = with_network.contains(&number)
                || slots_dir()?.join(format!("slot-{number}.pids")).exists();
            if left && let Some(slot) = Self::try_take(number)? {
                slot.reap_leftovers();
            }
        }
        Ok(())
    }

    /// Slot `number`, unless another holder has it.
    fn try_take(number: u8) -> Result<Option<Self>, HarnessError> {
        let dir = slots_dir()?;
        let lock_path = dir.join(format!("slot-{number}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| HarnessError::Io {
                action: format!("open {}", lock_path.display()),
                source,
            })?;
        if lock.try_lock().is_err() {
            return Ok(None);
        }
        Ok(Some(Self {
            number,
            pids_file: dir.join(format!("slot-{number}.pids")),
            _lock: lock,
        }))
    }

    /// The slot number, which chooses its pod IPs and ports.
    pub fn number(&self) -> u8 {
        self.number
    }

    /// The `n`th TCP port of this slot (`n < PORTS_PER_SLOT`).
    pub fn port(&self, n: u16) -> u16 {
        debug_assert!(n < PORTS_PER_SLOT);
        PORT_BASE + PORTS_PER_SLOT * u16::from(self.number) + n
    }

    fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        (0..PORTS_PER_SLOT).map(|n| self.port(n))
    }

    /// Records a process started under this slot, for reaping should this test process be killed.
    pub fn record_process(&self, pid: u32, program: &Path) -> Result<(), HarnessError> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.pids_file)
            .map_err(|source| HarnessError::Io {
                action: format!("open {}", self.pids_file.display()),
                source,
            })?;
        writeln!(file, "{pid}\t{}", program.display()).map_err(|source| HarnessError::Io {
            action: format!("write {}", self.pids_file.display()),
            source,
        })
    }

    /// Kills processes recorded by a previous holder that are still running the recorded program
    /// (a recycled process ID running something else is left alone), and removes the network
    /// namespace named after the slot.
    fn reap_leftovers(&self) {
        crate::pod_network::remove(self.number);
        let Ok(recorded) = std::fs::read_to_string(&self.pids_file) else {
            return;
        };
        for line in recorded.lines() {
            let Some((pid, program)) = line.split_once('\t') else {
                continue;
            };
            let running = std::fs::read_link(format!("/proc/{pid}/exe"));
            if running.is_ok_and(|exe| exe == Path::new(program)) {
                tracing::warn!(
                    pid,
                    program,
                    "killing a process left by an earlier test run"
                );
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = std::fs::remove_file(&self.pids_file);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The processes are stopped before the slot is dropped; nothing is left to reap.
        let _ = std::fs::remove_file(&self.pids_file);
    }
}

/// The folder of the slots' lock and process files, shared by every fleet of this machine.
fn slots_dir() -> Result<PathBuf, HarnessError> {
    let dir = std::env::temp_dir().join("k8ssandra-e2e-slots");
    std::fs::create_dir_all(&dir).map_err(|source| HarnessError::Io {
        action: format!("create {}", dir.display()),
        source,
    })?;
    Ok(dir)
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}
