// Compiled without AVX-512 flags: SIMDe's native aliases map _mm512_* and __m512i to its own
// portable implementations (which follow Intel's pseudo-code), so this is the production
// kernel source running on an emulated AVX-512 VNNI.
#include <immintrin.h>
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include "int8_gemm_vnni_emulated.h"

#define QS_VNNI_TILE_NAME gemmTileVnniEmulated
#define QS_VNNI_TILE_ROWS_NAME gemmTileRowsVnniEmulated
#define QS_VNNI_TILE_ROWS_MAX4_NAME gemmTileRowsMax4VnniEmulated
#define QS_VNNI_ROW_NAME gemmRowVnniEmulated
#include "engine/kernels/int8_gemm_kernel_vnni.inc"
