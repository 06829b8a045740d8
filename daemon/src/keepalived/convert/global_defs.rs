//! `global_defs`: the VRRP version, strict mode and gratuitous ARP defaults,
//! keepalived's e-mail settings (carried as `[notify.smtp]` when something asks for
//! mail).

use super::*;

impl Cx {
    pub(super) fn global_defs(&mut self, n: &Node) -> R<()> {
        // keepalived allows several global_defs blocks: one [node] table.
        let mut node = match self.sections.iter().position(|s| s.path == "node") {
            Some(i) => self.sections.remove(i),
            None => Section::new("node"),
        };
        node.comments.push(format!("{} global_defs", n.loc));
        let mut script_user = None;
        let mut vrrp: Option<Section> = None;
        for c in block(n)? {
            let kw = c.keyword.as_str();
            match kw {
                "router_id" | "lvs_id" => {
                    node.set("name", arg(c, 0)?, Self::at(&n.loc, c));
                }
                "vrrp_version" => self.g.version = Some((int(c, 0, 2, 3)?, c.loc.clone())),
                "vrrp_strict" => {
                    self.g.strict = Some(c.loc.clone());
                    self.changed(
                        c,
                        "carried over as accept = false on every instance (unless it sets accept); \
                         as keepalived in strict mode, authentication is not used. hafront checks \
                         the RFC rules always",
                    );
                }
                "vrrp_garp_master_delay" => self.g.garp_delay = Some((secs(c, 0)?, c.loc.clone())),
                "vrrp_garp_master_repeat" => self.g.garp_repeat = Some((int(c, 0, 1, 100)?, c.loc.clone())),
                "vrrp_garp_master_refresh" => self.g.garp_refresh = Some((secs(c, 0)?, c.loc.clone())),
                "vrrp_garp_lower_prio_repeat" => {
                    self.g.garp_lower_prio = Some((int(c, 0, 0, i64::MAX)? > 0, c.loc.clone()))
                }
                "vrrp_garp_interval" | "vrrp_gna_interval" => {
                    let key = if kw == "vrrp_garp_interval" {
                        "garp_interval"
                    } else {
                        "na_interval"
                    };
                    match spacing(c)? {
                        Spacing::Zero => self.changed(
                            c,
                            "0 is no delay, which keepalived rejects and replaces by its default (no \
                             delay); hafront sends its bursts without a delay too: nothing to carry",
                        ),
                        Spacing::TooLong => self.skip(
                            c,
                            format!(
                                "not carried over: hafront spaces announcements by at most {} \
                                 (vrrp.{key}); a burst is sent without spacing",
                                humantime::format_duration(crate::config::validate::ANNOUNCE_SPACING_MAX)
                            ),
                        ),
                        Spacing::Every(d) => {
                            vrrp.get_or_insert_with(|| Section::new("vrrp"))
                                .set(key, dur(d), Self::at(&n.loc, c))
                        }
                    }
                }
                "vrrp_garp_extra_if" | "vrrp_vmac_garp_intvl" => {
                    if let Some(e) = self.extra_if(c)? {
                        self.g.extra_if = Some((e, c.loc.clone()));
                    }
                }
                "vmac_addr_prefix" => {
                    self.g.vmac_addr_prefix = Some((vmac_prefix_arg(c)?, c.loc.clone()));
                }
                "vmac_prefix" => {
                    self.g.vmac_prefix = Some((vmac_prefix_arg(c)?, c.loc.clone()));
                    self.changed(
                        c,
                        "carried over as vmac_name of each use_vmac or use_ipvlan instance without a                          name, where keepalived's name differs from hafront's default",
                    );
                }
                "vrrp_mcast_group4" | "vrrp_mcast_group6" => {
                    let a = ip(c, arg(c, 0)?)?;
                    let default: IpAddr = if kw == "vrrp_mcast_group4" {
                        [224, 0, 0, 18].into()
                    } else {
                        "ff02::12".parse().unwrap_or(a)
                    };
                    if a != default {
                        self.skip(c, format!("not carried over: hafront always uses the RFC group {default}"));
                    }
                }
                "notification_email" => {
                    self.g.smtp_to_block = Some(c.loc.clone());
                    for a in block(c)? {
                        self.g.smtp_to.push((a.keyword.clone(), a.loc.clone()));
                    }
                }
                "notification_email_from" => self.g.smtp_from = Some((arg(c, 0)?.to_string(), c.loc.clone())),
                "smtp_server" => {
                    // An address or a host name, then an optional port.
                    let host = arg(c, 0)?;
                    let p = match c.args.get(1) {
                        Some(p) => port(c, p)?,
                        None => 25,
                    };
                    let server = match host.parse::<IpAddr>() {
                        Ok(a) => sockaddr(a, p),
                        Err(_) => format!("{host}:{p}"),
                    };
                    self.g.smtp_server = Some((server, c.loc.clone()));
                }
                "smtp_connect_timeout" => self.g.smtp_timeout = Some((secs(c, 0)?, c.loc.clone())),
                "smtp_alert" | "smtp_alert_vrrp" => {
                    if c.args.first().is_none_or(|a| a != "false" && a != "no" && a != "off") {
                        self.g.smtp_alert.get_or_insert(c.loc.clone());
                    }
                }
                "smtp_helo_name" => self.skip(c, "not carried over: hafront says HELO with the node's host name"),
                "email_faults" | "no_email_faults" | "smtp_alert_checker" => {
                    self.skip(c, "not carried over: hafront mails instance state changes and split brain only")
                }
                "script_user" => {
                    let user = arg(c, 0)?;
                    // hafront refuses a configuration naming a user this machine lacks.
                    if crate::process::security::lookup_user(user).is_none() {
                        self.skip(
                            c,
                            format!(
                                "not carried over: no user {user:?} on this machine (scripts run as \
                                 hafront-script if it exists, else as hafront's own user)"
                            ),
                        );
                        continue;
                    }
                    let mut sec = Section::new("security");
                    sec.set("script_user", user, Self::at(&n.loc, c));
                    script_user = Some(sec);
                    if c.args.len() > 1 {
                        self.changed(c, "the group is not carried over: scripts run with the user's own group");
                    }
                }
                "enable_script_security" => self.changed(
                    c,
                    "nothing to carry: hafront refuses scripts that others could change unless \
                     security.script_security = false (on by default, unlike keepalived)",
                ),
                "vrrp_skip_check_adv_addr" => self.changed(
                    c,
                    "nothing to carry: hafront never drops an advert for its address list (a \
                     mismatch is only counted)",
                ),
                "vrrp_startup_delay" => vrrp.get_or_insert_with(|| Section::new("vrrp")).set(
                    "startup_delay",
                    dur(secs(c, 0)?),
                    Self::at(&n.loc, c),
                ),
                "v3_checksum_as_v2" => self.g.v3_checksum_as_v2 = Some(c.loc.clone()),
                "vrrp_delay_after_boot" => vrrp.get_or_insert_with(|| Section::new("vrrp")).set(
                    "delay_after_boot",
                    dur(secs(c, 0)?),
                    Self::at(&n.loc, c),
                ),
                "vrrp_rt_priority" => vrrp.get_or_insert_with(|| Section::new("vrrp")).set(
                    "rt_priority",
                    int(c, 0, 1, 99)?,
                    Self::at(&n.loc, c),
                ),
                "vrrp_no_swap" => {
                    vrrp.get_or_insert_with(|| Section::new("vrrp"))
                        .set("lock_memory", true, Self::at(&n.loc, c))
                }
                "disable_local_igmp" => {
                    vrrp.get_or_insert_with(|| Section::new("vrrp"))
                        .set("disable_local_igmp", true, Self::at(&n.loc, c))
                }
                "lvs_sync_daemon" => self.g.lvs_sync_daemon = Some((c.clone(), n.loc.clone())),
                "vrrp_iptables" | "vrrp_ipsets" | "nftables" => self.skip(
                    c,
                    "not carried over: hafront manages its own nftables tables (inet hafront for accept = false, ip6 hafront_vmac for the MLD reports of IPv6 virtual MACs)",
                ),
                _ => self.other(c, "global_defs")?,
            }
        }
        if let Some(sec) = script_user {
            // The last script_user of several global_defs wins, as in keepalived.
            self.sections.retain(|s| s.path != "security");
            self.sections.push(sec);
        }
        if let Some(sec) = vrrp {
            self.sections.retain(|s| s.path != "vrrp");
            self.sections.push(sec);
        }
        if !node.entries.is_empty() {
            self.sections.insert(0, node);
        }
        Ok(())
    }

