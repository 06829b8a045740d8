//! The IPVS generic netlink message: a command and its attributes. The family id
//! is resolved at runtime by name ("IPVS"), never hard-coded.

use netlink_packet_core::{
    DecodeError, Emitable, ErrorContext, NlasIterator, ParseableParametrized, NLA_F_NESTED,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use super::constants::*;
use super::nlas::{DestAttr, IpvsAttr, ServiceAttr};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpvsCmd {
    NewService,
    SetService,
    DelService,
    GetService,
    NewDest,
    SetDest,
    DelDest,
    GetDest,
    NewDaemon,
    DelDaemon,
    GetDaemon,
    SetConfig,
    GetConfig,
    SetInfo,
    GetInfo,
    Zero,
    Flush,
}

impl From<IpvsCmd> for u8 {
    fn from(cmd: IpvsCmd) -> u8 {
        use IpvsCmd::*;
        match cmd {
            NewService => IPVS_CMD_NEW_SERVICE,
            SetService => IPVS_CMD_SET_SERVICE,
            DelService => IPVS_CMD_DEL_SERVICE,
            GetService => IPVS_CMD_GET_SERVICE,
            NewDest => IPVS_CMD_NEW_DEST,
            SetDest => IPVS_CMD_SET_DEST,
            DelDest => IPVS_CMD_DEL_DEST,
            GetDest => IPVS_CMD_GET_DEST,
            NewDaemon => IPVS_CMD_NEW_DAEMON,
            DelDaemon => IPVS_CMD_DEL_DAEMON,
            GetDaemon => IPVS_CMD_GET_DAEMON,
            SetConfig => IPVS_CMD_SET_CONFIG,
            GetConfig => IPVS_CMD_GET_CONFIG,
            SetInfo => IPVS_CMD_SET_INFO,
            GetInfo => IPVS_CMD_GET_INFO,
            Zero => IPVS_CMD_ZERO,
            Flush => IPVS_CMD_FLUSH,
        }
    }
}

impl TryFrom<u8> for IpvsCmd {
    type Error = DecodeError;
    fn try_from(v: u8) -> Result<Self, DecodeError> {
        use IpvsCmd::*;
        Ok(match v {
            IPVS_CMD_NEW_SERVICE => NewService,
            IPVS_CMD_SET_SERVICE => SetService,
            IPVS_CMD_DEL_SERVICE => DelService,
            IPVS_CMD_GET_SERVICE => GetService,
            IPVS_CMD_NEW_DEST => NewDest,
            IPVS_CMD_SET_DEST => SetDest,
            IPVS_CMD_DEL_DEST => DelDest,
            IPVS_CMD_GET_DEST => GetDest,
            IPVS_CMD_NEW_DAEMON => NewDaemon,
            IPVS_CMD_DEL_DAEMON => DelDaemon,
            IPVS_CMD_GET_DAEMON => GetDaemon,
            IPVS_CMD_SET_CONFIG => SetConfig,
            IPVS_CMD_GET_CONFIG => GetConfig,
            IPVS_CMD_SET_INFO => SetInfo,
            IPVS_CMD_GET_INFO => GetInfo,
            IPVS_CMD_ZERO => Zero,
            IPVS_CMD_FLUSH => Flush,
            other => return Err(DecodeError::from(format!("unknown IPVS command {other}"))),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpvsMessage {
    pub cmd: IpvsCmd,
    pub attrs: Vec<IpvsAttr>,
    /// NLA_F_NESTED on the nested attributes (service, destination, daemon and their
    /// statistics). The kernel reads them either way (nla_parse_nested_deprecated)
    /// and sends its dumps without it; ipvsadm sets it (libnl 3.7, Debian 12). Parsing
    /// records what the message had, so a captured message re-emits byte for byte;
    /// `new` leaves it off.
    pub nested_flag: bool,
}

impl IpvsMessage {
    pub fn new(cmd: IpvsCmd, attrs: Vec<IpvsAttr>) -> IpvsMessage {
        IpvsMessage {
            cmd,
            attrs,
            nested_flag: false,
        }
    }
}

/// Sets NLA_F_NESTED on the attribute at the start of `buf`.
fn set_nested(buf: &mut [u8]) {
    let kind = u16::from_ne_bytes([buf[2], buf[3]]) | NLA_F_NESTED;
    buf[2..4].copy_from_slice(&kind.to_ne_bytes());
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        IPVS_GENL_NAME
    }
    fn command(&self) -> u8 {
        self.cmd.into()
    }
    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer);
        if !self.nested_flag {
            return;
        }
        // Same layout as emitted above: each attribute at its offset, its value 4
        // bytes in.
        let mut off = 0;
        for attr in &self.attrs {
            let len = attr.buffer_len();
            let mut inner = off + 4;
            match attr {
                IpvsAttr::Service(a) => {
                    set_nested(&mut buffer[off..]);
                    for n in a {
                        if matches!(n, ServiceAttr::Stats(_) | ServiceAttr::Stats64(_)) {
                            set_nested(&mut buffer[inner..]);
                        }
                        inner += n.buffer_len();
                    }
                }
                IpvsAttr::Dest(a) => {
                    set_nested(&mut buffer[off..]);
                    for n in a {
                        if matches!(n, DestAttr::Stats(_) | DestAttr::Stats64(_)) {
                            set_nested(&mut buffer[inner..]);
                        }
                        inner += n.buffer_len();
                    }
                }
                IpvsAttr::Daemon(_) => set_nested(&mut buffer[off..]),
                _ => {}
            }
            off += len;
        }
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let cmd = IpvsCmd::try_from(header.cmd)?;
        let mut nested_flag = false;
        let attrs = NlasIterator::new(buf)
            .map(|nla| {
                nla.and_then(|nla| {
                    nested_flag |= nla.nested_flag();
                    IpvsAttr::parse_for(&nla, header.cmd)
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .context("IPVS message attributes")?;
        Ok(IpvsMessage {
            cmd,
            attrs,
            nested_flag,
        })
    }
}
