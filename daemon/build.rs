//! Links the hafront binary with daemon/hot-text.ld: the functions it runs in
//! steady state packed at the front of its text (issue 19, PSS; the list is made
//! by scripts/lib/hot_text.py). Only on Linux (the linker is driven by cc there),
//! and only in release builds (what is measured and shipped).

fn main() {
    println!("cargo:rerun-if-changed=hot-text.ld");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux")
        || std::env::var("PROFILE").as_deref() != Ok("release")
    {
        return;
    }
    let Ok(dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    println!("cargo:rustc-link-arg-bin=hafront=-Wl,-T,{dir}/hot-text.ld");
}
