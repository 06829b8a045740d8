//! `[vrrp.instances.<name>.auth_hmac]`: signed adverts, keepalived 2.4's
//! `auth_hmac` block (the wire format is `hafront_vrrp::auth_hmac`). Keys are
//! `hex:<digits>`, an ASCII string, or `file:<path>` holding either (keepalived's
//! rules, `vrrp_auth_hmac_decode_key` / `vrrp_auth_hmac_read_key_file`); they are
//! secrets: serialized and printed as `<redacted>`.

use std::time::Duration;

use hafront_vrrp::auth_hmac::{self, AntiReplay, Key, Mode, KEY_MAX, KEY_MIN, WINDOW_MAX_S, WINDOW_MIN_S};
use serde::{Deserialize, Serialize};

use super::schema::{opt_duration, Secret};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthHmacConfig {
    /// Keys by id (1..255); several allow a rotation without a transition.
    pub keys: Vec<AuthHmacKey>,
    /// The id adverts are signed with.
    pub active_key: u8,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub anti_replay: AntiReplay,
    /// Freshness window (`time` mode), whole seconds 1..300; default
    /// max(3 x advert interval, 5 s).
    #[serde(default, with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub time_window: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthHmacKey {
    pub id: u8,
    pub key: Secret,
}

/// Largest key file read: `hex:`, 64 bytes in hex, a line end (keepalived reads
/// `4 + 64 * 2 + 8` bytes at most).
pub const KEY_FILE_MAX: u64 = 4 + KEY_MAX as u64 * 2 + 8;

