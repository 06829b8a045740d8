//! The values keepalived 2.4.3 derives for a `vrrp_instance` once it is read
//! (keepalived/vrrp/vrrp.c, `vrrp_complete_instance`, and the keyword handlers of
//! vrrp_parser.c that depend on what came before), applied to the imported
//! instance so that hafront runs what keepalived would have run:
//!
//! - the family is that of the first address among the VIPs, unicast peers and
//!   source addresses; later addresses of the other family are ignored;
//! - an IPv6 instance with no `version` runs VRRPv3, whatever `vrrp_version` says;
//!   `version 2` after an IPv6 address is ignored; under strict mode it is 3;
//! - no `priority`: 255 with `state MASTER`, else 100;
//! - the initial state is MASTER for priority 255 when no state is given, and under
//!   strict mode whenever state and priority disagree;
//! - `nopreempt` is cleared at priority 255 and with initial state MASTER;
//!   `preempt_delay` with initial state MASTER, strict mode or nopreempt;
//! - `accept` defaults to true for priority 255, else to "not strict"; strict
//!   VRRPv2 clears it below 255;
//! - no authentication under strict mode, with VRRPv3, without `auth_pass`;
//! - `advert_int` is 1 s by default, rounded to whole seconds (v2, at most 255)
//!   or centiseconds (v3, at most 40.95 s);
//! - under strict mode, no gratuitous ARP on hearing a lower priority.

use super::*;

