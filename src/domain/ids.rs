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

/// Whether `s` is a ULID as [`ulid`] writes them: 26 upper-case Crockford
/// base32 characters, the first at most `7`. Ids that go into a URL (the tus
/// hand-off to the engine) must be this, never text a client chose.
pub fn is_ulid(s: &str) -> bool {
    const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    s.len() == 26 && s.as_bytes()[0] <= b'7' && s.bytes().all(|b| CROCKFORD.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ulids_as_made_here_are_ulids() {
        assert!(is_ulid(&ulid(1_700_000_000_000, [0xab; 10])));
        assert!(is_ulid(&ulid_floor(0)));
        for bad in [
            "",
            "../cron",
            "01ARZ3NDEKTSV4RRFFQ69G5FA",
            "01ARZ3NDEKTSV4RRFFQ69G5FAVX",
            "01arz3ndektsv4rrffq69g5fav",
            "01ARZ3NDEKTSV4RRFFQ69G5FA/",
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",
            "01ARZ3NDEKTSV4RRFFQ69G5FIL",
        ] {
            assert!(!is_ulid(bad), "{bad:?}");
        }
    }

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
