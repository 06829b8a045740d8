//! PLACEHOLDER by the lead so the daemon can run; helper-2 replaces this file with
//! the full schema, validation and error reporting (same public API).
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub struct LoadOptions {
    pub files: Vec<PathBuf>,
    pub env: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub node: NodeConfig,
    pub log: LogConfig,
    pub runtime_dir: PathBuf,
    pub vrrp: VrrpConfig,
}
impl Default for Config {
    fn default() -> Self {
        Config {
            node: NodeConfig {
                name: "hafront".into(),
            },
            log: LogConfig {
                level: "info".into(),
                format: LogFormat::Text,
            },
            runtime_dir: "/run/hafront".into(),
            vrrp: VrrpConfig::default(),
        }
    }
}
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeConfig {
    pub name: String,
}
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VrrpConfig {
    pub instances: BTreeMap<String, InstanceConfig>,
}
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    pub interface: String,
    pub vrid: u8,
    #[serde(default = "p100")]
    pub priority: u8,
    #[serde(default = "v3")]
    pub version: crate::vrrp::Version,
    #[serde(with = "humantime_serde_local", default = "one_s")]
    pub advert_interval: Duration,
    pub virtual_ips: Vec<ipnet::IpNet>,
    #[serde(default)]
    pub vip_label: Option<String>,
    #[serde(default = "yes")]
    pub preempt: bool,
    #[serde(with = "humantime_serde_local", default)]
    pub preempt_delay: Duration,
    #[serde(default)]
    pub unicast_peers: Vec<IpAddr>,
    #[serde(default)]
    pub unicast_source: Option<IpAddr>,
    #[serde(default)]
    pub auth_pass: Option<Secret>,
    #[serde(default = "yes")]
    pub accept: bool,
    #[serde(default)]
    pub checksum_compat: bool,
    #[serde(default)]
    pub garp: GarpConfig,
}
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GarpConfig {
    pub master_burst: u32,
    #[serde(with = "humantime_serde_local")]
    pub master_delay: Duration,
    pub master_repeat: u32,
    #[serde(skip)]
    pub refresh: Option<Duration>,
    pub lower_prio_burst: bool,
}
impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            master_burst: 5,
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            refresh: None,
            lower_prio_burst: true,
        }
    }
}
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Secret(String);
impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}
fn p100() -> u8 {
    100
}
fn v3() -> crate::vrrp::Version {
    crate::vrrp::Version::V3
}
fn one_s() -> Duration {
    Duration::from_secs(1)
}
fn yes() -> bool {
    true
}
mod humantime_serde_local {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
    let mut f = Figment::from(Serialized::defaults(Config::default()));
    for file in &opts.files {
        f = f.merge(Toml::file(file));
    }
    if opts.env {
        f = f.merge(Env::prefixed("HAFRONT_").split("__"));
    }
    f.extract().map_err(|e| ConfigError(e.to_string()))
}

impl Config {
    pub fn to_redacted_toml(&self) -> String {
        format!("{self:?}")
    }
}
