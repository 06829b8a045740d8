//! `vrrp_instance` blocks: one `[vrrp.instances.NAME]` each, with their VIPs and
//! tracked items.

use super::instance_rules::{advert_int_in_range, true_false, Facts, OTHER_FAMILY_WHY};
use super::*;

impl Cx {
    pub(super) fn instance(&mut self, n: &Node) -> R<()> {
        let kname = name_arg(n)?.to_string();
        let name = self
            .instances
            .get(&kname)
            .cloned()
            .unwrap_or_else(|| hafront_name(&kname));
        let mut s = Section::new(format!("vrrp.instances.{name}"));
        let mut garp = Section::new(format!("vrrp.instances.{name}.garp"));
        s.comments.push(format!(
            "{} vrrp_instance {kname}{}",
            n.loc,
            renamed(&kname, &name)
        ));
        let at = |c: &Node| Self::at(&n.loc, c);

        let mut interface: Option<String> = None;
        // What keepalived's derived values depend on (instance_rules.rs).
        let mut f = Facts::default();
        let mut auth: Option<(&Node, Option<&Node>)> = None;
        let mut vips: Vec<(toml::Value, Option<String>)> = Vec::new();
        let mut no_track: Vec<(toml::Value, Option<String>)> = Vec::new();
        let mut vip_nodes: Vec<(&Node, IpNet)> = Vec::new();
        let mut label: Option<(String, &Node)> = None;
        let mut excluded: Vec<(toml::Value, Option<String>)> = Vec::new();
        let mut vip_options = toml::Table::new();
        let mut route_nodes: Vec<&Node> = Vec::new();
        let mut rule_nodes: Vec<&Node> = Vec::new();
        let mut state: Option<&Node> = None;
        let mut mcast_src: Option<&Node> = None;
        let mut unicast_src: Option<&Node> = None;
        let mut peers: Vec<(toml::Value, Option<String>)> = Vec::new();
        let mut tracks: BTreeMap<&str, Vec<(toml::Value, Option<String>)>> = BTreeMap::new();
        let mut hmac: Option<(Section, &Node)> = None;
        let mut use_vmac: Option<&Node> = None;
        let mut use_ipvlan = false;
        let mut xmit_base: Option<&Node> = None;

        for c in block(n)? {
            let kw = c.keyword.as_str();
            match kw {
                "state" => match arg(c, 0)? {
                    "MASTER" | "BACKUP" => {
                        state = Some(c);
                        f.state_master = Some((arg(c, 0)? == "MASTER", c));
                    }
                    other => {
                        return Err(ImportError::new(
                            &c.loc,
                            format!("state {other}: must be MASTER or BACKUP"),
                        ))
                    }
                },
                "interface" => {
                    let i = arg(c, 0)?;
                    if !is_interface_name(i) {
                        return Err(ImportError::new(
                            &c.loc,
                            format!("interface {i:?}: not an interface name"),
                        ));
                    }
                    interface = Some(i.to_string());
                    s.set("interface", i, at(c));
                }
                "virtual_router_id" => s.set("vrid", int(c, 0, 1, 255)?, at(c)),
                "priority" => s.set("priority", int(c, 0, 1, 255)?, at(c)),
                "advert_int" => {
                    let d = secs(c, 0)?;
                    if advert_int_in_range(d) {
                        f.advert = Some((d, c));
                    } else {
                        self.changed(
                            c,
                            "ignored, as keepalived: not in 0.01..255 seconds (1 s is used)",
                        );
                    }
                }
                "version" => self.version_line(&mut f, c)?,
                "native_ipv6" => {
                    if f.family.is_some_and(|(v6, _)| !v6) {
                        self.changed(
                            c,
                            "ignored, as keepalived: the instance already has IPv4 addresses",
                        );
                    } else {
                        f.native_ipv6 = Some(c);
                    }
                }
                "strict_mode" => f.strict_mode = Some((true_false(c)?, c)),
                "v3_checksum_as_v2" => f.checksum_as_v2 = Some((true_false(c)?, c)),
                "authentication" => auth = self.authentication(c)?.map(|pass| (c, pass)),
                "auth_hmac" => hmac = Some((self.auth_hmac(c, &name, &n.loc)?, c)),
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    for v in block(c)? {
                        let (net, opts) = self.vip(v, interface.as_deref(), &mut label)?;
                        if kw == "virtual_ipaddress" && !f.address(net.addr(), v) {
                            self.skip(v, OTHER_FAMILY_WHY);
                            continue;
                        }
                        if vip_nodes.iter().any(|(_, o)| o.addr() == net.addr()) {
                            self.skip(v, format!("{} is listed twice", net.addr()));
                            continue;
                        }
                        if v.args.iter().any(|a| a == "no_track") {
                            no_track.push((net.to_string().into(), at(v)));
                        }
                        vip_nodes.push((v, net));
                        if !opts.is_empty() {
                            vip_options.insert(net.to_string(), toml::Value::Table(opts));
                        }
                        if kw == "virtual_ipaddress" {
                            vips.push((net.to_string().into(), at(v)));
                        } else {
                            excluded.push((net.to_string().into(), at(v)));
                        }
                    }
                }
                "virtual_routes" => route_nodes.extend(block(c)?),
                "virtual_rules" => rule_nodes.extend(block(c)?),
                "unicast_src_ip" | "mcast_src_ip" => {
                    if !f.address(ip(c, arg(c, 0)?)?, c) {
                        self.skip(c, OTHER_FAMILY_WHY);
                    } else if kw == "unicast_src_ip" {
                        unicast_src = Some(c);
                    } else {
                        mcast_src = Some(c);
                    }
                }
                "unicast_peer" => {
                    for p in block(c)? {
                        let a = ip(p, &p.keyword)?;
                        if !f.address(a, p) {
                            self.skip(p, OTHER_FAMILY_WHY);
                            continue;
                        }
                        if !p.args.is_empty() {
                            self.skip(
                                p,
                                format!("{}: not carried over (hafront takes the address only)", p.head()),
                            );
                        }
                        peers.push((a.to_string().into(), at(p)));
                    }
                }
                "nopreempt" => f.preempt = Some((false, c)),
                "preempt" => f.preempt = Some((true, c)),
                "preempt_delay" => {
                    let d = secs(c, 0)?;
                    if d > Duration::from_secs(1000) {
                        return Err(ImportError::new(&c.loc, "preempt_delay: at most 1000 seconds"));
                    }
                    f.preempt_delay = Some((d, c));
                }
                "track_script" | "track_interface" | "track_file" => {
                    for t in block(c)? {
                        if let Some(item) = self.track_item(kw, t)? {
                            tracks.entry(kw).or_default().push((item, at(t)));
                        }
                    }
                }
                "accept" => f.accept = Some((true, c)),
                "no_accept" => f.accept = Some((false, c)),
                "garp_master_delay" => garp.set("master_delay", dur(secs(c, 0)?), at(c)),
                "garp_master_repeat" => {
                    let r = int(c, 0, 1, 100)?;
                    garp.set("master_burst", r, at(c));
                    garp.set("master_repeat", r, at(c));
                }
                "garp_master_refresh" => {
                    let d = secs(c, 0)?;
                    if !d.is_zero() {
                        garp.set("refresh", dur(d.max(Duration::from_secs(1))), at(c));
                    }
                }
                "garp_lower_prio_repeat" => garp.set("lower_prio_burst", int(c, 0, 0, i64::MAX)? > 0, at(c)),
                "garp_extra_if" | "vmac_garp_intvl" => {
                    if let Some(e) = self.extra_if(c)? {
                        set_extra_if(&mut garp, e, at(c));
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                    if let Some(cmd) = self.notify_script(c)? {
                        s.set(kw, cmd, at(c));
                    }
                }
                "notify_master_rx_lower_pri" | "notify_deleted" => self.skip(c, NO_EVENT_WHY),
                "smtp_alert" => self.smtp_alert(c),
                "dont_track_primary" => s.set("track_link", false, at(c)),
                "use_vmac" => {
                    s.set("use_vmac", true, at(c));
                    // use_vmac [[name] NAME] [address MAC] [netlink_notify_msg] [group G]
                    let mut it = c.args.iter().map(String::as_str);
                    while let Some(a) = it.next() {
                        match a {
                            "address" | "group" => {
                                let v = it.next().unwrap_or_default();
                                self.skip(c, format!("{a} {v}: not carried over: hafront uses the RFC 5798 virtual MAC and the default link group"));
                            }
                            "netlink_notify_msg" => self.skip(c, "netlink_notify_msg: not carried over: hafront reads the base interface's state itself"),
                            "name" => {}
                            name => {
                                if !is_interface_name(name) {
                                    return Err(ImportError::new(&c.loc, format!("use_vmac {name:?}: not an interface name")));
                                }
                                s.set("vmac_name", name, at(c));
                            }
                        }
                    }
                    use_vmac = Some(c);
                }
                "use_ipvlan" => {
                    self.use_ipvlan(&n.loc, c, &mut s)?;
                    use_ipvlan = true;
                }
                "vmac_xmit_base" => xmit_base = Some(c),
                "use_vmac_addr" => s.set("vmac_addr", true, at(c)),
                "track_process" | "track_bfd" => {
                    self.skip(c, "not carried over: hafront has no equivalent (the whole block)")
                }
                _ => self.other(c, "vrrp_instance")?,
            }
        }

        if let (Some(c), true) = (use_vmac, use_ipvlan) {
            // vrrp_complete_instance: with both, the ipvlan is created.
            s.remove("use_vmac");
            s.remove("vmac_xmit_base");
            self.skip(
                c,
                "not carried over: use_ipvlan is given too, and keepalived creates the ipvlan",
            );
        }
        if let Some(c) = xmit_base {
            if use_vmac.is_some() && !use_ipvlan {
                s.set("vmac_xmit_base", true, at(c));
            } else {
                self.skip(
                    c,
                    "not carried over: only used with use_vmac (keepalived ignores it too)",
                );
            }
        }
        let Some(interface) = interface else {
            return Err(ImportError::new(
                &n.loc,
                format!("vrrp_instance {kname}: 'interface' is required"),
            ));
        };
        if !s.has("vrid") {
            return Err(ImportError::new(
                &n.loc,
                format!("vrrp_instance {kname}: 'virtual_router_id' is required"),
            ));
        }
        if vips.is_empty() {
            return Err(ImportError::new(
                &n.loc,
                format!("vrrp_instance {kname}: no virtual_ipaddress (hafront needs at least one VIP)"),
            ));
        }
        let (version, strict) = self.derive_instance(n, &f, &mut s, &mut garp)?;
        s.put("virtual_ips", Value::List(vips), None);
        if !excluded.is_empty() {
            s.put("virtual_ips_excluded", Value::List(excluded), None);
        }
        let v6 = f.is_v6();
        if s.has("use_vmac") {
            // vrrp_complete_instance: a VIP's use_vmac on the instance's interface,
            // of its family, is an error there (the VIP goes on the instance's VMAC).
            for (v, net) in &vip_nodes {
                let key = net.to_string();
                let Some(toml::Value::Table(t)) = vip_options.get_mut(&key) else {
                    continue;
                };
                if t.contains_key("use_vmac") && !t.contains_key("dev") && net.addr().is_ipv6() == v6 {
                    t.remove("use_vmac");
                    if t.is_empty() {
                        vip_options.remove(&key);
                    }
                    self.skip(
                        v,
                        "use_vmac: not carried over: the VIP is on the instance's VMAC already \
                         (keepalived reports it as an error too)",
                    );
                }
            }
        }
        if !vip_options.is_empty() {
            s.set("vip_options", toml::Value::Table(vip_options), None);
        }
        let mut routes = Vec::new();
        for r in route_nodes {
            if let Some(t) = self.virtual_route(r, v6)? {
                routes.push((t, at(r)));
            }
        }
        if !routes.is_empty() {
            s.put("virtual_routes", Value::List(routes), None);
        }
        let mut rules = Vec::new();
        for r in rule_nodes {
            if let Some(t) = self.virtual_rule(r)? {
                rules.push((t, at(r)));
            }
        }
        if !rules.is_empty() {
            s.put("virtual_rules", Value::List(rules), None);
        }
        if !no_track.is_empty() {
            s.put("vip_no_track", Value::List(no_track), None);
        }
        if let Some((l, c)) = label {
            if !is_address_label(&l, &interface) {
                return Err(ImportError::new(
                    &c.loc,
                    format!("label {l}: must start with the interface name {interface} and be at most 15 characters"),
                ));
            }
            s.set("vip_label", l, at(c));
        }
        match (auth, &hmac) {
            (Some((c, _)), Some(_)) => self.skip(
                c,
                "not carried over: auth_hmac replaces it (keepalived drops the legacy authentication too)",
            ),
            (Some((c, pass)), None) => self.auth_pass(&mut s, &n.loc, (version, strict), c, pass)?,
            (None, _) => {}
        }
        self.unicast(&mut s, &n.loc, peers, unicast_src, mcast_src)?;
        for (kw, key) in [
            ("track_interface", "track_interfaces"),
            ("track_script", "track_scripts"),
            ("track_file", "track_files"),
        ] {
            if let Some(items) = tracks.remove(kw) {
                s.put(key, Value::List(items), None);
            }
        }
        if let Some(c) = state {
            self.initial_state(&mut s, c)?;
        }
        self.garp_defaults(&mut garp);
        if s.has("use_vmac") || s.has("use_ipvlan") {
            let vrid = s.get("vrid").and_then(toml::Value::as_integer).unwrap_or(0);
            self.vmacs.push(super::vmac::VmacInstance {
                section: self.sections.len(),
                vrid: u8::try_from(vrid).unwrap_or(0),
                v6,
                named: s
                    .get("vmac_name")
                    .and_then(toml::Value::as_str)
                    .map(str::to_string),
                interface: interface.clone(),
            });
        }
        self.sections.push(s);
        if !garp.entries.is_empty() {
            self.sections.push(garp);
        }
        if let Some((h, c)) = hmac {
            if h.has("active_key") {
                self.sections.push(h);
            } else {
                self.skip(
                    c,
                    "not carried over: no active_key (keepalived disables auth_hmac without one)",
                );
            }
        }
        Ok(())
    }

