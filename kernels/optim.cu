// Fused optimizer updates: one launch updates a whole flat parameter group.
//
// A flat group (scratchgan/nn/flat.py) is a network's parameters in one 1-D buffer w
// with its gradient buffer g; the optimizer keeps its state slots as flat buffers of
// the same length n. Every kernel here walks the n elements once (grid-stride) and
// applies the PyTorch-form rule of scratchgan/optim.py element by element:
//
//   SGD      g' = g + wd w                     (wd != 0)
//            v  = mu v + g'                    (mu != 0)
//            s  = g' + mu v (Nesterov) | v (heavy ball) | g' (mu == 0)
//            w  = w - lr s
//   Adam     g' = g + wd w ; t = t + 1
//            m  = b1 m + (1 - b1) g' ;  v = b2 v + (1 - b2) g'^2
//            w  = w - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//   RMSprop  s  = alpha s + (1 - alpha) g^2 ;  u = g / (sqrt(s) + eps)
//            b  = mu b + u, u = b              (mu != 0)
//            w  = w - lr u
//   Adagrad  G  = G + g^2 ;  w = w - lr * (g / (sqrt(G) + eps))
//
// CUDA-graph safety: every hyperparameter that may change between steps is read from
// a float64 device array `hyper` (written by Optimizer.sync_hyper()), never passed as
// a launch scalar (a captured launch freezes its scalar arguments). Layouts:
//   sgd:     hyper = [lr, momentum, nesterov (0 or 1), weight_decay]
//   adam:    hyper = [lr, beta1, beta2, eps, weight_decay]
//   rmsprop: hyper = [lr, alpha, eps, momentum]
//   adagrad: hyper = [lr, eps]
// Adam's step count lives on the device too: counter = long long[2] = {t, blocks_done}.
// Every thread reads t (before any block can write it) and uses t + 1; each block, once
// done, bumps blocks_done atomically, and the last block to finish stores t + 1 and
// resets blocks_done to 0 (the threadfence-reduction "last block" pattern). So one
// launch per step both updates the weights and advances t, and a replayed graph sees
// t advance on every replay without the host.
//
// Arithmetic: the operations of the NumPy reference, in its order, each rounded once
// (the __f*_rn / __d*_rn intrinsics are never contracted into FMAs), in the array's
// precision. The scalars derived from hyper are computed in float64 on the device and
// rounded to T once, as NumPy rounds a Python float to the array dtype: 1 - b1, 1 - b2,
// 1 - alpha, the bias corrections 1 - b1^t and 1 - b2^t, sqrt(1 - b2^t) and
// lr / (1 - b1^t). Only pow() may differ from the host libm (by an ulp of a double).
//
// Entry points: <rule>_step_f32 / _f64 (16-byte vectors: float4 / double2 per thread
// iteration; the pointers must be 16-byte aligned, a tail of n % W elements is done
// element-wise) and <rule>_step_scalar_f32 / _f64 (one element per iteration, any
// alignment). Flat groups are multiples of 64 elements in 256-byte aligned buffers,
// so they always take the vector kernels.

#define OPT_NT 256

// ---- correctly rounded, never-contracted arithmetic ---------------------------------
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }

// W consecutive elements moved by one 16-byte (or 4/8-byte for W = 1) load/store.
template <typename T, int W>
struct alignas(sizeof(T) * W) Pack {
    T x[W];
};

// ---- per-element rules (state slots a, b: unused ones are never read or written) ----
template <typename T>
struct SgdRule {
    T lr, mom, wd;
    bool use_mom, nesterov, use_wd;
    __device__ bool touch_a() const { return use_mom; }  // a = velocity
    __device__ bool touch_b() const { return false; }
    __device__ __forceinline__ void operator()(T& w, T g, T& v, T&) const {
        if (use_wd) g = add_rn(g, mul_rn(wd, w));           // g' = g + wd w
        T step = g;
        if (use_mom) {
            v = add_rn(mul_rn(v, mom), g);                   // v = mu v + g'
            step = nesterov ? add_rn(g, mul_rn(mom, v)) : v; // g' + mu v  |  v
        }
        w = sub_rn(w, mul_rn(lr, step));                     // w -= lr s
    }
};

