#pragma once
// Which instruction set the SIMD kernels run: chosen once at run time from the CPU (never
// -march=native), overridable by QUANTSCOPE_SIMD and, for tests and benchmarks, by forceIsa.
// Every kernel family (statistics, int8 GEMM, float GEMM) dispatches on it.

namespace qs::kernels {

enum class Isa { Portable, Avx2, Avx512 };
const char* isaName(Isa isa);
bool isaSupported(Isa isa);
// The best ISA this CPU runs, unless QUANTSCOPE_SIMD=portable|avx2|avx512 says otherwise.
Isa selectedIsa();
// The ISA evaluation uses now: selectedIsa(), or the one forced by forceIsa (tests, benchmarks).
Isa activeIsa();
void forceIsa(Isa isa);
void clearForcedIsa();

}  // namespace qs::kernels