    /// keepalived 2.4's `auth_hmac` block (vrrp_parser.c: key, active_key,
    /// time_window, anti_replay, mode) as `[vrrp.instances.NAME.auth_hmac]`. Key
    /// values (`hex:`, ASCII, `file:`) are carried as written; hafront checks them
    /// as keepalived does (32 to 64 bytes).
    fn auth_hmac(&mut self, c: &Node, name: &str, loc: &Loc) -> R<Section> {
        let mut h = Section::new(format!("vrrp.instances.{name}.auth_hmac"));
        h.comments.push(format!("{} auth_hmac", c.loc));
        let mut keys: Vec<(toml::Value, Option<String>)> = Vec::new();
        for a in block(c)? {
            let at = Self::at(loc, a);
            match a.keyword.as_str() {
                "key" => {
                    let id = int(a, 0, 1, 255)?;
                    let value = arg(a, 1)?;
                    let mut t = toml::Table::new();
                    t.insert("id".into(), id.into());
                    t.insert("key".into(), value.into());
                    keys.push((toml::Value::Table(t), at));
                }
                "active_key" => h.set("active_key", int(a, 0, 1, 255)?, at),
                "time_window" => h.set("time_window", format!("{}s", int(a, 0, 1, 300)?), at),
                "anti_replay" => match arg(a, 0)? {
                    v @ ("time" | "monotonic") => h.set("anti_replay", v, at),
                    other => {
                        return Err(ImportError::new(
                            &a.loc,
                            format!("anti_replay {other}: must be time or monotonic"),
                        ))
                    }
                },
                "mode" => match arg(a, 0)? {
                    v @ ("enforce" | "permissive" | "receive-only") => h.set("mode", v, at),
                    other => {
                        return Err(ImportError::new(
                            &a.loc,
                            format!("mode {other}: must be enforce, permissive or receive-only"),
                        ))
                    }
                },
                _ => self.other(a, "auth_hmac")?,
            }
        }
        h.put("keys", Value::List(keys), None);
        Ok(h)
    }