/// What an instance's lines said, as far as the derived values depend on it.
#[derive(Default)]
pub(super) struct Facts<'a> {
    /// The instance's family (true: IPv6) and the line that fixed it.
    pub family: Option<(bool, &'a Node)>,
    pub version: Option<(i64, &'a Node)>,
    /// `native_ipv6`: IPv6 and version 3.
    pub native_ipv6: Option<&'a Node>,
    /// `strict_mode [true|false]` in the instance.
    pub strict_mode: Option<(bool, &'a Node)>,
    pub state_master: Option<(bool, &'a Node)>,
    pub advert: Option<(Duration, &'a Node)>,
    /// The last of `preempt` (true) / `nopreempt` (false).
    pub preempt: Option<(bool, &'a Node)>,
    pub preempt_delay: Option<(Duration, &'a Node)>,
    pub accept: Option<(bool, &'a Node)>,
    /// `v3_checksum_as_v2 [true|false]`.
    pub checksum_as_v2: Option<(bool, &'a Node)>,
}

impl<'a> Facts<'a> {
    /// An address of the instance (VIP, peer, source): sets the family if it is
    /// the first; false if it is of the other family (keepalived ignores it).
    pub fn address(&mut self, a: IpAddr, n: &'a Node) -> bool {
        match self.family {
            None => {
                self.family = Some((a.is_ipv6(), n));
                true
            }
            Some((v6, _)) => v6 == a.is_ipv6(),
        }
    }

    pub fn is_v6(&self) -> bool {
        self.family.is_some_and(|(v6, _)| v6)
    }
}

/// Why keepalived ignores an address of the other family.
pub(super) const OTHER_FAMILY_WHY: &str = "not carried over: keepalived ignores it, its family is not the \
     instance's (that of the instance's first address)";

impl Cx {
    /// `version N` in an instance, as vrrp_version_handler: ignored when it
    /// contradicts an earlier `version` or `native_ipv6`, or when it says 2 after an
    /// IPv6 address.
    pub(super) fn version_line<'a>(&mut self, f: &mut Facts<'a>, c: &'a Node) -> R<()> {
        let v = int(c, 0, 2, 3)?;
        let earlier = f.version.map(|(e, _)| e).or(f.native_ipv6.map(|_| 3));
        if earlier.is_some_and(|e| e != v) {
            self.changed(
                c,
                format!(
                    "ignored, as keepalived: it contradicts the version already set ({})",
                    earlier.unwrap_or(3)
                ),
            );
        } else if v == 2 && f.is_v6() {
            self.changed(
                c,
                "ignored, as keepalived: the instance is IPv6 (its first address), which runs VRRPv3",
            );
        } else {
            f.version = Some((v, c));
        }
        Ok(())
    }

    /// The derived values (see the module comment), written into the instance `s`
    /// and its `garp` table; returns the version and whether strict mode is on.
    pub(super) fn derive_instance(
        &mut self,
        n: &Node,
        f: &Facts,
        s: &mut Section,
        garp: &mut Section,
    ) -> R<(i64, bool)> {
        let at = |c: &Node| Self::at(&n.loc, c);
        let strict = match f.strict_mode {
            Some((b, _)) => b,
            None => self.g.strict.is_some(),
        };
        let strict_why = match f.strict_mode {
            Some(_) => "strict_mode".to_string(),
            None => "vrrp_strict".to_string(),
        };
        let v6 = f.is_v6() || f.native_ipv6.is_some();

        // Version (vrrp.c: family AF_INET6 -> VRRP_VERSION_3).
        let version = match (f.version, f.native_ipv6) {
            (Some((2, c)), _) if v6 && strict => {
                self.changed(
                    c,
                    format!("carried over as version = 3: keepalived runs IPv6 as VRRPv3 under {strict_why}"),
                );
                s.set(
                    "version",
                    3,
                    Some(format!(
                        "{} line {}: IPv6 under strict mode",
                        c.keyword, c.loc.line
                    )),
                );
                3
            }
            (Some((2, c)), _) if v6 => {
                return Err(ImportError::new(
                    &c.loc,
                    "version 2 with IPv6 addresses: keepalived would send VRRPv2 over IPv6, which no RFC \
                     defines and hafront does not; set version 3 (on both nodes)",
                ))
            }
            (Some((v, c)), _) => {
                s.set("version", v, at(c));
                v
            }
            (None, Some(c)) => {
                s.set("version", 3, Some(format!("native_ipv6 at line {}", c.loc.line)));
                3
            }
            (None, None) if v6 => {
                let why = match &self.g.version {
                    Some((2, loc)) => format!(
                        "keepalived runs an IPv6 instance as VRRPv3 (vrrp_version 2 at {loc} is for IPv4)"
                    ),
                    _ => "keepalived runs an IPv6 instance as VRRPv3".to_string(),
                };
                s.set("version", 3, Some(why));
                3
            }
            (None, None) => match &self.g.version {
                Some((v, loc)) => {
                    s.set("version", *v, Some(format!("vrrp_version at {loc}")));
                    *v
                }
                None => {
                    s.set(
                        "version",
                        KA_VRRP_VERSION,
                        Some("keepalived's default (hafront's is 3)".to_string()),
                    );
                    KA_VRRP_VERSION
                }
            },
        };

        // Priority from the initial state, and the initial state from the priority.
        let prio = match s.entries.iter().find(|e| e.key == "priority").map(|e| &e.value) {
            Some(Value::One(v)) => v.as_integer().unwrap_or(100),
            _ => match f.state_master {
                Some((true, c)) => {
                    s.set(
                        "priority",
                        255,
                        Some(format!(
                            "keepalived's default with state MASTER (line {})",
                            c.loc.line
                        )),
                    );
                    255
                }
                _ => 100,
            },
        };
        let owner = prio == 255;
        let wants_master = match f.state_master {
            None => owner,
            Some((m, _)) if strict && m != owner => owner,
            Some((m, _)) => m,
        };

        // nopreempt and preempt_delay.
        let mut preempt = true;
        if let Some((p, c)) = f.preempt {
            preempt = p;
            if !p && owner {
                preempt = true;
                self.changed(
                    c,
                    "ignored, as keepalived: priority 255 (the address owner) always preempts",
                );
            } else if !p && wants_master {
                preempt = true;
                self.changed(
                    c,
                    "ignored, as keepalived: it does not work with initial state MASTER",
                );
            }
            if preempt == p {
                s.set("preempt", p, at(c));
            }
        }
        if let Some((d, c)) = f.preempt_delay {
            let why = if wants_master {
                Some("initial state MASTER")
            } else if strict {
                Some("strict mode")
            } else if !preempt {
                Some("nopreempt")
            } else {
                None
            };
            match why {
                Some(w) if !d.is_zero() => self.changed(
                    c,
                    format!("ignored, as keepalived: preempt_delay is cleared with {w}"),
                ),
                _ => s.set("preempt_delay", dur(d), at(c)),
            }
        }

        // Accept mode.
        let accept = match f.accept {
            Some((true, c)) if !owner && strict && version == 2 => {
                self.changed(
                    c,
                    "carried over as accept = false: keepalived clears accept for VRRPv2 in strict mode \
                     (RFC 3768 has no Accept_Mode)",
                );
                Some((false, Some(format!("line {}: strict VRRPv2", c.loc.line))))
            }
            Some((a, c)) => Some((a, at(c))),
            None if !owner && strict => Some((false, Some(strict_why.clone()))),
            None => None,
        };
        if let Some((a, comment)) = accept {
            s.set("accept", a, comment);
        }

        // Gratuitous ARP on a lower priority: never under strict mode.
        if strict {
            garp.set(
                "lower_prio_burst",
                false,
                Some(format!("{strict_why}: keepalived sends none")),
            );
        }

        // VRRPv3 over IPv4 with the checksum of VRRPv2 (no pseudo-header, vrrp.c):
        // hafront's checksum_compat; keepalived ignores it elsewhere.
        let as_v2 = match (f.checksum_as_v2, &self.g.v3_checksum_as_v2) {
            (Some((b, c)), _) => b.then(|| (at(c), Some(c))),
            (None, Some(loc)) => Some((Some(format!("v3_checksum_as_v2 at {loc}")), None)),
            (None, None) => None,
        };
        if let Some((comment, line)) = as_v2 {
            if version == 3 && !v6 {
                s.set("checksum_compat", true, comment);
            } else if let Some(c) = line {
                self.changed(c, "ignored, as keepalived: it applies to VRRPv3 over IPv4 only");
            }
        }

        // Advertisement interval.
        if let Some((d, c)) = f.advert {
            let r = round_advert_int(d, version);
            if r != d {
                self.changed(
                    c,
                    format!(
                        "carried over as {}: keepalived rounds VRRPv{version} intervals to {}",
                        humantime::format_duration(r),
                        if version == 2 {
                            "whole seconds 1..255"
                        } else {
                            "0.01..40.95 s in steps of 0.01"
                        }
                    ),
                );
            }
            s.set("advert_interval", dur(r), at(c));
        }
        Ok((version, strict))
    }
}

/// keepalived's boolean argument (check_true_false): none is true.
pub(super) fn true_false(c: &Node) -> R<bool> {
    match c.args.first().map(String::as_str) {
        None | Some("true" | "on" | "yes") => Ok(true),
        Some("false" | "off" | "no") => Ok(false),
        Some(o) => Err(ImportError::new(
            &c.loc,
            format!("{} {o}: true or false", c.keyword),
        )),
    }
}

/// keepalived's `advert_int` range (vrrp_parser.c): 0.01..255 s, six decimals;
/// outside it the line is ignored (1 s).
pub(super) fn advert_int_in_range(d: Duration) -> bool {
    d >= Duration::from_millis(10) && d <= Duration::from_secs(255) && d.subsec_nanos() % 1000 == 0
}

/// vrrp.c: VRRPv2 rounds to whole seconds (half up, at least 1, at most 255);
/// VRRPv3 to centiseconds (half up, 0.01..40.95).
pub(super) fn round_advert_int(d: Duration, version: i64) -> Duration {
    let us = d.as_micros() as u64;
    let (unit, max) = if version == 2 {
        (1_000_000, 255 * 1_000_000)
    } else {
        (10_000, 4095 * 10_000)
    };
    if us >= max + unit {
        return Duration::from_micros(max);
    }
    let r = ((us + unit / 2) / unit * unit).clamp(unit, max);
    Duration::from_micros(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advert_rounding() {
        let s = Duration::from_secs_f64;
        assert_eq!(round_advert_int(s(1.5), 2), s(2.0));
        assert_eq!(round_advert_int(s(1.4), 2), s(1.0));
        assert_eq!(round_advert_int(s(0.4), 2), s(1.0));
        assert_eq!(round_advert_int(s(255.0), 2), s(255.0));
        assert_eq!(round_advert_int(s(0.015), 3), s(0.02));
        assert_eq!(round_advert_int(s(0.014), 3), s(0.01));
        assert_eq!(round_advert_int(s(41.0), 3), s(40.95));
        assert_eq!(round_advert_int(s(40.955), 3), s(40.95));
        assert!(advert_int_in_range(s(0.01)));
        assert!(!advert_int_in_range(s(0.009)));
        assert!(!advert_int_in_range(s(256.0)));
    }
}
