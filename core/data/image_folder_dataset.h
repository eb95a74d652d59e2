#pragma once
// A folder of images with one sub-folder per class, as Keras'
// image_dataset_from_directory reads it: classes are the sub-folder names in alphanumeric
// order (label 0 = the first), images are the .png, .jpg/.jpeg, .bmp and .gif files in
// them (others are skipped, as Keras does). Decoding by stb_image (Debian's libstb).
// All images must share the first one's size; a set without colour (R = G = B everywhere,
// whatever the files store) is one channel, else three (alpha is dropped). Errors name the file: undecodable or truncated images, sizes that
// disagree, images past 2^26 pixels (refused from the header, before decoding), a folder
// without classes or without images.
#include <string>

#include "data/idx_dataset.h"

namespace qs {

// True when `dir` has a sub-folder (an image folder's classes).
bool hasClassFolders(const std::string& dir);

ImageDataset readImageFolder(const std::string& dir);

}  // namespace qs
