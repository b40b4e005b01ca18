//! `export path file` and `import file [path]` (ferrokeeper's): one
//! application's subtree as JSON, to move it between clusters through the
//! client protocol (any ZooKeeper or ferrokeeper on either side).
//!
//! The file: `{"ferrokeeper_export": 1, "root": "/app", "nodes": [{"path",
//! "data" (base64, or null), "acl": [{"perms", "scheme", "id"}]}]}`, nodes
//! in pre-order (parents first). Exported: every node's data and ACL;
//! ephemerals are left out (they belong to sessions) and the `/zookeeper`
//! subtree too. Imported nodes are persistent, created parents first
//! under `path` (default: the exported root) with their own ACLs; an
//! existing node other than the import's root stops the import, saying
//! which. Not carried: Stat values (a cluster gives its own), and
//! sequential counters (a parent's next sequential suffix starts again
//! from its new child count).

use base64::Engine;
use proto::{Acl, CreateTtlRequest, ErrorCode, Id, OpCode, PathRecord, Request};
use serde_json::{json, Value};

use super::text::{decode, pw, Args};
use super::{Outcome, Shell};
use crate::client::ClientError;

const FORMAT: i64 = 1;

fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl Shell {
    /// (data, ACL, ephemeral) of one node.
    fn node_of(&mut self, path: &str) -> Result<(Option<Vec<u8>>, Vec<Acl>, bool), ClientError> {
        let d = decode::<proto::GetDataResponse>(&self.call(&Request::GetData(pw(path, false)))?)?;
        let a = decode::<proto::GetAclResponse>(
            &self.call(&Request::GetAcl(PathRecord { path: path.into() }))?,
        )?;
        Ok((d.data, a.acl, d.stat.ephemeral_owner != 0))
    }

    pub(super) fn export(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let (Some(root), Some(file)) = (a.pos.first().cloned(), a.pos.get(1).cloned()) else {
            return self.usage_of("export");
        };
        if let Err(m) = proto::path::validate(&root, false) {
            self.complain(&m);
            return Err(());
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut nodes = Vec::new();
        let mut skipped = 0;
        let mut stack = vec![root.clone()];
        while let Some(p) = stack.pop() {
            if p == "/zookeeper" {
                continue;
            }
            let (data, acl, ephemeral) = match self.node_of(&p) {
                Ok(n) => n,
                // Gone since its parent was listed.
                Err(e) if e.code() == ErrorCode::NoNode && p != root => continue,
                Err(e) => return self.fail(&e, &p),
            };
            if ephemeral {
                skipped += 1;
                continue;
            }
            nodes.push(json!({
                "path": p,
                "data": data.map(|d| b64.encode(d)),
                "acl": acl.iter().map(|x| json!({"perms": x.perms, "scheme": x.id.scheme, "id": x.id.id})).collect::<Vec<_>>(),
            }));
            let mut kids = match self.children(&p) {
                Ok(k) => k,
                Err(e) if e.code() == ErrorCode::NoNode => continue,
                Err(e) => return self.fail(&e, &p),
            };
            kids.sort();
            stack.extend(kids.iter().rev().map(|k| join(&p, k)));
        }
        let n = nodes.len();
        let doc = json!({ "ferrokeeper_export": FORMAT, "root": root, "nodes": nodes });
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        if let Err(e) = std::fs::write(&file, text) {
            self.complain(&format!("export: cannot write {file}: {e}"));
            return Err(());
        }
        self.line(&format!(
            "exported {n} znodes under {root} to {file}{}",
            if skipped > 0 {
                format!(" ({skipped} ephemerals left out)")
            } else {
                String::new()
            }
        ));
        Ok(())
    }

    pub(super) fn import(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let Some(file) = a.pos.first().cloned() else {
            return self.usage_of("import");
        };
        let doc: Value = match std::fs::read(&file)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(d) => d,
            Err(e) => {
                self.complain(&format!("import: {file}: {e}"));
                return Err(());
            }
        };
        let nodes = match parse(&doc) {
            Ok(n) => n,
            Err(e) => {
                self.complain(&format!("import: {file}: {e}"));
                return Err(());
            }
        };
        let root = doc["root"].as_str().unwrap_or("/").to_string();
        let dest = a.pos.get(1).cloned().unwrap_or_else(|| root.clone());
        if let Err(m) = proto::path::validate(&dest, false) {
            self.complain(&m);
            return Err(());
        }
        let mut created = 0;
        for (path, data, acl) in nodes {
            let rest = &path[root.len()..];
            let target = match (dest.as_str(), rest) {
                (d, "") => d.to_string(),
                ("/", r) => r.to_string(),
                (d, r) => format!("{d}{r}"),
            };
            let req = Request::Create(
                OpCode::Create,
                CreateTtlRequest {
                    path: target.clone(),
                    data,
                    acl,
                    flags: 0,
                    ttl: -1,
                },
            );
            match self.call(&req) {
                Ok(_) => created += 1,
                Err(e) if e.code() == ErrorCode::NodeExists && target == dest => {}
                Err(e) => {
                    self.complain(&format!(
                        "import stopped at {target} after {created} znodes created:"
                    ));
                    return self.fail(&e, &target);
                }
            }
        }
        self.line(&format!(
            "imported {created} znodes from {file} under {dest}"
        ));
        Ok(())
    }
}

