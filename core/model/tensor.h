#pragma once
// A named weight tensor: shape as the file stores it (after layout normalisation, see
// `stored_shape`), the dtype it had on disk, and its values as float32.
#include <cstdint>
#include <string>
#include <vector>

namespace qs {

enum class DType { Float16, Float32, Float64, Int8, Int16, Int32, Int64, UInt8, UInt16, UInt32, UInt64, Bool, Other };

inline bool isFloat(DType t) { return t == DType::Float16 || t == DType::Float32 || t == DType::Float64; }

const char* dtypeName(DType t);

struct Tensor {
    std::string name;                 // as stored: "conv2d_1/kernel:0", "layers/dense/vars/0", "param_0"
    std::string h5_path;              // full HDF5 object path inside its file
    std::vector<int64_t> shape;       // the layout the engine uses (Keras 2 channels_last kernels)
    std::vector<int64_t> stored_shape;  // the shape on disk (differs for Theano-ordered kernels)
    DType stored_dtype = DType::Float32;
    std::vector<float> data;          // row-major, `shape`; empty for integer and boolean tensors
    // Integer and boolean tensors (quantization-aware training state: bits, keep_negative) are
    // never converted to float; up to kMaxIntValues of their values are kept, for display.
    std::vector<int64_t> int_values;
    static constexpr int64_t kMaxIntValues = 65536;

    int64_t size() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
};

}  // namespace qs