template <typename T>
struct AdamRule {
    T one_m_b1, b1, one_m_b2, b2, eps, wd, sqrt_bc2, step_size;
    bool use_wd;
    __device__ bool touch_a() const { return true; }  // a = m
    __device__ bool touch_b() const { return true; }  // b = v
    __device__ __forceinline__ void operator()(T& w, T g, T& m, T& v) const {
        if (use_wd) g = add_rn(g, mul_rn(wd, w));
        m = add_rn(mul_rn(m, b1), mul_rn(g, one_m_b1));             // m = b1 m + (1-b1) g
        v = add_rn(mul_rn(v, b2), mul_rn(mul_rn(g, g), one_m_b2));  // v = b2 v + (1-b2) g^2
        T d = add_rn(div_rn(sqrt_rn(v), sqrt_bc2), eps);            // sqrt(v)/sqrt(bc2) + eps
        w = sub_rn(w, mul_rn(div_rn(m, d), step_size));             // w -= lr/bc1 * m / d
    }
};

template <typename T>
struct RmspropRule {
    T lr, alpha, one_m_alpha, eps, mom;
    bool use_mom;
    __device__ bool touch_a() const { return true; }     // a = square_avg
    __device__ bool touch_b() const { return use_mom; }  // b = velocity
    __device__ __forceinline__ void operator()(T& w, T g, T& s, T& b) const {
        s = add_rn(mul_rn(s, alpha), mul_rn(mul_rn(g, g), one_m_alpha));  // s = a s + (1-a) g^2
        T u = div_rn(g, add_rn(sqrt_rn(s), eps));                         // u = g / (sqrt(s)+eps)
        if (use_mom) {
            b = add_rn(mul_rn(b, mom), u);                                // b = mu b + u
            u = b;
        }
        w = sub_rn(w, mul_rn(u, lr));                                     // w -= lr u
    }
};

template <typename T>
struct AdagradRule {
    T lr, eps;
    __device__ bool touch_a() const { return true; }  // a = sum
    __device__ bool touch_b() const { return false; }
    __device__ __forceinline__ void operator()(T& w, T g, T& G, T&) const {
        G = add_rn(G, mul_rn(g, g));                                      // G += g^2
        w = sub_rn(w, mul_rn(div_rn(g, add_rn(sqrt_rn(G), eps)), lr));    // w -= lr (g/(sqrt G+eps))
    }
};

// ---- the grid-stride driver: W-wide packs, then an element-wise tail -----------------
template <typename T, int W, typename Rule>
__device__ __forceinline__ void fused_apply(T* __restrict__ w, const T* __restrict__ g,
                                            T* __restrict__ sa, T* __restrict__ sb, long long n,
                                            const Rule& r) {
    typedef Pack<T, W> P;
    const bool ta = r.touch_a(), tb = r.touch_b();
    const long long tid = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long npk = n / W;
    for (long long i = tid; i < npk; i += stride) {
        P wv = reinterpret_cast<const P*>(w)[i];
        const P gv = reinterpret_cast<const P*>(g)[i];
        P av = {}, bv = {};
        if (ta) av = reinterpret_cast<const P*>(sa)[i];
        if (tb) bv = reinterpret_cast<const P*>(sb)[i];
#pragma unroll
        for (int k = 0; k < W; ++k) r(wv.x[k], gv.x[k], av.x[k], bv.x[k]);
        reinterpret_cast<P*>(w)[i] = wv;
        if (ta) reinterpret_cast<P*>(sa)[i] = av;
        if (tb) reinterpret_cast<P*>(sb)[i] = bv;
    }
    for (long long i = npk * W + tid; i < n; i += stride) {  // empty for flat groups
        T wi = w[i];
        T ai = ta ? sa[i] : T(0);
        T bi = tb ? sb[i] : T(0);
        r(wi, g[i], ai, bi);
        w[i] = wi;
        if (ta) sa[i] = ai;
        if (tb) sb[i] = bi;
    }
}

