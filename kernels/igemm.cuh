// Shared core of the implicit-GEMM convolution kernels (included by
// conv2d_fwd.cu, conv2d_bwd_data.cu and conv2d_bwd_filter.cu; no other
// includes, so it builds both with nvcc and with NVRTC).
//
// A block computes a BM x BN tile of C = A (GEMM_M x GEMM_K) * B (GEMM_K x GEMM_N).
// A and B are never materialised: a "loader" gathers each BK-wide slice of the
// tile straight from the tensors into registers (zero where the index map falls
// into padding), the registers are stored to shared memory, and a "core"
// multiplies the shared tiles:
//   * SimtCore<T>: T = float or double, each thread keeps a TM x TN register
//     block of C and does TM*TN FMAs per k step.
//   * MmaCore: TF32 tensor cores through mma.sync.m16n8k8 (inline PTX); the
//     fp32 words in shared memory are fed to the tensor cores as they are (the
//     unit reads the tf32 part, i.e. the mantissa is truncated to 10 bits), and
//     each warp keeps a WM x WN block of fp32 accumulators.
// The main loop is an ST-stage cp.async pipeline in dynamic shared memory: the
// loader issues asynchronous 4/8-byte copies (zero-filled in the padding) of
// slice k + ST - 1 while the core multiplies slice k, so ST - 1 slices are in
// flight; one __syncthreads per slice. The host passes the dynamic shared
// size (ST * (SMEM_A + SMEM_B) elements); a block that gets less traps.
//
// Split-K: blockIdx.z also enumerates `splits` disjoint GEMM_K ranges; with
// splits > 1 each writes its partial tile into its own output-sized slice of
// a workspace and splitk_reduce adds the slices.

#pragma once

typedef unsigned int u32;

__device__ __forceinline__ int ceil_div_i(int a, int b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------- cores
template <typename T, int BM, int BN, int BK, int TM, int TN>
struct SimtCore {
    typedef T smem_t;
    static constexpr int NT = (BM / TM) * (BN / TN);
    static constexpr int PA = BM + 4;   // row pitch of As[BK][PA]
    static constexpr int PB = BN + 4;   // row pitch of Bs[BK][PB]
    static constexpr int SMEM_A = BK * PA;
    static constexpr int SMEM_B = BK * PB;
    static constexpr bool B_NMAJOR = false;
    static constexpr int PBN = 0;
    T acc[TM][TN];

    __device__ __forceinline__ void zero() {
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] = T(0);
    }
    __device__ __forceinline__ static smem_t convert(T v) { return v; }
    __device__ __forceinline__ static int a_slot(int r) { return r; }

    // Thread (tx, ty) owns rows ty*TM/2 + i and BM/2 + ty*TM/2 + i (i < TM/2), and
    // columns likewise: neighbouring threads read neighbouring 16-byte words of a
    // shared row, so the vector loads are free of bank conflicts.
    __device__ __forceinline__ static int row_of(int i) {
        const int ty = threadIdx.x / (BN / TN);
        return (i < TM / 2) ? ty * (TM / 2) + i : BM / 2 + ty * (TM / 2) + i - TM / 2;
    }
    __device__ __forceinline__ static int col_of(int j) {
        const int tx = threadIdx.x % (BN / TN);
        return (j < TN / 2) ? tx * (TN / 2) + j : BN / 2 + tx * (TN / 2) + j - TN / 2;
    }

    __device__ __forceinline__ void compute(const smem_t* As, const smem_t* Bs) {
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            T a[TM], b[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) a[i] = As[k * PA + row_of(i)];
#pragma unroll
            for (int j = 0; j < TN; ++j) b[j] = Bs[k * PB + col_of(j)];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
    }

    // Epilogue through shared memory (gather kernels, whose columns are channel planes
    // dst_cstride apart): in two halves of BN/2 columns the tile is written to S[col][row]
    // and read back so that consecutive lanes store consecutive rows (pixels): one
    // 128-byte line per warp store instead of 32 scattered sectors. S needs
    // BN/2 * (BM + 1) elements; the caller has synchronised nothing.
    template <class L>
    __device__ __forceinline__ void store_staged(const L& ld, T* out, T* S) const {
        constexpr int CW = BN / 2, PS = BM + 1;
        static_assert(NT % BM == 0, "staged store needs NT to be a multiple of BM");
        const int r = threadIdx.x % BM;
        const int base = ld.row_base(r);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            __syncthreads();
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int jj = 0; jj < TN / 2; ++jj) {
                    const int j = h * (TN / 2) + jj;
                    S[(col_of(j) - h * CW) * PS + row_of(i)] = acc[i][j];
                }
            __syncthreads();
            if (base >= 0) {
#pragma unroll 4
                for (int cl = threadIdx.x / BM; cl < CW; cl += NT / BM) {
                    const int off = ld.col_off(h * CW + cl);
                    if (off >= 0) out[base + off] = S[cl * PS + r];
                }
            }
        }
    }

    template <class L>
    __device__ __forceinline__ void store(const L& ld, T* out) const {
#pragma unroll
        for (int i = 0; i < TM; ++i) {
            const int base = ld.row_base(row_of(i));
            if (base < 0) continue;
#pragma unroll
            for (int j = 0; j < TN; ++j) {
                const int off = ld.col_off(col_of(j));
                if (off >= 0) out[base + off] = acc[i][j];
            }
        }
    }
};

