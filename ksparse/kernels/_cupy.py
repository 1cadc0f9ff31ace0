"""CUDA kernels for :mod:`ksparse.kernels.fast` on CuPy arrays.

This module never imports cupy: it takes the module from the arrays through
:func:`ksparse.backend.get_array_module`, so CPU-only code never loads it.

One step is five launches: the cuBLAS product D1, one zeroing of the accumulators, and
three kernels:

1. ``ksparse_rows`` (one block per sample): an exact radix select of the k largest
   entries of z_i + b (D2), the decode x_hat_i on the support (D3), the residual, the
   loss (D4), dx_hat (D5), db' (atomics), dz on the support (D6, a warp per active unit)
   and db (D7, atomics).
2. ``ksparse_scatter`` (one block per (sample, active unit)): dW[:, j] += z_ij dx_hat_i +
   dz_ij x_i (D8), with atomic adds into ``dWT`` (H, d).
3. ``ksparse_momentum``: Eq. (11) over W, b and b' in one pass (only in the fused step).

Weights are used as ``WT = W.T``, C-contiguous (H, d): the column of an active unit is
one contiguous row, read coalesced by the threads of a block.
"""

import functools

from ksparse.backend import get_array_module

_SOURCE = r"""
typedef __DTYPE__ T;
typedef __UTYPE__ U;

__device__ __forceinline__ U order_key(T v) {
    // float bits -> unsigned integer whose order is the float order
    U u = __TO_BITS__(v);
    return (u & __SIGN__) ? ~u : (u | __SIGN__);
}

struct SelectShared {
    int hist[256];
    U prefix;
    int remaining, greater, equal;
};

__device__ void radix_select(const T* zi, const T* b, const int H, const int k, long long* Gi,
                             SelectShared& sh)
{
    // D2: indices of the k largest z_ij + b_j, exactly. Radix select of the k-th largest
    // key, 8 bits per pass from the most significant, then one pass to collect.
    const int tid = threadIdx.x;
    U prefix = 0, mask = 0;
    int remaining = k;  // how many of the entries matching prefix we still need
    for (int shift = 8 * (int)sizeof(U) - 8; shift >= 0; shift -= 8) {
        for (int t = tid; t < 256; t += blockDim.x) sh.hist[t] = 0;
        __syncthreads();
        for (int j = tid; j < H; j += blockDim.x) {
            U key = order_key(zi[j] + b[j]);
            if ((key & mask) == prefix) atomicAdd(&sh.hist[(int)((key >> shift) & 255)], 1);
        }
        __syncthreads();
        if (tid == 0) {
            int above = 0, digit = 255;
            for (; digit > 0; --digit) {
                if (above + sh.hist[digit] >= remaining) break;
                above += sh.hist[digit];
            }
            sh.prefix = prefix | ((U)digit << shift);
            sh.remaining = remaining - above;
        }
        __syncthreads();
        prefix = sh.prefix;
        remaining = sh.remaining;
        mask |= (U)255 << shift;
        __syncthreads();
    }
    // prefix is the k-th largest key; take every key above it and `remaining` equal to it
    if (tid == 0) { sh.greater = 0; sh.equal = 0; }
    __syncthreads();
    for (int j = tid; j < H; j += blockDim.x) {
        U key = order_key(zi[j] + b[j]);
        if (key > prefix) {
            Gi[atomicAdd(&sh.greater, 1)] = j;
        } else if (key == prefix) {
            int slot = atomicAdd(&sh.equal, 1);
            if (slot < remaining) Gi[k - remaining + slot] = j;
        }
    }
    __syncthreads();
}

extern "C" __global__ void ksparse_topk(const T* z, const T* b, const int H, const int k, long long* Gamma)
{
    // D2 alone, one block per row (for tests and benchmarks)
    __shared__ SelectShared sh;
    radix_select(z + (long long)blockIdx.x * H, b, H, k, Gamma + (long long)blockIdx.x * k, sh);
}

extern "C" __global__ void ksparse_rows(
    const T* z, const T* b, const T* x, const T* WT, const T* b_prime,
    const int N, const int H, const int d, const int k, const T scale,
    long long* Gamma, T* dx_hat, T* dz, T* loss, T* db, T* db_prime)
{
    __shared__ SelectShared sh;
    __shared__ T s_err[32];
    const int i = blockIdx.x;
    const int tid = threadIdx.x;
    const T* zi = z + (long long)i * H;
    long long* Gi = Gamma + (long long)i * k;
    radix_select(zi, b, H, k, Gi, sh);

    // D3-D5: x_hat_i = b' + sum_j z_ij W[:, j]; residual; dx_hat = scale * residual
    T err = 0;
    for (int t = tid; t < d; t += blockDim.x) {
        T r = b_prime[t] - x[(long long)i * d + t];
        for (int j = 0; j < k; ++j) {
            long long g = Gi[j];
            r += (zi[g] + b[g]) * WT[g * d + t];
        }
        err += r * r;
        T g_t = scale * r;
        dx_hat[(long long)i * d + t] = g_t;
        atomicAdd(&db_prime[t], g_t);
    }
    for (int o = 16; o > 0; o >>= 1) err += __shfl_down_sync(0xffffffff, err, o);
    if ((tid & 31) == 0) s_err[tid >> 5] = err;
    __syncthreads();  // also makes dx_hat_i visible to the whole block
    if (tid == 0) {
        T total = 0;
        for (int w = 0; w < (int)(blockDim.x >> 5); ++w) total += s_err[w];
        atomicAdd(loss, total / N);
    }

    // D6 and D7: dz_ij = dx_hat_i . W[:, j], one warp per active unit
    const int lane = tid & 31, warp = tid >> 5, n_warps = blockDim.x >> 5;
    const T* gi = dx_hat + (long long)i * d;
    for (int j = warp; j < k; j += n_warps) {
        long long g = Gi[j];
        T s = 0;
        for (int t = lane; t < d; t += 32) s += gi[t] * WT[g * d + t];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffff, s, o);
        if (lane == 0) {
            dz[(long long)i * k + j] = s;
            atomicAdd(&db[g], s);
        }
    }
}

extern "C" __global__ void ksparse_scatter(
    const T* z, const T* b, const T* x, const T* dx_hat, const T* dz, const long long* Gamma,
    const int H, const int d, const int k, T* dWT)
{
    // D8 on the support: dW[:, j] += z_ij dx_hat_i + dz_ij x_i, block (i, j) = blockIdx.x
    const long long e = blockIdx.x;
    const long long i = e / k;
    const long long g = Gamma[e];
    const T a = z[i * H + g] + b[g];
    const T c = dz[e];
    for (int t = threadIdx.x; t < d; t += blockDim.x)
        atomicAdd(&dWT[g * d + t], a * dx_hat[i * d + t] + c * x[i * d + t]);
}

extern "C" __global__ void ksparse_momentum(
    T* W, T* vW, const T* gW, const long long nW,
    T* b, T* vb, const T* gb, const int nb,
    T* bp, T* vbp, const T* gbp, const int nbp, const T lr, const T m)
{
    // Eq. (11): v <- m v - lr g; theta <- theta + v, over W, b and b' in one launch
    const long long n = nW + nb + nbp;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < n;
         t += (long long)gridDim.x * blockDim.x) {
        T *p, *v; const T* g; long long u = t;
        if (u < nW) { p = W; v = vW; g = gW; }
        else if ((u -= nW) < nb) { p = b; v = vb; g = gb; }
        else { u -= nb; p = bp; v = vbp; g = gbp; }
        T vt = m * v[u] - lr * g[u];
        v[u] = vt;
        p[u] += vt;
    }
}
"""

