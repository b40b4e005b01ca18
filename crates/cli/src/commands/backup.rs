//! The shell's commands that go through the AdminServer (ferrokeeper's):
//! `backup`, a consistent backup of the whole state through the
//! `snapshot` command, written to a file in ZooKeeper's snapshot format;
//! `restore`, the `restore` command fed such a file (the same files serve
//! ZooKeeper 3.9 too); `transferleader`, leadership moved to a named
//! server. The AdminServer is `http://<server host>:8080/commands` unless
//! `-a URL` says otherwise; the identity is the last `addauth digest` of
//! this shell, else `ip`.

use std::io::Read;

use super::text::Args;
use super::{Outcome, Shell};

/// The largest backup read back.
const MAX_BYTES: u64 = 1 << 30;

impl Shell {
    fn admin_url(&self, a: &Args) -> Result<String, String> {
        if let Some(url) = a.value('a') {
            return Ok(url.trim_end_matches('/').to_string());
        }
        let server = self
            .client
            .server()
            .ok_or("Not connected: give the AdminServer with -a http://host:port/commands")?;
        let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
        Ok(format!("http://{host}:8080/commands"))
    }

    fn authorization(&self) -> String {
        match self.client.digest_credentials() {
            Some(user_password) => format!("digest {user_password}"),
            None => "ip".into(),
        }
    }

    pub(super) fn backup(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "a").map_err(|m| self.complain(&m))?;
        let Some(file) = a.pos.first().cloned() else {
            return self.usage_of("backup");
        };
        let url = self.admin_url(&a).map_err(|m| self.complain(&m))?;
        let resp = ureq::get(&format!("{url}/snapshot"))
            .query("streaming", "true")
            .set("Authorization", &self.authorization())
            .call();
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return self.admin_failed("backup", e),
        };
        let zxid = resp.header("last_zxid").unwrap_or("?").to_string();
        let mut bytes = Vec::new();
        if let Err(e) = resp.into_reader().take(MAX_BYTES).read_to_end(&mut bytes) {
            self.complain(&format!("backup: reading the snapshot failed: {e}"));
            return Err(());
        }
        // A file that is there is whole: written beside it, then renamed.
        let tmp = format!("{file}.part");
        if let Err(e) = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &file)) {
            let _ = std::fs::remove_file(&tmp);
            self.complain(&format!("backup: cannot write {file}: {e}"));
            return Err(());
        }
        self.line(&format!(
            "backup of zxid {zxid}: {} bytes written to {file}",
            bytes.len()
        ));
        Ok(())
    }

    pub(super) fn restore(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "a").map_err(|m| self.complain(&m))?;
        let Some(file) = a.pos.first().cloned() else {
            return self.usage_of("restore");
        };
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                self.complain(&format!("restore: cannot read {file}: {e}"));
                return Err(());
            }
        };
        let url = self.admin_url(&a).map_err(|m| self.complain(&m))?;
        let resp = ureq::post(&format!("{url}/restore"))
            .set("Authorization", &self.authorization())
            .set("Content-Type", "application/octet-stream")
            .timeout(std::time::Duration::from_secs(180))
            .send_bytes(&bytes);
        match resp {
            Ok(r) => {
                let answer: serde_json::Value = r.into_json().unwrap_or_default();
                self.line(&format!(
                    "restored {file}: the ensemble's state is the backup's from zxid 0x{:x} on",
                    answer["last_zxid"].as_i64().unwrap_or(0)
                ));
                Ok(())
            }
            Err(e) => self.admin_failed("restore", e),
        }
    }

    pub(super) fn transfer_leader(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "a").map_err(|m| self.complain(&m))?;
        let Some(to) = a.pos.first().cloned() else {
            return self.usage_of("transferleader");
        };
        let url = self.admin_url(&a).map_err(|m| self.complain(&m))?;
        let resp = ureq::get(&format!("{url}/transfer_leadership"))
            .query("to", &to)
            .set("Authorization", &self.authorization())
            .timeout(std::time::Duration::from_secs(30))
            .call();
        match resp {
            Ok(_) => {
                self.line(&format!("server {to} leads"));
                Ok(())
            }
            Err(e) => self.admin_failed("transferleader", e),
        }
    }

    fn admin_failed(&mut self, what: &str, e: ureq::Error) -> Outcome {
        let m = match e {
            ureq::Error::Status(code, r) => {
                let why = r
                    .into_json::<serde_json::Value>()
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_string))
                    .unwrap_or_default();
                format!("{what}: the AdminServer answered {code}: {why}")
            }
            ureq::Error::Transport(t) => format!("{what}: no answer from the AdminServer: {t}"),
        };
        self.complain(&m);
        Err(())
    }
}
