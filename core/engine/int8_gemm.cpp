#include "engine/int8_gemm.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include <emmintrin.h>

namespace qs {

using kernels::kGemmMR;
using kernels::kGemmNR;

PackedWeights packWeights(const int8_t* w, int64_t K, int64_t N) { return packWeights(w, K, N, kernels::vnniSupported()); }

PackedWeights packWeights(const int8_t* w, int64_t K, int64_t N, bool vnni_layout) {
    PackedWeights p;
    p.K = K, p.N = N;
    p.pairs = (K + 1) / 2;
    p.panels = (N + kGemmNR - 1) / kGemmNR;
    p.data.assign(static_cast<size_t>(p.panels * p.pairs * kGemmNR * 2), 0);
    for (int64_t panel = 0; panel < p.panels; ++panel)
        for (int64_t k = 0; k < K; ++k)
            for (int64_t n = 0; n < kGemmNR; ++n) {
                const int64_t col = panel * kGemmNR + n;
                if (col >= N) break;
                p.data[static_cast<size_t>(((panel * p.pairs + k / 2) * kGemmNR + n) * 2 + k % 2)] = w[k * N + col];
            }
    p.col_sums.assign(static_cast<size_t>(p.panels * kGemmNR), 0);
    for (int64_t k = 0; k < K; ++k)
        for (int64_t col = 0; col < N; ++col) p.col_sums[static_cast<size_t>(col)] += w[k * N + col];
    if (!vnni_layout) return p;
    p.quads = (K + 3) / 4;
    p.quad_data.assign(static_cast<size_t>(p.panels * p.quads * kGemmNR * 4), 0);
    for (int64_t k = 0; k < K; ++k)
        for (int64_t col = 0; col < N; ++col) {
            const int64_t panel = col / kGemmNR, n = col % kGemmNR;
            p.quad_data[static_cast<size_t>(((panel * p.quads + k / 4) * kGemmNR + n) * 4 + k % 4)] = w[k * N + col];
        }
    p.quad_data.resize(p.quad_data.size() + kernels::kAmxWeightSlack, 0);  // what the AMX tiles read past the last panel
    return p;
}

namespace {

// Rows m0 .. m0 + 5 of A, minus the zero point, as int16 pairs; missing rows and the odd
// k are zero so they add nothing.
void packA(const int8_t* A, int64_t lda, int64_t rows, int64_t K, int32_t a_zero, int64_t pairs, int16_t* out) {
    if (rows < kGemmMR || K % 2) std::fill(out, out + pairs * kGemmMR * 2, int16_t(0));
    for (int64_t r = 0; r < rows; ++r) {
        const int8_t* row = A + r * lda;
        int16_t* o = out + r * 2;
        int64_t k = 0;
        for (; k + 1 < K; k += 2, o += kGemmMR * 2) {
            o[0] = static_cast<int16_t>(row[k] - a_zero);
            o[1] = static_cast<int16_t>(row[k + 1] - a_zero);
        }
        if (k < K) o[0] = static_cast<int16_t>(row[k] - a_zero);
    }
}

// Quad q of a row, int8 + 128 as uint8 (the sign bit flipped), to out[0..3].
void packQuad(const int8_t* row, int64_t q, uint8_t* out) {
    uint32_t v;
    std::memcpy(&v, row + 4 * q, 4);
    v ^= 0x80808080u;
    std::memcpy(out, &v, 4);
}

// Quads 0 .. nq - 1 of `rows` rows (row i's bytes from p[i], 4 * nq of them readable), as the
// VNNI kernels read them: int8 + 128 as uint8 (flipping the sign bit), `stride` rows
// interleaved per quad (kVnniMR for a tile, 1 for one row). Quads move as 32-bit words, four
// rows by four quads at a time through an SSE2 (baseline x86-64) 4 x 4 transpose: byte by
// byte, this packing took longer than the tiles' multiply-adds (256x784x256 to int32 on a Xeon
// with VNNI: 0.63 ms, the tiles alone 0.27 ms).
void packQuadRun(const int8_t* const* p, int64_t rows, int64_t stride, int64_t nq, uint8_t* out) {
    const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        int64_t q = 0;
        for (; q + 4 <= nq; q += 4) {
            __m128i v[4];
            for (int i = 0; i < 4; ++i) v[i] = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p[r + i] + 4 * q)), flip);
            const __m128i t0 = _mm_unpacklo_epi32(v[0], v[1]), t1 = _mm_unpacklo_epi32(v[2], v[3]);
            const __m128i t2 = _mm_unpackhi_epi32(v[0], v[1]), t3 = _mm_unpackhi_epi32(v[2], v[3]);
            const __m128i o[4] = {_mm_unpacklo_epi64(t0, t1), _mm_unpackhi_epi64(t0, t1), _mm_unpacklo_epi64(t2, t3),
                                  _mm_unpackhi_epi64(t2, t3)};  // o[j]: quad q + j of rows r .. r + 3
            for (int j = 0; j < 4; ++j) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + ((q + j) * stride + r) * 4), o[j]);
        }
        for (; q < nq; ++q)
            for (int i = 0; i < 4; ++i) packQuad(p[r + i], q, out + (q * stride + r + i) * 4);
    }
    for (; r < rows; ++r)
        for (int64_t q = 0; q < nq; ++q) packQuad(p[r], q, out + (q * stride + r) * 4);
}

// Rows m0 .. m0 + rows - 1 of a row-major A (K bytes each) for the VNNI kernels; missing rows
// and k past K are zero.
void packAQuads(const int8_t* A, int64_t lda, int64_t rows, int64_t stride, int64_t K, int64_t quads, uint8_t* out) {
    if (rows < stride || K % 4) std::fill(out, out + quads * stride * 4, uint8_t(0));
    const int8_t* p[kernels::kVnniMR] = {};
    for (int64_t i = 0; i < rows; ++i) p[i] = A + i * lda;
    const int64_t full = K / 4;
    packQuadRun(p, rows, stride, full, out);
    for (int64_t i = 0; i < rows; ++i)  // the last, partial quad
        for (int64_t k = 4 * full; k < K; ++k)
            out[(k / 4 * stride + i) * 4 + k % 4] = static_cast<uint8_t>(static_cast<uint8_t>(A[i * lda + k]) ^ 0x80u);
}

