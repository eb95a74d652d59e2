// The direct float convolution for AVX2 + FMA (flags in core/CMakeLists.txt), called only
// where the CPU has both.
#define QS_VEC_FLOATS 8
#define QS_FLOAT_CONV_NAME floatConvAvx2
#define QS_FLOAT_CONV_PANEL_NAME floatConvPanelAvx2
#include "engine/kernels/float_conv.inc"
