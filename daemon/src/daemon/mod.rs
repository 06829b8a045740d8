//! The `hafront run` daemon: configuration to running instances, signals, systemd
//! notification and the status file.

pub mod engine;
pub mod status;
mod timers;
pub mod tracker;

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::config::ipvs::IpvsConfig;
use crate::config::{self, Config};
use crate::net::accept::{self, AcceptPlan};
use crate::net::mld::MldPlan;
use crate::net::{Links, NetError, VipExecutor};
use crate::preflight::{self, LoadOptions};
use crate::vrrp::instance::{GarpParams, Params};
use crate::vrrp::io::IoError;
use engine::{Control, Engine, InstanceSpec};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{0}")]
    Conflict(String),
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
}

/// Protocol parameters from the configuration (the primary address is filled in
/// from the interface at start).
/// When this process started (the start-up delay counts from it).
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// What is left of the start-up hold: `vrrp.startup_delay` since this process
/// started and `vrrp.delay_after_boot` since boot (CLOCK_BOOTTIME), the longer. An
/// instance a reload (re)starts later gets what is left, usually nothing.
fn startup_hold(cfg: &Config) -> Duration {
    let since_start = STARTED.get_or_init(std::time::Instant::now).elapsed();
    let after_start = cfg.vrrp.startup_delay.saturating_sub(since_start);
    let after_boot = match boot_uptime() {
        Some(up) => cfg.vrrp.delay_after_boot.saturating_sub(up),
        None => Duration::ZERO,
    };
    after_start.max(after_boot)
}

/// Time since boot, suspend included.
fn boot_uptime() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// `vrrp.disable_local_igmp` (unset: on when an IPv4 instance has a virtual-MAC
/// macvlan): turns the reports off, and returns what to put back at stop. A failure
/// is logged and the daemon goes on (the reports only move the virtual MAC on the
/// switch for a moment: net/igmp.rs). Taken at start only, as keepalived.
fn disable_local_igmp(cfg: &Config) -> Option<crate::net::igmp::Saved> {
    let vmac_v4 = cfg
        .vrrp
        .instances
        .values()
        .any(|i| i.use_vmac && !i.use_ipvlan && !i.vmac_xmit_base && !i.family().is_ipv6());
    if !cfg.vrrp.disable_local_igmp.unwrap_or(vmac_v4) {
        return None;
    }
    match crate::net::igmp::disable(std::path::Path::new(crate::net::igmp::SYSCTL)) {
        Ok(saved) => {
            info!("link-local IGMP reports off (a backup's virtual MAC must not reach the switch)");
            Some(saved)
        }
        Err(error) => {
            warn!(%error, "link-local IGMP reports left on: a backup reports 224.0.0.18 from its virtual MAC");
            None
        }
    }
}

/// `hafront remove-vips`: removes what a start as backup removes, for every
/// instance of `cfg` (net/vip.rs, `remove_configured`).
pub async fn remove_vips(cfg: &Config) -> Result<crate::net::vip::Removed, crate::net::NetError> {
    let targets: Vec<_> = specs_from_config(cfg)
        .into_iter()
        .filter_map(|(name, spec)| {
            let on = cfg.vrrp.instances.get(&name)?.vip_ifname();
            Some((name, on, spec))
        })
        .collect();
    crate::net::vip::remove_configured(&targets).await
}

