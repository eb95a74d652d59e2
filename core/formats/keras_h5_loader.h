#pragma once
// Readers for the HDF5 layouts Keras has written. Each returns the file's weights as groups
// in the file's layer order; model_loader binds them to an architecture.
//  - legacy (Keras 1/2, tf.keras, Keras 3 writing .h5): a `layer_names` attribute lists the
//    layer groups; each group's `weight_names` lists its datasets, relative to the group
//    (keras/src/legacy/saving/legacy_h5_format.py).
//  - Keras 0.x: root attribute `nb_layers`, groups layer_<i> with datasets param_<j>.
//  - Keras 3 (.weights.h5, and inside .keras): layers/<key>/vars/<i>, where <key> is the
//    snake-cased class name with a per-class counter; tf.keras 2.13-2.15 wrote
//    _layer_checkpoint_dependencies/<key> (on Windows with a literal backslash in the name).
//  - any other HDF5 file: every floating-point dataset, grouped by its parent group.
#include <H5Cpp.h>

#include <string>
#include <vector>

#include "base/progress.h"
#include "formats/keras_config.h"
#include "formats/weight_binding.h"

namespace qs {

std::vector<WeightGroup> readLegacyWeightGroups(const H5::Group& group, const std::string& file,
                                                const std::string& group_path, const Progress& progress);
std::vector<WeightGroup> readKeras0WeightGroups(const H5::Group& root, const std::string& file, const Progress& progress);

bool hasKeras3Layout(const H5::Group& root);
// With an architecture: groups named after the architecture's layers (keys resolved by the
// `name` attribute where the file has it, else by class counter). Without: one group per key.
std::vector<WeightGroup> readKeras3WeightGroups(const H5::Group& root, const std::string& file,
                                                const Architecture* arch, const Progress& progress);

// Any HDF5 file: every floating-point, integer and boolean dataset (hard links only), grouped
// by the group that holds it.
std::vector<WeightGroup> readGenericDatasets(const H5::H5File& file, const std::string& path, const Progress& progress);

// Opens a dataset by a path relative to `base`, following hard links only: soft and external
// links could point outside the file the user chose.
H5::DataSet openDatasetHardLinksOnly(const H5::Group& base, const std::string& rel_path, const std::string& file,
                                     const std::string& full_path);

}  // namespace qs
