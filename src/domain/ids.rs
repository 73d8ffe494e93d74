//! Opaque, sortable ids: ULIDs (48-bit millisecond time + 80 random bits,
//! Crockford base32), with a short type prefix where it helps a reader.

use ulid::Ulid;

pub fn ulid(now_ms: i64, random: [u8; 10]) -> String {
    let mut r = [0u8; 16];
    r[6..].copy_from_slice(&random);
    Ulid::from_parts(now_ms.max(0) as u64, u128::from_be_bytes(r)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_are_26_characters() {
        let a = ulid(1_700_000_000_000, [0xff; 10]);
        let b = ulid(1_700_000_000_001, [0; 10]);
        assert_eq!(a.len(), 26);
        assert!(a < b);
    }
}
