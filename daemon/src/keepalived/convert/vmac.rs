//! The names keepalived makes up for VMAC and ipvlan interfaces (`use_vmac` or
//! `use_ipvlan` without a name; `vmac_prefix` in global_defs), so that the
//! imported configuration reuses the interfaces keepalived created; and the
//! prefix of the names of the VIPs' VMACs (`vmac_addr_prefix`).

use super::*;
use crate::config::vmac::{create_vmac_name, DEFAULT_PREFIX};

/// An instance with `use_vmac` or `use_ipvlan`, for [`Cx::vmac_names`].
pub(super) struct VmacInstance {
    /// Its table in `Cx::sections`.
    pub section: usize,
    pub vrid: u8,
    pub v6: bool,
    /// `use_vmac NAME` / `use_ipvlan NAME`.
    pub named: Option<String>,
    /// The instance's `interface`.
    pub interface: String,
}

impl Cx {
    /// Names the VMACs and ipvlans without a name as keepalived does (in the
    /// order of the instances, after the named ones; keepalived also skips the
    /// names of interfaces that exist on the host, which the file does not
    /// tell). Where that differs from hafront's default (`vrrp.{vrid}`,
    /// `vrrp6.{vrid}` for IPv6) the name is written as `vmac_name`.
    pub(super) fn vmac_names(&mut self) {
        let prefix = self.g.vmac_prefix.as_ref().map(|(p, _)| p.clone());
        let comment = match &self.g.vmac_prefix {
            Some((p, loc)) => format!("{loc} keepalived's name for it (vmac_prefix {p})"),
            None => "keepalived's name for it".to_string(),
        };
        let mut used: BTreeSet<String> = self
            .vmacs
            .iter()
            .flat_map(|v| v.named.iter().chain(std::iter::once(&v.interface)))
            .cloned()
            .collect();
        let vmacs = std::mem::take(&mut self.vmacs);
        for v in vmacs.iter().filter(|v| v.named.is_none()) {
            let name = create_vmac_name(prefix.as_deref().unwrap_or("vrrp"), v.vrid, v.v6, &|n| {
                used.contains(n)
            });
            let default = if v.v6 {
                format!("vrrp6.{}", v.vrid)
            } else {
                format!("vrrp.{}", v.vrid)
            };
            if name != default {
                if let Some(s) = self.sections.get_mut(v.section) {
                    s.set("vmac_name", name.clone(), Some(comment.clone()));
                }
            }
            used.insert(name);
        }
    }

    /// `vrrp.vmac_addr_prefix` from `vmac_addr_prefix`, or from `vmac_prefix`
    /// (keepalived's fallback) where an instance puts VIPs on VMACs of their own.
    pub(super) fn vmac_addr_prefix(&mut self) {
        let uses = self.sections.iter().any(|s| {
            s.has("vmac_addr")
                || s.get("vip_options")
                    .and_then(toml::Value::as_table)
                    .is_some_and(|t| {
                        t.values()
                            .any(|o| o.get("use_vmac").and_then(toml::Value::as_bool) == Some(true))
                    })
        });
        let given = match (&self.g.vmac_addr_prefix, &self.g.vmac_prefix) {
            (Some((p, loc)), _) => Some((p.clone(), format!("{loc} vmac_addr_prefix"))),
            (None, Some((p, loc))) if uses => Some((
                p.clone(),
                format!("{loc} vmac_prefix (keepalived's default for it)"),
            )),
            _ => None,
        };
        let Some((prefix, comment)) = given else {
            return;
        };
        if prefix == DEFAULT_PREFIX {
            return;
        }
        let vrrp = match self.sections.iter().position(|s| s.path == "vrrp") {
            Some(i) => &mut self.sections[i],
            None => {
                let at = self
                    .sections
                    .iter()
                    .position(|s| s.path.starts_with("vrrp."))
                    .unwrap_or(self.sections.len());
                self.sections.insert(at, Section::new("vrrp"));
                &mut self.sections[at]
            }
        };
        vrrp.set("vmac_addr_prefix", prefix, Some(comment));
    }
}
