//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4).
//!
//! Two sets of series. The keepalived exporter's (mehdy/keepalived-exporter:
//! same names, labels and state numbering) so that existing dashboards and alerts
//! keep working after a switch, and `hafront_*` for what keepalived cannot tell.
//! Written by hand from the snapshots: the values already exist as plain
//! counters, a client library's registry would only copy them.

use std::fmt::Write;

use super::Hub;
use crate::histogram::Histogram;
use crate::ipvs::reconcile::RealServerStatus;
use crate::shared::InstanceStatus;
use crate::vrrp::State;

/// keepalived's numbering: INIT=0 BACKUP=1 MASTER=2 FAULT=3.
fn state_number(s: State) -> u8 {
    match s {
        State::Initialize => 0,
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
    }
}

/// The exposition writer: one HELP/TYPE header per family, escaped label values.
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition {
            out: String::with_capacity(64 * 1024),
        }
    }

    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = write!(self.out, "{}", value as i64);
        } else if value.is_nan() {
            self.out.push_str("NaN");
        } else if value.is_infinite() {
            self.out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(self.out, "{value}");
        }
        self.out.push('\n');
    }

    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let bucket = format!("{name}_bucket");
        for (le, n) in h.cumulative() {
            let le = le.to_string();
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, n as f64);
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        self.sample(&bucket, &l, h.count as f64);
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

impl Default for Exposition {
    fn default() -> Self {
        Exposition::new()
    }
}

/// keepalived exporter counters: (name, help, where the value comes from).
type CounterOf = fn(&crate::vrrp::instance::Counters) -> u64;
const KEEPALIVED_COUNTERS: &[(&str, &str, CounterOf)] = &[
    (
        "keepalived_advertisements_received_total",
        "Advertisements received",
        |c| c.adverts_received,
    ),
    (
        "keepalived_advertisements_sent_total",
        "Advertisements sent",
        |c| c.adverts_sent,
    ),
    ("keepalived_become_master_total", "Became master", |c| {
        c.become_master
    }),
    ("keepalived_release_master_total", "Released master", |c| {
        c.release_master
    }),
    (
        "keepalived_packet_length_errors_total",
        "Packet length errors",
        |c| rejected(c, "packet_length"),
    ),
    (
        "keepalived_advertisements_interval_errors_total",
        "Advertisement interval errors",
        |c| rejected(c, "interval"),
    ),
    ("keepalived_ip_ttl_errors_total", "TTL errors", |c| {
        rejected(c, "ttl")
    }),
    (
        "keepalived_invalid_type_received_total",
        "Invalid type errors",
        |c| rejected(c, "type"),
    ),
    (
        "keepalived_address_list_errors_total",
        "Address list errors",
        |c| c.address_list_mismatch,
    ),
    (
        "keepalived_authentication_invalid_total",
        "Authentication invalid",
        |_| 0,
    ),
    (
        "keepalived_authentication_mismatch_total",
        "Authentication mismatch",
        |c| rejected(c, "auth_type"),
    ),
    (
        "keepalived_authentication_failure_total",
        "Authentication failure",
        |c| rejected(c, "auth"),
    ),
    (
        "keepalived_priority_zero_received_total",
        "Priority zero received",
        |c| c.priority_zero_received,
    ),
    ("keepalived_priority_zero_sent_total", "Priority zero sent", |c| {
        c.priority_zero_sent
    }),
];

fn rejected(c: &crate::vrrp::instance::Counters, reason: &str) -> u64 {
    c.rejected.get(reason).copied().unwrap_or(0)
}