// Where a tile's patch rows m0 .. start (their first run: patch row m = (oy, ox) = (m / OW,
// m % OW) at src + oy * row_step + ox * col_step), for the Rows rows of `rows`; rows past M repeat
// the last one (computed, never stored). Returns how many are real.
template <class T, size_t Rows>
int64_t patchRowStarts(const T* src, int64_t OW, int64_t row_step, int64_t col_step, int64_t m0, int64_t M, const T* (&rows)[Rows]) {
    const int64_t n_rows = std::min<int64_t>(Rows, M - m0);
    int64_t oy = m0 / OW, ox = m0 % OW;  // one division a tile, then steps along the output rows
    for (int64_t i = 0; i < static_cast<int64_t>(Rows); ++i) {
        rows[i] = src + oy * row_step + ox * col_step;
        if (i + 1 < n_rows && ++ox == OW) ox = 0, ++oy;
    }
    return n_rows;
}

// What the VNNI kernels add to each column's sums: -(a_zero + 128) * colsum, in wrapping uint32
// like the int32 sums themselves (see int8_gemm_kernel.h); into s.correction.
void vnniCorrection(const PackedWeights& W, int32_t a_zero, GemmScratch& s) {
    s.correction.resize(W.col_sums.size());
    const uint32_t offset = static_cast<uint32_t>(a_zero + 128);
    for (size_t j = 0; j < W.col_sums.size(); ++j)
        s.correction[j] = static_cast<int32_t>(0u - static_cast<uint32_t>(W.col_sums[j]) * offset);
}

// Calls tile(b0, b1, n0, cols) for each pair of W's VNNI panels, b1 null for an odd last one: a
// VNNI tile's columns n0 .. n0 + cols - 1 (every VNNI driver's inner loop).
template <class Tile>
void forPanelPairs(const PackedWeights& W, Tile tile) {
    const int64_t panel_bytes = W.quads * kGemmNR * 4;
    for (int64_t panel = 0; panel < W.panels; panel += 2) {
        const int8_t* b0 = W.quad_data.data() + panel * panel_bytes;
        const int64_t n0 = panel * kGemmNR;
        tile(b0, panel + 1 < W.panels ? b0 + panel_bytes : nullptr, n0, std::min<int64_t>(2 * kGemmNR, W.N - n0));
    }
}

// Where a VNNI patch tile writes its sums: into the store's own block of rows when it has one
// (BlockedRequant::target), else the scratch tile.
template <class Store>
std::pair<int32_t*, int64_t> tileTarget(Store& store, GemmScratch& s, int64_t m0, int64_t rows, int64_t n0) {
    if constexpr (requires { store.target(m0, rows, n0); })
        return store.target(m0, rows, n0);
    else
        return {s.acc_vnni, kernels::kVnniAccStride};
}

// The AMX drivers over packed blocks (kernels::AmxTiles::rows): up to kAmxCallRows rows a kernel
// call (amxCalls). Fewer than kAmxMinRows rows stay on the VNNI row kernel.
constexpr int64_t kAmxCallRows = 4 * kernels::kAmxRows;
constexpr int64_t kAmxMinRows = 4;

kernels::AmxTiles amxSetup(const PackedWeights& W, int32_t a_zero, bool max4, GemmScratch& s) {
    vnniCorrection(W, a_zero, s);
    kernels::AmxTiles t;
    t.b = W.quad_data.data(), t.panel_bytes = W.quads * kGemmNR * 4, t.panels = W.panels;
    t.init = s.correction.data(), t.max4 = max4;
    t.acc_stride = W.panels * kGemmNR;
    s.sums.resize(static_cast<size_t>(kAmxCallRows * t.acc_stride));
    t.acc = s.sums.data();
    s.a_quads.resize(static_cast<size_t>(kernels::amxScratchBytes(W.quads, max4, kAmxCallRows / kernels::kAmxRows)));
    t.scratch = s.a_quads.data();
    s.amx_rows.resize(static_cast<size_t>(kAmxCallRows * (max4 ? 4 : 1)));
    t.rows = s.amx_rows.data();
    return t;
}

int64_t amxBlocks(int64_t rows) { return (rows + kernels::kAmxRows - 1) / kernels::kAmxRows; }

// The calls over M rows: for each call, rowStart(m, i) gives block row i (0 .. 16 * blocks - 1)
// its source for row m (the last row repeated past M), then the kernel runs and store() takes the
// call's rows with all their columns.
template <class RowStart, class Store>
void amxCalls(kernels::AmxTiles& t, int64_t M, int64_t N, kernels::AmxTilesKernel amx, RowStart rowStart, Store& store) {
    for (int64_t m0 = 0; m0 < M; m0 += kAmxCallRows) {
        const int64_t rows = std::min(kAmxCallRows, M - m0);
        t.blocks = amxBlocks(rows);
        for (int64_t i = 0; i < t.blocks * kernels::kAmxRows; ++i) rowStart(std::min(m0 + i, M - 1), i);
        amx(t);
        store(m0, rows, 0, N, t.acc, t.acc_stride);
    }
}

// A row-major matrix (int8, flipped to uint8 as the rows are packed).
template <class Store>
void amxMatrixTiles(const int8_t* A, int64_t lda, int64_t M, int32_t a_zero, const PackedWeights& W, GemmScratch& s,
                    kernels::AmxTilesKernel amx, Store store) {
    kernels::AmxTiles t = amxSetup(W, a_zero, false, s);
    t.run_quads = W.quads, t.run_bytes = W.K, t.flip = 0x80;
    const auto* a = reinterpret_cast<const uint8_t*>(A);
    amxCalls(t, M, W.N, amx, [&](int64_t m, int64_t i) { s.amx_rows[static_cast<size_t>(i)] = a + m * lda; }, store);
}

// Implicit patches (ImplicitPatches: uint8 already, whole quads readable).
kernels::AmxTiles amxPatchSetup(const ImplicitPatches& pa, const PackedWeights& W, int32_t a_zero, bool max4, GemmScratch& s) {
    kernels::AmxTiles t = amxSetup(W, a_zero, max4, s);
    t.runs = pa.KH, t.run_step = pa.dh * pa.row_bytes, t.run_quads = pa.run_quads, t.run_bytes = 4 * pa.run_quads;
    return t;
}

template <class Store>
void amxPatchTiles(const ImplicitPatches& pa, int64_t M, int32_t a_zero, const PackedWeights& W, GemmScratch& s,
                   kernels::AmxTilesKernel amx, Store store) {
    kernels::AmxTiles t = amxPatchSetup(pa, W, a_zero, false, s);
    const auto* src = reinterpret_cast<const uint8_t*>(pa.src);
    const int64_t row_step = pa.sh * pa.row_bytes;
    amxCalls(t, M, W.N, amx, [&](int64_t m, int64_t i) {
        s.amx_rows[static_cast<size_t>(i)] = src + m / pa.OW * row_step + m % pa.OW * pa.sw_bytes;
    }, store);
}

