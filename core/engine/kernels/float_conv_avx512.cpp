// The direct float convolution for AVX-512 + FMA (flags in core/CMakeLists.txt), called only
// where the CPU has them.
#define QS_VEC_FLOATS 16
#define QS_FLOAT_CONV_NAME floatConvAvx512
#define QS_FLOAT_CONV_PANEL_NAME floatConvPanelAvx512
#include "engine/kernels/float_conv.inc"
