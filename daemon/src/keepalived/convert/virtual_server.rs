//! `virtual_server` blocks: IPVS services, their real servers and health checks.

use super::*;

impl Cx {
    pub(super) fn virtual_server(&mut self, n: &Node) -> R<()> {
        let children = block(n)?;
        let (raw_name, address, fwmark) = match n.args.first().map(String::as_str) {
            Some("group") => {
                self.skip(
                    n,
                    "virtual_server group: not carried over (hafront has no virtual_server_group)",
                );
                return Ok(());
            }
            Some("fwmark") => {
                let m = int(n, 1, 1, u32::MAX as i64)?;
                (format!("fwmark_{m}"), None, Some(m))
            }
            Some(a) => {
                let addr = ip(n, a)?;
                let p = port(n, arg(n, 1)?)?;
                (format!("vs_{addr}_{p}"), Some(SocketAddr::new(addr, p)), None)
            }
            None => {
                return Err(ImportError::new(
                    &n.loc,
                    "virtual_server: expected IP PORT or fwmark N",
                ))
            }
        };
        let name = {
            let h = hafront_name(&raw_name);
            let candidate = if h.len() > 26 { "vs".to_string() } else { h };
            self.unique_name("ipvs.services", &candidate)
        };
        let mut s = Section::new(format!("ipvs.services.{name}"));
        s.comments
            .push(format!("{} virtual_server {}", n.loc, n.args.join(" ")));
        let at = |c: &Node| Self::at(&n.loc, c);
        if let Some(a) = address {
            s.set("address", a.to_string(), at(n));
        }
        if let Some(m) = fwmark {
            s.set("fwmark", m, at(n));
        }
        let mut defaults = CheckDefaults::default();
        let mut servers: Vec<&Node> = Vec::new();
        for c in children {
            match c.keyword.as_str() {
                "delay_loop" | "retry" | "delay_before_retry" | "warmup" | "connect_timeout" => {
                    defaults.inherit(c, "virtual_server")?
                }
                // The weight of its real servers that set none (check_data.c).
                "weight" => defaults.weight = Some(int(c, 0, 0, i32::MAX as i64)?),
                "lb_algo" | "lvs_sched" => {
                    let sched = arg(c, 0)?.to_ascii_lowercase();
                    if !SCHEDULERS.contains(&sched.as_str()) {
                        return Err(ImportError::new(
                            &c.loc,
                            format!(
                                "{} {sched}: not an IPVS scheduler ({})",
                                c.keyword,
                                SCHEDULERS.join(", ")
                            ),
                        ));
                    }
                    s.set("scheduler", sched, at(c));
                }
                "lb_kind" | "lvs_method" => s.set("forwarding", forwarding(c)?, at(c)),
                "persistence_timeout" => {
                    let d = secs(c, 0)?;
                    if d.subsec_nanos() != 0 {
                        return Err(ImportError::new(&c.loc, "persistence_timeout: whole seconds"));
                    }
                    if !d.is_zero() {
                        s.set("persistence", dur(d), at(c));
                    }
                }
                "persistence_granularity" => {
                    let g = arg(c, 0)?;
                    let plen = match g.parse::<IpAddr>() {
                        Ok(mask) => ipnet::ip_mask_to_prefix(mask).map_err(|_| {
                            ImportError::new(&c.loc, format!("persistence_granularity {g}: not a netmask"))
                        })?,
                        Err(_) => g.parse::<u8>().map_err(|_| {
                            ImportError::new(
                                &c.loc,
                                format!("persistence_granularity {g}: not a netmask or prefix"),
                            )
                        })?,
                    };
                    s.set("persistence_prefix", plen as i64, at(c));
                }
                "persistence_engine" => s.set("persistence_engine", arg(c, 0)?, at(c)),
                "protocol" => {
                    let p = arg(c, 0)?.to_ascii_lowercase();
                    if !["tcp", "udp", "sctp"].contains(&p.as_str()) {
                        return Err(ImportError::new(
                            &c.loc,
                            format!("protocol {p}: TCP, UDP or SCTP"),
                        ));
                    }
                    s.set("protocol", p, at(c));
                }
                "sorry_server" => {
                    let a = ip(c, arg(c, 0)?)?;
                    let p = port(c, c.args.get(1).map(String::as_str).unwrap_or("0"))?;
                    s.set("sorry_server", sockaddr(a, p), at(c));
                }
                "quorum" => s.set("quorum", int(c, 0, 0, u32::MAX as i64)?, at(c)),
                "inhibit_on_failure" => s.set("inhibit_on_failure", true, at(c)),
                "virtualhost" => defaults.host = Some(arg(c, 0)?.to_string()),
                "ops" => s.set("one_packet", true, at(c)),
                "ip_family" => match arg(c, 0)? {
                    "inet" => s.set("family", "ipv4", at(c)),
                    "inet6" => s.set("family", "ipv6", at(c)),
                    f => return Err(ImportError::new(&c.loc, format!("ip_family {f}: inet or inet6"))),
                },
                "real_server" => servers.push(c),
                "sorry_server_inhibit"
                | "sorry_server_lvs_method"
                | "hysteresis"
                | "ha_suspend"
                | "alpha"
                | "omega" => self.skip(
                    c,
                    "not carried over: hafront has no such setting for a virtual service",
                ),
                "quorum_up" | "quorum_down" => self.skip(c, CHECKER_NOTIFY_WHY),
                _ => self.other(c, "virtual_server")?,
            }
        }
        let mut list: Vec<(toml::Value, Option<String>)> = Vec::new();
        let mut seen: Vec<SocketAddr> = Vec::new();
        let mut inhibit = Vec::new();
        for (k, rs) in servers.into_iter().enumerate() {
            let (addr, table, inh) = self.real_server(rs, &name, k + 1, address, &defaults)?;
            if seen.contains(&addr) {
                self.skip(
                    rs,
                    format!(
                        "{addr} is listed twice: not carried over (keepalived removes the second one too)"
                    ),
                );
                // Its check section was already added: take it back out.
                if let Some(toml::Value::String(chk)) = table.get("check") {
                    let path = format!("checks.{chk}");
                    self.sections.retain(|s| s.path != path);
                }
                continue;
            }
            seen.push(addr);
            inhibit.push((inh, rs));
            list.push((
                toml::Value::Table(table),
                Some(format!("{} real_server {}", rs.loc, rs.args.join(" "))),
            ));
        }
        if inhibit.iter().any(|(i, _)| *i) && !s.has("inhibit_on_failure") {
            if let Some((_, rs)) = inhibit.iter().find(|(i, _)| !*i) {
                self.changed(
                    rs,
                    "hafront applies inhibit_on_failure to a whole service: this real server is inhibited too",
                );
            }
            s.set("inhibit_on_failure", true, Some("from its real servers".into()));
        }
        s.put("real_servers", Value::List(list), None);
        // Checks were pushed while reading the real servers; the service goes before them.
        let first_check = self
            .sections
            .iter()
            .position(|x| x.path.starts_with(&format!("checks.{name}_rs")))
            .unwrap_or(self.sections.len());
        self.sections.insert(first_check, s);
        Ok(())
    }