pub fn specs_from_config(cfg: &Config) -> Vec<(String, InstanceSpec)> {
    let addr_vmacs = crate::config::vmac::plan(&cfg.vrrp);
    cfg.vrrp
        .instances
        .iter()
        .map(|(name, i)| {
            let unspecified: std::net::IpAddr = if i.family().is_ipv6() {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            };
            let mut params = Params {
                name: name.clone(),
                version: i.version,
                vrid: i.vrid,
                priority: i.priority,
                interval_cs: (i.advert_interval.as_millis() / 10) as u16,
                vips: i.virtual_ips.clone(),
                preempt: i.preempt,
                preempt_delay_ms: i.preempt_delay.as_millis() as u64,
                fast_preempt: i.fast_preempt,
                startup_hold_ms: startup_hold(cfg).as_millis() as u64,
                primary: unspecified,
                unicast_peers: i.unicast_peers.clone(),
                auth_pass: i.auth_pass.as_ref().map(|s| s.expose().to_string()),
                checksum_compat: i.checksum_compat,
                garp: GarpParams {
                    master_burst: i.garp.master_burst,
                    master_delay_ms: i.garp.master_delay.as_millis() as u64,
                    master_repeat: i.garp.master_repeat,
                    refresh_ms: i.garp.refresh.map(|d| d.as_millis() as u64),
                    lower_prio_burst: i.garp.lower_prio_burst,
                    with_advert: i.garp.with_advert,
                },
                synced: false,
                auth_hmac: i.auth_hmac.as_ref().map(|h| auth_hmac_params(name, h, i)),
            };
            let sync_peers: Vec<String> = cfg
                .vrrp
                .sync_groups
                .values()
                .filter(|g| g.instances.contains(name))
                .flat_map(|g| g.instances.iter().filter(|m| *m != name).cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            params.synced = !sync_peers.is_empty();
            let spec = InstanceSpec {
                interface: i.interface.clone(),
                label: i.vip_label.clone(),
                vip_no_track: i.vip_no_track.clone(),
                unicast_source: i.unicast_source,
                vmac: i.vmac_ifname().map(|name| crate::shared::VmacSpec {
                    name,
                    xmit_base: i.vmac_xmit_base,
                    ipvlan: i.use_ipvlan.then_some(crate::shared::IpvlanSpec {
                        address: i.ipvlan_address,
                        mode: i.ipvlan_mode,
                    }),
                }),
                sync_peers,
                params,
                hooks: crate::shared::Hooks {
                    wait_ipvs: cfg
                        .ipvs
                        .services
                        .iter()
                        .filter(|(_, s)| s.master_of.as_deref() == Some(name.as_str()))
                        .map(|(n, _)| n.clone())
                        .collect(),
                    ..crate::shared::Hooks::from_config(&i.hooks, &cfg.conntrackd)
                },
                extras: crate::shared::Extras::from_config(
                    i,
                    addr_vmacs.get(name).map(Vec::as_slice).unwrap_or_default(),
                ),
                track_link: i.track_link,
                extra_if: crate::shared::ExtraIf::from_config(i),
            };
            (name.clone(), spec)
        })
        .collect()
}

/// The core's auth_hmac configuration of an instance, keys read from their files
/// (preflight checked them; a key that fails now is left out and logged, which
/// makes its adverts fail verification rather than go out unsigned).
fn auth_hmac_params(
    name: &str,
    h: &crate::config::auth_hmac::AuthHmacConfig,
    i: &crate::config::InstanceConfig,
) -> hafront_vrrp::auth_hmac::Config {
    let interval = crate::preflight::interval_cs(i);
    let mut keys = Vec::new();
    for k in &h.keys {
        match k.load().and_then(|b| hafront_vrrp::auth_hmac::Key::new(k.id, b)) {
            Ok(key) => keys.push(key),
            Err(error) => error!(instance = name, key_id = k.id, %error, "auth_hmac key not loaded"),
        }
    }
    hafront_vrrp::auth_hmac::Config {
        keys,
        active_key: h.active_key,
        mode: h.mode,
        anti_replay: h.anti_replay,
        window_s: h.window_s(interval),
    }
}

/// Runs `task` on a new thread with a single-threaded runtime of its own; `off` says
/// what stops working when that cannot be had.
fn on_own_thread<F>(name: &str, off: &'static str, task: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let spawned = std::thread::Builder::new().name(name.into()).spawn(move || {
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(task),
            Err(error) => error!(%error, "no runtime: {off}"),
        }
    });
    if let Err(error) = spawned {
        error!(%error, thread = name, "no thread: {off}");
    }
}

/// Runs the daemon until SIGTERM/SIGINT. Returns after VIPs were released.
pub fn run(opts: LoadOptions, cfg: Config) -> Result<(), DaemonError> {
    one_malloc_arena();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    // This thread runs the engine (VRRP timers, adverts, the VIP executor).
    realtime(&cfg);
    drop_capabilities(&cfg);
    missing_capabilities(&cfg);
    rt.block_on(run_async(opts, cfg))
}

