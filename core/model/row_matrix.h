#pragma once
// A batch of activations or samples: one sample per row, row-major (NHWC inside a row).
#include <Eigen/Core>

namespace qs {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace qs
