#pragma once
// Test/bench support: a Keras HDF5 file shaped like keras.applications.VGG16(include_top=True)
// (13 Conv2D 3x3 'same' + 3 Dense, 138M parameters, ~553 MB), weights from the writer's
// default fill. bench_open, bench_analysis and the GUI's event-loop test use it.
#include <string>

namespace qs::testing {

// Writes the file unless `path` exists already.
void writeVgg16Shaped(const std::string& path);

}  // namespace qs::testing
