#include "engine/max_pool_requant.h"

#include <algorithm>

namespace qs {

namespace {
// Whether every window along one axis has a cell in [0, size).
bool axisCovered(int64_t size, int64_t pool, int64_t stride, int64_t pad, int64_t out) {
    for (int64_t o = 0; o < out; ++o) {
        const int64_t first = o * stride - pad;
        if (first + pool <= 0 || first >= size) return false;
    }
    return true;
}
}  // namespace

bool maxPoolWindowsNonEmpty(const PoolGeometry& g) {
    return axisCovered(g.H, g.ph, g.sh, g.pt, g.OH) && axisCovered(g.W, g.pw, g.sw, g.pl, g.OW);
}

namespace {

// The window maxima of one sample's sums into `pooled`: rows first, then columns, each step a
// maximum over contiguous runs, which vectorises (AVX2 where the CPU has it: baseline x86-64 has no
// packed int32 maximum, and the SSE2 emulation made this a fifth of fmnist_cnn's int8 time).
__attribute__((target_clones("avx2", "default"))) void poolSums(const int32_t* sums, const PooledRows& rows, const PoolGeometry& g,
                                                                int32_t* pooled, int32_t* rows_max) {
    const int64_t C = g.C, row = g.W * C;
    sums -= rows.r0 * row;  // indexed by input row below
    for (int64_t oy = rows.p0; oy < rows.p1; ++oy) {
        const int64_t y0 = std::max<int64_t>(oy * g.sh - g.pt, 0), y1 = std::min(oy * g.sh - g.pt + g.ph, g.H);
        // A pooling down the columns only (its rows already pooled: SumsStore::PairMax) takes
        // the row maxima as its output row.
        const bool columns_only = g.pw == 1 && g.sw == 1 && g.pl == 0 && g.OW == g.W;
        int32_t* maxima = columns_only ? pooled + (oy - rows.p0) * row : rows_max;
        const int32_t* first = sums + y0 * row;
        for (int64_t i = 0; i < row; ++i) maxima[i] = first[i];
        for (int64_t iy = y0 + 1; iy < y1; ++iy) {
            const int32_t* s = sums + iy * row;
            for (int64_t i = 0; i < row; ++i) maxima[i] = std::max(maxima[i], s[i]);
        }
        if (columns_only) continue;
        for (int64_t ox = 0; ox < g.OW; ++ox) {
            const int64_t x0 = std::max<int64_t>(ox * g.sw - g.pl, 0), x1 = std::min(ox * g.sw - g.pl + g.pw, g.W);
            int32_t* m = pooled + ((oy - rows.p0) * g.OW + ox) * C;
            const int32_t* s0 = rows_max + x0 * C;
            for (int64_t c = 0; c < C; ++c) m[c] = s0[c];
            for (int64_t ix = x0 + 1; ix < x1; ++ix) {
                const int32_t* s = rows_max + ix * C;
                for (int64_t c = 0; c < C; ++c) m[c] = std::max(m[c], s[c]);
            }
        }
    }
}

}  // namespace

bool isInsideMaxPool2(const PoolGeometry& g) {
    return g.ph == 2 && g.pw == 2 && g.sh == 2 && g.sw == 2 && g.pt == 0 && g.pl == 0 && 2 * g.OH <= g.H && 2 * g.OW <= g.W;
}

std::optional<PoolGeometry> afterPixelPairs(const PoolGeometry& g) {
    if (g.pw != 2 || g.sw != 2 || g.pl != 0 || g.W % 2 != 0 || g.OW != g.W / 2) return std::nullopt;
    PoolGeometry rest = g;
    rest.W = g.OW, rest.pw = 1, rest.sw = 1;
    return rest;
}

PooledRows pooledRows(const PoolGeometry& g, int64_t p0, int64_t p1) {
    return {p0, p1, std::max<int64_t>(p0 * g.sh - g.pt, 0), std::min((p1 - 1) * g.sh - g.pt + g.ph, g.H)};
}

void maxPoolRequant(const int32_t* sums, const PooledRows& rows, const PoolGeometry& g, const Requant& rq, int8_t* out,
                    std::vector<int32_t>& scratch) {
    const int64_t pixels = (rows.p1 - rows.p0) * g.OW, pooled = pixels * g.C;
    scratch.resize(static_cast<size_t>(pooled + g.W * g.C));  // the pooled sums, then one row of row maxima
    poolSums(sums, rows, g, scratch.data(), scratch.data() + pooled);
    requantRows(scratch.data(), g.C, pixels, 0, g.C, rq, out, g.C);
}

}  // namespace qs