pub fn render(hub: &Hub) -> String {
    let engine = hub.engine.borrow().clone();
    let tracking = hub.tracking.borrow().clone();
    let ipvs = hub.ipvs.snapshot();
    let mut m = Exposition::new();

    // keepalived exporter compatible.
    m.family("keepalived_up", "gauge", "Status");
    m.sample("keepalived_up", &[], 1.0);
    m.family("keepalived_vrrp_state", "gauge", "State of vrrp");
    for (name, s) in &engine.instances {
        let vrid = s.vrid.to_string();
        for vip in s.vips.iter() {
            let addr = vip.split('/').next().unwrap_or(vip);
            m.sample(
                "keepalived_vrrp_state",
                &[
                    ("iname", name),
                    ("intf", &s.interface),
                    ("vrid", &vrid),
                    ("ip_address", addr),
                ],
                f64::from(state_number(s.state)),
            );
        }
    }
    for (metric, help, get) in KEEPALIVED_COUNTERS {
        m.family(metric, "counter", help);
        for (name, s) in &engine.instances {
            let vrid = s.vrid.to_string();
            m.sample(
                metric,
                &[("iname", name), ("intf", &s.interface), ("vrid", &vrid)],
                get(&s.counters) as f64,
            );
        }
    }
    m.family("keepalived_script_status", "gauge", "Tracker Script Status");
    for (name, up) in &tracking.scripts {
        // keepalived: 1 = GOOD; a script that has not run yet counts as good.
        m.sample(
            "keepalived_script_status",
            &[("name", name)],
            if up.unwrap_or(true) { 1.0 } else { 0.0 },
        );
    }

    // hafront's own.
    m.family("hafront_build_info", "gauge", "Version of the running hafront");
    m.sample(
        "hafront_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    m.family(
        "hafront_start_time_seconds",
        "gauge",
        "Start time of the daemon, Unix seconds",
    );
    m.sample(
        "hafront_start_time_seconds",
        &[],
        hub.started
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    );
    m.family(
        "hafront_vip_drift_repairs_total",
        "counter",
        "VIPs changed behind hafront's back and repaired: restored (missing on a master) or removed (present on a non-master)",
    );
    let drift = hub.vip_drift.snapshot();
    for (instance, c) in &drift {
        for (action, n) in [("restored", c.restored), ("removed", c.removed)] {
            m.sample(
                "hafront_vip_drift_repairs_total",
                &[("vrrp_instance", instance), ("action", action)],
                n as f64,
            );
        }
    }
    type Family = (
        &'static str,
        &'static str,
        &'static str,
        fn(&crate::net::vip::DriftCount) -> f64,
    );
    let refusals: [Family; 2] = [
        (
            "hafront_vip_add_refusals_total",
            "counter",
            "VIP adds the kernel refused while master (each is retried every second)",
            |c| c.refused as f64,
        ),
        (
            "hafront_vip_refused",
            "gauge",
            "1 while the kernel refuses one of the instance's VIPs (the last add failed), else 0",
            |c| f64::from(u8::from(c.refusing.is_some())),
        ),
    ];
    for (name, kind, help, value) in refusals {
        m.family(name, kind, help);
        for (instance, c) in &drift {
            m.sample(name, &[("vrrp_instance", instance)], value(c));
        }
    }
    for (name, help, n) in [
        (
            "hafront_notifications_dropped_total",
            "Notifications dropped from a full instance queue (the oldest waiting one; the newest is always notified)",
            hub.notify.dropped(),
        ),
        (
            "hafront_vip_announcements_dropped_total",
            "Announcements dropped because the VIP executor had too many waiting",
            hub.vips.dropped(),
        ),
    ] {
        m.family(name, "counter", help);
        m.sample(name, &[], n as f64);
    }
    // Prometheus' own names (prometheus_config_last_reload_*): a rejected reload
    // leaves the old configuration running, which only these make visible.
    let reload = hub.reload.borrow().clone();
    m.family(
        "hafront_config_last_reload_successful",
        "gauge",
        "Whether the last configuration load (start or reload) was applied",
    );
    m.sample(
        "hafront_config_last_reload_successful",
        &[],
        if reload.successful { 1.0 } else { 0.0 },
    );
    m.family(
        "hafront_config_last_reload_success_timestamp_seconds",
        "gauge",
        "When a configuration was last applied (start or reload), Unix seconds",
    );
    m.sample(
        "hafront_config_last_reload_success_timestamp_seconds",
        &[],
        reload.last_success_unix_ms as f64 / 1000.0,
    );
    m.family(
        "hafront_vrrp_state",
        "gauge",
        "VRRP state: 0 init, 1 backup, 2 master, 3 fault",
    );
    for (name, s) in &engine.instances {
        let vrid = s.vrid.to_string();
        m.sample(
            "hafront_vrrp_state",
            &[
                ("vrrp_instance", name),
                ("interface", &s.interface),
                ("vrid", &vrid),
            ],
            f64::from(state_number(s.state)),
        );
    }
    type InstanceValue = fn(&InstanceStatus) -> Option<f64>;
    let per_instance: [(&str, &str, &str, InstanceValue); 5] = [
        (
            "hafront_vrrp_priority",
            "gauge",
            "Priority advertised now (after tracking and overrides)",
            |s| Some(f64::from(s.priority)),
        ),
        (
            "hafront_vrrp_configured_priority",
            "gauge",
            "Priority from the configuration",
            |s| Some(f64::from(s.configured_priority)),
        ),
        (
            "hafront_vrrp_maintenance",
            "gauge",
            "1 while the instance is held in maintenance",
            |s| Some(if s.maintenance { 1.0 } else { 0.0 }),
        ),
        (
            "hafront_vrrp_transitions_total",
            "counter",
            "State transitions",
            |s| Some(s.transitions as f64),
        ),
        (
            "hafront_vrrp_last_transition_timestamp_seconds",
            "gauge",
            "Time of the last transition, Unix seconds",
            |s| s.last_transition.as_ref().map(|t| t.unix_ms as f64 / 1000.0),
        ),
    ];
    for (metric, kind, help, value) in per_instance {
        m.family(metric, kind, help);
        for (name, s) in &engine.instances {
            if let Some(v) = value(s) {
                m.sample(metric, &[("vrrp_instance", name)], v);
            }
        }
    }
    m.family(
        "hafront_vrrp_tracking_fault",
        "gauge",
        "1 while tracking faults the instance",
    );
    for (name, t) in &tracking.instances {
        m.sample(
            "hafront_vrrp_tracking_fault",
            &[("vrrp_instance", name)],
            if t.fault { 1.0 } else { 0.0 },
        );
    }
    m.family(
        "hafront_vrrp_adverts_rejected_total",
        "counter",
        "Adverts dropped, by reason",
    );
    for (name, s) in &engine.instances {
        for (reason, n) in &s.counters.rejected {
            m.sample(
                "hafront_vrrp_adverts_rejected_total",
                &[("vrrp_instance", name), ("reason", reason)],
                *n as f64,
            );
        }
    }
    m.family(
        "hafront_vrrp_unknown_vrid_packets_total",
        "counter",
        "VRRP packets for a VRID not configured here",
    );
    m.sample(
        "hafront_vrrp_unknown_vrid_packets_total",
        &[],
        engine.unknown_vrid_packets as f64,
    );
    m.family(
        "hafront_failover_duration_seconds",
        "histogram",
        "Backup to master after the master went silent: time since its last advert",
    );
    m.histogram("hafront_failover_duration_seconds", &[], &engine.failover_seconds);

    let (checks, scripts) = super::status::checks(hub);
    m.family(
        "hafront_check_up",
        "gauge",
        "Health-check verdict: 1 up, 0 down (absent before the first verdict)",
    );
    for (name, c) in &checks {
        if let Some(up) = c.up {
            m.sample(
                "hafront_check_up",
                &[("check", name), ("kind", c.kind.as_str())],
                if up { 1.0 } else { 0.0 },
            );
        }
    }
    m.family("hafront_check_probes_total", "counter", "Probes run");
    for (name, c) in &checks {
        m.sample(
            "hafront_check_probes_total",
            &[("check", name)],
            c.checks_total as f64,
        );
    }
    for (name, c) in &scripts {
        let name = format!("script:{name}");
        m.sample(
            "hafront_check_probes_total",
            &[("check", &name)],
            c.checks_total as f64,
        );
    }
    m.family(
        "hafront_check_duration_seconds",
        "histogram",
        "Latency of successful probes, by kind",
    );
    let handles = hub.checkers.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut by_kind: std::collections::BTreeMap<&'static str, Histogram> = Default::default();
    for h in &handles {
        for (kind, hist) in h.latency() {
            let e = by_kind
                .entry(kind.as_str())
                .or_insert_with(|| Histogram::new(hist.bounds));
            for (a, b) in e.counts.iter_mut().zip(hist.counts.iter()) {
                *a += b;
            }
            e.sum += hist.sum;
            e.count += hist.count;
        }
    }
    for (kind, h) in &by_kind {
        m.histogram("hafront_check_duration_seconds", &[("kind", kind)], h);
    }

    m.family(
        "hafront_ipvs_available",
        "gauge",
        "1 when IPVS is programmed, 0 when the kernel has none",
    );
    if let Some(a) = ipvs.available {
        m.sample("hafront_ipvs_available", &[], if a { 1.0 } else { 0.0 });
    }
    let c = ipvs.sync;
    for (name, help, n) in [
        (
            "hafront_ipvs_writes_total",
            "Netlink writes to IPVS (one per service or real server added, edited or removed)",
            c.writes,
        ),
        (
            "hafront_ipvs_write_failures_total",
            "Netlink writes to IPVS that the kernel refused (the table is then read again)",
            c.write_failures,
        ),
        (
            "hafront_ipvs_inline_writes_total",
            "Of the netlink writes to IPVS, those written on the checks' thread as a verdict was reached",
            c.inline_writes,
        ),
        (
            "hafront_ipvs_dumps_total",
            "Reads of the whole IPVS table (at start, after a refusal, at each resync)",
            c.dumps,
        ),
        (
            "hafront_ipvs_drift_total",
            "IPVS entries of hafront's services found changed behind its back at a resync, and repaired",
            c.drift,
        ),
    ] {
        m.family(name, "counter", help);
        m.sample(name, &[], n as f64);
    }
    let sync = hub.ipvs_sync.borrow().clone();
    m.family(
        "hafront_ipvs_sync_daemon",
        "gauge",
        "1 while the kernel runs this IPVS connection sync daemon (GET_DAEMON), per role; only with [ipvs.sync]",
    );
    if sync.configured {
        for role in ["master", "backup"] {
            let d = sync.daemons.iter().find(|d| d.role == role);
            let id = d.map(|d| d.sync_id.to_string()).unwrap_or_default();
            let ifname = d.map(|d| d.interface.as_str()).unwrap_or("");
            m.sample(
                "hafront_ipvs_sync_daemon",
                &[("role", role), ("interface", ifname), ("sync_id", &id)],
                if d.is_some() { 1.0 } else { 0.0 },
            );
        }
    }
    for (name, help, n) in [
        (
            "hafront_ipvs_sync_daemon_starts_total",
            "IPVS sync daemons hafront started (at start and on each role change)",
            sync.starts,
        ),
        (
            "hafront_ipvs_sync_daemon_stops_total",
            "IPVS sync daemons hafront stopped",
            sync.stops,
        ),
        (
            "hafront_ipvs_sync_daemon_failures_total",
            "Checks of the IPVS sync daemons that failed (no IPVS, a refused start or stop)",
            sync.failures,
        ),
    ] {
        m.family(name, "counter", help);
        m.sample(name, &[], n as f64);
    }
    m.family(
        "hafront_ipvs_sysctl_ok",
        "gauge",
        "1 when the kernel holds the [ipvs.sysctl] value written, 0 when the write failed or it reads otherwise",
    );
    for (name, st) in &sync.sysctl {
        m.sample(
            "hafront_ipvs_sysctl_ok",
            &[("name", name)],
            if st.error.is_none() { 1.0 } else { 0.0 },
        );
    }
    // Every family's samples together, as the format requires.
    m.family(
        "hafront_ipvs_service_installed",
        "gauge",
        "1 while the service is in the desired table",
    );
    for (name, s) in &ipvs.services {
        m.sample(
            "hafront_ipvs_service_installed",
            &[("service", name)],
            if s.installed { 1.0 } else { 0.0 },
        );
    }
    m.family(
        "hafront_ipvs_service_quorum_lost",
        "gauge",
        "1 while the service is installed and the weight of its healthy real servers is below its quorum (the sorry server, if any, serves)",
    );
    for (name, s) in &ipvs.services {
        m.sample(
            "hafront_ipvs_service_quorum_lost",
            &[("service", name)],
            if s.quorum_lost { 1.0 } else { 0.0 },
        );
    }
    m.family(
        "hafront_ipvs_service_connections_total",
        "counter",
        "Connections scheduled by the service",
    );
    for (name, st) in ipvs
        .services
        .iter()
        .filter_map(|(n, s)| s.stats.as_ref().map(|st| (n, st)))
    {
        m.sample(
            "hafront_ipvs_service_connections_total",
            &[("service", name)],
            st.conns as f64,
        );
    }
    m.family(
        "hafront_ipvs_service_packets_total",
        "counter",
        "Packets through the service",
    );
    for (name, st) in ipvs
        .services
        .iter()
        .filter_map(|(n, s)| s.stats.as_ref().map(|st| (n, st)))
    {
        m.sample(
            "hafront_ipvs_service_packets_total",
            &[("service", name), ("direction", "in")],
            st.in_pkts as f64,
        );
        m.sample(
            "hafront_ipvs_service_packets_total",
            &[("service", name), ("direction", "out")],
            st.out_pkts as f64,
        );
    }
    m.family(
        "hafront_ipvs_service_bytes_total",
        "counter",
        "Bytes through the service",
    );
    for (name, st) in ipvs
        .services
        .iter()
        .filter_map(|(n, s)| s.stats.as_ref().map(|st| (n, st)))
    {
        m.sample(
            "hafront_ipvs_service_bytes_total",
            &[("service", name), ("direction", "in")],
            st.in_bytes as f64,
        );
        m.sample(
            "hafront_ipvs_service_bytes_total",
            &[("service", name), ("direction", "out")],
            st.out_bytes as f64,
        );
    }
    let real_servers: Vec<(&String, String, &RealServerStatus)> = ipvs
        .services
        .iter()
        .flat_map(|(name, s)| {
            s.real_servers
                .iter()
                .map(move |rs| (name, rs.address.to_string(), rs))
        })
        .collect();
    type RsValue = fn(&RealServerStatus) -> Option<f64>;
    let gauges: [(&str, &str, &str, RsValue); 5] = [
        (
            "hafront_ipvs_real_server_up",
            "gauge",
            "1 when the real server is healthy and not disabled",
            |rs| Some(if rs.healthy && !rs.disabled { 1.0 } else { 0.0 }),
        ),
        (
            "hafront_ipvs_real_server_weight",
            "gauge",
            "Weight in the desired table (0 when out of it)",
            |rs| Some(f64::from(rs.weight.unwrap_or(0))),
        ),
        (
            "hafront_ipvs_real_server_active_connections",
            "gauge",
            "Active connections",
            |rs| rs.counters.map(|c| f64::from(c.active_conns)),
        ),
        (
            "hafront_ipvs_real_server_inactive_connections",
            "gauge",
            "Inactive connections",
            |rs| rs.counters.map(|c| f64::from(c.inactive_conns)),
        ),
        (
            "hafront_ipvs_real_server_connections_total",
            "counter",
            "Connections to the real server",
            |rs| rs.counters.map(|c| c.stats.conns as f64),
        ),
    ];
    for (metric, kind, help, value) in gauges {
        m.family(metric, kind, help);
        for (name, addr, rs) in &real_servers {
            if let Some(v) = value(rs) {
                m.sample(metric, &[("service", name), ("address", addr)], v);
            }
        }
    }
    m.family(
        "hafront_ipvs_real_server_bytes_total",
        "counter",
        "Bytes to and from the real server",
    );
    for (name, addr, rs) in &real_servers {
        if let Some(c) = &rs.counters {
            for (dir, v) in [("in", c.stats.in_bytes), ("out", c.stats.out_bytes)] {
                m.sample(
                    "hafront_ipvs_real_server_bytes_total",
                    &[("service", name), ("address", addr), ("direction", dir)],
                    v as f64,
                );
            }
        }
    }
    m.family(
        "hafront_supervised_service_restarts_total",
        "counter",
        "Restarts of a supervised service",
    );
    let services = hub.services.borrow().clone();
    for (name, s) in services.iter() {
        m.sample(
            "hafront_supervised_service_restarts_total",
            &[("service", name), ("kind", s.kind)],
            s.restarts as f64,
        );
    }
    m.family(
        "hafront_split_brain",
        "gauge",
        "1 while a split brain is detected on the instance (two masters)",
    );
    let split = hub.split_brain.borrow().clone();
    for (name, s) in split.iter() {
        m.sample(
            "hafront_split_brain",
            &[("vrrp_instance", name)],
            if s.active { 1.0 } else { 0.0 },
        );
    }
    m.family(
        "hafront_supervised_service_up",
        "gauge",
        "1 while a supervised service runs (0: down, backoff or failed)",
    );
    for (name, s) in services.iter() {
        m.sample(
            "hafront_supervised_service_up",
            &[("service", name), ("kind", s.kind)],
            if s.up && !s.failed { 1.0 } else { 0.0 },
        );
    }
    let bus = &crate::events::BUS;
    m.family(
        "hafront_api_event_clients",
        "gauge",
        "Clients connected to the event stream (GET /v1/events)",
    );
    m.sample(
        "hafront_api_event_clients",
        &[],
        bus.clients.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    m.family(
        "hafront_api_event_clients_dropped_total",
        "counter",
        "Event stream clients disconnected for falling behind the event ring",
    );
    m.sample(
        "hafront_api_event_clients_dropped_total",
        &[],
        bus.dropped.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    anycast(&mut m, &hub.anycast.borrow());
    m.finish()
}

/// Anycast groups and the BGP/BFD sessions their BIRD reports.
fn anycast(m: &mut Exposition, a: &crate::shared::AnycastSnapshot) {
    type Get = fn(&crate::shared::AnycastStatus) -> f64;
    let per_group: [(&str, &str, &str, Get); 4] = [
        (
            "hafront_anycast_announced",
            "gauge",
            "1 while the anycast group's prefixes are in the table BIRD announces from",
            |g| f64::from(u8::from(g.announced)),
        ),
        (
            "hafront_anycast_changes_total",
            "counter",
            "Announcements and withdrawals of the anycast group since start",
            |g| g.changes as f64,
        ),
        (
            "hafront_anycast_since_seconds",
            "gauge",
            "Unix time of the anycast group's last announcement or withdrawal",
            |g| g.since_unix_ms as f64 / 1000.0,
        ),
        (
            "hafront_anycast_bird_up",
            "gauge",
            "1 while BIRD's control socket answers",
            |g| f64::from(u8::from(g.bird.reachable)),
        ),
    ];
    for (metric, kind, help, get) in per_group {
        m.family(metric, kind, help);
        for (name, g) in &a.groups {
            m.sample(metric, &[("anycast", name)], get(g));
        }
    }
    m.family(
        "hafront_anycast_bgp_session_up",
        "gauge",
        "1 while BIRD's BGP protocol is Established",
    );
    for (name, g) in &a.groups {
        for (p, s) in &g.bird.bgp {
            let up = s.state == "up" && s.info.starts_with("Established");
            m.sample(
                "hafront_anycast_bgp_session_up",
                &[("anycast", name), ("protocol", p)],
                f64::from(u8::from(up)),
            );
        }
    }
    m.family(
        "hafront_anycast_bfd_session_up",
        "gauge",
        "1 while BIRD's BFD session is Up",
    );
    for (name, g) in &a.groups {
        for (n, s) in &g.bird.bfd {
            m.sample(
                "hafront_anycast_bfd_session_up",
                &[("anycast", name), ("neighbor", n)],
                f64::from(u8::from(s == "Up")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_labels_and_formats_values() {
        let mut m = Exposition::new();
        m.family("x_total", "counter", "X");
        m.sample("x_total", &[("a", "q\"b\\c\nd")], 3.0);
        m.sample("y", &[], 0.25);
        m.sample("z", &[], f64::INFINITY);
        assert_eq!(
            m.finish(),
            "# HELP x_total X\n# TYPE x_total counter\nx_total{a=\"q\\\"b\\\\c\\nd\"} 3\ny 0.25\nz +Inf\n"
        );
    }

    #[test]
    fn histogram_is_cumulative_with_inf() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(2.0);
        let mut m = Exposition::new();
        m.histogram("d_seconds", &[("k", "v")], &h);
        let text = m.finish();
        assert!(
            text.contains("d_seconds_bucket{k=\"v\",le=\"0.1\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("d_seconds_bucket{k=\"v\",le=\"1\"} 1\n"), "{text}");
        assert!(
            text.contains("d_seconds_bucket{k=\"v\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("d_seconds_count{k=\"v\"} 2\n"), "{text}");
    }

    /// Label values a config can carry (quotes, backslashes, newlines, a trailing
    /// backslash, CR, tab, non-ASCII) read back unchanged by the Prometheus project's
    /// own parser (python3-prometheus-client) and accepted by `promtool check metrics`.
    #[test]
    fn official_parsers_read_back_escaped_labels() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let have_parser = Command::new(crate::shared::test_python3())
            .args(["-c", "import prometheus_client"])
            .status()
            .is_ok_and(|s| s.success());
        if !have_parser {
            eprintln!("SKIP: python3-prometheus-client is not installed (scripts/test installs it)");
            return;
        }
        let values = [
            "q\"b\\c\nd",
            "ends with \\",
            "tab\tcr\r",
            "é ünï → «»",
            "{a=\"b\"},x",
            "",
        ];
        let mut m = Exposition::new();
        m.family("hafront_escape_test", "gauge", "Escaping");
        for (i, v) in values.iter().enumerate() {
            m.sample(
                "hafront_escape_test",
                &[("v", v), ("i", &i.to_string())],
                i as f64,
            );
        }
        let text = m.finish();
        let run = |argv: &[&str]| {
            let mut c = Command::new(argv[0])
                .args(&argv[1..])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            c.wait_with_output().unwrap()
        };
        let py =
            "import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families as p\n\
                  print(json.dumps([s.labels['v'] for f in p(sys.stdin.read()) for s in f.samples]))";
        let out = run(&["/usr/bin/python3", "-c", py]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let got: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got, values, "{text}");
        if Command::new("promtool").arg("--version").output().is_ok() {
            let out = run(&["promtool", "check", "metrics"]);
            assert!(
                out.status.success(),
                "promtool: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