__device__ __forceinline__ u32 to_tf32(float x) {
    u32 r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

__device__ __forceinline__ void mma_tf32(float* c, const u32* a, const u32* b) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Fragment layouts of m16n8k8.tf32 (gid = lane / 4, tig = lane % 4):
//   A (16x8, row): a0 (gid, tig), a1 (gid+8, tig), a2 (gid, tig+4), a3 (gid+8, tig+4)
//   B (8x8, col):  b0 (k=tig, n=gid), b1 (k=tig+4, n=gid)
//   C (16x8):      c0 (gid, 2tig), c1 (gid, 2tig+1), c2 (gid+8, 2tig), c3 (gid+8, 2tig+1)
// Shared tiles are k-major with pitch = width + 8 words, so the 32 lanes of a
// fragment load ((tig * pitch + gid) mod 32 = 8 tig + gid) hit 32 distinct banks.
// VA (vector A): the loader stores tile row r = i*16 + h*8 + g (g < 8, h < 2) in
// slot i*16 + g*2 + h (a_slot), so that a lane's two A rows of one k row (gid and
// gid + 8 of m-fragment i) are adjacent words: one ld.shared.v2 fills the register
// pair (a0, a1) or (a2, a3) of the mma operand directly (no moves). In each
// half-warp the 8-byte addresses tig*pitch + 2*gid fall in 16 distinct bank pairs
// (pitch = 8 mod 32). The store is unchanged (rows keep their meaning).
// VA also switches B to an n-major tile Bs[n][k] (pitch BK + 8) and pairs the two
// k values a lane needs (tig, tig + 4 of the mma) in adjacent k slots 2*tig, 2*tig + 1
// of both tiles (k slots are labels too, as long as A and B agree): one
// ld.shared.v2 gives (b0, b1), and A reads k rows 2*tig + h with pitch BM + 4. In each
// half-warp the 8-byte addresses fall in 16 distinct bank pairs: A 4*tig + gid,
// B gid*(BK + 8)/2 + tig (mod 16).
template <int BM, int BN, int BK, int WM, int WN, bool VA = false>
struct MmaCore {
    typedef u32 smem_t;
    static constexpr int NT = (BM / WM) * (BN / WN) * 32;
    static constexpr int PA = VA ? BM + 4 : BM + 8;
    static constexpr int PB = BN + 8;     // k-major B (VA = false)
    static constexpr int PBN = BK + 8;    // n-major B (VA = true)
    static constexpr bool B_NMAJOR = VA;
    static constexpr int SMEM_A = BK * PA;
    static constexpr int SMEM_B = VA ? BN * PBN : BK * PB;
    static constexpr int MI = WM / 16, NI = WN / 8;
    float acc[MI][NI][4];

    __device__ __forceinline__ void zero() {
#pragma unroll
        for (int i = 0; i < MI; ++i)
#pragma unroll
            for (int j = 0; j < NI; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
    }
    __device__ __forceinline__ static smem_t convert(float v) { return to_tf32(v); }
    __device__ __forceinline__ static int a_slot(int r) {
        return VA ? (r & ~15) | ((r & 7) << 1) | ((r >> 3) & 1) : r;
    }

    __device__ __forceinline__ void compute(const smem_t* As, const smem_t* Bs) {
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        const int gid = lane >> 2, tig = lane & 3;
        const int wm = (warp / (BN / WN)) * WM, wn = (warp % (BN / WN)) * WN;
#pragma unroll
        for (int ks = 0; ks < BK; ks += 8) {
            u32 a[MI][4], b[NI][2];
            if (VA) {
#pragma unroll
                for (int i = 0; i < MI; ++i)
#pragma unroll
                    for (int h = 0; h < 2; ++h) {   // k slot 2*tig + h holds mma k tig + 4h
                        const uint2 v = *reinterpret_cast<const uint2*>(
                            As + (ks + 2 * tig + h) * PA + wm + i * 16 + gid * 2);
                        a[i][2 * h] = v.x;       // row gid
                        a[i][2 * h + 1] = v.y;   // row gid + 8
                    }
#pragma unroll
                for (int j = 0; j < NI; ++j) {
                    const uint2 w = *reinterpret_cast<const uint2*>(
                        Bs + (wn + j * 8 + gid) * PBN + ks + 2 * tig);
                    b[j][0] = w.x;
                    b[j][1] = w.y;
                }
            } else {
#pragma unroll
                for (int i = 0; i < MI; ++i) {
                    const u32* p = As + (ks + tig) * PA + wm + i * 16 + gid;
                    a[i][0] = p[0];
                    a[i][1] = p[8];
                    a[i][2] = p[4 * PA];
                    a[i][3] = p[4 * PA + 8];
                }
#pragma unroll
                for (int j = 0; j < NI; ++j) {
                    const u32* p = Bs + (ks + tig) * PB + wn + j * 8 + gid;
                    b[j][0] = p[0];
                    b[j][1] = p[4 * PB];
                }
            }
#pragma unroll
            for (int i = 0; i < MI; ++i)
#pragma unroll
                for (int j = 0; j < NI; ++j) mma_tf32(acc[i][j], a[i], b[j]);
        }
    }

    template <class L>
    __device__ __forceinline__ void store(const L& ld, float* out) const {
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        const int gid = lane >> 2, tig = lane & 3;
        const int wm = (warp / (BN / WN)) * WM, wn = (warp % (BN / WN)) * WN;
#pragma unroll
        for (int i = 0; i < MI; ++i)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int base = ld.row_base(wm + i * 16 + gid + 8 * h);
                if (base < 0) continue;
#pragma unroll
                for (int j = 0; j < NI; ++j)
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        const int off = ld.col_off(wn + j * 8 + 2 * tig + e);
                        if (off >= 0) out[base + off] = acc[i][j][2 * h + e];
                    }
            }
    }
};

