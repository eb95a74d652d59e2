// The VNNI kernels for CPUs with AVX-512 VNNI; compile flags in core/CMakeLists.txt.
#include <immintrin.h>

#define QS_VNNI_TILE_NAME gemmTileVnni
#define QS_VNNI_TILE_ROWS_NAME gemmTileRowsVnni
#define QS_VNNI_TILE_ROWS_MAX4_NAME gemmTileRowsMax4Vnni
#define QS_VNNI_ROW_NAME gemmRowVnni
#define QS_VNNI_SMALL_CONV_ROW_NAME smallConvRowVnni
#include "engine/kernels/int8_gemm_kernel_vnni.inc"