    /// [ipvs.sync] from `lvs_sync_daemon <IF> [<INSTANCE>] [id N] [maxlen N] [port N]
    /// [ttl N] [group ADDR]` (keepalived.conf(5)).
    pub(super) fn lvs_sync_daemon(&mut self) -> R<()> {
        let Some((c, section_loc)) = self.g.lvs_sync_daemon.take() else {
            return Ok(());
        };
        let at = Self::at(&section_loc, &c);
        let mut sec = Section::new("ipvs.sync");
        sec.comments.push(format!("{} lvs_sync_daemon", c.loc));
        sec.set("interface", arg(&c, 0)?, at.clone());
        let mut i = 1;
        if let Some(inst) = c
            .args
            .get(1)
            .filter(|a| !["id", "maxlen", "port", "ttl", "group"].contains(&a.as_str()))
        {
            match self.instances.get(inst) {
                Some(name) => sec.set("instance", name.as_str(), at.clone()),
                None => {
                    return Err(ImportError::new(
                        &c.loc,
                        format!("lvs_sync_daemon: no vrrp_instance {inst}"),
                    ))
                }
            }
            i = 2;
        }
        while i < c.args.len() {
            let key = c.args[i].as_str();
            let v = i + 1;
            match key {
                "id" => sec.set("sync_id", int(&c, v, 0, 255)?, at.clone()),
                "maxlen" => sec.set("max_len", int(&c, v, 256, 65507)?, at.clone()),
                "port" => sec.set("port", i64::from(port(&c, arg(&c, v)?)?), at.clone()),
                "ttl" => sec.set("ttl", int(&c, v, 1, 255)?, at.clone()),
                "group" => sec.set("group", ip(&c, arg(&c, v)?)?.to_string(), at.clone()),
                other => {
                    return Err(ImportError::new(
                        &c.loc,
                        format!("lvs_sync_daemon: unknown option {other:?} (id, maxlen, port, ttl, group)"),
                    ))
                }
            }
            i += 2;
        }
        self.sections.push(sec);
        Ok(())
    }

