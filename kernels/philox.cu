// Philox4x32-10 counter-based random numbers, bit-identical to scratchgan/philox.py.
//
// Generator state: a device array `state` of two uint64, state[0] = counter (the number of
// 128-bit blocks consumed so far), state[1] = seed (the 64-bit key). Every generation kernel
// READS the counter and key from device memory, so a captured CUDA graph draws new numbers on
// each replay; philox_advance (one thread), launched right after on the same stream, adds the
// draw's block count B(n) to state[0]. The host never reads or writes the state inside a draw.
//
// Block b (a uint64, wrapping mod 2^64) is Philox4x32-10 of
//     counter = (lo32(b), hi32(b), 0, 0),   key = (lo32(seed), hi32(seed))
// with round  (c0, c1, c2, c3) -> (hi(M1*c2) ^ c1 ^ k0, lo(M1*c2), hi(M0*c0) ^ c3 ^ k1, lo(M0*c0))
// and key bump k0 += W0, k1 += W1 between rounds (10 rounds, 9 bumps):
//     M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85.
//
// Element -> block mapping of a draw of n elements starting at counter c (w0..w3 = block words):
//     philox_u32, philox_uniform_f32, philox_integers: element i <- word i%4 of block c + i/4,
//                                                       B(n) = ceil(n/4)
//     philox_uniform_f64:  element i <- words (2(i%2), 2(i%2)+1) of block c + i/2, B(n) = ceil(n/2)
//     philox_normal_*:     element i <- all four words of block c + i,              B(n) = n
// Unused words of a draw's last block are discarded: every draw starts on a fresh block.
//
// Conversions (all arithmetic rounded explicitly with __*_rn intrinsics so that NVRTC's default
// -fmad=true cannot contract a multiply-add into an FMA and change the last bit):
//     f32 uniform u = (w >> 8) * 2^-24                                  exact, in [0, 1)
//     f64 uniform u = ((wa >> 5) * 2^26 + (wb >> 6)) * 2^-53           exact, in [0, 1)
//     uniform     r = fl(low + fl(d * u)), d = fl(high - low) computed on the host;
//                 r >= high (possible only by rounding) is replaced by `below`, the largest
//                 value of the dtype below high (also from the host), so r is in [low, high).
//     integers    k = (uint64(w) * high) >> 32                        in [0, high)
//     normal      Box-Muller, cos branch, in float64:
//                 u1 = f64 uniform(w0, w1), u2 = f64 uniform(w2, w3)
//                 z  = sqrt(-2 log(1 - u1)) * cos(2 pi u2);  out = (T)(mean + std * z)
//                 (log and cos are libdevice's: within 1-2 ulp of glibc's, not bitwise).
// Launch: grid-stride loops over blocks (one Philox block per thread and step); 32-bit index
// math when n <= 2^30, 64-bit otherwise.

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#ifndef PHILOX_SMALL_N  // largest n taking the 32-bit index path (overridable for host tests)
#define PHILOX_SMALL_N (1ll << 30)
#endif

__device__ __forceinline__ uint4 philox4x32_10(uint4 c, uint2 k) {
#pragma unroll
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            k.x += PHILOX_W0;
            k.y += PHILOX_W1;
        }
        const unsigned int hi0 = __umulhi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
        const unsigned int hi1 = __umulhi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
        c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// Block `base + b` of the stream keyed by `seed`.
__device__ __forceinline__ uint4 philox_block(unsigned long long base, unsigned long long b,
                                              unsigned long long seed) {
    const unsigned long long blk = base + b;  // wraps mod 2^64, as on the host
    return philox4x32_10(make_uint4((unsigned int)blk, (unsigned int)(blk >> 32), 0u, 0u),
                         make_uint2((unsigned int)seed, (unsigned int)(seed >> 32)));
}

__device__ __forceinline__ float u24(unsigned int w) {  // (w >> 8) * 2^-24, exact
    return __fmul_rn(__uint2float_rn(w >> 8), 5.9604644775390625e-08f);
}

__device__ __forceinline__ double u53(unsigned int wa, unsigned int wb) {  // exact
    const unsigned long long m = ((unsigned long long)(wa >> 5) << 26) | (unsigned long long)(wb >> 6);
    return __dmul_rn(__ull2double_rn(m), 1.1102230246251565404236316680908203125e-16);
}

__device__ __forceinline__ float uniform_f32(unsigned int w, float low, float d, float high,
                                             float below) {
    const float r = __fadd_rn(low, __fmul_rn(d, u24(w)));
    return r < high ? r : below;
}

__device__ __forceinline__ double uniform_f64(unsigned int wa, unsigned int wb, double low, double d,
                                              double high, double below) {
    const double r = __dadd_rn(low, __dmul_rn(d, u53(wa, wb)));
    return r < high ? r : below;
}

__device__ __forceinline__ long long lemire(unsigned int w, unsigned int high) {
    return (long long)(((unsigned long long)w * (unsigned long long)high) >> 32);
}

__device__ __forceinline__ double box_muller(uint4 w, double mean, double std) {
    const double u1 = u53(w.x, w.y), u2 = u53(w.z, w.w);
    const double rad = __dsqrt_rn(__dmul_rn(-2.0, log(__dsub_rn(1.0, u1))));
    const double z = __dmul_rn(rad, cos(__dmul_rn(6.283185307179586476925286766559, u2)));
    return __dadd_rn(mean, __dmul_rn(std, z));
}

