#pragma once
// glibc's allocator, tuned for batches of activations: by default it maps every block over
// 128 KiB with mmap and returns it on free, and trims the heap top past 2x that, so each batch
// of a few hundred KB pays fresh page faults (on a VM here: the float MLP ran 37 us per image at
// batch 256 against 3.5 us tuned). Called first thing in every program's main(); the tests get
// the same through GLIBC_TUNABLES (tests/CMakeLists.txt).
namespace qs {

// Blocks up to 32 MiB come from the heap and up to 128 MiB of freed heap is kept for reuse;
// larger blocks (whole weight tensors) are still mapped and returned. No-op without glibc.
void tuneAllocator();

}  // namespace qs