// ---------------------------------------------------------------- cp.async
__device__ __forceinline__ u32 smem_addr(const void* p) {
    u32 r;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p));
    return r;
}
// Copy one element global -> shared without staging in registers; when
// !valid nothing is read (src-size 0) and the shared word is zero-filled.
template <typename T>
__device__ __forceinline__ void cp_async_el(void* dst, const T* src, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(smem_addr(dst)), "l"(src),
                 "n"((int)sizeof(T)), "r"(valid ? (int)sizeof(T) : 0));
}
// Same with a shared-memory address (u32) so that per-element offsets fold into immediates.
template <typename T>
__device__ __forceinline__ void cp_async_s(u32 dst, const T* src, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(src),
                 "n"((int)sizeof(T)), "r"(valid ? (int)sizeof(T) : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
__device__ __forceinline__ u32 dynamic_smem_bytes() {
    u32 r;
    asm volatile("mov.u32 %0, %%dynamic_smem_size;" : "=r"(r));
    return r;
}

// Thread -> (k, row) map of a k-major shared tile X[k][row] with row pitch P
// whose copies are issued with a k-contiguous global access (B of the gather
// loader, both tiles of the wgrad loader): a warp covers KG consecutive k times
// 32/KG consecutive rows, with KG = 32 / (P mod 32), so the 32 shared words it
// writes fall in 32 distinct banks.
template <int P, int BK, int NT>
struct KMajorMap {
    static constexpr int PM = P % 32;
    static_assert(PM == 4 || PM == 8 || PM == 16, "pitch must be 4, 8 or 16 mod 32");
    static constexpr int KG = 32 / PM;            // k per warp
    static constexpr int RG = 32 / KG;            // rows per warp
    static constexpr int NW = NT / 32;
    static_assert(BK % KG == 0 && NW % (BK / KG) == 0, "tile/threads do not fit the k-major map");
    static constexpr int RSTEP = RG * (NW / (BK / KG));   // rows between a thread's elements
    __device__ __forceinline__ static int k() {
        return threadIdx.x % KG + KG * ((threadIdx.x / 32) % (BK / KG));
    }
    __device__ __forceinline__ static int row() {
        return (threadIdx.x % 32) / KG + RG * ((threadIdx.x / 32) / (BK / KG));
    }
};

// ---------------------------------------------------------------- main loop
template <class Core, int BK, int ST>
struct Pipe {
    typedef typename Core::smem_t S;
    static constexpr int BYTES = ST * (Core::SMEM_A + Core::SMEM_B) * (int)sizeof(S);
};

template <class Core, class Loader, int BK, int ST>
__device__ __forceinline__ void gemm_mainloop(Core& core, Loader& ld, int kbeg, int kend) {
    typedef typename Core::smem_t S;
    extern __shared__ __align__(16) unsigned char dyn_smem[];
    S* As = reinterpret_cast<S*>(dyn_smem);
    S* Bs = As + ST * Core::SMEM_A;
    core.zero();
    if (kbeg >= kend) return;
    const int n = ceil_div_i(kend - kbeg, BK);
#pragma unroll
    for (int s = 0; s < ST - 1; ++s) {
        if (s < n) ld.issue(kbeg + s * BK, kend, As + s * Core::SMEM_A, Bs + s * Core::SMEM_B);
        cp_async_commit();
    }
    int cs = 0, ws = ST - 1;   // stage computed / stage written this iteration
    for (int it = 0; it < n; ++it) {
        cp_async_wait<ST - 2>();   // slice it has landed (this thread's copies) ...
        __syncthreads();           // ... everyone's, and stage ws is no longer read
        const int nx = it + ST - 1;
        if (nx < n) ld.issue(kbeg + nx * BK, kend, As + ws * Core::SMEM_A, Bs + ws * Core::SMEM_B);
        cp_async_commit();
        core.compute(As + cs * Core::SMEM_A, Bs + cs * Core::SMEM_B);
        cs = (cs + 1 == ST) ? 0 : cs + 1;
        ws = (ws + 1 == ST) ? 0 : ws + 1;
    }
}

// ---------------------------------------------------------------- gather loader
// Used by forward and backward-data. GEMM row m = (n, i, j) over the phase's
// Hp x Wp grid; the A element for GEMM column kk is
//     src[n*src_nstride + tabA[kk].x + (i*ms_h + off_h)*Ws + (j*ms_w + off_w)]
// valid when 0 <= i*ms_h + off_h + tabA[kk].y < Hs (same for w with .z).
// The B element is wgt[tabB[kk] + col*ldb]. The result goes to
//     dst[n*dst_nstride + col*dst_cstride + (h_first + i*os_h)*Wd + (w_first + j*os_w)].
struct GatherParams {
    int src_nstride, Hs, Ws, ms_h, ms_w, off_h, off_w;
    int ldb, ncols;
    int dst_nstride, dst_cstride, Wd, os_h, os_w;
    int h_first, w_first, Hp, Wp, Mp;
};

// VB (vector B, tf32 core only): B is read as wgt[b_off + col*ldb + k] with 16-byte
// cp.async copies of 4 consecutive k, valid while k < kend (whole quads: the host uses it
// for the forward pass, B[kk][k] = w[k*CRS + kk], when CRS % 4 == 0 and w is 16-byte
// aligned; b_off = the phase's table offset = 0 there; slice starts k0 are multiples of BK).
// Backward-data taps are not k-contiguous in w, so it keeps the scalar loader. A warp covers
// 32 / (BK/4) columns x BK/4 quads; each 8-lane phase writes 4 columns x 2 quads, i.e.
// the 32 banks once for an n-major pitch of 8 or 24 (mod 32).
template <typename T, class Core, int BM, int BN, int BK, int NT, bool VB = false>
struct GatherLoader {
    static_assert(NT % BM == 0, "gather loader needs NT to be a multiple of BM");
    static constexpr int EA = BM * BK / NT;   // A elements per thread (one row, EA k's)
    // B copies: k-contiguous global reads; the map makes a warp's shared writes
    // conflict-free for a k-major tile (pitch PB) or, with P = 4 (8 k x 4 columns per
    // warp), for an n-major tile with pitch PBN = 24 or 8 (mod 32).
    typedef KMajorMap<Core::B_NMAJOR ? 4 : Core::PB, BK, NT> MapB;
    static constexpr int EB = BN / MapB::RSTEP;   // B elements per thread (one k, EB columns)
    static_assert(EA >= 1 && EB >= 1 && BN % MapB::RSTEP == 0, "tile does not fit the thread count");
    static constexpr int QPC = BK / 4;              // k quads per column (VB)
    static constexpr int VCW = 32 / QPC;            // columns per warp (VB)
    static constexpr int VCSTEP = VCW * (NT / 32);  // columns between a thread's quads (VB)
    static constexpr int EQ = BN / VCSTEP;          // 16-byte B copies per thread (VB)
    static_assert(!VB || (Core::B_NMAJOR && (QPC == 4 || QPC == 8) && BN % VCSTEP == 0 &&
                          (Core::PBN % 32 == 8 || Core::PBN % 32 == 24)),
                  "vector B needs the n-major tf32 tile, BK 16 or 32, BN a multiple of the warp map");
    const T* __restrict__ src;
    const T* __restrict__ wgt;
    const int4* __restrict__ tabA;
    const int* __restrict__ tabB;
    GatherParams p;
    int m0, n0, b_off;
    bool a_valid;
    int a_base, a_h, a_w;

    __device__ __forceinline__ void init() {
        const int m = m0 + threadIdx.x % BM;
        a_valid = m < p.Mp;
        const int hw = p.Hp * p.Wp;
        const int n = a_valid ? m / hw : 0;
        const int ij = a_valid ? m - n * hw : 0;
        const int i = ij / p.Wp, j = ij - (ij / p.Wp) * p.Wp;
        // rows past Mp get an h that fails every bounds check
        a_h = a_valid ? i * p.ms_h + p.off_h : -(1 << 30);
        a_w = j * p.ms_w + p.off_w;
        a_base = a_valid ? n * p.src_nstride + a_h * p.Ws + a_w : 0;
    }
    // The host pads every phase's tables with >= BK sentinel entries (tabA .y = -2^30,
    // tabB = -1), so a slice never needs a k < kend test: the padding copies zeros.
    __device__ __forceinline__ void issue(int k0, int kend, typename Core::smem_t* As,
                                          typename Core::smem_t* Bs) const {
        typedef typename Core::smem_t S;
        constexpr int KSTEP = NT / BM;   // k distance between a thread's A elements
        const u32 sa = smem_addr(As) +
                       (u32)(((threadIdx.x / BM) * Core::PA + Core::a_slot(threadIdx.x % BM)) * sizeof(S));
        const int4* ta = tabA + k0 + threadIdx.x / BM;
        constexpr int G = EA < 8 ? EA : 8;   // table entries loaded ahead of their copies
#pragma unroll
        for (int e0 = 0; e0 < EA; e0 += G) {
            int4 t[G];
#pragma unroll
            for (int g = 0; g < G; ++g) t[g] = __ldg(ta + (e0 + g) * KSTEP);
#pragma unroll
            for (int g = 0; g < G; ++g) {
                const bool v = (unsigned)(a_h + t[g].y) < (unsigned)p.Hs &&
                               (unsigned)(a_w + t[g].z) < (unsigned)p.Ws;
                cp_async_s(sa + (u32)((e0 + g) * KSTEP * Core::PA * sizeof(S)),
                           src + (v ? a_base + t[g].x : 0), v);
            }
        }
        if constexpr (VB) {
            const int lane = threadIdx.x % 32, g = lane / 8;
            const int kq = (g % (QPC / 2)) * 2 + lane % 2;
            const int nl = (threadIdx.x / 32) * VCW + (g / (QPC / 2)) * 4 + (lane % 8) / 2;
            const u32 sbv = smem_addr(Bs) + (u32)((nl * Core::PBN + 4 * kq) * sizeof(S));
            const int kk = k0 + 4 * kq;
            const bool kv = kk < kend;
            const int col0 = n0 + nl;
            const T* gb = wgt + b_off + kk + col0 * p.ldb;
#pragma unroll
            for (int e = 0; e < EQ; ++e) {
                const bool v = kv && col0 + e * VCSTEP < p.ncols;
                asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                                 sbv + (u32)(e * VCSTEP * Core::PBN * sizeof(S))),
                             "l"(v ? gb + e * VCSTEP * p.ldb : wgt), "r"(v ? 16 : 0));
            }
            return;
        }
        const int kl = MapB::k(), rl = MapB::row();
        const int boff = __ldg(tabB + k0 + kl);
        constexpr int BSTEP = Core::B_NMAJOR ? MapB::RSTEP * Core::PBN : MapB::RSTEP;
        const u32 sb = smem_addr(Bs) +
                       (u32)((Core::B_NMAJOR ? rl * Core::PBN + kl : kl * Core::PB + rl) * sizeof(S));
        const int col0 = n0 + rl;
        const int off0 = boff + col0 * p.ldb, dstep = MapB::RSTEP * p.ldb;
#pragma unroll
        for (int e = 0; e < EB; ++e) {
            const bool v = boff >= 0 && col0 + e * MapB::RSTEP < p.ncols;
            cp_async_s(sb + (u32)(e * BSTEP * sizeof(S)), wgt + (v ? off0 + e * dstep : 0), v);
        }
    }
    __device__ __forceinline__ int row_base(int ml) const {
        const int m = m0 + ml;
        if (m >= p.Mp) return -1;
        const int hw = p.Hp * p.Wp;
        const int n = m / hw, ij = m - n * hw;
        const int i = ij / p.Wp, j = ij - i * p.Wp;
        return n * p.dst_nstride + (p.h_first + i * p.os_h) * p.Wd + (p.w_first + j * p.os_w);
    }
    __device__ __forceinline__ int col_off(int nl) const {
        const int col = n0 + nl;
        return col < p.ncols ? col * p.dst_cstride : -1;
    }
};