    fn real_server(
        &mut self,
        rs: &Node,
        service: &str,
        k: usize,
        vs: Option<SocketAddr>,
        defaults: &CheckDefaults,
    ) -> R<(SocketAddr, toml::Table, bool)> {
        let a = ip(rs, arg(rs, 0)?)?;
        let p = match rs.args.get(1) {
            Some(p) => port(rs, p)?,
            None => vs.map(|v| v.port()).unwrap_or(0),
        };
        let addr = SocketAddr::new(a, p);
        let mut t = toml::Table::new();
        t.insert("address".into(), addr.to_string().into());
        let mut inhibit = false;
        let mut check: Option<&Node> = None;
        let mut rs_defaults = defaults.clone();
        for c in block(rs)? {
            match c.keyword.as_str() {
                "weight" => {
                    t.insert("weight".into(), int(c, 0, 0, i32::MAX as i64)?.into());
                }
                "inhibit_on_failure" => inhibit = true,
                "uthreshold" => {
                    t.insert("upper_threshold".into(), int(c, 0, 0, u32::MAX as i64)?.into());
                }
                "lthreshold" => {
                    t.insert("lower_threshold".into(), int(c, 0, 0, u32::MAX as i64)?.into());
                }
                "lvs_method" => {
                    t.insert("forwarding".into(), forwarding(c)?.into());
                }
                "delay_loop" | "retry" | "delay_before_retry" | "warmup" | "connect_timeout" => {
                    rs_defaults.inherit(c, "real_server")?
                }
                "alpha" => self.skip(c, "not carried over: hafront checks have no such setting"),
                // The real server's checks' Host header, over the virtual server's.
                "virtualhost" => rs_defaults.host = Some(arg(c, 0)?.to_string()),
                "notify_up" | "notify_down" => self.skip(c, CHECKER_NOTIFY_WHY),
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "DNS_CHECK" | "SMTP_CHECK"
                | "PING_CHECK" | "UDP_CHECK" => {
                    block(c)?;
                    if let Some(first) = check {
                        self.skip(
                            c,
                            format!(
                                "not carried over: a hafront real server follows one check (the {} at line {})",
                                first.keyword, first.loc.line
                            ),
                        );
                    } else {
                        check = Some(c);
                    }
                }
                "BFD_CHECK" | "FILE_CHECK" => self.skip(c, "not carried over: hafront has no such check"),
                _ => self.other(c, "real_server")?,
            }
        }
        if let (false, Some(w)) = (t.contains_key("weight"), defaults.weight) {
            t.insert("weight".into(), w.into());
        }
        if let Some(c) = check {
            let mut cname = format!("{service}_rs{k}");
            if cname.len() > 32 {
                cname = format!("rs{k}");
            }
            let cname = self.unique_name("checks", &cname);
            self.check(c, &cname, a, p, &rs_defaults)?;
            t.insert("check".into(), cname.into());
        }
        Ok((addr, t, inhibit))
    }

