//! The names keepalived makes up for VMAC and ipvlan interfaces (`use_vmac` or
//! `use_ipvlan` without a name; `vmac_prefix` in global_defs), so that the
//! imported configuration reuses the interfaces keepalived created.

use super::*;

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

/// Linux IFNAMSIZ: names are at most 15 bytes.
const IFNAMSIZ: usize = 16;

/// `{prefix}{num}.{vrid}`, the prefix cut so that the name fits IFNAMSIZ
/// (keepalived's snprintf("%.*s...")).
fn vmac_name(prefix: &str, num: Option<u16>, vrid: u8) -> String {
    let tail = match num {
        Some(n) => format!("{n}.{vrid}"),
        None => format!(".{vrid}"),
    };
    let room = (IFNAMSIZ - 1).saturating_sub(tail.len());
    let mut cut = prefix.len().min(room);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{tail}", &prefix[..cut])
}

/// keepalived's create_vmac_name (vrrp.c): `{prefix}.{vrid}` if no other name
/// in use, then `{prefix}1.{vrid}`, `{prefix}2.{vrid}`...; for IPv6 `{prefix}6.{vrid}`
/// is tried second (and skipped in the count).
pub(super) fn create_vmac_name(prefix: &str, vrid: u8, v6: bool, in_use: &dyn Fn(&str) -> bool) -> String {
    let mut num: Option<u16> = None;
    loop {
        let name = vmac_name(prefix, num, vrid);
        // u16: keepalived's unsigned short; a name is found long before.
        if !in_use(&name) || num == Some(u16::MAX) {
            return name;
        }
        num = Some(match (v6, num) {
            (true, None) => 6,
            (true, Some(6)) => 1,
            (true, Some(5)) => 7,
            (_, None) => 1,
            (_, Some(n)) => n + 1,
        });
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_keepalived() {
        let none = |_: &str| false;
        assert_eq!(create_vmac_name("vrrp", 51, false, &none), "vrrp.51");
        assert_eq!(create_vmac_name("vrrp", 51, true, &none), "vrrp.51");
        let taken = |n: &str| ["vrrp.51", "vrrp1.51"].contains(&n);
        assert_eq!(create_vmac_name("vrrp", 51, false, &taken), "vrrp2.51");
        // IPv6: vrrp6 second, then 1..5, 7...
        assert_eq!(create_vmac_name("vrrp", 51, true, &taken), "vrrp6.51");
        let taken = |n: &str| {
            [
                "vrrp.9", "vrrp6.9", "vrrp1.9", "vrrp2.9", "vrrp3.9", "vrrp4.9", "vrrp5.9",
            ]
            .contains(&n)
        };
        assert_eq!(create_vmac_name("vrrp", 9, true, &taken), "vrrp7.9");
        // A long prefix is cut to fit 15 bytes.
        assert_eq!(
            create_vmac_name("averyveryverylong", 200, false, &none),
            "averyveryve.200"
        );
        let taken = |n: &str| n == "averyveryve.200";
        assert_eq!(
            create_vmac_name("averyveryverylong", 200, false, &taken),
            "averyveryv1.200"
        );
        assert_eq!(create_vmac_name("vip", 7, false, &none), "vip.7");
    }
}