// phases: int[nphase][8] = {h_first, w_first, Hp, Wp, tab_offset, GK, Mp, 0}
// grid = (ceil(max Mp/BM), ceil(ncols/BN), nphase*splits)
template <typename T, class Core, int BM, int BN, int BK, int ST, bool STAGED = false,
          bool VB = false>
__device__ __forceinline__ void gather_gemm(
    const T* src, const T* wgt, T* dst, const int4* tabA, const int* tabB, const int* phases,
    int src_nstride, int Hs, int Ws, int ms_h, int ms_w, int off_h, int off_w,
    int ldb, int ncols, int dst_nstride, int dst_cstride, int Wd, int os_h, int os_w,
    int splits, int out_size) {
    if (dynamic_smem_bytes() < (u32)Pipe<Core, BK, ST>::BYTES) __trap();
    const int z = blockIdx.z;
    const int phase = z / splits, split = z - phase * splits;
    const int* ph = phases + phase * 8;
    typedef GatherLoader<T, Core, BM, BN, BK, Core::NT, VB> L;
    L ld;
    ld.p.Mp = ph[6];
    ld.m0 = blockIdx.x * BM;
    if (ld.m0 >= ld.p.Mp) return;
    ld.n0 = blockIdx.y * BN;
    ld.src = src; ld.wgt = wgt;
    ld.tabA = tabA + ph[4]; ld.tabB = tabB + ph[4]; ld.b_off = ph[4];
    ld.p.src_nstride = src_nstride; ld.p.Hs = Hs; ld.p.Ws = Ws;
    ld.p.ms_h = ms_h; ld.p.ms_w = ms_w; ld.p.off_h = off_h; ld.p.off_w = off_w;
    ld.p.ldb = ldb; ld.p.ncols = ncols;
    ld.p.dst_nstride = dst_nstride; ld.p.dst_cstride = dst_cstride; ld.p.Wd = Wd;
    ld.p.os_h = os_h; ld.p.os_w = os_w;
    ld.p.h_first = ph[0]; ld.p.w_first = ph[1]; ld.p.Hp = ph[2]; ld.p.Wp = ph[3];
    const int GK = ph[5];
    const int chunk = ceil_div_i(ceil_div_i(GK, splits), BK) * BK;
    const int kbeg = split * chunk;
    const int kend = min(GK, kbeg + chunk);
    ld.init();
    Core core;
    gemm_mainloop<Core, L, BK, ST>(core, ld, kbeg, kend);
    if constexpr (STAGED) {
        static_assert((BN / 2) * (BM + 1) * (int)sizeof(T) <= Pipe<Core, BK, ST>::BYTES,
                      "staged epilogue does not fit the pipeline's shared memory");
        extern __shared__ __align__(16) unsigned char dyn_smem[];
        core.store_staged(ld, dst + (long long)split * out_size, reinterpret_cast<T*>(dyn_smem));
    } else {
        core.store(ld, dst + (long long)split * out_size);
    }
}

