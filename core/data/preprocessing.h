#pragma once
// Turning a test set's stored pixels into the model's input: x = ((pixel / scale) - mean) / std,
// as the corpus manifest and `eval` state it, one sample per row.
#include <cstdint>

#include "data/idx_dataset.h"
#include "model/row_matrix.h"

namespace qs {

// x = ((pixel / scale) - mean) / std, as the corpus manifest and `eval` state it.
struct Preprocessing {
    double scale = 255.0, mean = 0.0, std = 1.0;
};

// Rows [begin, begin + count) of the dataset, preprocessed, one sample per row.
RowMatrix preprocessRows(const ImageDataset& data, const Preprocessing& pre, int64_t begin, int64_t count);
// `count` samples spread evenly over the dataset (calibration sets).
RowMatrix preprocessSpread(const ImageDataset& data, const Preprocessing& pre, int64_t count);

}  // namespace qs