// With a 2x2, stride-2 max pooling inside the output: block rows are pooled pixels (p = py * PW +
// px), each block's four cells 16 rows apart (AmxTiles::max4).
template <class Store>
void amxPooledTiles(const ImplicitPatches& pa, int64_t PH, int64_t PW, int32_t a_zero, const PackedWeights& W, GemmScratch& s,
                    kernels::AmxTilesKernel amx, Store store) {
    kernels::AmxTiles t = amxPatchSetup(pa, W, a_zero, true, s);
    const auto* src = reinterpret_cast<const uint8_t*>(pa.src);
    const int64_t row_step = pa.sh * pa.row_bytes;
    amxCalls(t, PH * PW, W.N, amx, [&](int64_t p, int64_t i) {
        const int64_t oy = 2 * (p / PW), ox = 2 * (p % PW), block = i / kernels::kAmxRows, r = i % kernels::kAmxRows;
        for (int64_t c = 0; c < 4; ++c)
            s.amx_rows[static_cast<size_t>((4 * block + c) * kernels::kAmxRows + r)] = src + (oy + c / 2) * row_step + (ox + c % 2) * pa.sw_bytes;
    }, store);
}

// The VNNI driver over implicit patches: 8-row tiles read in place (a last, partial tile repeats
// its last row and stores only its own); store as for gemmTilesVnni.
template <class Store>
void patchTilesVnni(const ImplicitPatches& pa, int64_t M, int32_t a_zero, const PackedWeights& W, GemmScratch& s,
                    const kernels::VnniKernels& k, Store&& store) {
    using kernels::kVnniMR;
    vnniCorrection(W, a_zero, s);
    const uint8_t* rows[kVnniMR];
    const auto* src = reinterpret_cast<const uint8_t*>(pa.src);
    for (int64_t m0 = 0; m0 < M; m0 += kVnniMR) {
        const int64_t n_rows = patchRowStarts(src, pa.OW, pa.sh * pa.row_bytes, pa.sw_bytes, m0, M, rows);
        forPanelPairs(W, [&](const int8_t* b0, const int8_t* b1, int64_t n0, int64_t cols) {
            const auto [acc, stride] = tileTarget(store, s, m0, n_rows, n0);
            k.tile_rows(rows, pa.KH, pa.dh * pa.row_bytes, pa.run_quads, b0, b1, s.correction.data() + n0, acc, stride);
            store(m0, n_rows, n0, cols, acc, stride);
        });
    }
}

// The VNNI driver over implicit patches with a 2x2, stride-2 max pooling inside the output: a tile
// is two pooled pixels' four window cells each (tile_rows_max4), so store(p0, pixels, n0, cols,
// acc, stride) gets pooled pixels p0 .. (p = py * PW + px, from output rows 2py, 2py + 1 and
// columns 2px, 2px + 1); an odd last pixel is computed twice and stored once.
template <class Store>
void pooledTilesVnni(const ImplicitPatches& pa, int64_t PH, int64_t PW, int32_t a_zero, const PackedWeights& W, GemmScratch& s,
                     const kernels::VnniKernels& k, Store&& store) {
    static_assert(kernels::kVnniMR == 8);  // two windows of four
    vnniCorrection(W, a_zero, s);
    const int64_t P = PH * PW, row_step = pa.sh * pa.row_bytes;
    const auto* src = reinterpret_cast<const uint8_t*>(pa.src);
    const uint8_t* rows[kernels::kVnniMR];
    for (int64_t p0 = 0; p0 < P; p0 += 2) {
        for (int64_t i = 0; i < 2; ++i) {
            const int64_t p = std::min(p0 + i, P - 1), oy = 2 * (p / PW), ox = 2 * (p % PW);
            for (int64_t c = 0; c < 4; ++c) rows[4 * i + c] = src + (oy + c / 2) * row_step + (ox + c % 2) * pa.sw_bytes;
        }
        forPanelPairs(W, [&](const int8_t* b0, const int8_t* b1, int64_t n0, int64_t cols) {
            const int64_t pixels = std::min<int64_t>(2, P - p0);
            const auto [acc, stride] = tileTarget(store, s, p0, pixels, n0);
            k.tile_rows_max4(rows, pa.KH, pa.dh * pa.row_bytes, pa.run_quads, b0, b1, s.correction.data() + n0, acc, stride);
            store(p0, pixels, n0, cols, acc, stride);
        });
    }
}

// The VNNI driver; pack(m0, rows, stride, out) packs A's rows m0 .. m0 + rows - 1 (packAQuads,
// packPatchQuads); store(m0, rows, n0, cols, acc, acc_stride) takes the sums of rows m0 ..,
// columns n0 .. n0 + cols - 1, row r at acc + r * acc_stride (the same for gemmTiles).
template <class Pack, class Store>
void gemmTilesVnni(int64_t M, int32_t a_zero, const PackedWeights& W, GemmScratch& s, const kernels::VnniKernels& k, Pack pack,
                   Store store) {
    using kernels::kVnniAccStride;
    using kernels::kVnniMR;
    vnniCorrection(W, a_zero, s);
    s.a_quads.resize(static_cast<size_t>(W.quads * kVnniMR * 4));
    const int64_t panel_bytes = W.quads * kGemmNR * 4;
    int32_t row_acc[kGemmNR];
    // A tile costs about as much as kVnniMR / 2 single-row passes: fewer leftover rows go one
    // at a time (batch 1), more go through a zero-padded tile.
    const int64_t rest = M % kVnniMR, tiled = rest >= kVnniMR / 2 ? M : M - rest;
    for (int64_t m = tiled; m < M; ++m) {
        pack(m, 1, 1, s.a_quads.data());
        for (int64_t panel = 0; panel < W.panels; ++panel) {
            const int64_t n0 = panel * kGemmNR, cols = std::min<int64_t>(kGemmNR, W.N - n0);
            k.row(s.a_quads.data(), W.quad_data.data() + panel * panel_bytes, W.quads, s.correction.data() + n0, row_acc);
            store(m, 1, n0, cols, row_acc, 0);
        }
    }
    for (int64_t m0 = 0; m0 < tiled; m0 += kVnniMR) {
        const int64_t rows = std::min<int64_t>(kVnniMR, tiled - m0);
        pack(m0, rows, kVnniMR, s.a_quads.data());
        forPanelPairs(W, [&](const int8_t* b0, const int8_t* b1, int64_t n0, int64_t cols) {
            k.tile(s.a_quads.data(), b0, b1, W.quads, s.correction.data() + n0, s.acc_vnni);
            store(m0, rows, n0, cols, s.acc_vnni, kVnniAccStride);  // both panels' columns at once
        });
    }
}