    fn check(&mut self, c: &Node, name: &str, rs_ip: IpAddr, rs_port: u16, d: &CheckDefaults) -> R<()> {
        let mut s = Section::new(format!("checks.{name}"));
        s.comments.push(format!(
            "{} {} of real_server {}",
            c.loc,
            c.keyword,
            sockaddr(rs_ip, rs_port)
        ));
        let at = |x: &Node| Self::at(&c.loc, x);
        let kind = match c.keyword.as_str() {
            "TCP_CHECK" => "tcp",
            "HTTP_GET" => "http",
            "SSL_GET" => "https",
            "MISC_CHECK" => "exec",
            "DNS_CHECK" => "dns",
            "SMTP_CHECK" => "smtp",
            "PING_CHECK" => "ping",
            _ => "udp",
        };
        s.set("kind", kind, None);
        // keepalived 2.4.3 (check_data.c): a checker's delay_loop, retry,
        // connect_timeout, warmup and delay_before_retry default to its real
        // server's, which default to its virtual server's.
        let some = |o: &Option<(Duration, String)>| o.clone().map(|(v, c)| (v, Some(c)));
        let mut interval = some(&d.interval);
        let mut timeout = some(&d.timeout);
        let mut retries = d.retry.clone().map(|(v, c)| (v, Some(c)));
        let mut retry_delay = some(&d.retry_delay);
        let mut warmup = some(&d.warmup);
        let mut connect_ip: Option<IpAddr> = None;
        let mut connect_port: Option<u16> = None;
        let mut host = d.host.clone();
        let mut url: Option<&Node> = None;
        let mut argv_cmd: Option<Vec<String>> = None;
        let mut smtp_host_seen = false;
        for x in block(c)? {
            match x.keyword.as_str() {
                "delay_loop" => interval = Some((secs(x, 0)?, at(x))),
                "connect_timeout" | "misc_timeout" => timeout = Some((secs(x, 0)?, at(x))),
                "retry" | "nb_get_retry" => {
                    retries = Some((int(x, 0, 0, 100)?, at(x)));
                    if x.keyword == "nb_get_retry" && kind == "tcp" {
                        self.changed(
                            x,
                            "keepalived 2.2 ignores nb_get_retry in TCP_CHECK (it keeps 1 retry); carried \
                             over as retries as written",
                        );
                    }
                }
                "delay_before_retry" => retry_delay = Some((secs(x, 0)?, at(x))),
                "warmup" => warmup = Some((secs(x, 0)?, at(x))),
                "connect_ip" => connect_ip = Some(ip(x, arg(x, 0)?)?),
                "connect_port" => connect_port = Some(port(x, arg(x, 0)?)?),
                "bindto" => s.set("bind_address", ip(x, arg(x, 0)?)?.to_string(), at(x)),
                "bind_if" => s.set("bind_interface", arg(x, 0)?, at(x)),
                "bind_port" | "fwmark" | "alpha" => {
                    self.skip(x, "not carried over: hafront checks have no such setting")
                }
                "virtualhost" if kind == "http" || kind == "https" => host = Some(arg(x, 0)?.to_string()),
                "url" if kind == "http" || kind == "https" => {
                    block(x)?;
                    match url {
                        None => url = Some(x),
                        Some(first) => self.skip(
                            x,
                            format!(
                                "not carried over: a hafront HTTP check has one URL (the one at line {})",
                                first.loc.line
                            ),
                        ),
                    }
                }
                "misc_path" if kind == "exec" => {
                    let words: Vec<String> = x.args.iter().flat_map(|a| argv(a)).collect();
                    if words.is_empty() {
                        return Err(ImportError::new(&x.loc, "misc_path: missing command"));
                    }
                    argv_cmd = Some(self.program(x, words)?);
                }
                "misc_dynamic" if kind == "exec" => s.set("dynamic_weight", true, at(x)),
                "user" if kind == "exec" => self.skip(x, SCRIPT_SECURITY_WHY),
                "type" if kind == "dns" => s.set("query_type", arg(x, 0)?.to_ascii_uppercase(), at(x)),
                "name" if kind == "dns" => s.set("query_name", arg(x, 0)?, at(x)),
                "helo_name" if kind == "smtp" => s.set("helo_name", arg(x, 0)?, at(x)),
                "host" if kind == "smtp" => {
                    // keepalived 1.x: SMTP_CHECK { host { connect_ip ... } }.
                    if smtp_host_seen {
                        self.skip(x, "not carried over: a hafront smtp check has one target");
                        continue;
                    }
                    smtp_host_seen = true;
                    for h in block(x)? {
                        match h.keyword.as_str() {
                            "connect_ip" => connect_ip = Some(ip(h, arg(h, 0)?)?),
                            "connect_port" => connect_port = Some(port(h, arg(h, 0)?)?),
                            "bindto" => s.set("bind_address", ip(h, arg(h, 0)?)?.to_string(), at(h)),
                            _ => self.other(h, "SMTP_CHECK host")?,
                        }
                    }
                }
                "payload" if kind == "udp" => s.set("payload", format!("hex:{}", arg(x, 0)?), at(x)),
                "require_reply" if kind == "udp" => {
                    if let Some(r) = x.args.first() {
                        s.set("expect", format!("hex:{r}"), at(x));
                    }
                }
                _ => self.other(x, &c.keyword)?,
            }
        }
        let (interval, icomment) =
            interval.unwrap_or((KA_DELAY_LOOP, Some("keepalived's default delay_loop".into())));
        if interval < Duration::from_millis(10) || interval > Duration::from_secs(3600) {
            return Err(ImportError::new(
                &c.loc,
                "delay_loop: hafront checks run every 10ms..1h",
            ));
        }
        s.set("interval", dur(interval), icomment);
        let (timeout, tcomment) = match (timeout, kind) {
            (Some(t), _) => t,
            // keepalived's misc_timeout defaults to the delay_loop.
            (None, "exec") => (
                interval,
                Some("keepalived's default misc_timeout (delay_loop)".into()),
            ),
            (None, _) => (
                KA_CONNECT_TIMEOUT,
                Some("keepalived's default connect_timeout".into()),
            ),
        };
        if timeout.is_zero() || timeout > Duration::from_secs(3600) {
            return Err(ImportError::new(&c.loc, "timeout: hafront needs 1ms..1h"));
        }
        s.set("timeout", dur(timeout), tcomment);
        let (r, rcomment) = retries.unwrap_or((
            match kind {
                "exec" => 0,
                "dns" => KA_DNS_RETRY,
                _ => KA_RETRY,
            },
            Some(format!("keepalived's default retry for {}", c.keyword)),
        ));
        s.set("retries", r, rcomment);
        // delay_before_retry: 1 s, 3 s for HTTP_GET/SSL_GET, the delay_loop for DNS_CHECK.
        let (rd, rdcomment) = match retry_delay {
            Some(given) => given,
            None => (
                match kind {
                    "http" | "https" => KA_HTTP_RETRY_DELAY,
                    "dns" => interval,
                    _ => KA_RETRY_DELAY,
                },
                Some(format!(
                    "keepalived's default delay_before_retry for {}",
                    c.keyword
                )),
            ),
        };
        s.set("retry_delay", dur(rd), rdcomment);
        // warmup: the delay_loop by default, as hafront's.
        if let Some((w, wcomment)) = warmup {
            s.set("warmup", dur(w), wcomment);
        }
        // keepalived changes a real server's state on one verdict (after its retries).
        s.set(
            "rise",
            1i64,
            Some("keepalived: one success brings a server up".into()),
        );
        s.set(
            "fall",
            1i64,
            Some("keepalived: one failure (after retries) takes it down".into()),
        );
        let target_ip = connect_ip.unwrap_or(rs_ip);
        match kind {
            "tcp" | "smtp" | "udp" => {
                let p = connect_port.unwrap_or(rs_port);
                if p == 0 {
                    return Err(ImportError::new(
                        &c.loc,
                        format!("{}: connect_port is needed", c.keyword),
                    ));
                }
                s.set("target", sockaddr(target_ip, p), None);
            }
            "ping" => s.set("target", target_ip.to_string(), None),
            "dns" => {
                s.set("server", sockaddr(target_ip, connect_port.unwrap_or(53)), None);
                if !s.has("query_name") {
                    s.set("query_name", ".", Some("keepalived's default name".into()));
                }
                if !s.has("query_type") {
                    s.set("query_type", "SOA", Some("keepalived's default type".into()));
                }
            }
            "exec" => match argv_cmd {
                Some(cmd) => {
                    let list: Vec<toml::Value> = cmd.into_iter().map(toml::Value::String).collect();
                    s.set("command", toml::Value::Array(list), None);
                }
                None => return Err(ImportError::new(&c.loc, "MISC_CHECK: misc_path is required")),
            },
            _ => {
                let p = connect_port.unwrap_or(rs_port);
                if p == 0 {
                    return Err(ImportError::new(
                        &c.loc,
                        format!("{}: connect_port is needed", c.keyword),
                    ));
                }
                let Some(u) = url else {
                    return Err(ImportError::new(
                        &c.loc,
                        format!("{}: a url {{ path ... }} block is required", c.keyword),
                    ));
                };
                self.url(&mut s, u, kind, target_ip, p, host.as_deref(), &c.loc)?;
                if kind == "https" {
                    s.set(
                        "tls_verify",
                        false,
                        Some("keepalived never verifies certificates; see docs/migration.md".into()),
                    );
                    self.changed(
                        c,
                        "tls_verify = false, as keepalived never verifies the server's certificate; set \
                         tls_verify = true (with ca_file for a private CA) to have hafront verify it",
                    );
                }
            }
        }
        self.sections.push(s);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn url(
        &mut self,
        s: &mut Section,
        u: &Node,
        kind: &str,
        ip: IpAddr,
        port: u16,
        host: Option<&str>,
        section_loc: &Loc,
    ) -> R<()> {
        let mut path = "/".to_string();
        let mut statuses: Vec<toml::Value> = Vec::new();
        let mut host = host.map(str::to_string);
        for x in block(u)? {
            let at = Self::at(section_loc, x);
            match x.keyword.as_str() {
                "path" => {
                    let p = arg(x, 0)?;
                    if !p.starts_with('/') || p.contains(char::is_whitespace) {
                        return Err(ImportError::new(&x.loc, format!("path {p}: must start with '/'")));
                    }
                    path = p.to_string();
                }
                "digest" => {
                    let h = arg(x, 0)?;
                    if h.len() != 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(ImportError::new(
                            &x.loc,
                            format!("digest {h}: expected 32 hex digits (MD5)"),
                        ));
                    }
                    s.set("expect_digest", format!("md5:{}", h.to_ascii_lowercase()), at);
                }
                "status_code" => {
                    for code in &x.args {
                        let r: crate::config::StatusRange = code
                            .parse()
                            .map_err(|e: String| ImportError::new(&x.loc, format!("status_code: {e}")))?;
                        statuses.push(if r.low == r.high {
                            toml::Value::Integer(r.low as i64)
                        } else {
                            toml::Value::String(r.to_string())
                        });
                    }
                    if x.args.is_empty() {
                        return Err(ImportError::new(&x.loc, "status_code: missing value"));
                    }
                }
                "regex" => s.set("expect_body_regex", arg(x, 0)?, at),
                "virtualhost" => host = Some(arg(x, 0)?.to_string()),
                _ => self.other(x, "url")?,
            }
        }
        let hostport = match ip {
            IpAddr::V4(a) => format!("{a}:{port}"),
            IpAddr::V6(a) => format!("[{a}]:{port}"),
        };
        let scheme = if kind == "https" { "https" } else { "http" };
        s.set(
            "url",
            format!("{scheme}://{hostport}{path}"),
            Self::at(section_loc, u),
        );
        if !statuses.is_empty() {
            s.set("expect_status", toml::Value::Array(statuses), None);
        }
        if let Some(h) = host {
            s.set("host", h, Some("virtualhost".into()));
        }
        Ok(())
    }
}

