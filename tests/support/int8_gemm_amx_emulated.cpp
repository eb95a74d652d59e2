// The tile instructions the AMX kernel uses, written from Intel's pseudo-code (SDM vol. 2:
// LDTILECFG, TILELOADD, TILESTORED, TILEZERO, TDPBUSD) over an array of eight tiles, then the
// production kernel source compiled against them. TDPBUSD: for each row m of C and each of its
// int32 lanes n, the four u8 x s8 products of A's dword k in row m and B's dword n in row k, for
// every k in A's row, added to C with 32-bit wrap-around (unsigned arithmetic here: a wrap is
// defined behaviour for UBSan).
#include "int8_gemm_amx_emulated.h"

#include <cstdint>
#include <cstring>

namespace {

struct TileFile {
    int rows[8] = {};
    int colsb[8] = {};
    uint8_t data[8][16][64] = {};
};
thread_local TileFile tiles;

void loadConfig(const void* config) {
    const auto* c = static_cast<const uint8_t*>(config);
    for (int t = 0; t < 8; ++t) {
        tiles.colsb[t] = c[16 + 2 * t] | c[17 + 2 * t] << 8;
        tiles.rows[t] = c[48 + t];
    }
}
void zero(int t) { std::memset(tiles.data[t], 0, sizeof tiles.data[t]); }
void load(int t, const void* base, int64_t stride) {
    for (int r = 0; r < tiles.rows[t]; ++r)
        std::memcpy(tiles.data[t][r], static_cast<const uint8_t*>(base) + r * stride, static_cast<size_t>(tiles.colsb[t]));
}
void store(int t, void* base, int64_t stride) {
    for (int r = 0; r < tiles.rows[t]; ++r)
        std::memcpy(static_cast<uint8_t*>(base) + r * stride, tiles.data[t][r], static_cast<size_t>(tiles.colsb[t]));
}
void dpbusd(int c, int a, int b) {
    for (int m = 0; m < tiles.rows[c]; ++m)
        for (int n = 0; n < tiles.colsb[c] / 4; ++n) {
            uint32_t acc;
            std::memcpy(&acc, tiles.data[c][m] + 4 * n, 4);
            for (int k = 0; k < tiles.colsb[a] / 4; ++k)
                for (int i = 0; i < 4; ++i)
                    acc += static_cast<uint32_t>(tiles.data[a][m][4 * k + i] * static_cast<int8_t>(tiles.data[b][k][4 * n + i]));
            std::memcpy(tiles.data[c][m] + 4 * n, &acc, 4);
        }
}

}  // namespace

#define _tile_loadconfig loadConfig
#define _tile_zero zero
#define _tile_loadd load
#define _tile_stored store
#define _tile_dpbusd dpbusd

namespace qs::kernels {
namespace {
void copyRun(uint8_t* dst, const uint8_t* src, int64_t n_read, int64_t n_write, uint8_t flip) {
    for (int64_t i = 0; i < n_write; ++i) dst[i] = i < n_read ? static_cast<uint8_t>(src[i] ^ flip) : 0;
}
}  // namespace
}  // namespace qs::kernels

#define QS_AMX_TILES_NAME amxTilesEmulated
#include "engine/kernels/int8_gemm_kernel_amx.inc"
