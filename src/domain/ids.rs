//! Opaque, sortable ids: ULIDs (48-bit millisecond time + 80 random bits,
//! Crockford base32), with a short type prefix where it helps a reader.

use ulid::Ulid;

pub fn ulid(now_ms: i64, random: [u8; 10]) -> String {
    let mut r = [0u8; 16];
    r[6..].copy_from_slice(&random);
    Ulid::from_parts(now_ms.max(0) as u64, u128::from_be_bytes(r)).to_string()
}

/// The smallest ULID of millisecond `now_ms`: every id made before it sorts
/// below, every id made at or after it does not. Prefixed ids (`att_…`) age
/// out by a range on their primary key, with no index on a time column.
pub fn ulid_floor(now_ms: i64) -> String {
    ulid(now_ms, [0; 10])
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

    #[test]
    fn the_floor_of_a_millisecond_splits_ids_made_before_it_from_the_rest() {
        let t = 1_700_000_000_000;
        let floor = ulid_floor(t);
        assert!(ulid(t - 1, [0xff; 10]) < floor);
        assert!(ulid(t, [0; 10]) >= floor && ulid(t, [0xff; 10]) > floor);
        assert!(format!("att_{}", ulid(t - 1, [7; 10])) < format!("att_{floor}"));
    }
}
