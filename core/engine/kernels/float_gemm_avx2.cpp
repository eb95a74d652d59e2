// Eigen's GEMM for AVX2 + FMA (flags in core/CMakeLists.txt), called only where the CPU has
// both. Eigen is header-only templates with external linkage: compiled here with other flags
// under the same names, the linker could keep this copy for the baseline callers too, and a
// CPU without AVX2 would then fault. Renaming its namespace for this file keeps the copies
// apart; nothing of Eigen crosses the interface (float_gemm.h takes raw pointers).
#define Eigen QsEigenAvx2Fma
#define QS_FLOAT_GEMM_NAME floatGemmAvx2
#include "engine/kernels/float_gemm.inc"