// ---- per-rule kernels: read hyper, build the rule, run the driver --------------------
template <typename T, int W>
__device__ __forceinline__ void sgd_impl(T* w, const T* g, T* vel, const double* hyper,
                                         long long n) {
    SgdRule<T> r;
    r.lr = T(hyper[0]);
    r.mom = T(hyper[1]);
    r.use_mom = hyper[1] != 0.0;
    r.nesterov = hyper[2] != 0.0;
    r.wd = T(hyper[3]);
    r.use_wd = hyper[3] != 0.0;
    fused_apply<T, W>(w, g, vel, (T*)nullptr, n, r);
}

template <typename T, int W>
__device__ __forceinline__ void adam_impl(T* w, const T* g, T* m, T* v, const double* hyper,
                                          long long* counter, long long n) {
    // t + 1 from the device counter: read by every thread before its block reports done,
    // so before the last block can overwrite it.
    const long long t = *((volatile long long*)counter) + 1;
    const double lr = hyper[0], b1 = hyper[1], b2 = hyper[2], eps = hyper[3], wd = hyper[4];
    const double bc1 = 1.0 - pow(b1, (double)t);  // bias corrections, float64
    const double bc2 = 1.0 - pow(b2, (double)t);
    AdamRule<T> r;
    r.one_m_b1 = T(1.0 - b1);
    r.b1 = T(b1);
    r.one_m_b2 = T(1.0 - b2);
    r.b2 = T(b2);
    r.eps = T(eps);
    r.wd = T(wd);
    r.use_wd = wd != 0.0;
    r.sqrt_bc2 = T(sqrt(bc2));
    r.step_size = T(lr / bc1);
    fused_apply<T, W>(w, g, m, v, n, r);

    // last block done stores t (= old t + 1) and resets the done count for the next step
    __shared__ bool last;
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        const unsigned long long prev =
            atomicAdd(reinterpret_cast<unsigned long long*>(counter + 1), 1ULL);
        last = prev == (unsigned long long)gridDim.x - 1ULL;
    }
    __syncthreads();
    if (last && threadIdx.x == 0) {
        *((volatile long long*)counter) = t;
        *((volatile long long*)(counter + 1)) = 0;
        __threadfence();
    }
}

template <typename T, int W>
__device__ __forceinline__ void rmsprop_impl(T* w, const T* g, T* sq, T* vel,
                                             const double* hyper, long long n) {
    RmspropRule<T> r;
    r.lr = T(hyper[0]);
    r.alpha = T(hyper[1]);
    r.one_m_alpha = T(1.0 - hyper[1]);
    r.eps = T(hyper[2]);
    r.mom = T(hyper[3]);
    r.use_mom = hyper[3] != 0.0;
    fused_apply<T, W>(w, g, sq, vel, n, r);
}

template <typename T, int W>
__device__ __forceinline__ void adagrad_impl(T* w, const T* g, T* acc, const double* hyper,
                                             long long n) {
    AdagradRule<T> r;
    r.lr = T(hyper[0]);
    r.eps = T(hyper[1]);
    fused_apply<T, W>(w, g, acc, (T*)nullptr, n, r);
}

#define OPTIM_ENTRIES(SUF, T, W)                                                                 \
    extern "C" __global__ void __launch_bounds__(OPT_NT)                                        \
        sgd_step_##SUF(T* w, const T* g, T* vel, const double* hyper, long long n) {             \
        sgd_impl<T, W>(w, g, vel, hyper, n);                                                     \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(OPT_NT)                                        \
        adam_step_##SUF(T* w, const T* g, T* m, T* v, const double* hyper, long long* counter,   \
                        long long n) {                                                           \
        adam_impl<T, W>(w, g, m, v, hyper, counter, n);                                          \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(OPT_NT)                                        \
        rmsprop_step_##SUF(T* w, const T* g, T* sq, T* vel, const double* hyper, long long n) {  \
        rmsprop_impl<T, W>(w, g, sq, vel, hyper, n);                                             \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(OPT_NT)                                        \
        adagrad_step_##SUF(T* w, const T* g, T* acc, const double* hyper, long long n) {         \
        adagrad_impl<T, W>(w, g, acc, hyper, n);                                                 \
    }

OPTIM_ENTRIES(f32, float, 4)
OPTIM_ENTRIES(f64, double, 2)
OPTIM_ENTRIES(scalar_f32, float, 1)
OPTIM_ENTRIES(scalar_f64, double, 1)
