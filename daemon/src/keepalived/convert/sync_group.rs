//! `vrrp_sync_group` blocks: `[vrrp.sync_groups.NAME]`.

use super::*;

impl Cx {
    pub(super) fn sync_group(&mut self, n: &Node) -> R<()> {
        let kname = name_arg(n)?.to_string();
        let mut members: Vec<(toml::Value, Option<String>)> = Vec::new();
        for c in block(n)? {
            match c.keyword.as_str() {
                "group" => {
                    for m in block(c)? {
                        // Members may also share a line: `group { a b }`.
                        for word in std::iter::once(&m.keyword).chain(m.args.iter()) {
                            match self.instances.get(word) {
                                Some(h) => members.push((h.clone().into(), Self::at(&n.loc, m))),
                                None => self.skip(
                                    m,
                                    format!("no vrrp_instance named {word}: not carried over (keepalived ignores it too)"),
                                ),
                            }
                        }
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => self.skip(
                    c,
                    "not carried over: hafront runs notify scripts per instance; set them on the \
                     group's instances (each then notifies its own changes)",
                ),
                "smtp_alert" => self.smtp_alert(c),
                "global_tracking" | "sync_group_tracking_weight" => self.skip(
                    c,
                    "not carried over: hafront tracks per instance; a sync group carries faults only",
                ),
                "track_script" | "track_interface" | "track_file" | "track_process" | "track_bfd" => self
                    .skip(
                        c,
                        "not carried over: in hafront, instances track, not sync groups",
                    ),
                _ => self.other(c, "vrrp_sync_group")?,
            }
        }
        if members.len() < 2 {
            self.skip(
                n,
                format!(
                    "vrrp_sync_group {kname}: {} known member(s); a group needs two, not carried over",
                    members.len()
                ),
            );
            return Ok(());
        }
        let name = self.unique_name("vrrp.sync_groups", &kname);
        let mut s = Section::new(format!("vrrp.sync_groups.{name}"));
        s.comments.push(format!(
            "{} vrrp_sync_group {kname}{}",
            n.loc,
            renamed(&kname, &name)
        ));
        s.put("instances", Value::List(members), None);
        self.sections.push(s);
        Ok(())
    }

    // ---- virtual_server / real_server ---------------------------------------------------
}
