//! One local Kubernetes process: started with its output in a log file, stopped on drop.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
};

use crate::{HarnessError, slots::Slot};

/// A running child process, killed and reaped when dropped (also while a test panics).
#[derive(Debug)]
pub struct ManagedProcess {
    name: String,
    program: PathBuf,
    log_file: PathBuf,
    child: Option<Child>,
    /// Set when the process was seen to exit on its own.
    exited: Option<ExitStatus>,
}

impl ManagedProcess {
    /// Starts `program` with `args`, writing stdout and stderr to `log_file`, and records it in
    /// `slot` so that a later run can reap it if this test process is killed.
    pub fn spawn(
        name: impl Into<String>,
        program: &Path,
        args: &[String],
        envs: &[(&str, &Path)],
        log_file: PathBuf,
        slot: &Slot,
    ) -> Result<Self, HarnessError> {
        let name = name.into();
        let log = File::create(&log_file).map_err(|source| HarnessError::Io {
            action: format!("create {}", log_file.display()),
            source,
        })?;
        let log_err = log.try_clone().map_err(|source| HarnessError::Io {
            action: format!("open {}", log_file.display()),
            source,
        })?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        for (key, value) in envs {
            command.env(key, value);
        }
        let child = command.spawn().map_err(|source| HarnessError::Io {
            action: format!("start {name} ({})", program.display()),
            source,
        })?;
        slot.record_process(child.id(), program)?;
        Ok(Self {
            name,
            program: program.to_path_buf(),
            log_file,
            child: Some(child),
            exited: None,
        })
    }

    /// The process name used in logs and messages, e.g. `k8ssandra-0/kube-apiserver`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the process writes its output.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The operating-system process ID, while the process is running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the process has ended on its own; `None` while it runs or once stopped.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none()
            && let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.exited = Some(status);
        }
        self.exited
    }

    /// Fails with the log's last lines if the process has ended.
    pub fn check_running(&mut self) -> Result<(), HarnessError> {
        match self.exit_status() {
            None => Ok(()),
            Some(status) => Err(HarnessError::ProcessExited {
                name: self.name.clone(),
                status: status.to_string(),
                log_file: self.log_file.clone(),
                log_tail: log_tail(&self.log_file, 15),
            }),
        }
    }

    /// Kills the process and waits for it, so that it leaves no zombie and no port behind.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.exited.is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
            tracing::debug!(process = %self.name, program = %self.program.display(), "stopped");
        }
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether process `pid` exists and has not ended (a zombie awaiting its parent has ended).
pub fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name, which is in parentheses and may contain spaces.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}