    /// [notify.smtp] from global_defs' e-mail settings, when something asked for mail
    /// (keepalived sends none without smtp_alert) and the settings are complete.
    pub(super) fn notify_smtp(&mut self) {
        let g = &self.g;
        let Some(alert) = g.smtp_alert.clone() else {
            let set = [
                ("smtp_server", g.smtp_server.as_ref().map(|(_, l)| l)),
                ("notification_email_from", g.smtp_from.as_ref().map(|(_, l)| l)),
                ("notification_email", g.smtp_to_block.as_ref()),
                ("smtp_connect_timeout", g.smtp_timeout.as_ref().map(|(_, l)| l)),
            ];
            let dropped: Vec<Warning> = set
                .into_iter()
                .filter_map(|(keyword, loc)| {
                    Some(Warning {
                        loc: loc?.clone(),
                        keyword: keyword.into(),
                        why: "not carried over: no smtp_alert asks for mail, so keepalived sends none".into(),
                        kind: WarningKind::Dropped,
                    })
                })
                .collect();
            self.warnings.extend(dropped);
            return;
        };
        let lacking = match (&g.smtp_server, &g.smtp_from, g.smtp_to.is_empty()) {
            (None, _, _) => Some("smtp_server"),
            (_, None, _) => Some("notification_email_from"),
            (_, _, true) => Some("notification_email addresses"),
            _ => None,
        };
        let (Some((server, server_loc)), Some((from, from_loc)), None) =
            (g.smtp_server.clone(), g.smtp_from.clone(), lacking)
        else {
            self.warnings.push(Warning {
                loc: alert,
                keyword: "smtp_alert".into(),
                why: format!(
                    "not carried over: global_defs has no {}",
                    lacking.unwrap_or("mail settings")
                ),
                kind: WarningKind::Dropped,
            });
            return;
        };
        let line = |l: &Loc| Some(l.to_string());
        let mut sec = Section::new("notify.smtp");
        sec.comments.push(format!(
            "{alert} smtp_alert: hafront mails every instance's state changes (and split brain), \
             over plain SMTP as keepalived (tls = \"starttls\" is better where the server offers it)"
        ));
        sec.set("server", server, line(&server_loc));
        sec.set("from", from, line(&from_loc));
        sec.put(
            "to",
            Value::List(
                g.smtp_to
                    .iter()
                    .map(|(a, l)| (a.clone().into(), line(l)))
                    .collect(),
            ),
            None,
        );
        sec.set("tls", "none", None);
        if let Some((t, l)) = &g.smtp_timeout {
            sec.set("timeout", dur(*t), line(l));
        }
        self.sections.push(sec);
    }