/// Says at start what the kernel will refuse: a container given CAP_NET_RAW (on
/// by default in Docker) but not CAP_NET_ADMIN sends adverts, yet every VIP add
/// is refused (the node then advertises priority 1 while refused: see
/// `crate::track::RefusalHold`). Not fatal: an operator may be adding it.
fn missing_capabilities(cfg: &Config) {
    use crate::process::caps;
    let eff = caps::effective();
    for (cap, name, what) in [
        (
            caps::NET_ADMIN,
            "CAP_NET_ADMIN",
            "the kernel will refuse every virtual address (and IPVS writes)",
        ),
        (
            caps::NET_RAW,
            "CAP_NET_RAW",
            "no VRRP advert can be sent or received",
        ),
    ] {
        if !cfg.vrrp.instances.is_empty() && eff & caps::bit(cap) == 0 {
            error!(capability = name, "{name} is missing: {what}; give it to hafront (docker run --cap-add, or the unit's AmbientCapabilities)");
        }
    }
}

/// One malloc arena for the whole daemon, before any thread exists. glibc gives
/// each thread that allocates an arena of its own (up to 8 per core); hafront has
/// six threads (engine, status, checks, API, IPVS, IPVS sync) that mostly wait, and
/// each arena kept its pages and fragments: 1.9x keepalived's PSS on a master of 200
/// instances (issue 19). The threads' small allocations stay lock-free in glibc's
/// per-thread cache. `MALLOC_ARENA_MAX` in the environment still decides when set.
fn one_malloc_arena() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt takes two integers; called before any other thread exists.
    if unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) } != 1 {
        warn!("mallopt(M_ARENA_MAX) refused: one malloc arena per thread");
    }
}

/// After start, when the text is released a second time ([`release_startup_text`]).
const TEXT_RELEASED_AGAIN: Duration = Duration::from_secs(30);

/// Unmaps the resident pages of the executable's code once the daemon runs; the
/// pages the daemon goes on running fault back in from the page cache (minor
/// faults, microseconds). Start-up touches most of a 10 MB text segment (the
/// configuration layers, the keepalived importer, the command line), which stayed
/// mapped for the life of the daemon: 9.5 of a master's 18.9 MB RSS (issue 19).
/// Only the executable mapping of the binary itself: it is never written (no text
/// relocations), so MADV_DONTNEED drops nothing but the mapping. Not with
/// `vrrp.lock_memory` (locked pages stay).
fn release_startup_text() {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        // "start-end perms offset dev inode path"
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms), Some(path)) = (f.next(), f.next(), f.nth(3)) else {
            continue;
        };
        if perms != "r-xp" || std::path::Path::new(path) != exe {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) else {
            continue;
        };
        // SAFETY: a page-aligned range of this process's own read-only, executable,
        // private file mapping, which holds no data: the pages are read again from
        // the file when next executed.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc != 0 {
            let error = std::io::Error::last_os_error();
            debug!(%error, "start-up code pages not released");
        }
    }
}

/// Keeps of hafront's capabilities only what the configured features need: it
/// parses HTTP, TLS, DNS and SMTP replies for its whole life. Before any thread
/// exists (capabilities are per thread; later threads inherit them), after the
/// script user is chosen (switching to it needs CAP_SETUID/CAP_SETGID).
fn drop_capabilities(cfg: &Config) {
    use crate::process::caps;
    crate::process::security::init(cfg);
    let held = caps::effective();
    if held == 0 {
        return;
    }
    let need = caps::needed(cfg);
    match caps::keep_only(need) {
        Ok(left) => info!(
            held = format!("{held:016x}"),
            kept = format!("{left:016x}"),
            "capabilities the configuration does not need dropped (a reload cannot add them back)"
        ),
        Err(error) => warn!(%error, "could not drop unneeded capabilities: keeping them"),
    }
}

/// `vrrp.lock_memory` and `vrrp.rt_priority` (keepalived's `vrrp_no_swap` and
/// `vrrp_rt_priority`), applied once at start: adverts on time under memory
/// pressure and CPU load. A refusal (no CAP_IPC_LOCK / CAP_SYS_NICE, systemd's
/// RestrictRealtime) is a warning: VRRP runs on without.
fn realtime(cfg: &Config) {
    if cfg.vrrp.lock_memory {
        // MCL_ONFAULT: pages are locked as they are touched, so reserved but unused
        // memory (thread stacks) is not made resident.
        // SAFETY: a syscall taking flags only.
        let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT) };
        if rc == 0 {
            info!("vrrp.lock_memory: memory locked");
        } else {
            let error = std::io::Error::last_os_error();
            warn!(%error, "vrrp.lock_memory: mlockall refused, memory can be swapped out");
        }
    }
    if cfg.vrrp.rt_priority > 0 {
        let param = libc::sched_param {
            sched_priority: i32::from(cfg.vrrp.rt_priority),
        };
        // SCHED_RESET_ON_FORK: threads and processes started later (checks, API,
        // IPVS, notify scripts, supervised servers) get normal scheduling.
        // SAFETY: `param` is a valid sched_param for the duration of the call.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_RR | libc::SCHED_RESET_ON_FORK, &param) };
        if rc == 0 {
            info!(
                priority = cfg.vrrp.rt_priority,
                "vrrp.rt_priority: engine thread on SCHED_RR"
            );
        } else {
            let error = std::io::Error::last_os_error();
            warn!(%error, "vrrp.rt_priority: SCHED_RR refused, the engine runs with normal scheduling");
        }
    }
}