// A's rows for the VNNI driver, from a row-major matrix.
auto matrixRows(const int8_t* A, int64_t lda, const PackedWeights& W) {
    const int64_t K = W.K, quads = W.quads;  // not W itself: [=] would copy the packed weights
    return [=](int64_t m0, int64_t rows, int64_t stride, uint8_t* out) { packAQuads(A + m0 * lda, lda, rows, stride, K, quads, out); };
}

kernels::VnniKernels nativeVnni() {
    return {kernels::gemmTileVnni,          kernels::gemmRowVnni,      kernels::gemmTileRowsVnni, kernels::gemmTileRowsMax4Vnni,
            kernels::smallConvRowVnni, kernels::amxActive() ? kernels::amxTiles : nullptr};
}

// Implicit patches' raw sums (a store per block of rows, not BlockedRequant, which the
// requantizing drivers choose themselves): through AMX where k has it, else the VNNI tiles.
template <class Store>
void patchTiles(const ImplicitPatches& pa, int64_t M, int32_t a_zero, const PackedWeights& W, GemmScratch& s,
                const kernels::VnniKernels& k, Store store) {
    if (k.amx) return amxPatchTiles(pa, M, a_zero, W, s, k.amx, store);
    patchTilesVnni(pa, M, a_zero, W, s, k, store);
}
template <class Store>
void pooledTiles(const ImplicitPatches& pa, int64_t PH, int64_t PW, int32_t a_zero, const PackedWeights& W, GemmScratch& s,
                 const kernels::VnniKernels& k, Store store) {
    if (k.amx) return amxPooledTiles(pa, PH, PW, a_zero, W, s, k.amx, store);
    pooledTilesVnni(pa, PH, PW, a_zero, W, s, k, store);
}

// A matrix through AMX where k has it and there are rows enough to fill some of a block (one row
// costs the VNNI row kernel less than a 16-row block), else the VNNI tiles.
template <class Store>
void matrixTilesVnni(const int8_t* A, int64_t lda, int64_t M, int32_t a_zero, const PackedWeights& W, GemmScratch& s,
                     const kernels::VnniKernels& k, Store store) {
    if (k.amx && M >= kAmxMinRows) return amxMatrixTiles(A, lda, M, a_zero, W, s, k.amx, store);
    gemmTilesVnni(M, a_zero, W, s, k, matrixRows(A, lda, W), store);
}

bool vnniPath(const PackedWeights& W) {
    return kernels::activeIsa() == kernels::Isa::Avx512 && !W.quad_data.empty() && kernels::vnniSupported();
}

template <class Store>
void gemmTiles(const int8_t* A, int64_t lda, int64_t M, int32_t a_zero, const PackedWeights& W, GemmScratch& s, Store store) {
    if (vnniPath(W)) return matrixTilesVnni(A, lda, M, a_zero, W, s, nativeVnni(), store);
    const kernels::GemmTileKernel tile = kernels::gemmTileKernel(kernels::activeIsa());
    const kernels::GemmRowKernel row_kernel = kernels::gemmRowKernel(kernels::activeIsa());
    s.a.resize(static_cast<size_t>(W.pairs * kGemmMR * 2));
    // As on the VNNI path: a tile costs about kGemmMR / 2 single-row passes, so fewer leftover rows
    // go one at a time (batch 1 would otherwise compute 6 rows), more through a zero-padded tile.
    const int64_t rest = M % kGemmMR, full = rest >= kGemmMR / 2 ? M : M - rest;
    for (int64_t m = full; m < M; ++m) {
        const int8_t* row = A + m * lda;
        for (int64_t k = 0; k < W.pairs * 2; ++k) s.a[static_cast<size_t>(k)] = k < W.K ? static_cast<int16_t>(row[k] - a_zero) : 0;
        for (int64_t panel = 0; panel < W.panels; ++panel) {
            row_kernel(s.a.data(), W.data.data() + panel * W.pairs * kGemmNR * 2, W.pairs, s.acc);
            const int64_t n0 = panel * kGemmNR;
            store(m, 1, n0, std::min<int64_t>(kGemmNR, W.N - n0), s.acc, 0);
        }
    }
    for (int64_t m0 = 0; m0 < full; m0 += kGemmMR) {
        const int64_t rows = std::min<int64_t>(kGemmMR, full - m0);
        packA(A + m0 * lda, lda, rows, W.K, a_zero, W.pairs, s.a.data());
        for (int64_t panel = 0; panel < W.panels; ++panel) {
            tile(s.a.data(), W.data.data() + panel * W.pairs * kGemmNR * 2, W.pairs, s.acc);
            const int64_t n0 = panel * kGemmNR, cols = std::min<int64_t>(kGemmNR, W.N - n0);
            store(m0, rows, n0, cols, s.acc, kGemmNR);
        }
    }
}

}  // namespace

bool splitMultipliers(const std::vector<FixedMultiplier>& mult, std::vector<int32_t>& m, std::vector<int32_t>& rshift) {
    m.clear();
    rshift.clear();
    for (const FixedMultiplier& f : mult)
        if (f.shift > 0) return false;
    for (const FixedMultiplier& f : mult) m.push_back(f.multiplier), rshift.push_back(-f.shift);
    return true;
}

void splitMultipliers(const std::vector<FixedMultiplier>& mult, std::vector<int32_t>& m, std::vector<int32_t>& rshift,
                      std::vector<int32_t>& lshift) {
    m.clear(), rshift.clear(), lshift.clear();
    for (const FixedMultiplier& f : mult) {
        m.push_back(f.multiplier);
        rshift.push_back(f.shift > 0 ? 0 : -f.shift);
        lshift.push_back(f.shift > 0 ? f.shift : 0);
    }
    if (std::all_of(lshift.begin(), lshift.end(), [](int32_t s) { return s == 0; })) lshift.clear();
}

