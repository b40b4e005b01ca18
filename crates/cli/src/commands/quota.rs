//! The quota commands (setquota, listquota, delquota): quotas live in
//! /zookeeper/quota/<path>/zookeeper_limits and zookeeper_stats, kept by
//! the client as zkCli keeps them.

use super::*;

impl Shell {
    /// Quotas live in /zookeeper/quota/<path>/zookeeper_limits (and
    /// zookeeper_stats), maintained by the client as zkCli does. They are
    /// not enforced (ZooKeeper's default).
    pub(super) fn quota(&mut self, cmd: &str, args: &[String]) -> Outcome {
        let a = Args::parse(args, "nbNB").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, cmd, 0)?;
        let qpath = format!("/zookeeper/quota{path}");
        let limits = format!("{qpath}/zookeeper_limits");
        let stats = format!("{qpath}/zookeeper_stats");
        match cmd {
            "listquota" => {
                self.complain(&format!("absolute path is {limits}"));
                for (node, label) in [(&limits, "Output quota"), (&stats, "Output stat")] {
                    match self.call(&Request::GetData(pw(node, false))) {
                        Ok(b) => {
                            let r = decode::<proto::GetDataResponse>(&b).map_err(|_| ())?;
                            if self.format == Format::Json {
                                let key = if node == &limits { "quota" } else { "stat" };
                                self.json(json!({ "path": path, key: data_text(&r.data) }));
                            } else {
                                self.line(&format!("{label} for {path} {}", data_text(&r.data)));
                            }
                        }
                        Err(e) if e.code() == ErrorCode::NoNode => {
                            self.complain(&format!("quota for {path} does not exist."));
                            return Ok(());
                        }
                        Err(e) => return self.fail(&e, node),
                    }
                }
                Ok(())
            }
            "setquota" => {
                let val = |c: char| a.value(c).and_then(|v| v.parse::<i64>().ok()).unwrap_or(-1);
                let (n, b, hn, hb) = (val('n'), val('b'), val('N'), val('B'));
                if n < 0 && b < 0 && hn < 0 && hb < 0 {
                    return self.usage_of("setquota");
                }
                // zkCli's StatsTrack text, its stray "=" included.
                let text = format!("count={n},bytes={b}=;byteHardLimit={hb};countHardLimit={hn}");
                // As zkCli: the server keeps zookeeper_stats up to date.
                let stats_text = "count=0,bytes=0".to_string();
                // Parents of the quota node.
                let mut p = String::from("/zookeeper/quota");
                for part in path.split('/').filter(|s| !s.is_empty()) {
                    p = format!("{p}/{part}");
                    let _ = self.call(&Request::Create(
                        OpCode::Create,
                        CreateTtlRequest {
                            path: p.clone(),
                            data: None,
                            acl: open_acl(),
                            flags: 0,
                            ttl: -1,
                        },
                    ));
                }
                for (node, data) in [(&limits, text.clone()), (&stats, stats_text)] {
                    let created = self.call(&Request::Create(
                        OpCode::Create,
                        CreateTtlRequest {
                            path: node.clone(),
                            data: Some(data.as_bytes().to_vec()),
                            acl: open_acl(),
                            flags: 0,
                            ttl: -1,
                        },
                    ));
                    if let Err(e) = created {
                        if e.code() != ErrorCode::NodeExists {
                            return self.fail(&e, node);
                        }
                        if node == &limits {
                            let _ = self.call(&Request::SetData(SetDataRequest {
                                path: node.clone(),
                                data: Some(data.as_bytes().to_vec()),
                                version: -1,
                            }));
                        }
                    }
                }
                Ok(())
            }
            _ => {
                // delquota: without an option, the whole quota goes.
                for node in [&limits, &stats] {
                    match self.call(&Request::Delete(PathVersionRequest {
                        path: node.clone(),
                        version: -1,
                    })) {
                        Ok(_) => {}
                        Err(e) if e.code() == ErrorCode::NoNode => {
                            self.complain(&format!("Quota does not exist for {path}"));
                            return Err(());
                        }
                        Err(e) => return self.fail(&e, node),
                    }
                }
                // And the quota path itself, with parents left empty.
                let mut p = qpath.clone();
                while p.len() > "/zookeeper/quota".len() {
                    let gone = self.call(&Request::Delete(PathVersionRequest {
                        path: p.clone(),
                        version: -1,
                    }));
                    if gone.is_err() {
                        break;
                    }
                    p.truncate(p.rfind('/').unwrap_or(0));
                }
                Ok(())
            }
        }
    }
}