// ---------------------------------------------------------------- narrow gather (ncols <= NC)
// Same GEMM as gather_gemm for outputs with very few columns (C = 3 images):
// a thread owns MT output rows (m, m + NT, ...) and all NC columns in registers,
// reads its A elements straight from global memory (each is used by this thread
// only), and takes the table and B rows of a KC-long chunk of GEMM_K from
// shared memory (broadcast reads). No tensor cores: FP32 (or FP64) FMAs, so the
// result is at least as accurate as the TF32 path.
// grid = (ceil(max Mp/(NT*MT)), 1, nphase*splits)
template <typename T, int NC, int MT, int KC, int NT>
__device__ __forceinline__ void narrow_gather(
    const T* src, const T* wgt, T* dst, const int4* tabA, const int* tabB, const int* phases,
    int src_nstride, int Hs, int Ws, int ms_h, int ms_w, int off_h, int off_w,
    int ldb, int ncols, int dst_nstride, int dst_cstride, int Wd, int os_h, int os_w,
    int splits, int out_size) {
    __shared__ int4 sta[KC];
    __shared__ T sb[KC][NC];
    const int z = blockIdx.z;
    const int phase = z / splits, split = z - phase * splits;
    const int* ph = phases + phase * 8;
    const int Mp = ph[6];
    const int m0 = blockIdx.x * (NT * MT);
    if (m0 >= Mp) return;
    const int h_first = ph[0], w_first = ph[1], Hp = ph[2], Wp = ph[3], toff = ph[4], GK = ph[5];
    const int chunk = ceil_div_i(ceil_div_i(GK, splits), KC) * KC;
    const int kbeg = split * chunk;
    const int kend = min(GK, kbeg + chunk);
    const int hw = Hp * Wp;
    int a_base[MT], a_h[MT], a_w[MT];
    bool a_ok[MT];
#pragma unroll
    for (int u = 0; u < MT; ++u) {
        const int m = m0 + threadIdx.x + u * NT;
        a_ok[u] = m < Mp;
        const int n = a_ok[u] ? m / hw : 0;
        const int ij = a_ok[u] ? m - n * hw : 0;
        const int i = ij / Wp, j = ij - (ij / Wp) * Wp;
        a_h[u] = i * ms_h + off_h;
        a_w[u] = j * ms_w + off_w;
        a_base[u] = n * src_nstride + a_h[u] * Ws + a_w[u];
    }
    T acc[MT][NC];
#pragma unroll
    for (int u = 0; u < MT; ++u)
#pragma unroll
        for (int c = 0; c < NC; ++c) acc[u][c] = T(0);
    for (int kc = kbeg; kc < kend; kc += KC) {
        __syncthreads();
        for (int i = threadIdx.x; i < KC; i += NT) {
            const int kk = kc + i;
            const bool ok = kk < kend;
            sta[i] = ok ? tabA[toff + kk] : make_int4(0, -(1 << 30), 0, 0);
            const int boff = ok ? tabB[toff + kk] : 0;
#pragma unroll
            for (int c = 0; c < NC; ++c) sb[i][c] = (ok && c < ncols) ? wgt[boff + c * ldb] : T(0);
        }
        __syncthreads();
        const int kn = min(KC, kend - kc);
#pragma unroll 4
        for (int i = 0; i < kn; ++i) {
            const int4 t = sta[i];
            T b[NC];
#pragma unroll
            for (int c = 0; c < NC; ++c) b[c] = sb[i][c];
#pragma unroll
            for (int u = 0; u < MT; ++u) {
                const bool v = a_ok[u] && (unsigned)(a_h[u] + t.y) < (unsigned)Hs &&
                               (unsigned)(a_w[u] + t.z) < (unsigned)Ws;
                const T a = v ? __ldg(src + a_base[u] + t.x) : T(0);
#pragma unroll
                for (int c = 0; c < NC; ++c) acc[u][c] = fma(a, b[c], acc[u][c]);
            }
        }
    }
    T* out = dst + (long long)split * out_size;
#pragma unroll
    for (int u = 0; u < MT; ++u) {
        if (!a_ok[u]) continue;
        const int m = m0 + threadIdx.x + u * NT;
        const int n = m / hw, ij = m - n * hw;
        const int i = ij / Wp, j = ij - i * Wp;
        const int base = n * dst_nstride + (h_first + i * os_h) * Wd + (w_first + j * os_w);
#pragma unroll
        for (int c = 0; c < NC; ++c)
            if (c < ncols) out[base + c * dst_cstride] = acc[u][c];
    }
}