async fn run_async(opts: LoadOptions, cfg: Config) -> Result<(), DaemonError> {
    let started = std::time::SystemTime::now();
    STARTED.get_or_init(std::time::Instant::now);
    let links = Links::connect()?;
    let links_for_tracker = links.clone();
    // Subscribe before looking interfaces up, so no change falls in between.
    // One subscription: the engine acts on each event, then passes it to the tracker.
    let (link_events, addr_events) = crate::net::link::watch_links_and_addresses()?;
    let (tracker_links_tx, tracker_links_rx) = mpsc::unbounded_channel();
    let vip_drift = Arc::new(crate::net::vip::Drift::default());
    // What the IPVS reconciler has written, which the VIP executor waits on
    // (Hooks::wait_ipvs: an instance's IPVS services before its VIPs).
    let (ipvs_written_tx, ipvs_written_rx) = watch::channel(crate::shared::IpvsWritten::default());
    let (spacing_tx, spacing_rx) = watch::channel(announce_spacing(&cfg));
    // And the other way: the reconciler removes an instance's services only once its
    // VIPs are removed (Roles::with_vips_held).
    let (vips_held_tx, vips_held_rx) = watch::channel(crate::shared::VipsHeld::default());
    let vips = VipExecutor::spawn(
        links.clone(),
        vip_drift.clone(),
        ipvs_written_rx,
        spacing_rx,
        vips_held_tx,
    );
    let (splitbrain_vips, splitbrain_links, hub_vips) = (vips.clone(), links.clone(), vips.clone());
    let mut engine = Engine::new(links, vips);
    engine.forward_links_to(tracker_links_tx);
    engine.watch_addresses(addr_events, vip_drift.clone());
    crate::process::security::init(&cfg);
    // Also what the tracker, the supervisor and the API follow (reloads replace it).
    // One copy of the configuration for the whole daemon (10,000 checks are tens of MB).
    let cfg = Arc::new(cfg);
    let (full_cfg_tx, full_cfg_rx) = watch::channel(cfg.clone());
    let notifier = crate::notify::spawn(full_cfg_rx.clone());
    engine.notify_to(notifier.clone());
    if let Some(dir) = &cfg.log.record_dir {
        info!(dir = %dir.display(), "recording protocol inputs");
        engine.record_to(dir.clone(), cfg.log.record_max_bytes);
    }
    // Operator overrides survive restarts: an instance in maintenance starts in it.
    let store = crate::overrides::Store::new(&cfg.state_dir);
    let (mut stored, overrides_error) = store.load().fail_safe(cfg.vrrp.instances.keys(), &store);
    if overrides_error.is_some() {
        // Fail safe for anycast too: withdrawn until an operator lifts it.
        stored.anycast_maintenance.extend(cfg.anycast.keys().cloned());
    }
    for name in &stored.maintenance {
        info!(instance = name.as_str(), "in maintenance (operator override)");
        engine.set_maintenance(name.clone(), true);
    }
    let (overrides_tx, overrides_rx) = watch::channel(Arc::new(stored));
    let anycast_overrides_rx = overrides_rx.clone();
    let status = status::StatusWriter::new(
        cfg.runtime_dir.clone(),
        cfg.node.name.clone(),
        overrides_error.clone(),
    );
    // Before any VIP can be added: the accept-mode filter is static (net/accept.rs).
    apply_accept_mode(&cfg).await;
    // Before the sockets join 224.0.0.18 and ff02::12 (the join itself reports).
    let igmp_saved = disable_local_igmp(&cfg);
    apply_vmac_mld(&cfg).await;
    let specs = specs_from_config(&cfg);
    engine.remove_stale_vmacs(&specs).await;
    for (name, spec) in specs {
        engine.add_instance(&name, spec).await?;
    }
    // READY=1 only once sockets are open and the startup state (stale VIPs removed)
    // is applied.
    engine.flush().await;
    let first = Arc::new(engine.snapshot());
    status.write(&first);
    let (engine_tx, engine_rx) = watch::channel(first.clone());
    let (split_brain_tx, split_brain_rx) = watch::channel(Arc::new(Default::default()));
    let split_brain = crate::splitbrain::run(crate::splitbrain::MonitorInputs {
        config: full_cfg_rx.clone(),
        engine: engine_tx.subscribe(),
        links: splitbrain_links,
        vips: splitbrain_vips,
        notify: notifier.clone(),
        status: split_brain_tx,
    });

    // IPVS runs beside VRRP: it follows the configuration and the instances this
    // node is master of, and its failures never reach the VRRP engine.
    let (ipvs_cfg_tx, ipvs_cfg_rx) = watch::channel(Arc::new(cfg.ipvs.clone()));
    let (check_states_tx, check_states_rx) = watch::channel(crate::shared::Verdicts::default());
    let (roles_tx, roles_rx) = watch::channel(status::roles_of(&first));
    let services_roles_rx = roles_tx.subscribe();
    let services_checks_rx = check_states_tx.subscribe();
    let ipvs_status = crate::ipvs::reconcile::IpvsStatus::new(check_states_tx.subscribe(), ipvs_written_tx);
    let (ipvs_stop_tx, ipvs_stop_rx) = oneshot::channel();
    let ipvs_inputs = crate::ipvs::reconcile::ReconcilerInputs {
        config: ipvs_cfg_rx,
        checks: check_states_rx,
        roles: roles_rx,
        vips_held: vips_held_rx,
        state_dir: cfg.state_dir.clone(),
        runtime_dir: cfg.runtime_dir.clone(),
        overrides: overrides_rx.clone(),
        status: ipvs_status.clone(),
        stop: ipvs_stop_rx,
        shared: Default::default(),
    };
    let ipvs_inline = ipvs_inputs.inline_writer();
    // On a thread of its own, as the checks: planning and reporting a table of
    // 10,000 real servers takes milliseconds that must not delay an advert.
    on_own_thread(
        "hafront-ipvs",
        "IPVS is off",
        crate::ipvs::reconcile::run(ipvs_inputs),
    );
    // The connection sync daemon follows its instance; its own socket and thread.
    // It also writes [ipvs.sysctl].
    let (ipvs_sync_tx, ipvs_sync_rx) = watch::channel(Arc::new(Default::default()));
    on_own_thread(
        "hafront-ipvs-sync",
        "the IPVS sync daemon is off",
        crate::ipvs::syncd::run(ipvs_cfg_tx.subscribe(), roles_tx.subscribe(), ipvs_sync_tx),
    );

    let (ctl_tx, ctl_rx) = mpsc::channel(64);
    // Tracking (interfaces, checks, scripts, files, sync groups) feeds the engine
    // through the same control channel as reloads.
    let (tracking_tx, tracking_rx) = watch::channel(Arc::new(Default::default()));
    // Anycast follows the tracker's verdicts and the operator's maintenance.
    let (anycast_tx, anycast_rx) = watch::channel(Arc::new(Default::default()));
    let (anycast_stop_tx, anycast_stop_rx) = oneshot::channel();
    match Links::connect() {
        Ok(links) => {
            tokio::spawn(crate::anycast::run(crate::anycast::AnycastInputs {
                config: full_cfg_rx.clone(),
                tracking: tracking_rx.clone(),
                overrides: anycast_overrides_rx,
                links,
                notify: notifier.clone(),
                status: anycast_tx,
                stop: anycast_stop_rx,
            }));
        }
        Err(error) => error!(%error, "anycast is off: no rtnetlink connection"),
    }
    let checkers: tracker::CheckerSlot = Default::default();
    // Supervised services: a child's death reaches the tracker at once.
    let (service_events_tx, service_events_rx) = mpsc::unbounded_channel();
    let (services_tx, services_rx) = watch::channel(Arc::new(Default::default()));
    let supervisor = crate::supervise::spawn(crate::supervise::SupervisorInputs {
        config: full_cfg_rx.clone(),
        roles: services_roles_rx,
        checks: services_checks_rx,
        events: service_events_tx,
        status: services_tx,
    });
    let tracker_inputs = tracker::TrackerInputs {
        config: full_cfg_rx.clone(),
        overrides: overrides_rx,
        status: tracking_tx,
        checkers: checkers.clone(),
        engine: ctl_tx.clone(),
        check_states: check_states_tx,
        ipvs_inline: Some(ipvs_inline),
        links: links_for_tracker,
        link_events: Some(tracker_links_rx),
        services: service_events_rx,
        vip_events: Some(vip_drift.subscribe()),
    };
    // The tracker and every check run on a thread of their own: 10,000 checks a
    // second keep a core busy, and on the engine's thread they would delay adverts.
    on_own_thread("hafront-checks", "tracking is off", tracker::run(tracker_inputs));

    let (reload_tx, reload_rx) = mpsc::channel(4);
    let (reload_status_tx, reload_status_rx) =
        watch::channel(Arc::new(crate::shared::reload::ReloadStatus::started(
            started
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        )));
    let hub = crate::api::Hub {
        node: cfg.node.name.clone(),
        started,
        config: full_cfg_rx.clone(),
        engine: engine_rx,
        tracking: tracking_rx,
        ipvs: ipvs_status,
        ipvs_sync: ipvs_sync_rx,
        services: services_rx,
        split_brain: split_brain_rx,
        reload: reload_status_rx,
        vip_drift,
        notify: notifier.clone(),
        vips: hub_vips,
        checkers,
        anycast: anycast_rx,
        overrides_error,
        controls: Arc::new(crate::api::Controls::new(
            store,
            overrides_tx,
            full_cfg_rx,
            ctl_tx.clone(),
            reload_tx,
        )),
    };
    start_api(hub, &cfg).await;
    status.notify_ready(&first);
    // Not kept for the daemon's life (this function's frame lives as long as it):
    // 255 instances' statuses, ~100 KB (issue 19, PSS).
    drop(first);
    info!(
        node = cfg.node.name,
        instances = cfg.vrrp.instances.len(),
        "hafront running"
    );
    tokio::spawn(signals(
        opts,
        ctl_tx,
        reload_rx,
        Reloaders {
            ipvs: ipvs_cfg_tx,
            full: full_cfg_tx,
            status: reload_status_tx,
            spacing: spacing_tx,
        },
    ));
    // The status file, systemd's STATUS= and the split-brain monitor follow the
    // snapshots on a thread of their own: the engine never waits for them. The roles
    // are published here, with each snapshot (status::RolesPublisher).
    let roles = std::cell::RefCell::new(status::RolesPublisher::new(roles_tx));
    let publisher = status::spawn_publisher(status::Publisher {
        writer: status,
        snapshots: engine_tx.subscribe(),
        beside: vec![Box::pin(split_brain)],
    });
    let watchdog = sd_notify::watchdog_enabled();
    // Started: the code that only start-up ran (configuration, the importer, the
    // loader, clap) leaves the resident set.
    if !cfg.vrrp.lock_memory {
        release_startup_text();
        // Once more when the instances have started: their start (VIPs added,
        // announcements, the first transitions and their log lines) ran code
        // that the steady state does not, and it stayed mapped, scattered over
        // the text in the 64 KiB windows the kernel faults in around a page. What
        // goes on running is packed at the front of the text (daemon/hot-text.ld)
        // and faults back in (issue 19: 77 of 153 windows stayed resident).
        tokio::spawn(async {
            tokio::time::sleep(TEXT_RELEASED_AGAIN).await;
            release_startup_text();
        });
    }
    engine
        .run(
            ctl_rx,
            link_events,
            // Half the watchdog period (systemd's advice), at most a second.
            watchdog.map_or(Duration::from_secs(1), |wd| (wd / 2).min(Duration::from_secs(1))),
            // One snapshot after changes (coalesced) and per tick (counters; a
            // backup learning its master's address is not a state change).
            |e| {
                let snap = Arc::new(e.snapshot());
                roles.borrow_mut().follow(&snap);
                engine_tx.send_replace(snap);
            },
            |e| {
                let snap = Arc::new(e.snapshot());
                roles.borrow_mut().follow(&snap);
                engine_tx.send_replace(snap);
                // Pinged from the engine loop: a stuck loop stops the pings.
                if watchdog.is_some() {
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                }
            },
        )
        .await;
    // The engine's sender is gone: the publisher writes the last snapshot and ends
    // (before the status file is removed, below).
    drop(engine_tx);
    let publisher_status = publisher.map(|p| p.join());
    // First thing on stop: anycast prefixes withdrawn (BIRD sends the withdrawals),
    // then the flows get `drain` to move before the servers stop (below).
    let (drain_tx, drain_rx) = oneshot::channel();
    let drain_until = if anycast_stop_tx.send(drain_tx).is_ok() {
        match tokio::time::timeout(Duration::from_secs(10), drain_rx).await {
            Ok(Ok(d)) => Some(tokio::time::Instant::now() + d),
            _ => None,
        }
    } else {
        None
    };
    supervisor.stopping();
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    info!("stopping: releasing virtual addresses");
    engine.shutdown().await;
    // VIPs first (above), then the IPVS services we own.
    let (done_tx, done_rx) = oneshot::channel();
    if ipvs_stop_tx.send(done_tx).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(10), done_rx).await;
    }
    if let Some(until) = drain_until {
        tokio::time::sleep_until(until).await;
    }
    // Then the supervised servers (the VIP is gone: nobody is sent to them).
    supervisor.stop(Duration::from_secs(30)).await;
    // The STOP notifications.
    notifier.drain(crate::notify::DRAIN).await;
    if let Err(error) = accept::apply(&AcceptPlan::default()).await {
        warn!(%error, "cannot remove the accept-mode table");
    }
    if let Err(error) = crate::net::mld::apply(&MldPlan::default()).await {
        warn!(%error, "cannot remove the virtual MACs' MLD table");
    }
    if let Some(saved) = igmp_saved {
        match crate::net::igmp::restore(std::path::Path::new(crate::net::igmp::SYSCTL), saved) {
            Ok(()) => info!("link-local IGMP reports put back as found"),
            Err(error) => warn!(%error, "link-local IGMP reports not put back"),
        }
    }
    if let Some(Err(_)) = publisher_status {
        error!("the status publisher panicked");
    }
    let _ = std::fs::remove_file(status_path(&cfg.runtime_dir));
    let _ = std::fs::remove_file(cfg.api.socket_path(&cfg.runtime_dir));
    info!("stopped");
    Ok(())
}

