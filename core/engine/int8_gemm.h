#pragma once
// Integer matrix product for quantized Dense and Conv2D (im2col) layers:
//     C[m][n] = requantize(sum_k (A[m][k] - a_zero) * W[k][n] + bias[n])
// A: int8 activations (asymmetric, zero point a_zero); W: int8 weights (symmetric; 4- and
// 2-bit weights arrive as int8 values in [-7, 7] / [-1, 1]); int32 accumulation; the output
// stage applies TFLite's fixed-point multiplier per output channel, adds the output zero
// point and clamps (ReLU/ReLU6 fused as the clamp bounds). The tile kernel is chosen at run
// time (kernels/int8_gemm_kernel.h); every path gives the same integers.
#include <cstdint>
#include <vector>

#include "base/allocator.h"
#include "engine/kernels/int8_gemm_kernel.h"
#include "quant/requantize.h"

namespace qs {

// W packed once (at model preparation) into 16-column panels of int8 pairs along K, and on
// CPUs with AVX-512 VNNI also into panels of int8 quads with the column sums the VNNI path
// needs (layouts in kernels/int8_gemm_kernel.h).
struct PackedWeights {
    int64_t K = 0, N = 0, pairs = 0, panels = 0;
    std::vector<int8_t> data;
    int64_t quads = 0;                // VNNI layout; empty vectors when not packed for it
    CacheAlignedVector<int8_t> quad_data;  // 64-byte aligned: the AMX tiles load its rows
    std::vector<int32_t> col_sums;    // panels * 16 (zero past N), every layout: the zero-point terms (VNNI, int16 byte split)
    // A convolution's weights for AMX reading its rows in place (addAmxConvLayout): the VNNI layout
    // with each of the amx_runs kernel rows' quads zero-padded to whole 16-quad chunks; panel p,
    // kernel row j, chunk c at ((p * amx_runs + j) * amx_run_chunks + c) * 1024. Empty otherwise.
    int64_t amx_runs = 0, amx_run_chunks = 0;
    CacheAlignedVector<int8_t> amx_data;
};
// w: (K, N) row-major. The VNNI layout is added when `vnni_layout` (default: the CPU has VNNI).
PackedWeights packWeights(const int8_t* w, int64_t K, int64_t N, bool vnni_layout);
PackedWeights packWeights(const int8_t* w, int64_t K, int64_t N);

struct Requant {
    const int32_t* bias = nullptr;           // N, at scale in_scale * w_scale[n]
    const FixedMultiplier* mult = nullptr;   // N
    int32_t zero_point = 0, lo = -128, hi = 127;
    // The same multipliers split into arrays when none shifts left (all <= 1, the usual case):
    // the output stage then runs vectorised (kernels::RequantRowKernel).
    const int32_t* m = nullptr;
    const int32_t* rshift = nullptr;
    // With m / rshift: each column's left shift (0 where it has none), for multipliers above 1
    // (low-bit weights' large scales): the sums are shifted, saturating, before the same
    // vectorised stage runs with their right shift 0. Null when no multiplier shifts left.
    const int32_t* lshift = nullptr;
};

// Fills m / rshift from multipliers; false (arrays left empty) when one shifts left.
bool splitMultipliers(const std::vector<FixedMultiplier>& mult, std::vector<int32_t>& m, std::vector<int32_t>& rshift);
// The same for any multipliers: lshift gets every column's left shift (0 for the others; left
// empty when none shifts left) and rshift 0 for the columns that shift left.
void splitMultipliers(const std::vector<FixedMultiplier>& mult, std::vector<int32_t>& m, std::vector<int32_t>& rshift,
                      std::vector<int32_t>& lshift);

// Scratch memory reused between calls by one thread.
struct GemmScratch {
    std::vector<int16_t> a;
    alignas(32) int32_t acc[kernels::kGemmMR * kernels::kGemmNR];
    CacheAlignedVector<uint8_t> a_quads;  // the VNNI path's packed rows, the AMX blocks
    std::vector<int32_t> correction;  // -(a_zero + 128) * col_sums: the VNNI kernels add it to their sums
    alignas(64) int32_t acc_vnni[kernels::kVnniMR * kernels::kVnniAccStride];
    std::vector<int32_t> sums;  // a block of rows' sums waiting for the output stage (the VNNI patch drivers)
    std::vector<const uint8_t*> amx_rows;  // the AMX drivers' source rows (kernels::AmxTiles::rows)
    std::vector<int32_t> amx_bias;         // bias + the zero-point correction (AMX in place)
};

void gemmRequant(const int8_t* A, int64_t lda, int64_t M, int32_t a_zero, const PackedWeights& W, const Requant& rq,
                 int8_t* C, int64_t ldc, GemmScratch& scratch);

// A convolution's patch matrix read in place (implicit im2col) by the VNNI path, for convolutions
// without horizontal dilation: patch row m = (oy, ox) = (m / OW, m % OW) is KH runs of KW * C
// bytes, run ky at src + (oy * sh + ky * dh) * row_bytes + ox * sw_bytes, where src is the input
// padded with its zero point and stored as uint8 (int8 + 128, vpdpbusd's unsigned operand; the
// zero point correction is as for matrices). Each run is read as run_quads whole quads (4 bytes),
// so up to 3 bytes past it, which the weights from packPatchWeights multiply by zero; src must
// have those bytes (the padded buffer's slack).
struct ImplicitPatches {
    const int8_t* src = nullptr;
    int64_t OW = 0, row_bytes = 0, sh = 1, dh = 1, sw_bytes = 0, KH = 0, run_quads = 0;
    // Bytes readable from src (0: unknown). AMX reads output pixels in place, as rows of a tile
    // sw_bytes apart across the padded width, past the last real one: only with the room for it.
    int64_t readable = 0;
};
// True when gemmRequantPatches can run W (the VNNI path: the CPU has it, W has its layout).
bool implicitPatchesSupported(const PackedWeights& W);
// w: the (KH * run, N) kernel (run = KW * C); each kernel row padded with zero weights to whole
// quads (both implicit paths read it); the VNNI layout as packWeights adds it (default: the CPU
// has VNNI).
PackedWeights packPatchWeights(const int8_t* w, int64_t KH, int64_t run, int64_t N, bool vnni_layout);
PackedWeights packPatchWeights(const int8_t* w, int64_t KH, int64_t run, int64_t N);
// Adds the in-place AMX layout (PackedWeights::amx_data) to a convolution's VNNI-packed weights
// whose K is `runs` kernel rows of whole quads each (packPatchWeights' layout, or packWeights' when
// a kernel row is whole quads already).
void addAmxConvLayout(PackedWeights& W, int64_t runs);
// gemmRequant over implicit patches, M = OH * OW rows (one sample); the same integers as
// im2col followed by gemmRequant.
void gemmRequantPatches(const ImplicitPatches& patches, int64_t M, int32_t a_zero, const PackedWeights& W, const Requant& rq,
                        int8_t* C, int64_t ldc, GemmScratch& scratch);

// A convolution followed by a 2x2 max pooling with stride 2 whose windows lie inside its output:
// the PH x PW pooled int8 values, row p = py * PW + px (from output rows 2py, 2py + 1, columns
// 2px, 2px + 1 of `patches`), the same as gemmRequantPatches and pooling its output
// (max_pool_requant.h: pooling the sums first is exact). The VNNI path (implicitPatchesSupported).
void gemmRequantPatchesMaxPool2(const ImplicitPatches& patches, int64_t PH, int64_t PW, int32_t a_zero, const PackedWeights& W,
                                const Requant& rq, int8_t* C, int64_t ldc, GemmScratch& scratch);

// How the raw-sums GEMMs below store row m: Copy as row m of C; PairMax as row m / 2, the
// maximum of rows m and m + 1 (M even). PairMax is a 2-wide, stride-2 max pooling along a
// convolution's output row fused into the store: it halves the int32 sums written and read
// again before the rest of the pooling (max_pool_requant.h).
enum class SumsStore { Copy, PairMax };

// The same patches' raw int32 sums (bias not added): a convolution whose output stage runs after
// max pooling (max_pool_requant.h).
void gemmInt32Patches(const ImplicitPatches& patches, int64_t M, int32_t a_zero, const PackedWeights& W, int32_t* C, int64_t ldc,
                      GemmScratch& scratch, SumsStore how = SumsStore::Copy);

// gemmRequant's output stage alone: `rows` rows of `cols` int32 sums (row r at acc + r * stride,
// columns n0 .. n0 + cols - 1 of rq's constants) to int8 at out + r * ldc.
void requantRows(const int32_t* acc, int64_t stride, int64_t rows, int64_t n0, int64_t cols, const Requant& rq, int8_t* out,
                 int64_t ldc);

// The AVX2 tile's implicit patches: the sample minus its zero point as int16 (its padding is
// then 0), patch row m = (oy, ox)'s run ky at src + (oy * sh + ky * dh) * row + ox * sw (in
// int16 values), read as run_pairs pairs: 2 * run_quads, the VNNI path's kernel rows padded with
// zero weights to whole quads (packPatchWeights), so src needs 3 values of slack past the last run.
struct ImplicitPairPatches {
    const int16_t* src = nullptr;
    int64_t OW = 0, row = 0, sh = 1, dh = 1, sw = 0, KH = 0, run_pairs = 0;
};
// True when the AVX2 tile runs W (the CPU has AVX2, not the VNNI path).
bool implicitPairPatchesSupported(const PackedWeights& W);
// gemmRequant / the raw sums over those patches, M = OH * OW rows (one sample) or a band of
// whole output rows (src moved to its first).
void gemmRequantPairPatches(const ImplicitPairPatches& patches, int64_t M, const PackedWeights& W, const Requant& rq, int8_t* C,
                            int64_t ldc, GemmScratch& scratch);
void gemmInt32PairPatches(const ImplicitPairPatches& patches, int64_t M, const PackedWeights& W, int32_t* C, int64_t ldc,
                          GemmScratch& scratch, SumsStore how = SumsStore::Copy);

// The raw int32 products (hybrid mode rescales them in float).
void gemmInt32(const int8_t* A, int64_t lda, int64_t M, int32_t a_zero, const PackedWeights& W, int32_t* C, int64_t ldc,
               GemmScratch& scratch, SumsStore how = SumsStore::Copy);

namespace detail {
// gemmInt32 through the VNNI driver with the given kernels, whatever the CPU: lets a test run
// the driver and packing with the kernels compiled against an AVX-512 emulation (and k.amx, where
// set, against an emulation of the AMX tiles). W must have the VNNI layout.
// gemmInt32Patches the same way.
void gemmInt32PatchesVnni(const ImplicitPatches& patches, int64_t M, int32_t a_zero, const PackedWeights& W, int32_t* C, int64_t ldc,
                          GemmScratch& scratch, const kernels::VnniKernels& k);
void gemmInt32Vnni(const int8_t* A, int64_t lda, int64_t M, int32_t a_zero, const PackedWeights& W, int32_t* C,
                   int64_t ldc, GemmScratch& scratch, const kernels::VnniKernels& k);
// gemmRequantPatchesMaxPool2's pooled raw sums (bias not added), the same way.
void gemmInt32PatchesMaxPool2Vnni(const ImplicitPatches& patches, int64_t PH, int64_t PW, int32_t a_zero, const PackedWeights& W,
                                  int32_t* C, int64_t ldc, GemmScratch& scratch, const kernels::VnniKernels& k);
// gemmRequantPatches / gemmRequantPatchesMaxPool2 the same way (the small-convolution rows
// where they apply, kernels::VnniSmallConvRow, else the tiles).
void gemmRequantPatchesVnni(const ImplicitPatches& patches, int64_t M, int32_t a_zero, const PackedWeights& W, const Requant& rq,
                            int8_t* C, int64_t ldc, GemmScratch& scratch, const kernels::VnniKernels& k);
void gemmRequantPatchesMaxPool2Vnni(const ImplicitPatches& patches, int64_t PH, int64_t PW, int32_t a_zero, const PackedWeights& W,
                                    const Requant& rq, int8_t* C, int64_t ldc, GemmScratch& scratch, const kernels::VnniKernels& k);
}  // namespace detail

// One requantized value: clamp(zero_point + acc * M, lo, hi) (the output stage, also used by
// the depthwise and element-wise integer ops).
inline int32_t requantize(int32_t acc, FixedMultiplier m, int32_t zero_point, int32_t lo, int32_t hi) {
    const int32_t v = multiplyByQuantizedMultiplier(acc, m) + zero_point;
    return v < lo ? lo : (v > hi ? hi : v);
}

}  // namespace qs
