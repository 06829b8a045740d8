//! The keepalived importer on arbitrary UTF-8: it must return (an import or a
//! located error), never panic, and what it imports must be valid TOML.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match hafront::keepalived::import_str(text, "fuzz.conf", Default::default()) {
        Ok(import) => {
            if let Err(e) = import.toml.parse::<toml::Table>() {
                panic!("invalid TOML ({e}):\n{}", import.toml);
            }
        }
        Err(e) => assert!(e.loc.line >= 1, "unlocated error: {e}"),
    }
});