/// Starts the API on a thread of its own (with its own single-threaded runtime):
/// rendering a large status or metrics page takes milliseconds, which on the
/// engine's thread would delay adverts. A failure (socket path taken, port in use)
/// is logged and VRRP keeps running: availability first, and the error says what
/// is wrong.
async fn start_api(hub: crate::api::Hub, cfg: &Config) {
    // Read here at start; the API re-reads it at every reload (api::http::follow_token).
    let token = match cfg.api.load_token() {
        Ok(t) => t,
        Err(error) => {
            error!(%error, "api.token_file not readable: the API is off");
            return;
        }
    };
    let socket = cfg.api.socket_path(&cfg.runtime_dir);
    let listen = cfg.api.listen;
    // Listening (or not) before READY=1: `hafront status` works once systemd says
    // the daemon is up.
    let (bound_tx, bound_rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("hafront-api".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = bound_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                match crate::api::http::serve(hub, &socket, listen, token).await {
                    Ok(()) => {
                        let _ = bound_tx.send(Ok(()));
                        std::future::pending::<()>().await
                    }
                    Err(e) => {
                        let _ = bound_tx.send(Err(e.to_string()));
                    }
                }
            });
        });
    if let Err(error) = spawned {
        error!(%error, "the API is off: no thread for it");
        return;
    }
    match bound_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => error!(%error, "the API is off"),
        Err(_) => error!("the API is off: its thread ended"),
    }
}