// ---------------------------------------------------------------- split-K reduction
template <typename T>
__device__ __forceinline__ void splitk_reduce(const T* ws, T* out, int n, int splits) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        T s = T(0);
        for (int z = 0; z < splits; ++z) s += ws[(long long)z * n + i];
        out[i] = s;
    }
}

// Entry-point generators (extern "C" names for CuPy's RawModule).
// The 16 geometry integers travel as one int32 device array prm (built once per launch
// plan on the host, scratchgan/cuda/conv.py): one kernel argument instead of sixteen
// roughly halves the host's per-launch work, which the eager timings include.
#define GATHER_ARGS(T)                                                                          \
    const T *src, const T *wgt, T *dst, const int4 *tabA, const int *tabB, const int *phases,  \
        const int *__restrict__ prm
#define GATHER_UNPACK                                                                           \
    const int src_nstride = prm[0], Hs = prm[1], Ws = prm[2], ms_h = prm[3], ms_w = prm[4];   \
    const int off_h = prm[5], off_w = prm[6], ldb = prm[7], ncols = prm[8];                    \
    const int dst_nstride = prm[9], dst_cstride = prm[10], Wd = prm[11], os_h = prm[12];       \
    const int os_w = prm[13], splits = prm[14], out_size = prm[15];
#define GATHER_PASS                                                                             \
    src, wgt, dst, tabA, tabB, phases, src_nstride, Hs, Ws, ms_h, ms_w, off_h, off_w, ldb,      \
        ncols, dst_nstride, dst_cstride, Wd, os_h, os_w, splits, out_size

