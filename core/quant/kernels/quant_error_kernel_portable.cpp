// Kernel instance; its compile flags are set in core/CMakeLists.txt.
#define QS_KERNEL_NAME errorKernelPortable
#define QS_F16_KERNEL_NAME float16KernelPortable
#include "quant/kernels/quant_error_kernel.inc"