/// Where a reloaded configuration goes besides the engine.
struct Reloaders {
    ipvs: watch::Sender<Arc<IpvsConfig>>,
    full: watch::Sender<Arc<Config>>,
    status: watch::Sender<Arc<crate::shared::reload::ReloadStatus>>,
    /// The VIP executor's spacing of announcements.
    spacing: watch::Sender<crate::net::announce::Spacing>,
}

/// `vrrp.garp_interval` and `vrrp.na_interval`.
fn announce_spacing(cfg: &Config) -> crate::net::announce::Spacing {
    crate::net::announce::Spacing {
        arp: cfg.vrrp.garp_interval,
        na: cfg.vrrp.na_interval,
    }
}

/// Signals and API reload requests: SIGTERM/SIGINT stop the engine, SIGHUP and
/// `POST /v1/reload` reload the configuration.
async fn signals(
    opts: LoadOptions,
    ctl: mpsc::Sender<Control>,
    mut api_reloads: mpsc::Receiver<crate::api::controls::ReloadRequest>,
    to: Reloaders,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                if reload(&opts, &ctl, &to, "SIGHUP").await.is_none() {
                    return;
                }
            }
            Some(answer) = api_reloads.recv() => {
                match reload(&opts, &ctl, &to, "API").await {
                    Some(outcome) => { let _ = answer.send(outcome); }
                    None => return,
                }
            }
        }
    }
    let _ = ctl.send(Control::Shutdown).await;
}

