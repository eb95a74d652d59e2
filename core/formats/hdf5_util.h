#pragma once
// Small, safe wrappers over the HDF5 C++ API for what Keras files need: string attributes in
// every kind h5py has written (fixed-length bytes, variable-length str, arrays of either), and
// float datasets read straight into a Tensor's buffer with the size checked before allocating.
// Every H5::Exception is turned into a qs::Error naming the file and the HDF5 object.
#include <H5Cpp.h>

#include <optional>
#include <string>
#include <vector>

#include "model/tensor.h"

namespace qs::h5 {

// Calls H5::Exception::dontPrint() once, so caught exceptions print no HDF5 error stack.
void silenceErrorStack();

// The innermost message of HDF5's current error stack (the real reason behind "H5Fopen failed").
std::string innermostErrorMessage();

// Opens read-only; a file that is not HDF5 or cannot be read gives a qs::Error.
H5::H5File openReadOnly(const std::string& path);

// Bytes of an HDF5 file held in memory: an unpacked .keras member, or one mapped in place.
struct ImageBytes {
    const char* data = nullptr;
    size_t size = 0;
};

// Opens an HDF5 file held in memory read-only, without copying it: libhdf5 reads `image` (the
// struct and its bytes) for as long as the returned file is open.
H5::H5File openImageReadOnly(const ImageBytes& image, const std::string& display_name);

bool hasAttr(const H5::H5Object& obj, const std::string& name);
// `name`, or its first chunk `name0` (Keras splits attributes over 64 KiB).
bool hasListAttr(const H5::H5Object& obj, const std::string& name);
bool hasChild(const H5::Group& group, const std::string& name);

// A scalar (or one-element) string attribute; nullopt when absent or not a string.
std::optional<std::string> readStringAttr(const H5::H5Object& obj, const std::string& name,
                                          const std::string& file, const std::string& obj_path);

// A string-array attribute, also when split by Keras into name0, name1, ... for huge models.
// An empty numeric array (h5py writes empty weight_names as float64[0]) reads as {}.
std::vector<std::string> readStringArrayAttr(const H5::H5Object& obj, const std::string& name,
                                             const std::string& file, const std::string& obj_path);

std::optional<int64_t> readIntAttr(const H5::H5Object& obj, const std::string& name);

// Child names of a group in the file's own order (creation order when tracked, else by name).
std::vector<std::string> childNames(const H5::Group& group);

// Reads a floating-point dataset as float32 into a Tensor (one copy: HDF5 converts float16 and
// float64 while reading). Refuses non-float data and sizes past `max_bytes` before allocating.
Tensor readFloatTensor(const H5::DataSet& ds, const std::string& file, const std::string& h5_path,
                       const std::string& tensor_name);

bool isFloatDataset(const H5::DataSet& ds);

// While one lives on this thread, readFloatTensor checks type, shape and size as always but
// leaves `data` empty (LoadOptions::values = false: inspect needs shapes, not 500 MB of floats).
class SkipValues {
public:
    SkipValues();
    ~SkipValues();
    SkipValues(const SkipValues&) = delete;
    SkipValues& operator=(const SkipValues&) = delete;

private:
    bool previous_;
};

// Integer datasets, and h5py's booleans (an enum of int8 with FALSE = 0, TRUE = 1).
bool isIntegerDataset(const H5::DataSet& ds);
// Shape and dtype of an integer or boolean dataset, and its values when it has at most
// Tensor::kMaxIntValues (as int64, for display); `data` stays empty: never converted to float.
Tensor readIntegerTensor(const H5::DataSet& ds, const std::string& file, const std::string& h5_path, const std::string& name);
// readIntegerTensor for integer and boolean datasets, readFloatTensor for the rest.
Tensor readWeightTensor(const H5::DataSet& ds, const std::string& file, const std::string& h5_path, const std::string& name);

// Integer datasets written by exportQuantizedWeightsH5 (exports.h): read dequantized.
bool isQuantizedDataset(const H5::DataSet& ds);
Tensor readQuantizedTensor(const H5::DataSet& ds, const std::string& file, const std::string& h5_path, const std::string& name);

// The most bytes one tensor may take: a share of physical memory, so that a hostile header
// cannot make us allocate past what the machine has.
int64_t maxTensorBytes();

}  // namespace qs::h5
