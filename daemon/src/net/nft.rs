//! Running an nftables script (`nft -f -`): one transaction, so a table is
//! replaced whole or not at all. The tables' planners build the scripts
//! (net/accept.rs, net/mld.rs); this is their thin executor.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run nft: {0}")]
    Spawn(std::io::Error),
    #[error("nft refused the script: {0}")]
    Refused(String),
}

/// Runs `script`. `removal_only`: the script only deletes a table, so a missing
/// nft binary is not an error (there is nothing to remove without nftables).
pub async fn run(script: &str, removal_only: bool) -> Result<(), NftError> {
    let mut child = match crate::process::command("nft", crate::process::Child::NetTool)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if removal_only && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(NftError::Spawn(e)),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(NftError::Spawn)?;
    }
    let out = child.wait_with_output().await.map_err(NftError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Whether `name` can go between double quotes in a script as it is.
pub fn quotable(name: &str) -> bool {
    !name.chars().any(|c| c == '"' || c == '\\' || c.is_control())
}