/// What a checker inherits from its real server and virtual server, each value
/// with the comment naming its line.
#[derive(Clone, Default)]
struct CheckDefaults {
    interval: Option<(Duration, String)>,
    timeout: Option<(Duration, String)>,
    retry: Option<(i64, String)>,
    retry_delay: Option<(Duration, String)>,
    warmup: Option<(Duration, String)>,
    /// virtualhost.
    host: Option<String>,
    /// The virtual server's `weight`: its real servers' default.
    weight: Option<i64>,
}

impl CheckDefaults {
    /// A delay_loop, retry, connect_timeout, warmup or delay_before_retry line of a
    /// virtual_server or real_server block.
    fn inherit(&mut self, c: &Node, ctx: &str) -> R<()> {
        let comment = format!("{ctx} {}, line {}", c.keyword, c.loc.line);
        match c.keyword.as_str() {
            "retry" => self.retry = Some((int(c, 0, 0, 100)?, comment)),
            kw => {
                let v = Some((secs(c, 0)?, comment));
                match kw {
                    "delay_loop" => self.interval = v,
                    "connect_timeout" => self.timeout = v,
                    "delay_before_retry" => self.retry_delay = v,
                    _ => self.warmup = v,
                }
            }
        }
        Ok(())
    }
}

fn forwarding(c: &Node) -> R<&'static str> {
    match arg(c, 0)?.to_ascii_uppercase().as_str() {
        "NAT" => Ok("nat"),
        "DR" => Ok("dr"),
        "TUN" => Ok("tun"),
        other => Err(ImportError::new(
            &c.loc,
            format!("{} {other}: NAT, DR or TUN", c.keyword),
        )),
    }
}