// The four words of one block to elements 4b .. 4b+3 (those below n), through `f`.
template <typename I, typename T, typename F>
__device__ __forceinline__ void store4(T* out, I b, I n, uint4 w, F f) {
    const I i = b * 4;
    if (i + 3 < n) {
        out[i] = f(w.x);
        out[i + 1] = f(w.y);
        out[i + 2] = f(w.z);
        out[i + 3] = f(w.w);
    } else {
        out[i] = f(w.x);
        if (i + 1 < n) out[i + 1] = f(w.y);
        if (i + 2 < n) out[i + 2] = f(w.z);
    }
}

struct IdentityU32 {
    __device__ __forceinline__ unsigned int operator()(unsigned int w) const { return w; }
};
struct UniformF32 {
    float low, d, high, below;
    __device__ __forceinline__ float operator()(unsigned int w) const {
        return uniform_f32(w, low, d, high, below);
    }
};
struct Lemire {
    unsigned int high;
    __device__ __forceinline__ long long operator()(unsigned int w) const { return lemire(w, high); }
};

// One word per element (raw, f32 uniform, integers): block c + i/4, word i%4.
template <typename I, typename T, typename F>
__device__ __forceinline__ void words_impl(const unsigned long long* state, T* out, I n, F f) {
    const unsigned long long ctr = state[0], seed = state[1];
    const I nb = (n + 3) / 4;
    const I stride = (I)gridDim.x * (I)blockDim.x;
    for (I b = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; b < nb; b += stride)
        store4(out, b, n, philox_block(ctr, (unsigned long long)b, seed), f);
}

// Two words per element (f64 uniform): block c + i/2, words 2(i%2), 2(i%2)+1.
template <typename I>
__device__ __forceinline__ void uniform_f64_impl(const unsigned long long* state, double* out, I n,
                                                 double low, double d, double high, double below) {
    const unsigned long long ctr = state[0], seed = state[1];
    const I nb = (n + 1) / 2;
    const I stride = (I)gridDim.x * (I)blockDim.x;
    for (I b = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; b < nb; b += stride) {
        const uint4 w = philox_block(ctr, (unsigned long long)b, seed);
        const I i = b * 2;
        out[i] = uniform_f64(w.x, w.y, low, d, high, below);
        if (i + 1 < n) out[i + 1] = uniform_f64(w.z, w.w, low, d, high, below);
    }
}

// One block per element (normal): block c + i.
template <typename I, typename T>
__device__ __forceinline__ void normal_impl(const unsigned long long* state, T* out, I n,
                                            double mean, double std) {
    const unsigned long long ctr = state[0], seed = state[1];
    const I stride = (I)gridDim.x * (I)blockDim.x;
    for (I b = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; b < n; b += stride) {
        const double r = box_muller(philox_block(ctr, (unsigned long long)b, seed), mean, std);
        if constexpr (sizeof(T) == 4) out[b] = __double2float_rn(r);
        else out[b] = r;
    }
}

#define PHILOX_DISPATCH(call_small, call_large) \
    if (n <= PHILOX_SMALL_N) {                  \
        call_small;                             \
    } else {                                    \
        call_large;                             \
    }

extern "C" __global__ void philox_u32(const unsigned long long* state, unsigned int* out,
                                      long long n) {
    PHILOX_DISPATCH(words_impl<unsigned int>(state, out, (unsigned int)n, IdentityU32{}),
                    words_impl<unsigned long long>(state, out, (unsigned long long)n, IdentityU32{}))
}

extern "C" __global__ void philox_uniform_f32(const unsigned long long* state, float* out,
                                              long long n, float low, float d, float high,
                                              float below) {
    const UniformF32 f{low, d, high, below};
    PHILOX_DISPATCH(words_impl<unsigned int>(state, out, (unsigned int)n, f),
                    words_impl<unsigned long long>(state, out, (unsigned long long)n, f))
}

extern "C" __global__ void philox_integers(const unsigned long long* state, long long* out,
                                           long long n, unsigned int high) {
    const Lemire f{high};
    PHILOX_DISPATCH(words_impl<unsigned int>(state, out, (unsigned int)n, f),
                    words_impl<unsigned long long>(state, out, (unsigned long long)n, f))
}

extern "C" __global__ void philox_uniform_f64(const unsigned long long* state, double* out,
                                              long long n, double low, double d, double high,
                                              double below) {
    PHILOX_DISPATCH(uniform_f64_impl<unsigned int>(state, out, (unsigned int)n, low, d, high, below),
                    uniform_f64_impl<unsigned long long>(state, out, (unsigned long long)n, low, d,
                                                         high, below))
}

extern "C" __global__ void philox_normal_f32(const unsigned long long* state, float* out,
                                             long long n, double mean, double std) {
    PHILOX_DISPATCH(normal_impl<unsigned int>(state, out, (unsigned int)n, mean, std),
                    normal_impl<unsigned long long>(state, out, (unsigned long long)n, mean, std))
}

extern "C" __global__ void philox_normal_f64(const unsigned long long* state, double* out,
                                             long long n, double mean, double std) {
    PHILOX_DISPATCH(normal_impl<unsigned int>(state, out, (unsigned int)n, mean, std),
                    normal_impl<unsigned long long>(state, out, (unsigned long long)n, mean, std))
}

// Launched <<<1, 1>>> after every generation kernel of a draw: counter += B(n) (mod 2^64).
extern "C" __global__ void philox_advance(unsigned long long* state, unsigned long long nblocks) {
    if (blockIdx.x == 0 && threadIdx.x == 0) state[0] += nblocks;
}