#define GATHER_SIMT_ENTRY(NAME, T, BM, BN, BK, TM, TN, ST)                                      \
    extern "C" __global__ void __launch_bounds__((BM / TM) * (BN / TN), 2)                       \
        NAME(GATHER_ARGS(T)) {                                                                  \
        GATHER_UNPACK                                                                           \
        gather_gemm<T, SimtCore<T, BM, BN, BK, TM, TN>, BM, BN, BK, ST, sizeof(T) == 4>(        \
            GATHER_PASS);                                                                       \
    }
// VB: vector-B loader (16-byte weight copies; the host checks ldb % 4 == 0 and alignment)
#define GATHER_MMA_ENTRY(NAME, BM, BN, BK, WM, WN, ST, VB)                                      \
    extern "C" __global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32, 2)                 \
        NAME(GATHER_ARGS(float)) {                                                              \
        GATHER_UNPACK                                                                           \
        gather_gemm<float, MmaCore<BM, BN, BK, WM, WN, true>, BM, BN, BK, ST, false, VB>(        \
            GATHER_PASS);                                                                       \
    }
// narrow entries: NAME_f32_nc<NC>_mt<MT> and NAME_f64_nc<NC>_mt<MT>, 256 threads, KC = 64
#define NARROW_ENTRY(NAME, T, NC, MT)                                                           \
    extern "C" __global__ void __launch_bounds__(256) NAME(GATHER_ARGS(T)) {                    \
        GATHER_UNPACK                                                                           \
        narrow_gather<T, NC, MT, 64, 256>(GATHER_PASS);                                         \
    }
