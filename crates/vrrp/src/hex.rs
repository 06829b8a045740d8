//! Hex strings for packet bytes in replay files and captured test vectors.

/// Decodes a hex string; white space is ignored.
pub fn decode(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks_exact(2)
        .map(|p| {
            let txt = std::str::from_utf8(p).map_err(|_| "not ASCII".to_string())?;
            u8::from_str_radix(txt, 16).map_err(|_| format!("bad hex byte {txt:?}"))
        })
        .collect()
}

pub fn encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