_TYPES = {
    "float32": ("float", "unsigned int", "__float_as_uint", "0x80000000u"),
    "float64": ("double", "unsigned long long", "__double_as_longlong", "0x8000000000000000ull"),
}
_THREADS = 256


@functools.lru_cache(maxsize=None)
def _module(xp, dtype_name):
    """The compiled kernels for one dtype (CuPy also caches the binary on disk)."""
    dtype, utype, to_bits, sign = _TYPES[dtype_name]
    code = (_SOURCE.replace("__DTYPE__", dtype).replace("__UTYPE__", utype)
            .replace("__TO_BITS__", f"({utype}){to_bits}").replace("__SIGN__", sign))
    return xp.RawModule(code=code, options=("--std=c++11",))


def _gradients(x, WT, b, b_prime, k):
    """Run D1-D8; return (loss, Gamma, dWT, db, db_prime) as device arrays (no host sync)."""
    xp = get_array_module(x, WT)
    N, d = x.shape
    H = WT.shape[0]
    dtype = x.dtype
    module = _module(xp, dtype.name)
    z = x @ WT.T  # D1; b is added inside the kernels
    acc = xp.zeros(H * d + H + d + 1, dtype=dtype)  # one memset for every accumulator
    dWT, db = acc[:H * d].reshape(H, d), acc[H * d:H * d + H]
    db_prime, loss = acc[H * d + H:H * d + H + d], acc[-1:]
    Gamma = xp.empty((N, k), dtype=xp.int64)
    dx_hat = xp.empty((N, d), dtype=dtype)
    dz = xp.empty((N, k), dtype=dtype)
    scale = dtype.type(2.0 / N)
    module.get_function("ksparse_rows")(
        (N,), (_THREADS,), (z, b, x, WT, b_prime, xp.int32(N), xp.int32(H), xp.int32(d), xp.int32(k),
                            scale, Gamma, dx_hat, dz, loss, db, db_prime))
    module.get_function("ksparse_scatter")(
        (N * k,), (min(_THREADS, 32 * ((d + 31) // 32)),),
        (z, b, x, dx_hat, dz, Gamma, xp.int32(H), xp.int32(d), xp.int32(k), dWT))
    return loss[0], Gamma, dWT, db, db_prime


def topk(z, b, k):
    """D2 alone: Gamma (N, k), the indices of the k largest entries of each row of z + b."""
    xp = get_array_module(z)
    N, H = z.shape
    Gamma = xp.empty((N, k), dtype=xp.int64)
    _module(xp, z.dtype.name).get_function("ksparse_topk")(
        (N,), (_THREADS,), (xp.ascontiguousarray(z), xp.ascontiguousarray(b, dtype=z.dtype),
                            xp.int32(H), xp.int32(k), Gamma))
    return Gamma


def step(x, WT, b, b_prime, k):
    """:func:`ksparse.kernels.fast.fast_step` on the GPU: (E, grads, Gamma), E a 0-d device array."""
    b, b_prime = (get_array_module(x).ascontiguousarray(a, dtype=x.dtype) for a in (b, b_prime))
    loss, Gamma, dWT, db, db_prime = _gradients(x, WT, b, b_prime, k)
    return loss, {"W": dWT.T, "b": db, "b_prime": db_prime}, Gamma


def train_step_(x, params, velocity, k, lr, momentum):
    """:func:`ksparse.kernels.fast.fast_train_step_` on the GPU; W and its velocity are column-major."""
    xp = get_array_module(x)
    W, b, b_prime = params["W"], params["b"], params["b_prime"]
    loss, Gamma, dWT, db, db_prime = _gradients(x, W.T, b, b_prime, k)
    n = W.size + b.size + b_prime.size
    blocks = min(4096, (n + _THREADS - 1) // _THREADS)
    _module(xp, x.dtype.name).get_function("ksparse_momentum")(
        (blocks,), (_THREADS,),
        (W.T, velocity["W"].T, dWT, xp.int64(W.size), b, velocity["b"], db, xp.int32(b.size),
         b_prime, velocity["b_prime"], db_prime, xp.int32(b_prime.size), lr, momentum))
    return loss, Gamma