    // ---- vrrp_script, vrrp_track_file ---------------------------------------------
}

/// `vrrp_garp_interval` / `vrrp_gna_interval`: decimal seconds, microseconds as
/// keepalived reads them (TIMER_HZ_DIGITS).
enum Spacing {
    Zero,
    TooLong,
    Every(Duration),
}

fn spacing(c: &Node) -> R<Spacing> {
    let d = secs(c, 0)?;
    let d = Duration::from_micros(u64::try_from((d.as_nanos() + 500) / 1000).unwrap_or(u64::MAX));
    Ok(if d.is_zero() {
        Spacing::Zero
    } else if d > crate::config::validate::ANNOUNCE_SPACING_MAX {
        Spacing::TooLong
    } else {
        Spacing::Every(d)
    })
}

impl Cx {
    /// `[vrrp_]garp_extra_if [all] N` (and the deprecated `[vrrp_]vmac_garp_intvl`):
    /// N whole seconds 0..86400 (0: off), `all` anywhere on the line; None (with a
    /// warning) where keepalived ignores the line.
    pub(super) fn extra_if(&mut self, c: &Node) -> R<Option<ExtraIfDef>> {
        let mut all = false;
        let mut every = None;
        for (i, a) in c.args.iter().enumerate() {
            if a == "all" {
                all = true;
            } else {
                every = Some(int(c, i, 0, 86_400)?);
            }
        }
        let Some(every) = every else {
            self.skip(
                c,
                "not carried over: no interval (keepalived ignores the line too)",
            );
            return Ok(None);
        };
        if c.keyword.contains("vmac_garp_intvl") {
            self.changed(
                c,
                "keepalived's deprecated name of garp_extra_if: carried over as that",
            );
        }
        Ok(Some(ExtraIfDef {
            every: Duration::from_secs(u64::try_from(every).unwrap_or(0)),
            all,
        }))
    }
}

/// The prefix of `vmac_prefix` / `vmac_addr_prefix`: the start of an interface name.
fn vmac_prefix_arg(c: &Node) -> R<String> {
    let p = arg(c, 0)?;
    if p.is_empty() || p.len() > 14 || p.contains(['/', ' ', ':']) {
        return Err(ImportError::new(
            &c.loc,
            format!("{} {p:?}: not the start of an interface name", c.keyword),
        ));
    }
    Ok(p.to_string())
}