/// The bytes of an inline key value: `hex:` digits, or the ASCII string itself.
pub fn decode_key(value: &str) -> Result<Vec<u8>, String> {
    let bytes = match value.strip_prefix("hex:") {
        Some(h) => hafront_vrrp::hex::decode(h).map_err(|e| format!("hex: key: {e}"))?,
        None => {
            if !value.is_ascii() {
                return Err("an inline key is ASCII (or hex:<digits>)".into());
            }
            value.as_bytes().to_vec()
        }
    };
    if !(KEY_MIN..=KEY_MAX).contains(&bytes.len()) {
        return Err(format!(
            "key is {} bytes, must be {KEY_MIN} to {KEY_MAX}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Reads a `file:` key: at most [`KEY_FILE_MAX`] bytes, trailing line ends
/// dropped, then [`decode_key`]. Errors name the file, never its content.
pub fn read_key_file(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("key file {path}: {e}"))?;
    let mut buf = Vec::new();
    f.take(KEY_FILE_MAX + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("key file {path}: {e}"))?;
    if buf.len() as u64 > KEY_FILE_MAX {
        return Err(format!("key file {path} is larger than {KEY_FILE_MAX} bytes"));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    let text = String::from_utf8(buf).map_err(|_| format!("key file {path} is not ASCII"))?;
    decode_key(&text).map_err(|e| format!("key file {path}: {e}"))
}

impl AuthHmacKey {
    /// The key's bytes, reading its file for `file:`.
    pub fn load(&self) -> Result<Vec<u8>, String> {
        match self.key.expose().strip_prefix("file:") {
            Some(path) => read_key_file(path),
            None => decode_key(self.key.expose()),
        }
    }
}

impl AuthHmacConfig {
    /// The window in seconds for an instance advertising every `interval_cs`.
    pub fn window_s(&self, interval_cs: u16) -> u32 {
        match self.time_window {
            Some(d) => d.as_secs() as u32,
            None => auth_hmac::default_window_s(interval_cs),
        }
    }

    /// The core's configuration, keys loaded (files read). Errors name the key.
    pub fn load(&self, interval_cs: u16) -> Result<auth_hmac::Config, String> {
        let keys = self
            .keys
            .iter()
            .map(|k| {
                k.load()
                    .and_then(|b| Key::new(k.id, b))
                    .map_err(|e| format!("key {}: {e}", k.id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(auth_hmac::Config {
            keys,
            active_key: self.active_key,
            mode: self.mode,
            anti_replay: self.anti_replay,
            window_s: self.window_s(interval_cs),
        })
    }

    /// The pure rules (files are read by preflight): ids, active key, inline key
    /// lengths, window. `problem(field, message)`.
    pub fn validate(&self, mut problem: impl FnMut(&str, String)) {
        if self.keys.is_empty() {
            problem("keys", "at least one key is needed".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for k in &self.keys {
            if k.id == 0 {
                problem("keys", "key id 0: ids are 1 to 255".into());
            }
            if !seen.insert(k.id) {
                problem("keys", format!("key id {} is defined twice", k.id));
            }
            let v = k.key.expose();
            if let Some(path) = v.strip_prefix("file:") {
                if !path.starts_with('/') {
                    problem("keys", format!("key {}: file: needs an absolute path", k.id));
                }
            } else if let Err(e) = decode_key(v) {
                problem("keys", format!("key {}: {e}", k.id));
            }
        }
        if !self.keys.iter().any(|k| k.id == self.active_key) {
            problem(
                "active_key",
                format!("key id {} is not one of the keys", self.active_key),
            );
        }
        if let Some(d) = self.time_window {
            let s = d.as_secs();
            if d.subsec_nanos() != 0 || !(u64::from(WINDOW_MIN_S)..=u64::from(WINDOW_MAX_S)).contains(&s) {
                problem(
                    "time_window",
                    format!("must be whole seconds from {WINDOW_MIN_S}s to {WINDOW_MAX_S}s"),
                );
            }
            if self.anti_replay == AntiReplay::Monotonic {
                problem("time_window", "applies to anti_replay = \"time\" only".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(keys: &[(u8, &str)]) -> AuthHmacConfig {
        AuthHmacConfig {
            keys: keys
                .iter()
                .map(|(id, k)| AuthHmacKey {
                    id: *id,
                    key: Secret::new(*k),
                })
                .collect(),
            active_key: 1,
            mode: Mode::Enforce,
            anti_replay: AntiReplay::Time,
            time_window: None,
        }
    }

    fn problems(c: &AuthHmacConfig) -> Vec<String> {
        let mut v = Vec::new();
        c.validate(|f, m| v.push(format!("{f}: {m}")));
        v
    }

    const HEX32: &str = "hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn keys_decode_like_keepalived() {
        assert_eq!(decode_key(HEX32).unwrap(), (0u8..32).collect::<Vec<_>>());
        let ascii = "a".repeat(32);
        assert_eq!(decode_key(&ascii).unwrap(), ascii.as_bytes());
        assert!(decode_key("short").unwrap_err().contains("5 bytes"));
        assert!(decode_key(&"a".repeat(65)).is_err());
        assert!(decode_key("hex:0g").is_err());
        assert_eq!(problems(&cfg(&[(1, HEX32)])), Vec::<String>::new());
        let p = problems(&cfg(&[(2, HEX32), (2, "file:rel")]));
        assert!(p.iter().any(|m| m.contains("defined twice")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("absolute")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("active_key")), "{p:?}");
        let mut c = cfg(&[(1, HEX32)]);
        c.time_window = Some(Duration::from_millis(1500));
        assert!(problems(&c)[0].starts_with("time_window"));
        c.time_window = Some(Duration::from_secs(301));
        assert!(problems(&c)[0].starts_with("time_window"));
    }

    #[test]
    fn key_files_are_bounded_and_secrets_redacted() {
        let dir = std::env::temp_dir().join(format!("hafront-hmac-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, format!("{HEX32}\n")).unwrap();
        let big = dir.join("big");
        std::fs::write(&big, "a".repeat(200)).unwrap();
        let c = cfg(&[(1, &format!("file:{}", good.display()))]);
        let loaded = c.load(100).unwrap();
        assert_eq!(loaded.window_s, 5);
        assert_eq!(format!("{:?}", loaded.keys), "[Key { id: 1, bytes: <redacted> }]");
        let e = read_key_file(big.to_str().unwrap()).unwrap_err();
        assert!(e.contains("larger than"), "{e}");
        assert!(!e.contains("aaaa"));
        let shown = serde_json::to_string(&cfg(&[(1, HEX32)])).unwrap();
        assert!(!shown.contains("0001020304"), "{shown}");
        assert!(!format!("{:?}", cfg(&[(1, HEX32)])).contains("0001020304"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
