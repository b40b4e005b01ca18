//! The watch commands: addWatch, removewatches, printwatches, and
//! ferrokeeper's `watch`, which prints events until interrupted.

use proto::{AddWatchRequest, Request, WatchTypeRequest};

use super::*;

impl Shell {
    pub(super) fn add_watch(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "m").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "addWatch", 0)?;
        let mode = match a.value('m') {
            None | Some("PERSISTENT_RECURSIVE") => 1,
            Some("PERSISTENT") => 0,
            Some(_) => return self.usage_of("addWatch"),
        };
        match self.call(&Request::AddWatch(AddWatchRequest {
            path: path.clone(),
            mode,
        })) {
            Ok(_) => Ok(()),
            Err(e) => self.fail(&e, &path),
        }
    }

    pub(super) fn remove_watches(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "removewatches", 0)?;
        let kind = if a.has('c') {
            1
        } else if a.has('d') {
            2
        } else if a.has('p') {
            4
        } else if a.has('r') {
            5
        } else {
            3
        };
        match self.call(&Request::RemoveWatches(WatchTypeRequest {
            path: path.clone(),
            watcher_type: kind,
        })) {
            Ok(_) => {
                // The Java client tells its own watchers they were removed;
                // printed here, before the next command runs (a following
                // `printwatches off` must not swallow them).
                for kind in self.client.forget_watches(&path, kind) {
                    let e = crate::client::Event {
                        state: "SyncConnected",
                        kind,
                        path: Some(path.clone()),
                        zxid: -1,
                    };
                    if self.print_watches {
                        self.say(&format!("\nWATCHER::\n\n{e}\n"));
                    }
                }
                Ok(())
            }
            Err(e) if e.code() == ErrorCode::NoWatcher => {
                let m = keeper_message(&e, &path);
                self.complain(&m);
                Err(())
            }
            Err(e) => self.fail(&e, &path),
        }
    }

    pub(super) fn printwatches(&mut self, args: &[String]) -> Outcome {
        match args.first().map(String::as_str) {
            None => {
                let s = format!(
                    "printwatches is {}",
                    if self.print_watches { "on" } else { "off" }
                );
                self.line(&s);
            }
            Some("on") => {
                self.print_watches = true;
                crate::PRINT_WATCHES.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Some(_) => {
                self.print_watches = false;
                crate::PRINT_WATCHES.store(false, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// ferrokeeper: a persistent (recursive with -R) watch whose events
    /// print until the process is interrupted.
    pub(super) fn watch(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "watch", 0)?;
        let mode = if a.has('R') { 1 } else { 0 };
        if let Err(e) = self.call(&Request::AddWatch(AddWatchRequest {
            path: path.clone(),
            mode,
        })) {
            return self.fail(&e, &path);
        }
        crate::WATCHING.store(true, std::sync::atomic::Ordering::Relaxed);
        loop {
            std::thread::sleep(std::time::Duration::from_millis(500));
            if !self.client.connected() && self.client.connect().is_err() {
                self.complain("connection lost");
                return Err(());
            }
        }
    }
}
