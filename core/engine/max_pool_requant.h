#pragma once
// Max pooling fused into the output stage of the convolution before it. The output stage
// (requantize.h: a positive fixed-point multiplier, rounding, the zero point, clamping) is
// non-decreasing in the sum for every channel, so the largest requantized value of a window is
// the requantized largest sum: pooling the int32 sums first gives exactly the int8 values of
// requantizing every sum and pooling those (TFLite's MaxPool keeps its input's quantization), with
// one requantization per pooled value instead of per pixel and no pass over the int8 map.
#include <cstdint>
#include <optional>
#include <vector>

#include "engine/float_ops.h"  // PoolGeometry
#include "engine/int8_gemm.h"  // Requant

namespace qs {

// True when every window of g has a cell inside the image (Keras' padding always gives one; the
// unfused int8 pooling writes 0 for an empty window, which the fused one could not).
bool maxPoolWindowsNonEmpty(const PoolGeometry& g);

// A pooling 2 wide with stride 2 and no padding over rows of even width (2x2 / 2, the common one)
// lets the GEMM keep the larger of each pixel pair as it stores its sums (int8_gemm.h:
// SumsStore::PairMax). Returns the pooling left after that, down the columns over rows half as
// wide; nothing for any other pooling.
std::optional<PoolGeometry> afterPixelPairs(const PoolGeometry& g);

// A 2x2 pooling with stride 2 whose windows all lie inside the image ('valid', or 'same' over even
// sizes): the GEMM can compute each window's four cells together and keep their maximum
// (int8_gemm.h: gemmRequantPatchesMaxPool2).
bool isInsideMaxPool2(const PoolGeometry& g);

// Pooled rows p0 .. p1 - 1 of a sample and the input rows r0 .. r1 - 1 their windows read.
struct PooledRows {
    int64_t p0, p1, r0, r1;
};
PooledRows pooledRows(const PoolGeometry& g, int64_t p0, int64_t p1);

// Pooled rows rows.p0 .. rows.p1 - 1 of one sample: sums (input rows rows.r0 .. rows.r1 - 1, each
// g.W pixels of g.C channels, bias not added) max-pooled, then requantized with rq into out
// (the pooled rows, g.OW pixels of g.C each). `scratch` is reused between calls.
void maxPoolRequant(const int32_t* sums, const PooledRows& rows, const PoolGeometry& g, const Requant& rq, int8_t* out,
                    std::vector<int32_t>& scratch);

}  // namespace qs
