//! The two changes in vendor/candle-core (see vendor/README.md) against plain arithmetic:
//! sums over a consecutive block of leading or middle dims (the new row-addition path), and
//! gradients of a graph in which tensors receive one, two or a subtracted contribution (the
//! new accumulation path).

use candle_core::{Device, Tensor, Var};

/// `x[i]` for a (2, 3, 4, 5) tensor with distinct, non-round values.
fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
        .collect()
}

/// Sum of the (2, 3, 4, 5) array over `dims`, by loops over every index.
fn naive_sum(x: &[f32], dims: &[usize]) -> Vec<f32> {
    let shape = [2usize, 3, 4, 5];
    let out_shape: Vec<usize> = (0..4)
        .map(|d| if dims.contains(&d) { 1 } else { shape[d] })
        .collect();
    let mut out = vec![0f32; out_shape.iter().product()];
    for (flat, v) in x.iter().enumerate() {
        let idx = [flat / 60, flat / 20 % 3, flat / 5 % 4, flat % 5];
        let mut o = 0;
        for d in 0..4 {
            let i = if dims.contains(&d) { 0 } else { idx[d] };
            o = o * out_shape[d] + i;
        }
        out[o] += v;
    }
    out
}

#[test]
fn sums_over_consecutive_dims_match_loops_bit_for_bit() {
    let x = values(120);
    let t = Tensor::from_vec(x.clone(), (2, 3, 4, 5), &Device::Cpu).unwrap();
    for dims in [
        vec![0],
        vec![1],
        vec![2],
        vec![0, 1],
        vec![1, 2],
        vec![0, 1, 2],
        vec![3],
        vec![2, 3],
        vec![0, 2],
        vec![1, 3],
    ] {
        let got = t
            .sum_keepdim(dims.clone())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(got, naive_sum(&x, &dims), "dims {dims:?}");
    }
}

#[test]
fn gradients_with_single_double_and_negated_contributions() {
    let dev = Device::Cpu;
    // y = sum(w * x + b) - sum(b * b) + sum(x - w), with x, w of shape (3, 4), b of (4,).
    let x = Var::from_vec(values(12), (3, 4), &dev).unwrap();
    let w = Var::from_vec(values(24)[12..].to_vec(), (3, 4), &dev).unwrap();
    let b = Var::from_vec(vec![0.5f32, -1.0, 2.0, 0.25], 4, &dev).unwrap();
    let first = x
        .mul(&w)
        .unwrap()
        .broadcast_add(&b)
        .unwrap()
        .sum_all()
        .unwrap();
    let second = b.sqr().unwrap().sum_all().unwrap();
    let third = x.sub(&w).unwrap().sum_all().unwrap();
    let y = first.sub(&second).unwrap().add(&third).unwrap();
    let grads = y.backward().unwrap();
    let get = |v: &Var| {
        grads
            .get(v)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let (xv, wv, bv) = (
        x.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        w.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        b.to_vec1::<f32>().unwrap(),
    );
    // dy/dx = w + 1, dy/dw = x - 1, dy/db_j = 3 - 2 b_j.
    let want_x: Vec<f32> = wv.iter().map(|w| w + 1.0).collect();
    let want_w: Vec<f32> = xv.iter().map(|x| x - 1.0).collect();
    let want_b: Vec<f32> = bv.iter().map(|b| 3.0 - 2.0 * b).collect();
    assert_eq!(get(&x), want_x);
    assert_eq!(get(&w), want_w);
    assert_eq!(get(&b), want_b);
}
