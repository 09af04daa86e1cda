//! The lab's processes: every one started here, each logged to a file in
//! the lab's directory, stopped by its PID (SIGTERM, then SIGKILL) when
//! asked or when the lab is dropped, also on a panic.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

struct Proc {
    name: String,
    child: Child,
}

pub struct Procs {
    dir: PathBuf,
    running: Mutex<Vec<Proc>>,
}

impl Procs {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            running: Mutex::new(Vec::new()),
        }
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// Starts `cmd` as `name` (unique), its output to `name.log`.
    pub fn spawn(&self, name: &str, cmd: Command) -> anyhow::Result<u32> {
        self.start(name, cmd, false).map(|(pid, _)| pid)
    }

    /// Like [`Procs::spawn`], standard output discarded (only errors
    /// logged): for clients that print what they receive.
    pub fn spawn_quiet(&self, name: &str, mut cmd: Command) -> anyhow::Result<u32> {
        let log = File::create(self.log_path(name))
            .with_context(|| format!("creating the log of {name}"))?;
        cmd.stdout(Stdio::null()).stderr(log).stdin(Stdio::null());
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        let pid = child.id();
        self.running.lock().expect("procs lock").push(Proc {
            name: name.to_string(),
            child,
        });
        Ok(pid)
    }

    /// Like [`Procs::spawn`], with a pipe to its standard input.
    pub fn spawn_piped(&self, name: &str, cmd: Command) -> anyhow::Result<(u32, ChildStdin)> {
        self.start(name, cmd, true)
            .map(|(pid, stdin)| (pid, stdin.expect("piped")))
    }

    fn start(
        &self,
        name: &str,
        mut cmd: Command,
        piped: bool,
    ) -> anyhow::Result<(u32, Option<ChildStdin>)> {
        let log = File::create(self.log_path(name))
            .with_context(|| format!("creating the log of {name}"))?;
        cmd.stdout(log.try_clone()?).stderr(log);
        cmd.stdin(if piped { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        let pid = child.id();
        let stdin = child.stdin.take();
        self.running.lock().expect("procs lock").push(Proc {
            name: name.to_string(),
            child,
        });
        Ok((pid, stdin))
    }

    /// Whether `name` is still running.
    pub fn alive(&self, name: &str) -> bool {
        let mut running = self.running.lock().expect("procs lock");
        running
            .iter_mut()
            .find(|p| p.name == name)
            .is_some_and(|p| p.child.try_wait().ok().flatten().is_none())
    }

    /// An error with the end of its log if `name` has exited.
    pub fn check(&self, name: &str) -> anyhow::Result<()> {
        if self.alive(name) {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{name} exited; the end of its log:\n{}", tail.join("\n"))
    }

    /// Stops `name` (SIGTERM, SIGKILL after two seconds).
    pub fn stop(&self, name: &str) {
        let proc = {
            let mut running = self.running.lock().expect("procs lock");
            running
                .iter()
                .position(|p| p.name == name)
                .map(|i| running.remove(i))
        };
        if let Some(mut p) = proc {
            terminate(&mut p.child);
        }
    }

    /// Stops everything, the last started first.
    pub fn stop_all(&self) {
        let all: Vec<Proc> = std::mem::take(&mut *self.running.lock().expect("procs lock"));
        for mut p in all.into_iter().rev() {
            terminate(&mut p.child);
        }
    }
}

fn terminate(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    // SAFETY: signalling a child this process started, by its PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.stop_all();
    }
}
