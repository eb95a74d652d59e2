#include "int8_gemm.h"

#include <algorithm>

namespace qs {

using kernels::kGemmMR;
using kernels::kGemmNR;

PackedWeights packWeights(const int8_t* w, int64_t K, int64_t N) {
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

template <class Store>
void gemmTiles(const int8_t* A, int64_t lda, int64_t M, int32_t a_zero, const PackedWeights& W, GemmScratch& s, Store store) {
    const kernels::GemmTileKernel tile = kernels::gemmTileKernel(kernels::activeIsa());
    const kernels::GemmRowKernel row_kernel = kernels::gemmRowKernel(kernels::activeIsa());
    s.a.resize(static_cast<size_t>(W.pairs * kGemmMR * 2));
    const int64_t full = M / kGemmMR * kGemmMR;
    // Rows past the last full tile go one at a time (batch 1 would otherwise compute 6 rows).
    for (int64_t m = full; m < M; ++m) {
        const int8_t* row = A + m * lda;
        for (int64_t k = 0; k < W.pairs * 2; ++k) s.a[static_cast<size_t>(k)] = k < W.K ? static_cast<int16_t>(row[k] - a_zero) : 0;
        for (int64_t panel = 0; panel < W.panels; ++panel) {
            row_kernel(s.a.data(), W.data.data() + panel * W.pairs * kGemmNR * 2, W.pairs, s.acc);
            const int64_t n0 = panel * kGemmNR;
            store(m, n0, std::min<int64_t>(kGemmNR, W.N - n0), s.acc);
        }
    }
    for (int64_t m0 = 0; m0 < full; m0 += kGemmMR) {
        const int64_t rows = kGemmMR;
        packA(A + m0 * lda, lda, rows, W.K, a_zero, W.pairs, s.a.data());
        for (int64_t panel = 0; panel < W.panels; ++panel) {
            tile(s.a.data(), W.data.data() + panel * W.pairs * kGemmNR * 2, W.pairs, s.acc);
            const int64_t n0 = panel * kGemmNR, cols = std::min<int64_t>(kGemmNR, W.N - n0);
            for (int64_t r = 0; r < rows; ++r) store(m0 + r, n0, cols, s.acc + r * kGemmNR);
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

void gemmRequant(const int8_t* A, int64_t lda, int64_t M, int32_t a_zero, const PackedWeights& W, const Requant& rq,
                 int8_t* C, int64_t ldc, GemmScratch& scratch) {
    if (rq.m && rq.rshift) {
        const kernels::RequantRowKernel row = kernels::requantRowKernel(kernels::activeIsa());
        gemmTiles(A, lda, M, a_zero, W, scratch, [&](int64_t m, int64_t n0, int64_t cols, const int32_t* acc) {
            row(acc, rq.bias + n0, rq.m + n0, rq.rshift + n0, rq.zero_point, rq.lo, rq.hi, cols, C + m * ldc + n0);
        });
        return;
    }
    gemmTiles(A, lda, M, a_zero, W, scratch, [&](int64_t m, int64_t n0, int64_t cols, const int32_t* acc) {
        int8_t* out = C + m * ldc + n0;
        for (int64_t j = 0; j < cols; ++j)
            out[j] = static_cast<int8_t>(requantize(acc[j] + rq.bias[n0 + j], rq.mult[n0 + j], rq.zero_point, rq.lo, rq.hi));
    });
}

void gemmInt32(const int8_t* A, int64_t lda, int64_t M, int32_t a_zero, const PackedWeights& W, int32_t* C, int64_t ldc,
               GemmScratch& scratch) {
    gemmTiles(A, lda, M, a_zero, W, scratch, [&](int64_t m, int64_t n0, int64_t cols, const int32_t* acc) {
        std::copy(acc, acc + cols, C + m * ldc + n0);
    });
}

}  // namespace qs
