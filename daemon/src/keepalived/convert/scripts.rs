//! `vrrp_script` and `vrrp_track_file` blocks, and the notify scripts and
//! smtp_alert of instances and groups.

use super::*;

impl Cx {
    pub(super) fn vrrp_script(&mut self, n: &Node) -> R<()> {
        let kname = name_arg(n)?.to_string();
        let mut s = Section::default();
        let mut weight = 0;
        let mut command: Option<Vec<String>> = None;
        for c in block(n)? {
            match c.keyword.as_str() {
                "script" => {
                    let words: Vec<String> = c.args.iter().flat_map(|a| argv(a)).collect();
                    if words.is_empty() {
                        // keepalived too: the vrrp_script is then removed (below).
                        self.skip(c, "no command given");
                    } else {
                        command = Some(self.program(c, words)?);
                    }
                }
                "interval" => s.set("interval", dur(secs(c, 0)?), Self::at(&n.loc, c)),
                "timeout" => s.set("timeout", dur(secs(c, 0)?), Self::at(&n.loc, c)),
                "weight" => {
                    weight = int(c, 0, -253, 253)?;
                    if c.args.get(1).is_some_and(|a| a == "reverse") {
                        self.skip(c, "not carried over: hafront has no reversed weights");
                    }
                }
                "rise" => s.set("rise", int(c, 0, 1, 1000)?, Self::at(&n.loc, c)),
                "fall" => s.set("fall", int(c, 0, 1, 1000)?, Self::at(&n.loc, c)),
                "user" => self.skip(c, SCRIPT_SECURITY_WHY),
                "init_fail" => self.skip(
                    c,
                    "not carried over: hafront counts a script healthy until its first result",
                ),
                _ => self.other(c, "vrrp_script")?,
            }
        }
        let Some(command) = command else {
            // keepalived: "No script set for vrrp_script X - removing".
            self.skip(
                n,
                format!(
                    "vrrp_script {kname} has no 'script': not carried over (keepalived removes it too), \
                     nor are the track_script entries naming it"
                ),
            );
            self.scripts.insert(kname, None);
            return Ok(());
        };
        let name = self.unique_name("scripts", &kname);
        s.path = format!("scripts.{name}");
        s.comments
            .push(format!("{} vrrp_script {kname}{}", n.loc, renamed(&kname, &name)));
        if weight != 0 {
            s.comments.push(format!(
                "its weight {weight} goes to the track_scripts entries that name it"
            ));
        }
        let list: Vec<toml::Value> = command.into_iter().map(toml::Value::String).collect();
        s.entries.insert(
            0,
            crate::keepalived::emit::Entry {
                key: "command".into(),
                value: Value::One(toml::Value::Array(list)),
                comment: None,
            },
        );
        self.sections.push(s);
        self.scripts.insert(kname, Some(TrackDef { name, weight }));
        Ok(())
    }

    /// hafront runs programs by absolute path only; keepalived searches PATH.
    pub(super) fn program(&mut self, c: &Node, mut words: Vec<String>) -> R<Vec<String>> {
        if words[0].starts_with('/') {
            return Ok(words);
        }
        let found = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(&words[0]))
                .find(|p| p.is_absolute() && p.is_file())
        });
        match found {
            Some(p) => {
                let shown = p.display().to_string();
                self.changed(
                    c,
                    format!(
                        "{} resolved to {shown} through this machine's PATH (hafront does no PATH lookup)",
                        words[0]
                    ),
                );
                words[0] = shown;
                Ok(words)
            }
            None => Err(ImportError::new(
                &c.loc,
                format!(
                    "{}: {:?} is not an absolute path and is not in PATH (hafront does no PATH lookup)",
                    c.keyword, words[0]
                ),
            )),
        }
    }

    /// A notify script: keepalived's `notify_x "/path arg ..." [user [group]]`
    /// (the string split as keepalived splits it). `None`: nothing to carry.
    pub(super) fn notify_script(&mut self, c: &Node) -> R<Option<toml::Value>> {
        let words = argv(arg(c, 0)?);
        if words.is_empty() {
            self.skip(c, "no command given");
            return Ok(None);
        }
        let cmd = self.program(c, words)?;
        if c.args.len() > 1 {
            self.changed(
                c,
                "the user and group after the script are not carried over: notify scripts run as \
                 security.script_user",
            );
        }
        Ok(Some(toml::Value::Array(
            cmd.into_iter().map(Into::into).collect(),
        )))
    }

    /// smtp_alert in an instance or sync group: mail is wanted ([notify.smtp], at the end).
    pub(super) fn smtp_alert(&mut self, c: &Node) {
        if c.args
            .first()
            .is_some_and(|a| a == "false" || a == "no" || a == "off")
        {
            return;
        }
        self.g.smtp_alert.get_or_insert(c.loc.clone());
        self.changed(
            c,
            "mail is not per instance in hafront: with [notify.smtp] (from global_defs) every \
             instance's state changes are mailed",
        );
    }

    pub(super) fn track_file(&mut self, n: &Node) -> R<()> {
        let kname = name_arg(n)?.to_string();
        let name = self.unique_name("files", &kname);
        let mut s = Section::new(format!("files.{name}"));
        s.comments.push(format!(
            "{} vrrp_track_file {kname}{}",
            n.loc,
            renamed(&kname, &name)
        ));
        let mut weight = 0;
        for c in block(n)? {
            match c.keyword.as_str() {
                "file" => {
                    let p = arg(c, 0)?;
                    if !p.starts_with('/') {
                        return Err(ImportError::new(
                            &c.loc,
                            format!("file {p}: must be an absolute path"),
                        ));
                    }
                    s.set("path", p, Self::at(&n.loc, c));
                }
                "weight" => weight = int(c, 0, -253, 253)?,
                "init_file" => self.skip(c, "not carried over: hafront reads a missing file as 0"),
                _ => self.other(c, "vrrp_track_file")?,
            }
        }
        if !s.has("path") {
            return Err(ImportError::new(
                &n.loc,
                format!("vrrp_track_file {kname}: 'file' is required"),
            ));
        }
        self.sections.push(s);
        self.files.insert(kname, TrackDef { name, weight });
        Ok(())
    }

    // ---- vrrp_instance ------------------------------------------------------------
}