namespace {
// (acc + bias) * 2^lshift saturated to int32 (multiplyByQuantizedMultiplier's first step), for
// rows x cols sums, into `out` (cols apart); plain loops the clones vectorise.
__attribute__((target_clones("avx2", "default"))) void shiftLeftSaturating(const int32_t* acc, int64_t stride, int64_t rows, int64_t cols,
                                                                             const int32_t* bias, const int32_t* lshift, int32_t* out) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols; ++j) {
            const int64_t v = static_cast<int64_t>(acc[r * stride + j] + bias[j]) * (int64_t{1} << lshift[j]);
            out[r * cols + j] = static_cast<int32_t>(std::clamp<int64_t>(v, INT32_MIN, INT32_MAX));
        }
}
}  // namespace

void requantRows(const int32_t* acc, int64_t stride, int64_t rows, int64_t n0, int64_t cols, const Requant& rq, int8_t* out,
                 int64_t ldc) {
    if (rq.m && rq.rshift && rq.lshift) {  // some multiplier above 1: shift first, then the usual stage, bias 0
        thread_local std::vector<int32_t> shifted, zeros;
        shifted.resize(static_cast<size_t>(rows * cols));
        if (zeros.size() < static_cast<size_t>(n0 + cols)) zeros.assign(static_cast<size_t>(n0 + cols), 0);
        shiftLeftSaturating(acc, stride, rows, cols, rq.bias + n0, rq.lshift + n0, shifted.data());
        Requant plain = rq;
        plain.bias = zeros.data();
        plain.lshift = nullptr;
        return requantRows(shifted.data(), cols, rows, n0, cols, plain, out, ldc);
    }
    if (rq.m && rq.rshift && kernels::activeIsa() == kernels::Isa::Avx512)
        return kernels::requantRowsAvx512(acc, stride, rows, rq.bias + n0, rq.m + n0, rq.rshift + n0, rq.zero_point, rq.lo, rq.hi, cols,
                                          out, ldc);
    if (rq.m && rq.rshift) {  // vectorised when the multipliers split (Requant::m)
        const kernels::RequantRowKernel row = kernels::requantRowKernel(kernels::activeIsa());
        for (int64_t r = 0; r < rows; ++r)
            row(acc + r * stride, rq.bias + n0, rq.m + n0, rq.rshift + n0, rq.zero_point, rq.lo, rq.hi, cols, out + r * ldc);
        return;
    }
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols; ++j)
            out[r * ldc + j] = static_cast<int8_t>(
                requantize(acc[r * stride + j] + rq.bias[n0 + j], rq.mult[n0 + j], rq.zero_point, rq.lo, rq.hi));
}

namespace {
// gemmRequant's store: the output stage straight from the tile's sums.
auto requantStore(const Requant& rq, int8_t* C, int64_t ldc) {
    return [&rq, C, ldc](int64_t m0, int64_t rows, int64_t n0, int64_t cols, const int32_t* acc, int64_t stride) {
        requantRows(acc, stride, rows, n0, cols, rq, C + m0 * ldc + n0, ldc);
    };
}

// The output stage over blocks of rows instead of tile by tile: the VNNI patch tiles write their
// sums straight into a block of kRows rows (target(); 16 KiB at 64 columns) and requantRows runs
// once per block. A pooled tile holds two rows, so tile by tile the stage spent most of its time
// loading and preparing each column group's constants; per block they are loaded once for kRows
// rows, and the rows' independent chains overlap. The drivers ask for a tile's target with its
// columns in increasing order, n0 = 0 first, and tiles in increasing m0, so a block is complete
// when a tile that does not fit begins.
class BlockedRequant {
public:
    static constexpr int64_t kRows = 64;
    BlockedRequant(const Requant& rq, int8_t* C, int64_t ldc, int64_t N, std::vector<int32_t>& sums)
        : rq_(rq), C_(C), ldc_(ldc), N_(N), stride_((N + 2 * kGemmNR - 1) / (2 * kGemmNR) * 2 * kGemmNR), sums_(sums) {
        // A tile writes whole panel pairs (stride_ columns) and, the last one, kVnniMR rows
        sums_.resize(static_cast<size_t>((kRows + kernels::kVnniMR) * stride_));
    }
    std::pair<int32_t*, int64_t> target(int64_t m0, int64_t rows, int64_t n0) {
        if (n0 == 0 && m0 + rows - first_ > kRows) flush(), first_ = m0;
        end_ = std::max(end_, m0 + rows);
        return {sums_.data() + (m0 - first_) * stride_ + n0, stride_};
    }
    void operator()(int64_t, int64_t, int64_t, int64_t, const int32_t*, int64_t) {}  // the sums are in the block already
    void flush() {
        if (end_ > first_) requantRows(sums_.data(), stride_, end_ - first_, 0, N_, rq_, C_ + first_ * ldc_, ldc_);
        first_ = end_;
    }

private:
    const Requant& rq_;
    int8_t* C_;
    int64_t ldc_, N_, stride_;
    std::vector<int32_t>& sums_;
    int64_t first_ = 0, end_ = 0;
};
}  // namespace

void gemmRequant(const int8_t* A, int64_t lda, int64_t M, int32_t a_zero, const PackedWeights& W, const Requant& rq,
                 int8_t* C, int64_t ldc, GemmScratch& scratch) {
    gemmTiles(A, lda, M, a_zero, W, scratch, requantStore(rq, C, ldc));
}

bool implicitPatchesSupported(const PackedWeights& W) { return vnniPath(W); }

bool implicitPairPatchesSupported(const PackedWeights& W) { return kernels::activeIsa() != kernels::Isa::Portable && !vnniPath(W); }

namespace {
// The AVX2 driver over implicit pair patches: 6-row tiles read in place (a last, partial tile
// repeats its last row and stores only its own).
template <class Store>
void pairPatchTiles(const ImplicitPairPatches& pa, int64_t M, const PackedWeights& W, GemmScratch& s, Store store) {
    const int16_t* rows[kGemmMR];
    for (int64_t m0 = 0; m0 < M; m0 += kGemmMR) {
        const int64_t n_rows = patchRowStarts(pa.src, pa.OW, pa.sh * pa.row, pa.sw, m0, M, rows);
        for (int64_t panel = 0; panel < W.panels; ++panel) {
            kernels::gemmTileRowsAvx2(rows, pa.KH, pa.dh * pa.row, pa.run_pairs, W.data.data() + panel * W.pairs * kGemmNR * 2, s.acc);
            const int64_t n0 = panel * kGemmNR;
            store(m0, n_rows, n0, std::min<int64_t>(kGemmNR, W.N - n0), s.acc, kGemmNR);
        }
    }
}
}  // namespace