/// Reloads the configuration; `None` when the engine is gone.
async fn reload(
    opts: &LoadOptions,
    ctl: &mpsc::Sender<Control>,
    to: &Reloaders,
    by: &'static str,
) -> Option<Result<(), String>> {
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Reloading,
        sd_notify::NotifyState::monotonic_usec_now().unwrap_or(sd_notify::NotifyState::Ready),
    ]);
    // Loading (parsing, validating, checking every script's ownership) takes tens of
    // milliseconds for 10,000 real servers: not on the engine's thread, where it
    // delayed every advert (scripts/bench-api with BENCH_RELOADS).
    let load = {
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || preflight::load(&opts))
    };
    let loaded = match load.await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("the configuration loader failed: {e}")),
    };
    let outcome = match loaded {
        Ok(cfg) => {
            info!(by, "configuration reloaded");
            apply_accept_mode(&cfg).await;
            apply_vmac_mld(&cfg).await;
            let cfg = Arc::new(cfg);
            to.spacing.send_replace(announce_spacing(&cfg));
            to.full.send_replace(cfg.clone());
            to.ipvs.send_if_modified(|c| {
                let changed = **c != cfg.ipvs;
                if changed {
                    *c = Arc::new(cfg.ipvs.clone());
                }
                changed
            });
            let (done_tx, done_rx) = oneshot::channel();
            if ctl
                .send(Control::Reload(specs_from_config(&cfg), done_tx))
                .await
                .is_err()
            {
                return None;
            }
            let _ = tokio::time::timeout(Duration::from_secs(30), done_rx).await;
            Ok(())
        }
        Err(error) => {
            warn!(by, %error, "new configuration rejected, keeping the running one");
            Err(error)
        }
    };
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    crate::events::publish(|| crate::events::Kind::Reload {
        by,
        successful: outcome.is_ok(),
        reason: match &outcome {
            Ok(()) => "configuration applied".into(),
            Err(e) => format!("rejected, the running configuration is kept: {e}"),
        },
    });
    to.status
        .send_modify(|s| *s = Arc::new(s.after(by, &outcome, crate::shared::reload::unix_ms_now())));
    Some(outcome)
}

