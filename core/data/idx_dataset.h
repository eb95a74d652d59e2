#pragma once
// IDX files (MNIST, Fashion-MNIST), gzipped or not: images uint8 [n, rows, cols] and labels
// uint8 [n]. Errors name the file: wrong magic, dimensions past the file size, counts that
// disagree between images and labels.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qs {

struct ImageDataset {
    std::vector<uint8_t> pixels;  // n * rows * cols * channels, row-major (HWC)
    std::vector<float> values;    // instead of pixels when the file holds other numbers (.npz, HDF5)
    std::vector<int32_t> labels;
    int64_t n = 0, rows = 0, cols = 0, channels = 1;
    int num_classes = 0;
    std::string source;
};

// Reads an images/labels pair; `dir` forms: a folder holding t10k-images-idx3-ubyte[.gz] and
// t10k-labels-idx1-ubyte[.gz] (or train-*), or the two files given directly.
ImageDataset readIdxPair(const std::string& images_path, const std::string& labels_path);
ImageDataset readIdxFolder(const std::string& dir);
// The images/labels files readIdxFolder would read from `dir` (test split first), if any.
std::optional<std::pair<std::string, std::string>> findIdxPair(const std::string& dir);

// Keeps the first `n` images (and labels) of `data`: quick looks at a large test set.
void keepFirstImages(ImageDataset& data, int64_t n);

}  // namespace qs
