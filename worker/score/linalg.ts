/**
 * The few dense kernels the scorers need, on small matrices or streamed over rows. Nothing here is
 * ever dim x dim: the PCA works through l x l problems (l = components + oversampling).
 */

/** Dot product of a[aOff .. aOff+n) and b[bOff .. bOff+n). */
export function dot(a: ArrayLike<number>, aOff: number, b: ArrayLike<number>, bOff: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  // Four accumulators: independent dependency chains run faster and add less rounding error.
  for (; i + 3 < n; i += 4) {
    s0 += (a[aOff + i] as number) * (b[bOff + i] as number);
    s1 += (a[aOff + i + 1] as number) * (b[bOff + i + 1] as number);
    s2 += (a[aOff + i + 2] as number) * (b[bOff + i + 2] as number);
    s3 += (a[aOff + i + 3] as number) * (b[bOff + i + 3] as number);
  }
  for (; i < n; i++) s0 += (a[aOff + i] as number) * (b[bOff + i] as number);
  return s0 + s1 + s2 + s3;
}

/**
 * Orthonormalises `count` vectors of length `len` stored back to back in `v`, in place, with
 * modified Gram-Schmidt run twice ("twice is enough" for float64). Vectors that are (numerically)
 * in the span of the earlier ones are dropped and the rest moved up; returns how many remain.
 */
export function orthonormalize(v: Float64Array, count: number, len: number): number {
  let kept = 0;
  for (let j = 0; j < count; j++) {
    const off = j * len;
    const before = Math.sqrt(dot(v, off, v, off, len));
    if (!(before > 0)) continue;
    for (let pass = 0; pass < 2; pass++) {
      for (let q = 0; q < kept; q++) {
        const qOff = q * len;
        const c = dot(v, off, v, qOff, len);
        for (let i = 0; i < len; i++) v[off + i] = (v[off + i] as number) - c * (v[qOff + i] as number);
      }
    }
    const after = Math.sqrt(dot(v, off, v, off, len));
    // Relative test: what survives two projections at this level is rounding noise, not a direction.
    if (!(after > 1e-9 * before)) continue;
    const dst = kept * len;
    for (let i = 0; i < len; i++) v[dst + i] = (v[off + i] as number) / after;
    kept++;
  }
  return kept;
}

export interface SymmetricEigen {
  /** Descending. */
  values: Float64Array;
  /** n x n row-major; column j is the unit eigenvector of values[j]. */
  vectors: Float64Array;
}

/** Eigen-decomposition of a small symmetric n x n matrix by cyclic Jacobi rotations. */
export function symmetricEigen(matrix: Float64Array, n: number): SymmetricEigen {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += (a[i] as number) ** 2;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += (a[p * n + q] as number) ** 2;
    if (!(off > 1e-30 * scale)) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q] as number;
        if (apq === 0) continue;
        const theta = ((a[q * n + q] as number) - (a[p * n + p] as number)) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p] as number;
          const akq = a[k * n + q] as number;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k] as number;
          const aqk = a[q * n + k] as number;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p] as number;
          const vkq = v[k * n + q] as number;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => (a[y * n + y] as number) - (a[x * n + x] as number));
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = a[src * n + src] as number;
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src] as number;
  });
  return { values, vectors };
}

/**
 * out[r] = x . m[row r] for `rows` consecutive rows of `m` (row length `len`, first row at
 * `mOff`). Four rows per pass, so each x value is loaded once for four products: about twice as
 * fast in V8 as four separate dots.
 */
export function dotRows(x: ArrayLike<number>, xOff: number, m: ArrayLike<number>, mOff: number, rows: number, len: number, out: Float64Array): void {
  let r = 0;
  for (; r + 3 < rows; r += 4) {
    const o0 = mOff + r * len;
    const o1 = o0 + len;
    const o2 = o1 + len;
    const o3 = o2 + len;
    let d0 = 0;
    let d1 = 0;
    let d2 = 0;
    let d3 = 0;
    for (let t = 0; t < len; t++) {
      const v = x[xOff + t] as number;
      d0 += v * (m[o0 + t] as number);
      d1 += v * (m[o1 + t] as number);
      d2 += v * (m[o2 + t] as number);
      d3 += v * (m[o3 + t] as number);
    }
    out[r] = d0;
    out[r + 1] = d1;
    out[r + 2] = d2;
    out[r + 3] = d3;
  }
  for (; r < rows; r++) out[r] = dot(x, xOff, m, mOff + r * len, len);
}
