//! Why a keepalived 2.4.3 keyword that the importer does not carry over is not
//! carried over, by block (the context the importer names: `global_defs`,
//! `vrrp_instance`, `the top level`...). Keywords with a conversion of their own
//! are handled where their block is read; this table is for the rest, grouped by
//! reason. daemon/tests/import_keepalived_keywords.rs checks that every keyword of
//! keepalived's parsers (tests/data/keepalived/keywords-2.4.3.tsv, from
//! scripts/keepalived-keywords) has one or the other; docs/migration.md lists them.

const TOP: &str = "the top level";
const GLOBAL: &str = "global_defs";
const INSTANCE: &str = "vrrp_instance";
const CHECKERS: &[&str] = &[
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "DNS_CHECK",
    "SMTP_CHECK",
    "PING_CHECK",
    "UDP_CHECK",
    "SMTP_CHECK host",
];

/// (blocks, keywords, reason), reasons grouped: "not needed" (hafront does it
/// another way), "not supported yet" (with its issue), "not supported".
pub const REASONS: &[(&[&str], &[&str], &str)] = &[
    // ---- not needed: hafront does it another way ----
    (
        &[TOP, GLOBAL],
        &[
            "instance",
            "use_pid_dir",
            "child_wait_time",
            "process_name",
            "process_names",
            "vrrp_process_name",
            "checker_process_name",
            "bfd_process_name",
            "lvs_process_name",
            "startup_script",
            "startup_script_timeout",
            "shutdown_script",
            "shutdown_script_timeout",
            "config_save_dir",
            "tmp_config_directory",
            "umask",
            "use_symlink_paths",
            "reload_check_config",
            "reload_file",
            "reload_repeat",
            "reload_time_file",
            "include_check",
            "data_use_instance",
            "random_seed",
            "iproute_etc_dir",
            "iproute_usr_dir",
        ],
        "not needed: hafront is one process run by systemd (reload: systemctl reload or SIGHUP, \
         checked first; start-up and shutdown are the service's)",
    ),
    (
        &[GLOBAL],
        &[
            "vrrp_priority",
            "vrrp_cpu_affinity",
            "vrrp_rlimit_rtime",
            "vrrp_rlimit_rttime",
            "checker_priority",
            "checker_rt_priority",
            "checker_cpu_affinity",
            "checker_no_swap",
            "checker_rlimit_rtime",
            "checker_rlimit_rttime",
            "bfd_priority",
            "bfd_rt_priority",
            "bfd_cpu_affinity",
            "bfd_no_swap",
            "bfd_rlimit_rtime",
            "bfd_rlimit_rttime",
            "max_auto_priority",
            "min_auto_priority_delay",
        ],
        "not needed: hafront is one process; vrrp.rt_priority and vrrp.lock_memory cover its VRRP \
         engine, nice, CPU affinity and rlimits go in the systemd unit (Nice=, CPUAffinity=, LimitRTTIME=)",
    ),
    (
        &[GLOBAL],
        &[
            "enable_snmp_vrrp",
            "enable_snmp_keepalived",
            "enable_snmp_checker",
            "enable_snmp_rfc",
            "enable_snmp_rfcv2",
            "enable_snmp_rfcv3",
            "enable_traps",
            "snmp_socket",
            "snmp_vs_stats_update_interval",
            "snmp_rs_stats_update_interval",
            "enable_dbus",
            "dbus_service_name",
            "dbus_no_interface_name",
        ],
        "not needed: hafront has no SNMP or D-Bus interface; its state is in `hafront status`, the \
         HTTP API and /metrics (Prometheus)",
    ),
    (
        &["virtual_server", "real_server"],
        &["snmp_name"],
        "not needed: hafront has no SNMP interface; services are named in the API and /metrics",
    ),
    (
        &[GLOBAL],
        &[
            "notify_fifo",
            "notify_fifo_script",
            "vrrp_notify_fifo",
            "vrrp_notify_fifo_script",
            "lvs_notify_fifo",
            "lvs_notify_fifo_script",
            "fifo_write_vrrp_states_on_reload",
        ],
        "not needed: hafront has no notify FIFO; an instance's notify scripts and the HTTP API carry \
         its state changes",
    ),
    (
        &[GLOBAL],
        &[
            "json_dump_file",
            "json_version",
            "state_dump_file",
            "stats_dump_file",
        ],
        "not needed: hafront dumps no files on signals; its state is in `hafront status`, the HTTP API \
         and /metrics",
    ),
    (
        &[GLOBAL, INSTANCE],
        &[
            "lvs_netlink_cmd_rcv_bufs",
            "lvs_netlink_cmd_rcv_bufs_force",
            "lvs_netlink_monitor_rcv_bufs",
            "lvs_netlink_monitor_rcv_bufs_force",
            "vrrp_netlink_cmd_rcv_bufs",
            "vrrp_netlink_cmd_rcv_bufs_force",
            "vrrp_netlink_monitor_rcv_bufs",
            "vrrp_netlink_monitor_rcv_bufs_force",
            "process_monitor_rcv_bufs",
            "process_monitor_rcv_bufs_force",
            "vrrp_rx_bufs_multiplier",
            "vrrp_rx_bufs_policy",
            "kernel_rx_buf_size",
        ],
        "not needed: hafront sizes its netlink and socket buffers itself",
    ),
    (
        &[GLOBAL],
        &[
            "nftables_priority",
            "nftables_ifindex",
            "nftables_counters",
            "nftables_ipvs",
            "nftables_ipvs_priority",
            "nftables_ipvs_start_fwmark",
        ],
        "not needed: hafront manages its own nftables table (inet hafront) for accept = false",
    ),
    (
        &[GLOBAL],
        &["lvs_flush", "lvs_flush_on_stop", "lvs_flush_onstop"],
        "not needed: hafront removes the IPVS services it made and leaves the others alone; it never \
         flushes the whole table",
    ),
    (
        &[GLOBAL, INSTANCE, "vrrp_sync_group"],
        &["vrrp_notify_priority_changes", "notify_priority_changes"],
        "not needed: hafront's notify scripts run on state changes; priority changes are in the HTTP \
         API and /metrics",
    ),
    (
        &[GLOBAL],
        &["log_unknown_vrids"],
        "not needed: hafront logs adverts for VRIDs it does not run at debug level",
    ),
    (
        &[GLOBAL, INSTANCE],
        &[
            "vrrp_check_unicast_src",
            "check_unicast_src",
            "skip_check_adv_addr",
        ],
        "not needed: hafront counts adverts from addresses it does not expect and adverts whose \
         address list differs, and acts on neither",
    ),
    (
        &[GLOBAL],
        &["no_checker_emails", "rs_init_notifies"],
        "not needed: hafront has no e-mail or notify scripts for real servers (its checks and IPVS \
         state are in `hafront status`, the API and /metrics)",
    ),
    (
        &["virtual_server", "real_server"],
        &["smtp_alert"],
        "not needed: hafront has no e-mail for real servers (their state is in `hafront status`, the \
         API and /metrics)",
    ),
    (
        &[
            GLOBAL,
            CHECKERS[0],
            CHECKERS[1],
            CHECKERS[2],
            CHECKERS[3],
            CHECKERS[4],
            CHECKERS[5],
            CHECKERS[6],
            CHECKERS[7],
            CHECKERS[8],
        ],
        &["checker_log_all_failures", "log_all_failures"],
        "not needed: hafront logs every change of a check's verdict and counts every failure in /metrics",
    ),
    (
        &[TOP, INSTANCE],
        &["linkbeat_use_polling"],
        "not needed: hafront follows links through rtnetlink events",
    ),
    (
        &[INSTANCE],
        &["debug"],
        "not needed: hafront's log level is global (log.level)",
    ),
    (
        &[INSTANCE],
        &["unicast_ttl"],
        "not needed: hafront sends adverts with TTL/hop limit 255 as RFC 5798 requires, unicast too",
    ),
    (
        &["HTTP_GET", "SSL_GET"],
        &["enable_sni", "tls_compliant", "http_protocol"],
        "not needed: hafront's checks speak HTTP/1.1 with rustls, which sends SNI for a host name and \
         closes TLS properly",
    ),
    // ---- not supported ----
    (
        &[TOP, GLOBAL],
        &["net_namespace", "net_namespace_ipvs", "namespace_with_ipsets"],
        "not supported: hafront runs in the network namespace it is started in (systemd \
         NetworkNamespacePath=, or ip netns exec)",
    ),
    (
        &[INSTANCE],
        &["vrf"],
        "not supported: hafront has no VRF binding; run it in the VRF (ip vrf exec) or a namespace",
    ),
    (
        &[TOP],
        &["interface_up_down_delays"],
        "not supported: hafront acts on a link change at once (no per-interface debounce)",
    ),
    (
        &[TOP],
        &["track_group"],
        "not supported: hafront has no track groups; an instance lists what it tracks",
    ),
    (
        &[TOP],
        &["SSL"],
        "not supported: hafront's https checks present no client certificate; they verify the server \
         with the system roots or the check's ca_file (keepalived verifies nothing)",
    ),
    (
        &[GLOBAL],
        &["lvs_timeouts"],
        "not supported: hafront leaves the IPVS tcp/tcpfin/udp timeouts as they are (ipvsadm --set)",
    ),
    (
        &[GLOBAL, INSTANCE],
        &["lvs_sync_daemon_interface"],
        "not supported: keepalived 1.x's form; write lvs_sync_daemon (carried over to [ipvs.sync])",
    ),
    (
        &[GLOBAL],
        &["dynamic_interfaces"],
        "not supported: hafront needs an instance's interface at start",
    ),
    (
        &[GLOBAL],
        &["default_interface"],
        "not supported: every hafront instance names its interface (add `interface` to the instances \
         that have none)",
    ),
    (
        &[INSTANCE],
        &["no_virtual_ipaddress"],
        "not supported: a hafront instance has at least one VIP",
    ),
    (
        &[INSTANCE],
        &["promote_secondaries"],
        "not supported: hafront sets no interface sysctls (set net.ipv4.conf.IF.promote_secondaries \
         yourself)",
    ),
    (
        &[INSTANCE],
        &["mcast_dst_ip"],
        "not supported: hafront sends multicast adverts to the RFC group (224.0.0.18, ff02::12)",
    ),
    (
        &[INSTANCE],
        &["track_src_ip", "unicast_fault_no_peer", "old_unicast_checksum"],
        "not supported: hafront has no such VRRP option (see docs/migration.md)",
    ),
    (
        &[GLOBAL, INSTANCE],
        &[
            "vrrp_garp_lower_prio_delay",
            "garp_lower_prio_delay",
            "vrrp_garp_master_refresh_repeat",
            "garp_master_refresh_repeat",
            "vrrp_min_garp",
            "vrrp_lower_prio_no_advert",
            "lower_prio_no_advert",
            "vrrp_higher_prio_send_advert",
            "higher_prio_send_advert",
            "vrrp_owner_ignore_adverts",
            "owner_ignore_adverts",
            "vrrp_down_timer_adverts",
            "down_timer_adverts",
            "timer_expired_backup",
            "thread_timer_expired",
        ],
        "not supported: hafront follows RFC 5798's timers and announcements (its own: garp.*, \
         fast_preempt); keepalived's variation has no equivalent",
    ),
    (
        &["virtual_server"],
        &[
            "hashed",
            "flag-1",
            "flag-2",
            "flag-3",
            "sh-port",
            "sh-fallback",
            "mh-port",
            "mh-fallback",
        ],
        "not supported: hafront sets no IPVS scheduler flags",
    ),
    (
        &["UDP_CHECK"],
        &["min_reply_length", "max_reply_length"],
        "not supported: hafront's udp check matches the reply against `expect` only",
    ),
    (
        &["HTTP_GET", "SSL_GET"],
        &["fast_recovery"],
        "not supported: hafront's checks use rise and fall counts (rise = 1 as keepalived)",
    ),
    (
        &["SMTP_CHECK host"],
        &[
            "connect_timeout",
            "retry",
            "delay_before_retry",
            "warmup",
            "delay_loop",
            "alpha",
            "bind_if",
            "bind_port",
            "fwmark",
        ],
        "not supported in a host block: hafront takes connect_ip, connect_port and bindto there (set \
         the timings in SMTP_CHECK itself)",
    ),
];

/// The reason for `keyword` in the block `ctx`, if keepalived has it there.
pub(super) fn reason(ctx: &str, keyword: &str) -> Option<&'static str> {
    REASONS
        .iter()
        .find(|(blocks, kws, _)| blocks.contains(&ctx) && kws.contains(&keyword))
        .map(|(_, _, why)| *why)
}