void gemmRequantPairPatches(const ImplicitPairPatches& pa, int64_t M, const PackedWeights& W, const Requant& rq, int8_t* C,
                            int64_t ldc, GemmScratch& scratch) {
    pairPatchTiles(pa, M, W, scratch, requantStore(rq, C, ldc));
}

namespace {
// A convolution a few quads deep and at most two panels wide runs as rows of pixels with the
// output stage in registers (kernels::VnniSmallConvRow) when its multipliers split with no left
// shift; anything else through the tiles and the blocked output stage.
bool smallConvApplies(const ImplicitPatches& pa, const PackedWeights& W, const Requant& rq) {
    return pa.KH * pa.run_quads <= kernels::kVnniSmallQuads && W.panels <= 2 && rq.m && rq.rshift && !rq.lshift;
}

// The small-convolution rows over `pixels` output pixels (pooled ones with `pool`), `per_row` a
// call: row y's first pixel (its window's top-left cell) at output row y (2y when pooling), its
// outputs from C + y * per_row * ldc; a last row may be partial.
void smallConvRows(const ImplicitPatches& pa, bool pool, int64_t pixels, int64_t per_row, int32_t a_zero, const PackedWeights& W,
                   const Requant& rq, int8_t* C, int64_t ldc, GemmScratch& s, const kernels::VnniKernels& k) {
    vnniCorrection(W, a_zero, s);
    kernels::VnniSmallConvRow r;
    r.pool = pool;
    r.cell_row = pa.sh * pa.row_bytes, r.cell_col = pa.sw_bytes, r.pixel_step = (pool ? 2 : 1) * pa.sw_bytes;
    r.run_step = pa.dh * pa.row_bytes, r.runs = pa.KH, r.run_quads = pa.run_quads;
    r.b0 = W.quad_data.data();
    r.b1 = W.panels > 1 ? r.b0 + W.quads * kGemmNR * 4 : nullptr;
    r.init = s.correction.data();
    r.bias = rq.bias, r.m = rq.m, r.rshift = rq.rshift;
    r.zero_point = rq.zero_point, r.lo = rq.lo, r.hi = rq.hi;
    r.cols = W.N, r.out_stride = ldc;
    const auto* src = reinterpret_cast<const uint8_t*>(pa.src);
    for (int64_t p0 = 0, y = 0; p0 < pixels; p0 += per_row, ++y) {
        r.src = src + y * (pool ? 2 : 1) * r.cell_row;
        r.count = std::min(per_row, pixels - p0);
        r.out = C + p0 * ldc;
        k.small_conv_row(r);
    }
}

// AMX reading a convolution's rows in place (kernels::AmxTiles::a): with the padded input's rows
// row_bytes apart and pixels sw_bytes apart, output pixel (oy, ox) starts at virtual row
// v = oy * Wv + ox, Wv = sh * row_bytes / sw_bytes: every tile row is the same distance from the
// next, across output rows too. Tiles compute the Wv - OW virtual pixels between output rows as
// well (2 of 16 on fmnist_cnn's second convolution) but nothing is packed: packing each window
// cell's 3x3 patch cost about as much as the products. K is padded per kernel row to whole chunks
// (PackedWeights::amx_data). The raw sums get init through the output stage's bias (a per-column
// constant: the maximum of a window is the same either way while the raw sums cannot wrap, which
// amxInPlace checks), and only multipliers <= 1 (no left shift) take this path.
struct AmxInPlace {
    kernels::AmxTiles t;
    int64_t Wv = 0;
    Requant rq;  // bias + init
};

// Whether the tiles may read in place, the last call covering virtual rows v0 .. v0 + rows - 1.
bool amxInPlaceApplies(const ImplicitPatches& pa, const PackedWeights& W, const Requant& rq, int64_t v0, int64_t rows) {
    if (W.amx_data.empty() || W.amx_runs != pa.KH || pa.readable <= 0 || !rq.m || !rq.rshift || rq.lshift) return false;
    if (pa.sw_bytes <= 0 || (pa.sh * pa.row_bytes) % pa.sw_bytes) return false;
    if (W.amx_runs * W.amx_run_chunks * kernels::kAmxRows * 4 * 255 * 128 >= (int64_t{1} << 31)) return false;  // raw sums could wrap
    // The last tile's last row reads up to its last kernel row's padded end.
    const int64_t last = v0 + amxBlocks(rows) * kernels::kAmxRows - 1;
    return last * pa.sw_bytes + (pa.KH - 1) * pa.dh * pa.row_bytes + W.amx_run_chunks * kernels::kAmxRows * 4 <= pa.readable;
}

// extra_rows: room after the tiles' sums (the pooled rows).
AmxInPlace amxInPlaceSetup(const ImplicitPatches& pa, int32_t a_zero, const PackedWeights& W, const Requant& rq, int64_t rows,
                           int64_t extra_rows, GemmScratch& s) {
    vnniCorrection(W, a_zero, s);
    AmxInPlace c;
    c.Wv = pa.sh * pa.row_bytes / pa.sw_bytes;
    kernels::AmxTiles& t = c.t;
    t.a_stride = pa.sw_bytes, t.runs = pa.KH, t.run_step = pa.dh * pa.row_bytes, t.run_chunks = W.amx_run_chunks;
    t.b = W.amx_data.data(), t.panel_bytes = W.amx_runs * W.amx_run_chunks * kernels::kAmxRows * kGemmNR * 4, t.panels = W.panels;
    t.acc_stride = W.panels * kGemmNR;
    s.sums.resize(static_cast<size_t>((amxBlocks(rows) * kernels::kAmxRows + extra_rows) * t.acc_stride));
    t.acc = s.sums.data();
    s.amx_bias.resize(static_cast<size_t>(W.N));
    for (int64_t n = 0; n < W.N; ++n)  // wrapping, as the sums (int8_gemm_kernel.h)
        s.amx_bias[static_cast<size_t>(n)] =
            static_cast<int32_t>(static_cast<uint32_t>(rq.bias[n]) + static_cast<uint32_t>(s.correction[static_cast<size_t>(n)]));
    c.rq = rq;
    c.rq.bias = s.amx_bias.data();
    return c;
}

// The tiles over virtual rows v0 .. v0 + rows - 1 into s.sums (row v0 first).
void amxInPlaceRows(AmxInPlace& c, const ImplicitPatches& pa, int64_t v0, int64_t rows, kernels::AmxTilesKernel amx) {
    c.t.a = reinterpret_cast<const uint8_t*>(pa.src) + v0 * pa.sw_bytes;
    c.t.blocks = amxBlocks(rows);
    amx(c.t);
}

// dst[j] = max(a[j], b[j], c[j], d[j]): a 2x2 window's sums, four rows of them.
__attribute__((target_clones("avx2", "default"))) void maxOf4(const int32_t* a, const int32_t* b, const int32_t* c, const int32_t* d,
                                                               int32_t* dst, int64_t n) {
    for (int64_t j = 0; j < n; ++j) dst[j] = std::max(std::max(a[j], b[j]), std::max(c[j], d[j]));
}

// A band of whole output rows a call (about 64 virtual rows), each row's OW pixels requantized.
// False (nothing done) where the tiles may not read in place.
bool amxInPlaceRequant(const ImplicitPatches& pa, int64_t M, int32_t a_zero, const PackedWeights& W, const Requant& rq, int8_t* C,
                       int64_t ldc, GemmScratch& s, kernels::AmxTilesKernel amx) {
    if (pa.sw_bytes <= 0 || M % pa.OW) return false;
    const int64_t OH = M / pa.OW, Wv = pa.sh * pa.row_bytes / pa.sw_bytes;
    const int64_t band = std::max<int64_t>(1, kAmxCallRows / std::max<int64_t>(1, Wv)), last = (OH - 1) / band * band;
    if (!amxInPlaceApplies(pa, W, rq, last * Wv, (OH - 1 - last) * Wv + pa.OW)) return false;
    AmxInPlace c = amxInPlaceSetup(pa, a_zero, W, rq, (band - 1) * Wv + pa.OW, 0, s);
    for (int64_t oy0 = 0; oy0 < OH; oy0 += band) {
        const int64_t rows = std::min(band, OH - oy0);
        amxInPlaceRows(c, pa, oy0 * Wv, (rows - 1) * Wv + pa.OW, amx);
        for (int64_t r = 0; r < rows; ++r)
            requantRows(c.t.acc + r * Wv * c.t.acc_stride, c.t.acc_stride, pa.OW, 0, W.N, c.rq, C + (oy0 + r) * pa.OW * ldc, ldc);
    }
    return true;
}

// Each pooled row from its two output rows (one call), its windows' maxima, then requantized.
bool amxInPlaceMaxPool2(const ImplicitPatches& pa, int64_t PH, int64_t PW, int32_t a_zero, const PackedWeights& W, const Requant& rq,
                        int8_t* C, int64_t ldc, GemmScratch& s, kernels::AmxTilesKernel amx) {
    if (pa.sw_bytes <= 0) return false;
    const int64_t Wv = pa.sh * pa.row_bytes / pa.sw_bytes, rows = Wv + 2 * PW;
    if (!amxInPlaceApplies(pa, W, rq, 2 * (PH - 1) * Wv, rows)) return false;
    AmxInPlace c = amxInPlaceSetup(pa, a_zero, W, rq, rows, PW, s);
    const int64_t stride = c.t.acc_stride;
    for (int64_t py = 0; py < PH; ++py) {
        amxInPlaceRows(c, pa, 2 * py * Wv, rows, amx);
        int32_t* pooled = c.t.acc + amxBlocks(rows) * kernels::kAmxRows * stride;  // after the tiles' sums
        for (int64_t px = 0; px < PW; ++px) {
            const int32_t* top = c.t.acc + 2 * px * stride;
            maxOf4(top, top + stride, top + Wv * stride, top + (Wv + 1) * stride, pooled + px * stride, W.N);
        }
        requantRows(pooled, stride, PW, 0, W.N, c.rq, C + py * PW * ldc, ldc);
    }
    return true;
}

void requantPatchesVnni(const ImplicitPatches& pa, int64_t M, int32_t a_zero, const PackedWeights& W, const Requant& rq, int8_t* C,
                        int64_t ldc, GemmScratch& s, const kernels::VnniKernels& k) {
    if (smallConvApplies(pa, W, rq)) return smallConvRows(pa, false, M, pa.OW, a_zero, W, rq, C, ldc, s, k);
    if (k.amx && amxInPlaceRequant(pa, M, a_zero, W, rq, C, ldc, s, k.amx)) return;
    if (k.amx) return amxPatchTiles(pa, M, a_zero, W, s, k.amx, requantStore(rq, C, ldc));
    BlockedRequant block(rq, C, ldc, W.N, s.sums);
    patchTilesVnni(pa, M, a_zero, W, s, k, block);
    block.flush();
}

void requantPatchesMaxPool2Vnni(const ImplicitPatches& pa, int64_t PH, int64_t PW, int32_t a_zero, const PackedWeights& W,
                                const Requant& rq, int8_t* C, int64_t ldc, GemmScratch& s, const kernels::VnniKernels& k) {
    if (smallConvApplies(pa, W, rq)) return smallConvRows(pa, true, PH * PW, PW, a_zero, W, rq, C, ldc, s, k);
    if (k.amx && amxInPlaceMaxPool2(pa, PH, PW, a_zero, W, rq, C, ldc, s, k.amx)) return;
    if (k.amx) return amxPooledTiles(pa, PH, PW, a_zero, W, s, k.amx, requantStore(rq, C, ldc));
    BlockedRequant block(rq, C, ldc, W.N, s.sums);
    pooledTilesVnni(pa, PH, PW, a_zero, W, s, k, block);
    block.flush();
}
}  // namespace

