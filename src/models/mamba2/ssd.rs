//! The selective state-space scan of Mamba-2 in two forms: the chunked "state space
//! duality" (SSD) algorithm used for training, and the naive sequential recurrence it must
//! equal.
//!
//! Source: Dao & Gu 2024, "Transformers are SSMs" (arXiv 2405.21060), Listing 1, as
//! `ssd_minimal_discrete` in state-spaces/mamba `mamba_ssm/modules/ssd_minimal.py`.
//! Shapes (ngroups = 1): `x` (batch, len, heads, headdim) already multiplied by `dt`,
//! `dt_a = dt·A` (batch, len, heads), `b`/`c` (batch, len, d_state).
//! Recurrence: `h_t = exp(dt_a_t)·h_{t-1} + x_t ⊗ B_t`, `y_t = h_t · C_t`, with `h_{-1} = 0`.
//!
//! Every op used here (matmul, exp, broadcast arithmetic, reshape/transpose, narrow, cat)
//! has a backward pass in candle 0.11, so gradients flow through the chunked scan.
//! Cumulative sums are matmuls with a triangular ones matrix (differentiable, and one
//! GEMM instead of a loop).

use candle_core::{DType, Device, Result, Tensor, D};

/// Lower-triangular mask (1 on and below the diagonal when `strict` is false, strictly
/// below when true), shape (n, n), in `dtype`.
fn tril_mask(n: usize, strict: bool, dtype: DType, device: &Device) -> Result<Tensor> {
    let data: Vec<f32> = (0..n)
        .flat_map(|i| {
            (0..n).map(move |j| {
                if j < i || (!strict && j == i) {
                    1.0
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(data, (n, n), device)?.to_dtype(dtype)
}

/// Inclusive cumulative sum over the last axis as one matmul with an upper-triangular
/// ones matrix: `cum[.., i] = Σ_{k≤i} a[.., k]`.
fn cumsum_last(a: &Tensor) -> Result<Tensor> {
    let dims = a.dims().to_vec();
    let n = dims[dims.len() - 1];
    let rows = a.elem_count() / n.max(1);
    // triu[k, i] = 1 when k ≤ i, i.e. the transpose of the non-strict lower mask.
    let triu = tril_mask(n, false, a.dtype(), a.device())?.t()?;
    a.reshape((rows, n))?.matmul(&triu)?.reshape(dims)
}

/// `exp(segsum)` for the last axis of `a_cum` (inclusive cumulative sums), masked:
/// `out[.., i, j] = exp(a_cum[i] − a_cum[j])` for `j ≤ i` (`j < i` when `strict`), else 0.
/// The mask is applied before `exp` so the (positive) upper triangle never overflows,
/// and again after it so those entries are exactly zero with zero gradient.
fn exp_segsum(a_cum: &Tensor, strict: bool) -> Result<Tensor> {
    let n = a_cum.dim(D::Minus1)?;
    let mask = tril_mask(n, strict, a_cum.dtype(), a_cum.device())?;
    let diff = a_cum
        .unsqueeze(D::Minus1)?
        .broadcast_sub(&a_cum.unsqueeze(D::Minus2)?)?;
    diff.broadcast_mul(&mask)?.exp()?.broadcast_mul(&mask)
}

/// Checks the four inputs agree on batch, length, heads and d_state.
fn check_shapes(x: &Tensor, dt_a: &Tensor, b: &Tensor, c: &Tensor) -> Result<()> {
    let (bs, l, h, _p) = x.dims4()?;
    let (bs2, l2, h2) = dt_a.dims3()?;
    let (bs3, l3, n) = b.dims3()?;
    let (bs4, l4, n4) = c.dims3()?;
    if (bs, l, h) != (bs2, l2, h2) || (bs, l) != (bs3, l3) || (bs, l, n) != (bs4, l4, n4) {
        candle_core::bail!(
            "ssd: inconsistent shapes x {:?}, dt_a {:?}, b {:?}, c {:?}",
            x.dims(),
            dt_a.dims(),
            b.dims(),
            c.dims()
        );
    }
    Ok(())
}

/// Chunked SSD scan: returns `y` (batch, len, heads, headdim) with
/// `y_t = Σ_{s≤t} exp(Σ_{s<k≤t} dt_a_k) (C_t·B_s) x_s`.
///
/// The sequence is zero-padded to a multiple of `chunk_size`; padding sits after every
/// real step and the scan is causal, so it cannot reach real outputs, which are cut back
/// out at the end. Per chunk of length Q (all as batched matmuls):
/// 1. `Y_diag = (C Bᵀ ∘ L) X` with `L = exp(segsum(A))` (intra-chunk, Q×Q per head);
/// 2. chunk states `S_c = Bᵀ (X ∘ exp(A_cum_last − A_cum))` (d_state × headdim per head);
/// 3. states entering each chunk via `exp(segsum(pad(A_cum_last)))` (nc × nc per head);
/// 4. `Y_off = (C S_in) ∘ exp(A_cum)`.
pub fn ssd_chunked(
    x: &Tensor,
    dt_a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    chunk_size: usize,
) -> Result<Tensor> {
    check_shapes(x, dt_a, b, c)?;
    if chunk_size == 0 {
        candle_core::bail!("ssd_chunked: chunk_size must be positive");
    }
    let len = x.dim(1)?;
    if len == 0 {
        return Ok(x.clone());
    }
    let ch = Chunked::new(x, dt_a, b, c, chunk_size)?;
    let y_diag = ch.intra_chunk()?;
    let (states, a_last) = ch.chunk_states()?;
    let states_in = ch.states_entering(&states, &a_last)?;
    let y_off = ch.state_outputs(&states_in)?;
    let Dims {
        bs, nc, q, h, p, ..
    } = ch.dims;
    (y_diag + y_off)?
        .reshape((bs, nc * q, h, p))?
        .narrow(1, 0, len)
}

/// Sizes of the chunked scan.
#[derive(Clone, Copy)]
struct Dims {
    bs: usize,
    /// Number of chunks.
    nc: usize,
    /// Chunk length.
    q: usize,
    h: usize,
    p: usize,
    /// d_state.
    n: usize,
}

/// The zero-padded inputs seen as chunks, and the within-chunk cumulative `dt_a`.
struct Chunked {
    dims: Dims,
    /// x as (bs, nc, q, h, p).
    xc: Tensor,
    /// B as (bs·nc, q, n).
    bc: Tensor,
    /// C as (bs·nc, q, n).
    cc: Tensor,
    /// Inclusive cumulative sums of `dt_a` within each chunk, (bs, nc, h, q).
    a_cum: Tensor,
}

impl Chunked {
    /// Pad the sequence to a multiple of `q` and take the chunk views.
    fn new(x: &Tensor, dt_a: &Tensor, b: &Tensor, c: &Tensor, q: usize) -> Result<Chunked> {
        let (bs, len, h, p) = x.dims4()?;
        let n = b.dim(2)?;
        let nc = len.div_ceil(q);
        let pad = nc * q - len;
        let (x, dt_a, b, c) = if pad > 0 {
            (
                x.pad_with_zeros(1, 0, pad)?,
                dt_a.pad_with_zeros(1, 0, pad)?,
                b.pad_with_zeros(1, 0, pad)?,
                c.pad_with_zeros(1, 0, pad)?,
            )
        } else {
            (x.clone(), dt_a.clone(), b.clone(), c.clone())
        };
        let xc = x.reshape((bs, nc, q, h, p))?;
        let bc = b.reshape((bs * nc, q, n))?;
        let cc = c.reshape((bs * nc, q, n))?;
        let a = dt_a
            .reshape((bs, nc, q, h))?
            .transpose(2, 3)?
            .contiguous()?;
        let a_cum = cumsum_last(&a)?;
        Ok(Chunked {
            dims: Dims { bs, nc, q, h, p, n },
            xc,
            bc,
            cc,
            a_cum,
        })
    }

    /// 1. Intra-chunk (diagonal blocks): `Y_diag[i] = Σ_{j≤i} (C_i·B_j) L[i,j] X_j`, as
    ///    (bs, nc, q, h, p).
    fn intra_chunk(&self) -> Result<Tensor> {
        let Dims {
            bs, nc, q, h, p, ..
        } = self.dims;
        let l_mat = exp_segsum(&self.a_cum, false)?; // (bs, nc, h, q, q)
        let cb = self.cc.matmul(&self.bc.t()?)?.reshape((bs, nc, 1, q, q))?; // shared by all heads
        let xh = self.xc.transpose(2, 3)?.contiguous()?; // (bs, nc, h, q, p)
                                                         // candle's CPU matmul takes at most two batch axes: flatten them to one.
        let y_diag = l_mat
            .broadcast_mul(&cb)?
            .reshape((bs * nc * h, q, q))?
            .matmul(&xh.reshape((bs * nc * h, q, p))?)?;
        y_diag.reshape((bs, nc, h, q, p))?.transpose(2, 3)
    }

    /// 2. State at the end of each chunk from that chunk's inputs alone:
    ///    `S_c = Σ_j exp(A_cum_last − A_cum_j) B_j ⊗ X_j`, as Bᵀ (n×q) times X (q×h·p).
    ///    Returns the states (bs·nc, n, h·p) and each chunk's total `A_cum_last`
    ///    (bs, nc, h, 1).
    fn chunk_states(&self) -> Result<(Tensor, Tensor)> {
        let Dims {
            bs, nc, q, h, p, ..
        } = self.dims;
        let a_last = self.a_cum.narrow(3, q - 1, 1)?; // (bs, nc, h, 1)
        let decay_states = a_last.broadcast_sub(&self.a_cum)?.exp()?; // (bs, nc, h, q)
        let decay_states = decay_states.transpose(2, 3)?.unsqueeze(4)?; // (bs, nc, q, h, 1)
        let xw = self
            .xc
            .broadcast_mul(&decay_states)?
            .reshape((bs * nc, q, h * p))?;
        let states = self.bc.t()?.matmul(&xw)?; // (bs·nc, n, h·p)
        Ok((states, a_last))
    }

    /// 3. Inter-chunk recurrence. With padded totals P = [0, a_0, …, a_{nc−1}], the state
    ///    entering chunk z is Σ_{c<z} exp(segsum(P)[z, c+1]) S_c (zero initial state, so
    ///    the column of the initial state is dropped): a strictly-lower nc×nc matrix.
    ///    Returns the entering states as (bs·nc, n, h·p).
    fn states_entering(&self, states: &Tensor, a_last: &Tensor) -> Result<Tensor> {
        let Dims {
            bs, nc, h, p, n, ..
        } = self.dims;
        let totals = a_last.squeeze(3)?.transpose(1, 2)?.contiguous()?; // (bs, h, nc)
        let totals_cum = cumsum_last(&totals.pad_with_zeros(2, 1, 0)?)?; // (bs, h, nc+1)
        let decay_chunk = exp_segsum(&totals_cum, false)?
            .narrow(2, 0, nc)?
            .narrow(3, 1, nc)?; // (bs, h, nc, nc)
        let states = states
            .reshape((bs, nc, n, h, p))?
            .permute((0, 3, 1, 2, 4))?
            .contiguous()?
            .reshape((bs * h, nc, n * p))?;
        let states_in = decay_chunk
            .contiguous()?
            .reshape((bs * h, nc, nc))?
            .matmul(&states)?; // (bs·h, nc, n·p)
        states_in
            .reshape((bs, h, nc, n, p))?
            .permute((0, 2, 3, 1, 4))?
            .contiguous()?
            .reshape((bs * nc, n, h * p))
    }

    /// 4. State → output within each chunk: `Y_off[i] = exp(A_cum_i) C_i · S_in`, as
    ///    (bs, nc, q, h, p).
    fn state_outputs(&self, states_in: &Tensor) -> Result<Tensor> {
        let Dims {
            bs, nc, q, h, p, ..
        } = self.dims;
        let decay_out = self.a_cum.exp()?.transpose(2, 3)?.unsqueeze(4)?; // (bs, nc, q, h, 1)
        self.cc
            .matmul(states_in)?
            .reshape((bs, nc, q, h, p))?
            .broadcast_mul(&decay_out)
    }
}

/// The naive sequential recurrence `h_t = exp(dt_a_t)·h_{t−1} + x_t ⊗ B_t`,
/// `y_t = h_t · C_t` (state shape (batch, heads, headdim, d_state), `h_{−1} = 0`): the
/// reference `ssd_chunked` is tested against. O(len) small ops; not for training.
pub fn ssd_sequential(x: &Tensor, dt_a: &Tensor, b: &Tensor, c: &Tensor) -> Result<Tensor> {
    check_shapes(x, dt_a, b, c)?;
    let (bs, len, h, p) = x.dims4()?;
    let n = b.dim(2)?;
    let mut state = Tensor::zeros((bs, h, p, n), x.dtype(), x.device())?;
    let mut ys = Vec::with_capacity(len);
    for t in 0..len {
        let decay = dt_a.narrow(1, t, 1)?.reshape((bs, h, 1, 1))?.exp()?;
        let x_t = x.narrow(1, t, 1)?.reshape((bs, h, p, 1))?;
        let b_t = b.narrow(1, t, 1)?.reshape((bs, 1, 1, n))?;
        let c_t = c.narrow(1, t, 1)?.reshape((bs, 1, 1, n))?;
        // h = exp(dt·A)·h + dt·(x ⊗ B)   (x already carries dt)
        state = (state.broadcast_mul(&decay)? + x_t.broadcast_mul(&b_t)?)?;
        // y = h · C
        ys.push(state.broadcast_mul(&c_t)?.sum(D::Minus1)?.unsqueeze(1)?);
    }
    if ys.is_empty() {
        return Ok(x.clone());
    }
    Tensor::cat(&ys, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn rand_tensor(rng: &mut ChaCha8Rng, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.gen_range(lo..hi)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).expect("shape matches data")
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .expect("same shapes")
    }

    /// Chunked SSD equals the sequential recurrence for a length that is not a multiple
    /// of the chunk size (3 chunks, the last one padded), several heads and d_state 5.
    #[test]
    fn chunked_matches_sequential() -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (bs, l, h, p, n) = (2, 19, 3, 4, 5);
        let x = rand_tensor(&mut rng, &[bs, l, h, p], -1.0, 1.0);
        let dt_a = rand_tensor(&mut rng, &[bs, l, h], -1.5, 0.0);
        let b = rand_tensor(&mut rng, &[bs, l, n], -1.0, 1.0);
        let c = rand_tensor(&mut rng, &[bs, l, n], -1.0, 1.0);
        let seq = ssd_sequential(&x, &dt_a, &b, &c)?;
        for chunk in [1, 4, 8, 19, 32] {
            let chunked = ssd_chunked(&x, &dt_a, &b, &c, chunk)?;
            assert_eq!(chunked.dims(), seq.dims());
            let err = max_abs_diff(&chunked, &seq);
            assert!(err < 1e-4, "chunk {chunk}: max |diff| {err}");
        }
        Ok(())
    }

    /// A hand-computed single-head, headdim 1, d_state 1 case: y_t = Σ_s e^{Σ a} b_s c_t x_s.
    #[test]
    fn chunked_matches_hand_computation() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::new(&[1f32, 2.0, -1.0], &dev)?.reshape((1, 3, 1, 1))?;
        let a = Tensor::new(&[0f32, -0.5, -1.0], &dev)?.reshape((1, 3, 1))?;
        let b = Tensor::new(&[1f32, 0.5, 2.0], &dev)?.reshape((1, 3, 1))?;
        let c = Tensor::new(&[1f32, 1.0, 0.5], &dev)?.reshape((1, 3, 1))?;
        // h0 = 1; h1 = e^-0.5·1 + 1 = 1.60653; h2 = e^-1·1.60653 − 2 = −1.40899.
        let expect = [1.0f32, 1.606_531, -0.704_496];
        let y = ssd_chunked(&x, &a, &b, &c, 2)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        for (got, want) in y.iter().zip(expect) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
        Ok(())
    }

    /// Gradients flow through the chunked scan to every input and match those of the
    /// sequential recurrence.
    #[test]
    fn chunked_gradients_match_sequential() -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (bs, l, h, p, n) = (1, 7, 2, 2, 3);
        let x = candle_core::Var::from_tensor(&rand_tensor(&mut rng, &[bs, l, h, p], -1.0, 1.0))?;
        let a = candle_core::Var::from_tensor(&rand_tensor(&mut rng, &[bs, l, h], -1.0, 0.0))?;
        let b = candle_core::Var::from_tensor(&rand_tensor(&mut rng, &[bs, l, n], -1.0, 1.0))?;
        let c = candle_core::Var::from_tensor(&rand_tensor(&mut rng, &[bs, l, n], -1.0, 1.0))?;
        let w = rand_tensor(&mut rng, &[bs, l, h, p], -1.0, 1.0);
        let loss = |y: Tensor| (y * &w).and_then(|t| t.sum_all());
        let g1 = loss(ssd_chunked(&x, &a, &b, &c, 3)?)?.backward()?;
        let g2 = loss(ssd_sequential(&x, &a, &b, &c)?)?.backward()?;
        for v in [&x, &a, &b, &c] {
            let (d1, d2) = (g1.get(v), g2.get(v));
            let (d1, d2) = (d1.expect("chunked grad"), d2.expect("sequential grad"));
            assert!(max_abs_diff(d1, d2) < 1e-4);
            assert!(d1.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        }
        Ok(())
    }
}