/// Installs the accept-mode filter for the configuration. A failure is logged and
/// VRRP keeps running: availability first, and the error says what is missing.
async fn apply_accept_mode(cfg: &Config) {
    let plan = AcceptPlan::from_config(cfg);
    match accept::apply(&plan).await {
        Ok(()) if !plan.is_empty() => {
            info!(
                v4 = plan.v4.len(),
                v6 = plan.v6.len(),
                "accept = false: VIP traffic filter installed"
            )
        }
        Ok(()) => {}
        Err(error) => error!(%error, "accept = false is not enforced"),
    }
}

/// Moves the MLD reports of IPv6 virtual MACs to their base interfaces
/// (net/mld.rs). A failure is logged and VRRP keeps running: the reports only
/// move the virtual MAC on the switch for a moment.
async fn apply_vmac_mld(cfg: &Config) {
    let plan = MldPlan::from_config(cfg);
    for instance in &plan.unquotable {
        warn!(
            instance,
            "MLD reports left on the virtual MAC: nft cannot quote its interface names"
        );
    }
    match crate::net::mld::apply(&plan).await {
        Ok(()) if !plan.is_empty() => {
            info!(
                macvlans = plan.moves.len(),
                "MLD reports of virtual MACs sent from their base interfaces"
            )
        }
        Ok(()) => {}
        Err(error) => {
            warn!(%error, "MLD reports left on the virtual MACs: a backup reports ff02::12 from its virtual MAC")
        }
    }
}

/// Where `hafront status` finds the daemon's state.
pub fn status_path(runtime_dir: &std::path::Path) -> PathBuf {
    runtime_dir.join("status.json")
}
