//! The integer sort both tokenizers order a cell's genes with.
//!
//! Binning and rank encoding sort one `u64` per non-zero gene: a 32-bit sort key in the
//! high half (an `f32` value's bits, or the high half of an `f64` key) and the gene's
//! position in the row in the low half. Cells have a few hundred to a few thousand
//! non-zero genes, where a comparison sort spends most of its time on mispredicted
//! branches; a least-significant-digit radix sort on the high half needs no comparisons,
//! and the bytes that are the same in every entry (the sign and high exponent bits; the
//! low mantissa bytes of integer counts) cost nothing.

/// Below this many entries a comparison sort is faster than building the radix sort's
/// four 256-bucket histograms.
const RADIX_MIN_LEN: usize = 64;

/// Sort `v` ascending, where the low 32 bits of the entries strictly increase along `v`
/// (positions, appended in order). The result is exactly `v.sort_unstable()`'s: a stable
/// sort on the high halves keeps equal high halves in position order. `tmp` is a
/// scratch buffer of at least `v.len()` entries (its contents are overwritten).
pub(crate) fn sort_positions_by_high_half(v: &mut [u64], tmp: &mut [u64]) {
    debug_assert!(v.windows(2).all(|w| (w[0] as u32) < (w[1] as u32)));
    if v.len() < RADIX_MIN_LEN {
        v.sort_unstable();
    } else {
        radix_sort_high_half(v, &mut tmp[..v.len()]);
    }
}

/// Stable LSD radix sort of `v` by the high 32 bits of each entry, one byte per pass;
/// a pass whose byte is the same in every entry is skipped. `tmp` has `v.len()` entries.
fn radix_sort_high_half(v: &mut [u64], tmp: &mut [u64]) {
    let n = v.len();
    if n < 2 {
        return;
    }
    let mut hist = [[0u32; 256]; 4];
    for &x in v.iter() {
        let h = (x >> 32) as u32;
        hist[0][(h & 0xFF) as usize] += 1;
        hist[1][((h >> 8) & 0xFF) as usize] += 1;
        hist[2][((h >> 16) & 0xFF) as usize] += 1;
        hist[3][(h >> 24) as usize] += 1;
    }
    // `v` and `tmp` take turns as source and destination; `in_tmp` says which holds
    // the data.
    let mut in_tmp = false;
    for (d, counts) in hist.iter_mut().enumerate() {
        let shift = 32 + 8 * d;
        let (src, dst) = if in_tmp {
            (&*tmp, &mut *v)
        } else {
            (&*v, &mut *tmp)
        };
        if counts[((src[0] >> shift) & 0xFF) as usize] as usize == n {
            continue;
        }
        let mut sum = 0u32;
        for c in counts.iter_mut() {
            let here = *c;
            *c = sum;
            sum += here;
        }
        for &x in src {
            let b = ((x >> shift) & 0xFF) as usize;
            dst[counts[b] as usize] = x;
            counts[b] += 1;
        }
        in_tmp = !in_tmp;
    }
    if in_tmp {
        v.copy_from_slice(tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The radix path and the comparison path give `sort_unstable`'s order, on both sides
    /// of the length threshold, with many tied high halves, with high halves differing
    /// only in one byte (every other pass skipped) and with all of them equal.
    #[test]
    fn matches_sort_unstable() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let highs: [fn(&mut ChaCha8Rng) -> u32; 5] = [
            |r| r.gen(),
            |r| r.gen_range(0..8),
            |r| (r.gen_range(0..4u32)) << 16 | 0x3F80_0000,
            |r| (r.gen::<f32>() * 100.0).floor().to_bits(),
            |_| 7,
        ];
        for high in highs {
            for n in [0, 1, 2, RADIX_MIN_LEN - 1, RADIX_MIN_LEN, 300, 2500] {
                let v: Vec<u64> = (0..n)
                    .map(|i| (high(&mut rng) as u64) << 32 | i as u64)
                    .collect();
                let mut expect = v.clone();
                expect.sort_unstable();
                let mut got = v.clone();
                sort_positions_by_high_half(&mut got, &mut vec![0; n + 5]);
                assert_eq!(got, expect, "n = {n}");
                let mut radix = v.clone();
                if n > 0 {
                    radix_sort_high_half(&mut radix, &mut vec![0; n]);
                }
                assert_eq!(radix, expect, "radix, n = {n}");
            }
        }
    }
}
