//! The reconfig command, as zkCli's ReconfigCommand: `-add` servers and
//! `-remove` ids (incremental), or a whole new membership from `-members`
//! or a dynamic config `-file`; `-v` the membership version it must
//! change (hexadecimal); `-s` the Stat. Prints "Committed new
//! configuration:" and the new membership.

use super::*;

/// What the command line asks for.
#[derive(Debug, Default, PartialEq)]
struct Asked {
    joining: Option<String>,
    leaving: Option<String>,
    members: Option<String>,
    version: i64,
    stat: bool,
}

const USAGE_LINE: &str = "reconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]";

/// zkCli's option checks, with its messages.
fn parse(args: &[String]) -> Result<Asked, String> {
    let mut a = Asked {
        version: -1,
        ..Default::default()
    };
    let mut file = None;
    let mut version = None;
    let mut it = args.iter();
    while let Some(o) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("Missing argument for option: {name}"))
        };
        match o.as_str() {
            "-s" => a.stat = true,
            "-v" => version = Some(value("v")?),
            "-add" => a.joining = Some(value("add")?.to_lowercase()),
            "-remove" => a.leaving = Some(value("remove")?.to_lowercase()),
            "-members" => a.members = Some(value("members")?.to_lowercase()),
            "-file" => file = Some(value("file")?),
            other => return Err(format!("Unrecognized option: {other}")),
        }
    }
    if a.members.is_none() && file.is_none() && a.joining.is_none() && a.leaving.is_none() {
        return Err(USAGE_LINE.into());
    }
    if let Some(v) = version {
        a.version = i64::from_str_radix(&v, 16)
            .map_err(|_| "-v must be followed by a long (configuration version)".to_string())?;
    }
    if (file.is_some() || a.members.is_some()) && (a.joining.is_some() || a.leaving.is_some()) {
        return Err("Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)".into());
    }
    if file.is_some() && a.members.is_some() {
        return Err(
            "Can't use -file and -members together (conflicting non-incremental modes)".into(),
        );
    }
    if let Some(f) = file {
        let members = std::fs::read_to_string(&f)
            .map_err(|e| e.to_string())
            .and_then(|t| proto::members::Members::parse(&t))
            .map_err(|e| format!("Error processing {f}{e}"))?;
        a.members = Some(members.render_servers());
    }
    Ok(a)
}

impl Shell {
    pub(super) fn reconfig(&mut self, args: &[String]) -> Outcome {
        let a = parse(args).map_err(|m| self.complain(&m))?;
        let req = Request::Reconfig(proto::ReconfigRequest {
            joining_servers: a.joining.unwrap_or_default(),
            leaving_servers: a.leaving.unwrap_or_default(),
            new_members: a.members.unwrap_or_default(),
            cur_config_id: a.version,
        });
        match self.call(&req) {
            Ok(b) => {
                let r = decode::<proto::GetDataResponse>(&b).map_err(|e| {
                    let _ = self.fail(&e, "");
                })?;
                let text = data_text(&r.data);
                if self.format == Format::Json {
                    let mut v = json!({ "config": text });
                    if a.stat {
                        v["stat"] = stat_json(&r.stat);
                    }
                    self.json(v);
                    return Ok(());
                }
                self.line(&format!("Committed new configuration:\n{text}"));
                if a.stat {
                    self.say(&stat_text(&r.stat));
                }
                Ok(())
            }
            Err(e) => {
                // zkCli's message for an exception with no path.
                let m = cli_message(&e, "");
                self.complain(m.trim_end_matches(" for "));
                Err(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_as_zkcli() {
        let a = parse(&args("-add server.5=Localhost:1:2;3 -v 1a -s")).unwrap();
        assert_eq!(a.joining.as_deref(), Some("server.5=localhost:1:2;3"));
        assert_eq!(a.version, 0x1a);
        assert!(a.stat);
        assert_eq!(parse(&args("-s")).unwrap_err(), USAGE_LINE);
        assert!(parse(&args("-members server.1=a:1:2;3 -remove 2"))
            .unwrap_err()
            .starts_with("Can't use -file or -members together"));
        assert!(parse(&args("-remove 2 -v zz"))
            .unwrap_err()
            .starts_with("-v must be"));
    }
}