    /// An `authentication` block: its auth_pass line (`None`: AH, not carried
    /// over).
    fn authentication<'a>(&mut self, c: &'a Node) -> R<Option<Option<&'a Node>>> {
        let mut pass = None;
        for a in block(c)? {
            match a.keyword.as_str() {
                "auth_type" => match arg(a, 0)? {
                    "PASS" => {}
                    "AH" => self.skip(
                        a,
                        "not carried over: hafront has no IPsec-AH authentication (adverts \
                         go without it; peers still using AH will drop them)",
                    ),
                    other => {
                        return Err(ImportError::new(
                            &a.loc,
                            format!("auth_type {other}: must be PASS or AH"),
                        ))
                    }
                },
                "auth_pass" => pass = Some(a),
                _ => self.other(a, "authentication")?,
            }
        }
        let ah = block(c)?
            .iter()
            .any(|a| a.keyword == "auth_type" && a.args.first().is_some_and(|t| t == "AH"));
        Ok((!ah).then_some(pass))
    }

    /// VRRPv2 simple-text authentication, the first 8 characters as keepalived.
    fn auth_pass(
        &mut self,
        s: &mut Section,
        loc: &Loc,
        (version, strict): (i64, bool),
        c: &Node,
        pass: Option<&Node>,
    ) -> R<()> {
        if version != 2 {
            self.skip(
                c,
                "not carried over: VRRPv3 has no authentication (keepalived ignores it too)",
            );
        } else if strict {
            self.skip(
                c,
                "not carried over: keepalived ignores authentication in strict mode, so adverts carry none",
            );
        } else if let Some(p) = pass {
            let mut pw = arg(p, 0)?.to_string();
            if pw.is_empty() || !pw.is_ascii() {
                return Err(ImportError::new(
                    &p.loc,
                    "auth_pass: must be 1 to 8 ASCII characters",
                ));
            }
            if pw.len() > 8 {
                pw.truncate(8);
                self.changed(p, "truncated to its first 8 characters, as keepalived does");
            }
            s.set("auth_pass", pw, Self::at(loc, p));
        } else {
            self.skip(
                c,
                "not carried over: no auth_pass, so keepalived sends adverts without authentication",
            );
        }
        Ok(())
    }

    /// Unicast peers and their source; without peers, the source addresses are
    /// not carried over.
    fn unicast(
        &mut self,
        s: &mut Section,
        loc: &Loc,
        peers: Vec<(toml::Value, Option<String>)>,
        unicast_src: Option<&Node>,
        mcast_src: Option<&Node>,
    ) -> R<()> {
        if !peers.is_empty() {
            s.put("unicast_peers", Value::List(peers), None);
            if let Some(c) = unicast_src.or(mcast_src) {
                let a = ip(c, arg(c, 0)?)?;
                s.set("unicast_source", a.to_string(), Self::at(loc, c));
            }
        } else {
            if let Some(c) = unicast_src {
                self.skip(c, "not carried over: only used with unicast_peer");
            }
            if let Some(c) = mcast_src {
                ip(c, arg(c, 0)?)?;
                self.skip(
                    c,
                    "not carried over: hafront sends multicast adverts from the interface's primary address",
                );
            }
        }
        Ok(())
    }

    /// `state MASTER|BACKUP`: hafront has no initial state; said so in a comment.
    fn initial_state(&mut self, s: &mut Section, c: &Node) -> R<()> {
        let prio = s
            .entries
            .iter()
            .find(|e| e.key == "priority")
            .and_then(|e| match &e.value {
                Value::One(v) => v.as_integer(),
                _ => None,
            })
            .unwrap_or(100);
        let why = format!(
            "hafront has no initial state: the highest priority (here {prio}) becomes master, \
             as keepalived also ends up doing; state {} only shortened keepalived's start",
            arg(c, 0)?
        );
        s.comments
            .push(format!("line {}: state {}: {why}", c.loc.line, arg(c, 0)?));
        self.changed(c, why);
        Ok(())
    }

    /// The instance's garp settings where it has none of its own: global_defs'.
    fn garp_defaults(&self, garp: &mut Section) {
        let g = &self.g;
        if !garp.has("master_delay") {
            if let Some((d, loc)) = &g.garp_delay {
                garp.set(
                    "master_delay",
                    dur(*d),
                    Some(format!("vrrp_garp_master_delay at {loc}")),
                );
            }
        }
        if !garp.has("master_burst") {
            if let Some((r, loc)) = &g.garp_repeat {
                garp.set(
                    "master_burst",
                    *r,
                    Some(format!("vrrp_garp_master_repeat at {loc}")),
                );
                garp.set(
                    "master_repeat",
                    *r,
                    Some(format!("vrrp_garp_master_repeat at {loc}")),
                );
            }
        }
        if !garp.has("refresh") {
            if let Some((d, loc)) = &g.garp_refresh {
                if !d.is_zero() {
                    garp.set(
                        "refresh",
                        dur((*d).max(Duration::from_secs(1))),
                        Some(format!("vrrp_garp_master_refresh at {loc}")),
                    );
                }
            }
        }
        if !garp.has("extra_if_interval") {
            if let Some((e, loc)) = &g.extra_if {
                set_extra_if(garp, *e, Some(format!("vrrp_garp_extra_if at {loc}")));
            }
        }
        if !garp.has("lower_prio_burst") {
            if let Some((b, loc)) = &g.garp_lower_prio {
                garp.set(
                    "lower_prio_burst",
                    *b,
                    Some(format!("vrrp_garp_lower_prio_repeat at {loc}")),
                );
            }
        }
    }

    /// `use_ipvlan [[name] NAME] [ADDRESS[/PREFIX]] [bridge|private|vepa] [group G]`
    /// (keepalived's vrrp_ipvlan_handler; an address without a prefix is a /32 or
    /// /128, as its parse_ipaddress).
    fn use_ipvlan(&mut self, loc: &Loc, c: &Node, s: &mut Section) -> R<()> {
        let at = |c: &Node| Self::at(loc, c);
        s.set("use_ipvlan", true, at(c));
        let mut it = c.args.iter().map(String::as_str);
        while let Some(a) = it.next() {
            match a {
                "bridge" | "private" | "vepa" => {
                    if a != "bridge" {
                        s.set("ipvlan_mode", a, at(c));
                    }
                }
                "group" => {
                    let v = it.next().unwrap_or_default();
                    self.skip(
                        c,
                        format!("group {v}: not carried over: the ipvlan goes in the default link group"),
                    );
                }
                _ => {
                    let addr = a
                        .parse::<IpNet>()
                        .ok()
                        .or_else(|| a.parse::<IpAddr>().ok().map(IpNet::from));
                    let name = if a == "name" {
                        it.next().unwrap_or_default()
                    } else {
                        a
                    };
                    match addr {
                        Some(net) if a != "name" => s.set("ipvlan_address", net.to_string(), at(c)),
                        _ => {
                            if !is_interface_name(name) {
                                return Err(ImportError::new(
                                    &c.loc,
                                    format!("use_ipvlan {name:?}: not an interface name nor an address"),
                                ));
                            }
                            s.set("vmac_name", name, at(c));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// One line of virtual_ipaddress: `ADDR[/PREFIX] [dev IF] [label L] [...]`.
    pub(super) fn vip<'a>(
        &mut self,
        v: &'a Node,
        interface: Option<&str>,
        label: &mut Option<(String, &'a Node)>,
    ) -> R<(IpNet, toml::Table)> {
        let mut opts = toml::Table::new();
        if v.children.is_some() {
            return Err(ImportError::new(&v.loc, "unexpected block in virtual_ipaddress"));
        }
        let text = v.keyword.as_str();
        let net: IpNet = match text.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => match text.parse::<IpAddr>() {
                Ok(a) => IpNet::from(a),
                Err(_) => {
                    return Err(ImportError::new(
                        &v.loc,
                        format!("virtual_ipaddress: {text:?} is not an IP address (ADDR or ADDR/PREFIX)"),
                    ))
                }
            },
        };
        let a = net.addr();
        if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
            return Err(ImportError::new(
                &v.loc,
                format!("virtual_ipaddress: {a} is not a usable unicast address"),
            ));
        }
        let mut words = v.args.iter();
        let mut lbl: Option<String> = None;
        while let Some(o) = words.next() {
            match o.as_str() {
                "dev" => {
                    let dev = words.next().map(String::as_str).unwrap_or("");
                    if !is_interface_name(dev) {
                        return Err(ImportError::new(
                            &v.loc,
                            format!("{}: dev {dev:?}: not an interface name", v.head()),
                        ));
                    }
                    if Some(dev) != interface {
                        opts.insert("dev".into(), dev.into());
                    }
                }
                // Carried over as vip_no_track by the caller.
                "no_track" => {}
                // On a VMAC of its interface (keepalived's per-VIP use_vmac).
                "use_vmac" => drop(opts.insert("use_vmac".into(), true.into())),
                "label" => {
                    let l = words.next().cloned().unwrap_or_default();
                    lbl = Some(l);
                }
                "scope" => {
                    let sc = words.next().map(String::as_str).unwrap_or("");
                    match sc {
                        "global" | "universe" | "0" => {}
                        "site" | "200" => drop(opts.insert("scope".into(), "site".into())),
                        "link" | "253" => drop(opts.insert("scope".into(), "link".into())),
                        "host" | "254" => drop(opts.insert("scope".into(), "host".into())),
                        _ => self.skip(
                            v,
                            format!("scope {sc}: not carried over (global, site, link, host)"),
                        ),
                    }
                }
                other => {
                    // brd, scope, no_track, preferred_lft...: value-taking or not, the
                    // rest of the line is not carried over.
                    let rest: Vec<&str> = std::iter::once(other)
                        .chain(words.by_ref().map(String::as_str))
                        .collect();
                    self.skip(
                        v,
                        format!(
                            "{}: not carried over (hafront takes the address, prefix, dev, label, scope and use_vmac)",
                            rest.join(" ")
                        ),
                    );
                    break;
                }
            }
        }
        // A label on the instance's interface: the instance's `vip_label` (the
        // first), or this VIP's own; on another device, the VIP's own.
        if let Some(l) = lbl {
            let dev = opts.get("dev").and_then(|d| d.as_str()).map(str::to_string);
            let own = interface.unwrap_or_default();
            match (&dev, label.as_ref()) {
                _ if net.addr().is_ipv6() => {
                    self.skip(v, format!("label {l}: not carried over: labels are for IPv4 addresses (keepalived ignores it too)"))
                }
                (Some(d), _) if !is_address_label(&l, d) => self.skip(
                    v,
                    format!("label {l}: not carried over: it must start with the device name {d} (the kernel's rule)"),
                ),
                (Some(_), _) => drop(opts.insert("label".into(), l.into())),
                (None, None) => *label = Some((l, v)),
                (None, Some((prev, _))) if *prev == l => {}
                (None, Some(_)) if !is_address_label(&l, own) => self.skip(
                    v,
                    format!("label {l}: not carried over: it must start with the interface name {own} (the kernel's rule)"),
                ),
                (None, Some(_)) => drop(opts.insert("label".into(), l.into())),
            }
        }
        Ok((net, opts))
    }

    pub(super) fn track_item(&mut self, kw: &str, t: &Node) -> R<Option<toml::Value>> {
        let explicit = match t.args.first().map(String::as_str) {
            Some("weight") => Some(int(t, 1, -253, 253)?),
            Some(_) | None => None,
        };
        if t.args.iter().any(|a| a == "reverse") {
            self.skip(t, "reverse: not carried over (hafront has no reversed weights)");
        }
        match kw {
            "track_script" => match self.scripts.get(&t.keyword) {
                Some(Some(def)) => Ok(Some(track_table(&def.name, explicit.unwrap_or(def.weight)))),
                Some(None) => Ok(None), // already reported at the vrrp_script
                None => {
                    self.skip(
                        t,
                        format!(
                            "no vrrp_script named {}: not carried over (keepalived ignores it too)",
                            t.keyword
                        ),
                    );
                    Ok(None)
                }
            },
            "track_file" => match self.files.get(&t.keyword) {
                Some(def) => Ok(Some(track_table(&def.name, explicit.unwrap_or(def.weight)))),
                None => Err(ImportError::new(
                    &t.loc,
                    format!("no vrrp_track_file named {}", t.keyword),
                )),
            },
            _ => {
                let i = &t.keyword;
                if !is_interface_name(i) {
                    return Err(ImportError::new(
                        &t.loc,
                        format!("track_interface {i:?}: not an interface name"),
                    ));
                }
                Ok(Some(track_table(i, explicit.unwrap_or(0))))
            }
        }
    }

    // ---- vrrp_sync_group ------------------------------------------------------------
}

/// `garp.extra_if_interval` (0: off, written so that it overrides a global
/// default) and `garp.extra_if_all`.
fn set_extra_if(garp: &mut Section, e: ExtraIfDef, at: Option<String>) {
    garp.set("extra_if_interval", dur(e.every), at.clone());
    if e.all {
        garp.set("extra_if_all", true, at);
    }
}
