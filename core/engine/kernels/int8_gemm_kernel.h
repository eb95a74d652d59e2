#pragma once
// The inner kernels of the integer GEMM. Portable and AVX2: a 6 x 16 tile of int32
// accumulators over K, from operands packed as pairs along K (activation minus its zero point
// as int16; weights kept as int8, sign-extended to int16 in the kernel so a batch-1 pass reads
// half the bytes), so that one AVX2 vpmaddwd does 16 exact multiply-adds. int8 x int8
// products widened this way cannot saturate (unlike vpmaddubsw's int16 pair sums), so every
// ISA gives the same integers. AVX-512 VNNI: see below.
//
// Packed layouts (k pairs p = 0 .. Kp/2 - 1, zero-padded to full tiles):
//   A block (6 rows):    a[p][r][0..1] = (A[r][2p], A[r][2p+1])          12 int16 per p
//   B panel (16 columns): b[p][n][0..1] = (B[2p][n], B[2p+1][n])          32 int8 per p
#include <cstdint>

#include "quant/kernels/quant_error_kernel.h"  // Isa

namespace qs::kernels {

constexpr int kGemmMR = 6;
constexpr int kGemmNR = 16;

// acc[r * kGemmNR + n] = sum over k of A[r][k] * B[k][n], for k pairs 0 .. pairs - 1.
using GemmTileKernel = void (*)(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc);

void gemmTilePortable(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc);
void gemmTileAvx2(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc);

GemmTileKernel gemmTileKernel(Isa isa);

// The same tile over a convolution's implicit patches (int8_gemm.h: ImplicitPairPatches): row
// r's k pairs are `runs` runs of run_pairs pairs, run j at rows[r] + j * run_step (int16 values),
// read in place with no packing; b as for the tile, the runs' pairs in order.
void gemmTileRowsAvx2(const int16_t* const* rows, int64_t runs, int64_t run_step, int64_t run_pairs, const int8_t* b, int32_t* acc);

// One row against one panel (batch 1, and the last rows of a batch): acc[n], n < 16; `a` is the
// row's k pairs, contiguous.
using GemmRowKernel = void (*)(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc);
void gemmRowPortable(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc);
void gemmRowAvx2(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc);
GemmRowKernel gemmRowKernel(Isa isa);

// AVX-512 VNNI: vpdpbusd adds four uint8 x int8 products into each int32 lane, exactly (no
// int16 step), 64 multiply-adds per instruction against vpmaddwd's 16. Its unsigned operand
// is the raw int8 activation plus 128, so
//     sum_k (A + 128) * B = sum_k (A - zp) * B + (zp + 128) * colsum(B)
// and the kernels add minus the second term, per column (`init`), to their sums before storing
// them (in wrapping int32: exact whenever the true sum fits in int32, as on every other path).
// Adding it in registers rather than in the driver afterwards spares the output stage a read
// of freshly stored, re-stored sums (a store-forwarding stall that cost a quarter of its time).
// Packed layouts (k quads q = 0 .. quads - 1, zero-padded):
//   A block (kVnniMR rows): a[q][r][0..3] = A[r][4q .. 4q+3] + 128 as uint8   32 bytes per q
//   B panel (16 columns):   b[q][n][0..3] = B[4q .. 4q+3][n]                  64 int8 per q
constexpr int kVnniMR = 8;
constexpr int kVnniAccStride = 2 * kGemmNR;  // the tile's acc rows: 32 columns (two panels)
// acc[r * kVnniAccStride + n]: kVnniMR rows against panel b0 (n < 16) and b1 (n >= 16); b1
// null: one panel only.
// init: added to each of the 32 columns' sums (16 when b1 is null), the same for every row.
using VnniTileKernel = void (*)(const uint8_t* a, const int8_t* b0, const int8_t* b1, int64_t quads, const int32_t* init,
                                int32_t* acc);
// One row (its quads contiguous) against one panel: acc[n], n < 16.
using VnniRowKernel = void (*)(const uint8_t* a, const int8_t* b, int64_t quads, const int32_t* init, int32_t* acc);
// The tile over a convolution's implicit patches, read in place (no packing): row r's quads are
// `runs` runs of run_quads quads, run j at rows[r] + j * run_step, already uint8 (int8 + 128).
// Row r of the sums goes to acc + r * acc_stride (the driver's block of rows, so the output stage
// can run over many tiles at once: BlockedRequant in int8_gemm.cpp); always 32 columns (16 when
// b1 is null), whatever the layer's width.
using VnniTileRowsKernel = void (*)(const uint8_t* const* rows, int64_t runs, int64_t run_step, int64_t run_quads, const int8_t* b0,
                                    const int8_t* b1, const int32_t* init, int32_t* acc, int64_t acc_stride);
// A convolution whose weights are a few quads deep (at most kVnniSmallQuads: a first layer, say
// 3x3 over one channel, is 3) and at most two panels wide, over one row of output pixels with the
// output stage in registers: the tile drivers spend more per tile than such a tile's products
// (fmnist_cnn's first convolution took 2.8 us per image, of which 0.7 us products). Pixel i's
// sums are its cell's runs (runs runs of run_quads quads, run j at cell + j * run_step, uint8 as
// for tile_rows) against the panels b0 / b1 (b1 null: one), in the packed quad order, plus init;
// with pool, the cells are the 2x2 window at cell, cell + cell_col, cell + cell_row and
// cell + cell_row + cell_col, and the maximum sum goes on (max pooling before the output stage is
// exact: max_pool_requant.h). The sum is then requantized with columns' bias / m / rshift, zero
// point and bounds (multipliers <= 1) and its `cols` int8 written to out + i * out_stride.
constexpr int kVnniSmallQuads = 6;
struct VnniSmallConvRow {
    const uint8_t* src = nullptr;  // pixel 0's cell (its top-left cell when pooling)
    int64_t pixel_step = 0, cell_row = 0, cell_col = 0, run_step = 0, runs = 0, run_quads = 0, count = 0;
    bool pool = false;
    const int8_t* b0 = nullptr;
    const int8_t* b1 = nullptr;
    const int32_t* init = nullptr;  // 32 columns (16 when b1 is null)
    const int32_t* bias = nullptr;
    const int32_t* m = nullptr;
    const int32_t* rshift = nullptr;
    int32_t zero_point = 0, lo = -128, hi = 127;
    int64_t cols = 0;  // <= 32 (<= 16 when b1 is null)
    int8_t* out = nullptr;
    int64_t out_stride = 0;
};
using VnniSmallConvRowKernel = void (*)(const VnniSmallConvRow& row);

// AMX (Intel's tile matrix unit, AMX-INT8): TDPBUSD multiplies a 16-row x 64-byte uint8 tile by
// a 16-quad x 16-column int8 tile into 16 x 16 int32 sums, the same u8 x s8 products as vpdpbusd
// sixteen rows at once (here about 5.4 ns for 16,384 multiply-adds, against 64 per vpdpbusd).
// Rows are packed into 16-row blocks (the source rows need not be evenly spaced: a convolution's
// patches, pooling windows' cells), K zero-padded to whole chunks of 16 quads; B is the VNNI
// layout itself (PackedWeights::quad_data), read 16 quads at a time: past a panel's last quad a
// B tile reads the next panel's quads, which the zero padding of A multiplies by zero, and past
// the last panel kAmxWeightSlack zero bytes that packWeights adds.
constexpr int kAmxRows = 16;
constexpr int kAmxMaxPanels = 4;  // C tiles: 4 of the 8 tile registers
constexpr int64_t kAmxWeightSlack = kAmxRows * 64;
constexpr int64_t amxChunks(int64_t quads) { return (quads + kAmxRows - 1) / kAmxRows; }
struct AmxTiles {
    // blocks * 16 source rows (with max4 blocks * 64: block i's four window cells at rows
    // 64 i + 16 c, c = 0..3). Row r's K bytes are `runs` runs, run j at rows[r] + j * run_step:
    // run_bytes read, XORed with flip (0x80 turns int8 into the uint8 operand; 0 where the source
    // is stored that way already), padded with zeros to run_quads quads.
    const uint8_t* const* rows = nullptr;
    int64_t runs = 1, run_step = 0, run_quads = 0, run_bytes = 0;
    uint8_t flip = 0;
    // In place instead (a set): block i's row r at a + (16 i + r) * a_stride, not packed; K is
    // runs kernel rows of run_chunks 16-quad chunks, kernel row j at + j * run_step; b is then
    // PackedWeights::amx_data; the sums go to acc raw (no init, no max4).
    const uint8_t* a = nullptr;
    int64_t a_stride = 0, run_chunks = 0;
    const int8_t* b = nullptr;  // PackedWeights::quad_data: panel p at b + p * panel_bytes
    int64_t panel_bytes = 0, panels = 0;
    const int32_t* init = nullptr;  // added to each column's sums (the zero-point correction), panels * 16
    int64_t blocks = 0;
    bool max4 = false;  // store each window's maximum over its four cells
    // Block i's sums (16 rows, panels * 16 columns; max4: per window) at acc + (16 i + r) * acc_stride.
    int32_t* acc = nullptr;
    int64_t acc_stride = 0;
    uint8_t* scratch = nullptr;  // amxScratchBytes(quads, max4, blocks), 64-byte aligned
};
using AmxTilesKernel = void (*)(const AmxTiles& t);
inline int64_t amxScratchBytes(int64_t quads, bool max4, int64_t blocks) {
    return blocks * (max4 ? 4 : 1) * kAmxRows * amxChunks(quads) * 64;
}
void amxTiles(const AmxTiles& t);
// The CPU has AMX-TILE and AMX-INT8 and the kernel lets this process use them (Linux asks each
// process to request the tile data state, arch_prctl ARCH_REQ_XCOMP_PERM).
bool amxSupported();
// Whether the int8 drivers use AMX: amxSupported(), the AVX-512 path active, and neither
// QUANTSCOPE_AMX=0 nor forceAmx(false) (tests and benchmarks compare the two paths).
bool amxActive();
void forceAmx(bool on);
void clearForcedAmx();

struct VnniKernels {
    VnniTileKernel tile;
    VnniRowKernel row;
    VnniTileRowsKernel tile_rows;
    // tile_rows with rows 0-3 and 4-7 the cells of two pooling windows: only each window's
    // maximum sum (init added) is stored, as acc rows 0 and 1 (a 2x2 max pooling fused into a
    // convolution, max_pool_requant.h).
    VnniTileRowsKernel tile_rows_max4;
    VnniSmallConvRowKernel small_conv_row;
    // Where set, the drivers run their blocks of rows on AMX tiles instead (kernels::AmxTiles).
    AmxTilesKernel amx = nullptr;
};
void gemmTileVnni(const uint8_t* a, const int8_t* b0, const int8_t* b1, int64_t quads, const int32_t* init, int32_t* acc);
void gemmRowVnni(const uint8_t* a, const int8_t* b, int64_t quads, const int32_t* init, int32_t* acc);
void gemmTileRowsVnni(const uint8_t* const* rows, int64_t runs, int64_t run_step, int64_t run_quads, const int8_t* b0, const int8_t* b1,
                      const int32_t* init, int32_t* acc, int64_t acc_stride);
void gemmTileRowsMax4Vnni(const uint8_t* const* rows, int64_t runs, int64_t run_step, int64_t run_quads, const int8_t* b0,
                          const int8_t* b1, const int32_t* init, int32_t* acc, int64_t acc_stride);
void smallConvRowVnni(const VnniSmallConvRow& row);
bool vnniSupported();  // AVX-512 F/BW/DQ/VL and VNNI

// The output stage for one row of n int32 sums: out = clamp(zp + (acc + bias) * M), with
// M = m * 2^-(31 + rshift) per column (multipliers <= 1, no left shift; see requantize.h).
// The AVX2 and AVX-512 versions do 8 and 16 columns at a time with the same integer steps, so
// results match.
using RequantRowKernel = void (*)(const int32_t* acc, const int32_t* bias, const int32_t* m, const int32_t* rshift, int32_t zp,
                                  int32_t lo, int32_t hi, int64_t n, int8_t* out);
void requantRowPortable(const int32_t*, const int32_t*, const int32_t*, const int32_t*, int32_t, int32_t, int32_t, int64_t, int8_t*);
void requantRowAvx2(const int32_t*, const int32_t*, const int32_t*, const int32_t*, int32_t, int32_t, int32_t, int64_t, int8_t*);
void requantRowAvx512(const int32_t*, const int32_t*, const int32_t*, const int32_t*, int32_t, int32_t, int32_t, int64_t, int8_t*);
RequantRowKernel requantRowKernel(Isa isa);
// The same for `rows` rows of sums (row r at acc + r * acc_stride, written to out + r * ldc),
// each column's constants loaded once for all rows: a VNNI tile's 8 rows at a time.
void requantRowsAvx512(const int32_t* acc, int64_t acc_stride, int64_t rows, const int32_t* bias, const int32_t* m,
                       const int32_t* rshift, int32_t zp, int32_t lo, int32_t hi, int64_t n, int8_t* out, int64_t ldc);

}  // namespace qs::kernels