type Node = (String, Option<Vec<u8>>, Vec<Acl>);

/// The nodes of an export document, checked: format, paths under the
/// root, parents first, base64 data, ACL entries.
fn parse(doc: &Value) -> Result<Vec<Node>, String> {
    if doc["ferrokeeper_export"].as_i64() != Some(FORMAT) {
        return Err("not a ferrokeeper export (no \"ferrokeeper_export\": 1)".into());
    }
    let root = doc["root"].as_str().ok_or("no \"root\"")?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out: Vec<Node> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, n) in doc["nodes"]
        .as_array()
        .ok_or("no \"nodes\" list")?
        .iter()
        .enumerate()
    {
        let at = |m: &str| format!("node {i}: {m}");
        let path = n["path"].as_str().ok_or_else(|| at("no path"))?;
        let under = path == root
            || (path.starts_with(root) && (root == "/" || path[root.len()..].starts_with('/')));
        if !under || proto::path::validate(path, false).is_err() {
            return Err(at(&format!("{path} is not a path under {root}")));
        }
        if path != root {
            let parent = path
                .rsplit_once('/')
                .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
            if !seen.contains(parent) {
                return Err(at(&format!("{path} comes before its parent")));
            }
        }
        let data = match &n["data"] {
            Value::Null => None,
            Value::String(s) => Some(b64.decode(s).map_err(|e| at(&format!("data: {e}")))?),
            _ => return Err(at("data is not base64 text")),
        };
        let mut acl = Vec::new();
        for x in n["acl"].as_array().ok_or_else(|| at("no acl list"))? {
            let (Some(perms), Some(scheme), Some(id)) =
                (x["perms"].as_i64(), x["scheme"].as_str(), x["id"].as_str())
            else {
                return Err(at("an ACL entry without perms, scheme and id"));
            };
            acl.push(Acl {
                perms: perms as i32,
                id: Id {
                    scheme: scheme.into(),
                    id: id.into(),
                },
            });
        }
        seen.insert(path.to_string());
        out.push((path.to_string(), data, acl));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_document_is_checked_before_anything_is_created() {
        let good = json!({"ferrokeeper_export": 1, "root": "/app", "nodes": [
            {"path": "/app", "data": null, "acl": [{"perms": 31, "scheme": "world", "id": "anyone"}]},
            {"path": "/app/a", "data": "aGk=", "acl": [{"perms": 1, "scheme": "digest", "id": "u:h="}]},
        ]});
        let n = parse(&good).unwrap();
        assert_eq!(n[0].1, None);
        assert_eq!(n[1].1.as_deref(), Some(&b"hi"[..]));
        assert_eq!(n[1].2[0].id.id, "u:h=");
        for (bad, why) in [
            (
                json!({"root": "/app", "nodes": []}),
                "not a ferrokeeper export",
            ),
            (
                json!({"ferrokeeper_export": 1, "root": "/app", "nodes": [
                {"path": "/other", "data": null, "acl": []}]}),
                "not a path under",
            ),
            (
                json!({"ferrokeeper_export": 1, "root": "/app", "nodes": [
                {"path": "/app/a/b", "data": null, "acl": []}]}),
                "before its parent",
            ),
            (
                json!({"ferrokeeper_export": 1, "root": "/app", "nodes": [
                {"path": "/app", "data": "!!", "acl": []}]}),
                "data",
            ),
            (
                json!({"ferrokeeper_export": 1, "root": "/app", "nodes": [
                {"path": "/app", "data": null, "acl": [{"perms": 1}]}]}),
                "ACL entry",
            ),
        ] {
            let e = parse(&bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
