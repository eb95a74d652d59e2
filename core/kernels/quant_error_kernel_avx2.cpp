// Kernel instance; its compile flags are set in core/CMakeLists.txt.
#define QS_KERNEL_NAME errorKernelAvx2
#define QS_F16_KERNEL_NAME float16KernelAvx2
#include "quant_error_kernel.inc"