void gemmRequantPatches(const ImplicitPatches& pa, int64_t M, int32_t a_zero, const PackedWeights& W, const Requant& rq,
                        int8_t* C, int64_t ldc, GemmScratch& scratch) {
    requantPatchesVnni(pa, M, a_zero, W, rq, C, ldc, scratch, nativeVnni());
}

void gemmRequantPatchesMaxPool2(const ImplicitPatches& pa, int64_t PH, int64_t PW, int32_t a_zero, const PackedWeights& W,
                                const Requant& rq, int8_t* C, int64_t ldc, GemmScratch& scratch) {
    requantPatchesMaxPool2Vnni(pa, PH, PW, a_zero, W, rq, C, ldc, scratch, nativeVnni());
}

void detail::gemmRequantPatchesVnni(const ImplicitPatches& pa, int64_t M, int32_t a_zero, const PackedWeights& W, const Requant& rq,
                                    int8_t* C, int64_t ldc, GemmScratch& scratch, const kernels::VnniKernels& k) {
    requantPatchesVnni(pa, M, a_zero, W, rq, C, ldc, scratch, k);
}

void detail::gemmRequantPatchesMaxPool2Vnni(const ImplicitPatches& pa, int64_t PH, int64_t PW, int32_t a_zero, const PackedWeights& W,
                                            const Requant& rq, int8_t* C, int64_t ldc, GemmScratch& scratch,
                                            const kernels::VnniKernels& k) {
    requantPatchesMaxPool2Vnni(pa, PH, PW, a_zero, W, rq, C, ldc, scratch, k);
}

