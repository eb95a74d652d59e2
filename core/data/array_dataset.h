#pragma once
// Test sets stored as arrays: NumPy .npy / .npz (e.g. Keras' mnist.npz with x_test/y_test)
// and HDF5 files (an images dataset and a labels dataset, named or found by common names).
// Images: (n, h, w), (n, h, w, c) or (n, features), uint8 (kept as pixels) or float (kept as
// values); labels: (n,) integers, or (n, classes) one-hot (argmax). Errors name the file and
// what is wrong: pickled object arrays, Fortran order, truncated data, counts that disagree,
// negative labels.
#include <optional>
#include <string>

#include "data/idx_dataset.h"
#include "data/preprocessing.h"

namespace qs {

struct ArrayDatasetOptions {
    std::string x_name, y_name;  // member / dataset names; empty: x_test/y_test, x/y, images/labels, ...
};

ImageDataset readNpzDataset(const std::string& path, const ArrayDatasetOptions& options = {});
// Two .npy files: the images and their labels.
ImageDataset readNpyPair(const std::string& images_path, const std::string& labels_path);
ImageDataset readHdf5Dataset(const std::string& path, const ArrayDatasetOptions& options = {});

// Any supported test set by its content: a folder (IDX pair), .npz, HDF5, an IDX images file.
ImageDataset readDataset(const std::string& path, const ArrayDatasetOptions& options = {});

// The training split beside an IDX test folder (train-images-idx3-ubyte[.gz] with its labels)
// when it has the test set's image size: calibration images the test does not score.
std::optional<ImageDataset> readTrainingSplit(const std::string& data_path, const ImageDataset& test);

// Calibration rows for a test set: `count` images spread evenly over the training split beside
// it when there is one (so the test images stay unseen), else over the test set itself.
// `source` (optional) receives the file the rows came from.
RowMatrix calibrationRows(const std::string& data_path, const ImageDataset& test, const Preprocessing& pre, int64_t count,
                          std::string* source = nullptr);

// The preprocessing the data suggests: uint8 or values past 1.5 -> divide by 255; values
// already in [0, 1] (or centred floats) -> scale 1. `why` says which, for display.
Preprocessing inferPreprocessing(const ImageDataset& data, std::string* why = nullptr);

// The preprocessing a user asked for: the scale given, or inferred when not; mean and std as
// given (0 and 1 by default). One rule for the CLI and the GUI. Throws std::invalid_argument
// when the scale or std is zero.
Preprocessing choosePreprocessing(const ImageDataset& data, std::optional<double> scale, double mean, double std,
                                  std::string* why = nullptr);

}  // namespace qs