#define NARROW_ENTRIES(PREFIX)                                                                  \
    NARROW_ENTRY(PREFIX##_f32_nc1_mt1, float, 1, 1)                                             \
    NARROW_ENTRY(PREFIX##_f32_nc2_mt4, float, 2, 4)                                             \
    NARROW_ENTRY(PREFIX##_f32_nc3_mt4, float, 3, 4)                                             \
    NARROW_ENTRY(PREFIX##_f32_nc4_mt4, float, 4, 4)                                             \
    NARROW_ENTRY(PREFIX##_f32_nc8_mt2, float, 8, 2)                                             \
    NARROW_ENTRY(PREFIX##_f64_nc1_mt1, double, 1, 1)                                            \
    NARROW_ENTRY(PREFIX##_f64_nc4_mt2, double, 4, 2)                                            \
    NARROW_ENTRY(PREFIX##_f64_nc8_mt1, double, 8, 1)
#define SPLITK_REDUCE_ENTRIES(PREFIX)                                                           \
    extern "C" __global__ void PREFIX##_reduce_f32(const float* ws, float* out, int n, int s) { \
        splitk_reduce<float>(ws, out, n, s);                                                    \
    }                                                                                           \
    extern "C" __global__ void PREFIX##_reduce_f64(const double* ws, double* out, int n, int s) { \
        splitk_reduce<double>(ws, out, n, s);                                                   \
    }