PackedWeights packPatchWeights(const int8_t* w, int64_t KH, int64_t run, int64_t N) {
    return packPatchWeights(w, KH, run, N, kernels::vnniSupported());
}

PackedWeights packPatchWeights(const int8_t* w, int64_t KH, int64_t run, int64_t N, bool vnni_layout) {
    const int64_t padded = (run + 3) / 4 * 4;
    std::vector<int8_t> rows(static_cast<size_t>(KH * padded * N), 0);  // each kernel row padded with zero weights
    for (int64_t ky = 0; ky < KH; ++ky)
        std::copy(w + ky * run * N, w + (ky + 1) * run * N, rows.begin() + ky * padded * N);
    return packWeights(rows.data(), KH * padded, N, vnni_layout);
}

void addAmxConvLayout(PackedWeights& W, int64_t runs) {
    if (W.quad_data.empty() || runs <= 0 || W.quads % runs) return;
    const int64_t run_quads = W.quads / runs, chunks = kernels::amxChunks(run_quads), quad_bytes = kGemmNR * 4;
    W.amx_runs = runs, W.amx_run_chunks = chunks;
    W.amx_data.assign(static_cast<size_t>(W.panels * runs * chunks * kernels::kAmxRows * quad_bytes), 0);
    for (int64_t p = 0; p < W.panels; ++p)
        for (int64_t j = 0; j < runs; ++j)
            std::copy_n(W.quad_data.begin() + ((p * W.quads + j * run_quads) * quad_bytes), run_quads * quad_bytes,
                        W.amx_data.begin() + ((p * runs + j) * chunks * kernels::kAmxRows * quad_bytes));
}

namespace {
// The raw sums into C (gemmInt32).
auto copyStore(int32_t* C, int64_t ldc) {
    return [=](int64_t m0, int64_t rows, int64_t n0, int64_t cols, const int32_t* acc, int64_t stride) {
        for (int64_t r = 0; r < rows; ++r) {
            int32_t* dst = C + (m0 + r) * ldc + n0;
            const int32_t* src = acc + r * stride;
            for (int64_t j = 0; j < cols; ++j) dst[j] = src[j];  // at most 32: inline moves, not a memmove call
        }
    };
}

// dst[j] = max(a[j], b[j]) (dst may be a or b). Cloned for AVX2: baseline x86-64 has no packed
// int32 maximum, and SSE2's emulation of it was half of the store's time (perf, fmnist_cnn).
__attribute__((target_clones("avx2", "default"))) void maxOf(const int32_t* a, const int32_t* b, int32_t* dst, int64_t n) {
    for (int64_t j = 0; j < n; ++j) dst[j] = std::max(a[j], b[j]);
}

// Row m's sums into row m / 2 of C as the maximum of rows m and m + 1 (SumsStore::PairMax). Every
// driver stores a pair's even row before its odd row or with it: tiles start at multiples of
// their (even) height, leftover rows go one at a time in order. The odd row alone then takes
// the maximum with what its even row left.
static_assert(kGemmMR % 2 == 0 && kernels::kVnniMR % 2 == 0);
auto pairMaxStore(int32_t* C, int64_t ldc) {
    return [=](int64_t m0, int64_t rows, int64_t n0, int64_t cols, const int32_t* acc, int64_t stride) {
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t m = m0 + r;
            int32_t* dst = C + (m / 2) * ldc + n0;
            const int32_t* a = acc + r * stride;
            if (m % 2) {
                maxOf(dst, a, dst, cols);
            } else if (r + 1 < rows) {
                maxOf(a, a + stride, dst, cols);
                ++r;
            } else {
                std::copy(a, a + cols, dst);
            }
        }
    };
}

template <class Run>
void withSumsStore(SumsStore how, int32_t* C, int64_t ldc, Run run) {
    if (how == SumsStore::PairMax) return run(pairMaxStore(C, ldc));
    run(copyStore(C, ldc));
}
}  // namespace

void gemmInt32(const int8_t* A, int64_t lda, int64_t M, int32_t a_zero, const PackedWeights& W, int32_t* C, int64_t ldc,
               GemmScratch& scratch, SumsStore how) {
    withSumsStore(how, C, ldc, [&](auto store) { gemmTiles(A, lda, M, a_zero, W, scratch, store); });
}

void gemmInt32Patches(const ImplicitPatches& pa, int64_t M, int32_t a_zero, const PackedWeights& W, int32_t* C, int64_t ldc,
                      GemmScratch& scratch, SumsStore how) {
    withSumsStore(how, C, ldc, [&](auto store) { patchTiles(pa, M, a_zero, W, scratch, nativeVnni(), store); });
}

void gemmInt32PairPatches(const ImplicitPairPatches& pa, int64_t M, const PackedWeights& W, int32_t* C, int64_t ldc,
                          GemmScratch& scratch, SumsStore how) {
    withSumsStore(how, C, ldc, [&](auto store) { pairPatchTiles(pa, M, W, scratch, store); });
}

void detail::gemmInt32PatchesVnni(const ImplicitPatches& pa, int64_t M, int32_t a_zero, const PackedWeights& W, int32_t* C,
                                  int64_t ldc, GemmScratch& scratch, const kernels::VnniKernels& k) {
    patchTiles(pa, M, a_zero, W, scratch, k, copyStore(C, ldc));
}

void detail::gemmInt32PatchesMaxPool2Vnni(const ImplicitPatches& pa, int64_t PH, int64_t PW, int32_t a_zero, const PackedWeights& W,
                                         int32_t* C, int64_t ldc, GemmScratch& scratch, const kernels::VnniKernels& k) {
    pooledTiles(pa, PH, PW, a_zero, W, scratch, k, copyStore(C, ldc));
}

void detail::gemmInt32Vnni(const int8_t* A, int64_t lda, int64_t M, int32_t a_zero, const PackedWeights& W, int32_t* C,
                           int64_t ldc, GemmScratch& scratch, const kernels::VnniKernels& k) {
    matrixTilesVnni(A, lda, M, a_zero, W, scratch, k, copyStore(C, ldc));
}

}  // namespace qs
