#include "data/array_dataset.h"

#include "data/image_folder_dataset.h"
#include <H5Cpp.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "base/error.h"
#include "data/image_folder_dataset.h"
#include "formats/h5_preflight.h"
#include "formats/hdf5_util.h"
#include "formats/zip_reader.h"

namespace qs {

namespace fs = std::filesystem;

namespace {

// Where the value of 'key' starts in a .npy header, a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (10000, 28, 28), } (NumPy's format
// description): just past the colon and any blanks; npos when the key is missing.
size_t dictValue(const std::string& header, const char* key) {
    const std::string quoted = std::string("'") + key + "'";
    size_t at = header.find(quoted);
    if (at == std::string::npos) return at;
    at = header.find_first_not_of(" \t", at + quoted.size());
    if (at == std::string::npos || header[at] != ':') return std::string::npos;
    at = header.find_first_not_of(" \t", at + 1);
    return at;
}

// A numeric array in memory, converted to double for labels or float/uint8 for images.
struct Array {
    std::string descr;  // NumPy type string: "<f4", "|u1", ...
    std::vector<int64_t> shape;
    std::vector<char> bytes;
    int64_t count() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
    char kind() const { return descr.size() >= 2 ? descr[1] : '?'; }  // f, i, u, b
    int width() const { return descr.size() >= 3 ? std::atoi(descr.c_str() + 2) : 0; }
};

constexpr size_t kMaxArrayBytes = size_t(4) << 30;

// The NumPy format (numpy.lib.format): magic "\x93NUMPY", version, header length, a Python
// dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (10000, 28, 28), }, data.
Array parseNpy(const std::vector<char>& file, const std::string& where) {
    if (file.size() < 10 || std::memcmp(file.data(), "\x93NUMPY", 6) != 0) throw Error(where, "", "not a NumPy .npy array");
    const int major = static_cast<unsigned char>(file[6]);
    size_t header_len, offset;
    if (major == 1) {
        header_len = static_cast<unsigned char>(file[8]) | (size_t(static_cast<unsigned char>(file[9])) << 8);
        offset = 10;
    } else if (major == 2 || major == 3) {
        if (file.size() < 12) throw Error(where, "", "truncated .npy header");
        header_len = 0;
        for (int i = 0; i < 4; ++i) header_len |= size_t(static_cast<unsigned char>(file[8 + static_cast<size_t>(i)])) << (8 * i);
        offset = 12;
    } else {
        throw Error(where, "", "unknown .npy version " + std::to_string(major));
    }
    if (offset + header_len > file.size()) throw Error(where, "", "truncated .npy header");
    const std::string header(file.data() + offset, header_len);
    Array a;
    const size_t descr = dictValue(header, "descr");
    const size_t descr_end = descr == std::string::npos || header[descr] != '\'' ? std::string::npos : header.find('\'', descr + 1);
    if (descr_end == std::string::npos) throw Error(where, "", "the .npy header has no 'descr'");
    a.descr = header.substr(descr + 1, descr_end - descr - 1);
    if (a.descr.find('O') != std::string::npos)
        throw Error(where, "", "holds Python objects (a pickle); Quantscope never unpickles data");
    const size_t fortran = dictValue(header, "fortran_order");
    if (fortran != std::string::npos && header.compare(fortran, 4, "True") == 0)
        throw Error(where, "", "is stored in Fortran order; save it with C order (numpy.ascontiguousarray)");
    const size_t shape = dictValue(header, "shape");
    const size_t shape_end = shape == std::string::npos || header[shape] != '(' ? std::string::npos : header.find(')', shape);
    if (shape_end == std::string::npos) throw Error(where, "", "the .npy header has no 'shape'");
    for (size_t i = shape + 1; i < shape_end;) {  // the digit runs of "(10000, 28, 28)"
        if (!std::isdigit(static_cast<unsigned char>(header[i]))) {
            ++i;
            continue;
        }
        const size_t run = std::min(header.find_first_not_of("0123456789", i), shape_end);
        if (run - i > 13) throw Error(where, "", "implausible shape");  // past 2^40 before stoll could overflow
        const int64_t d = std::stoll(header.substr(i, run - i));
        if (d > (int64_t(1) << 40)) throw Error(where, "", "implausible shape");
        a.shape.push_back(d);
        i = run;
    }
    const char k = a.kind();
    const int w = a.width();
    const bool known = (k == 'f' && (w == 4 || w == 8)) || ((k == 'i' || k == 'u') && (w == 1 || w == 2 || w == 4 || w == 8)) || (k == 'b' && w == 1);
    if (!known || (a.descr[0] == '>' && w > 1)) throw Error(where, "", "unsupported element type '" + a.descr + "'");
    const size_t data_at = offset + header_len;
    const double need = static_cast<double>(a.count()) * w;
    if (need > static_cast<double>(kMaxArrayBytes)) throw Error(where, "", "array larger than 4 GiB");
    if (data_at + static_cast<size_t>(need) > file.size())
        throw Error(where, "", "truncated: the header promises " + std::to_string(static_cast<int64_t>(need)) + " bytes of data, the file has " +
                                   std::to_string(file.size() - data_at));
    a.bytes.assign(file.begin() + static_cast<std::ptrdiff_t>(data_at), file.begin() + static_cast<std::ptrdiff_t>(data_at + static_cast<size_t>(need)));
    return a;
}

double valueAt(const Array& a, int64_t i) {
    const char* p = a.bytes.data() + i * a.width();
    auto get = [p](auto v) {
        std::memcpy(&v, p, sizeof v);
        return static_cast<double>(v);
    };
    switch (a.kind()) {
        case 'f': return a.width() == 4 ? get(float()) : get(double());
        case 'u':
        case 'b': return a.width() == 1 ? get(uint8_t()) : a.width() == 2 ? get(uint16_t()) : a.width() == 4 ? get(uint32_t()) : get(uint64_t());
        default: return a.width() == 1 ? get(int8_t()) : a.width() == 2 ? get(int16_t()) : a.width() == 4 ? get(int32_t()) : get(int64_t());
    }
}

ImageDataset fromArrays(const Array& x, const Array& y, const std::string& source, const std::string& xname, const std::string& yname) {
    ImageDataset d;
    d.source = source;
    if (x.shape.size() < 2 || x.shape.size() > 4) throw Error(source, xname, "images must be (n, h, w), (n, h, w, c) or (n, features)");
    d.n = x.shape[0];
    if (x.shape.size() == 2) d.rows = 1, d.cols = x.shape[1];
    else d.rows = x.shape[1], d.cols = x.shape[2], d.channels = x.shape.size() == 4 ? x.shape[3] : 1;
    const int64_t total = x.count();
    if (x.kind() == 'u' && x.width() == 1) {
        d.pixels.assign(reinterpret_cast<const uint8_t*>(x.bytes.data()), reinterpret_cast<const uint8_t*>(x.bytes.data()) + total);
    } else {
        d.values.resize(static_cast<size_t>(total));
        for (int64_t i = 0; i < total; ++i) {
            const double v = valueAt(x, i);
            if (!std::isfinite(v)) throw Error(source, xname, "image value " + std::to_string(i) + " is NaN or infinite");
            d.values[static_cast<size_t>(i)] = static_cast<float>(v);
        }
    }
    if (y.shape.empty() || y.shape[0] != d.n)
        throw Error(source, yname, std::to_string(y.shape.empty() ? 0 : y.shape[0]) + " labels for " + std::to_string(d.n) + " images");
    if (y.kind() == 'f' && y.shape.size() == 1) throw Error(source, yname, "labels are floats; expected integer class indices");
    const int64_t k = y.shape.size() == 2 ? y.shape[1] : 1;  // one-hot rows: argmax
    if (y.shape.size() > 2) throw Error(source, yname, "labels must be (n,) or one-hot (n, classes)");
    d.labels.resize(static_cast<size_t>(d.n));
    int32_t max_label = -1;
    for (int64_t i = 0; i < d.n; ++i) {
        double label;
        if (k == 1) {
            label = valueAt(y, i);
        } else {
            int64_t arg = 0;
            for (int64_t j = 1; j < k; ++j)
                if (valueAt(y, i * k + j) > valueAt(y, i * k + arg)) arg = j;
            label = static_cast<double>(arg);
        }
        if (label < 0 || label > 1e6 || label != std::floor(label))
            throw Error(source, yname, "label " + std::to_string(i) + " is " + std::to_string(label) + ", not a class index");
        d.labels[static_cast<size_t>(i)] = static_cast<int32_t>(label);
        max_label = std::max(max_label, d.labels[static_cast<size_t>(i)]);
    }
    d.num_classes = std::max<int>(static_cast<int>(k == 1 ? max_label + 1 : k), 0);
    return d;
}

std::vector<char> readFile(const std::string& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw Error(path, "", "no such file");
    const auto size = fs::file_size(path, ec);
    if (ec || size > kMaxArrayBytes) throw Error(path, "", "cannot read (or larger than 4 GiB)");
    std::ifstream in(path, std::ios::binary);
    std::vector<char> b(static_cast<size_t>(size));
    if (!in.read(b.data(), static_cast<std::streamsize>(size))) throw Error(path, "", "read failed");
    return b;
}

// The (x, y) names to use among `names`: the user's, else the first common pair present.
std::pair<std::string, std::string> pickNames(const std::vector<std::string>& names, const ArrayDatasetOptions& o, const std::string& source) {
    auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
    if (!o.x_name.empty() || !o.y_name.empty()) {
        if (!has(o.x_name)) throw Error(source, o.x_name, "no such array");
        if (!has(o.y_name)) throw Error(source, o.y_name, "no such array");
        return {o.x_name, o.y_name};
    }
    for (auto [x, y] : {std::pair{"x_test", "y_test"}, std::pair{"X_test", "y_test"}, std::pair{"x", "y"}, std::pair{"X", "y"},
                        std::pair{"images", "labels"}, std::pair{"data", "labels"}, std::pair{"x_train", "y_train"}})
        if (has(x) && has(y)) return {x, y};
    std::string list;
    for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
    throw Error(source, "", "cannot tell images from labels among [" + list + "]; name them (x_test/y_test, x/y, images/labels)");
}

}  // namespace

ImageDataset readNpzDataset(const std::string& path, const ArrayDatasetOptions& o) {
    const ZipArchive zip(path);
    std::vector<std::string> names;
    for (const std::string& n : zip.names())
        if (n.size() > 4 && n.compare(n.size() - 4, 4, ".npy") == 0) names.push_back(n.substr(0, n.size() - 4));
    const auto [xn, yn] = pickNames(names, o, path);
    const Array x = parseNpy(zip.read(xn + ".npy", kMaxArrayBytes), path + ":" + xn);
    const Array y = parseNpy(zip.read(yn + ".npy", kMaxArrayBytes), path + ":" + yn);
    ImageDataset d = fromArrays(x, y, path, xn, yn);
    d.source = path + " (" + xn + ", " + yn + ")";
    return d;
}

ImageDataset readNpyPair(const std::string& images_path, const std::string& labels_path) {
    const Array x = parseNpy(readFile(images_path), images_path), y = parseNpy(readFile(labels_path), labels_path);
    return fromArrays(x, y, images_path, "", labels_path);
}

namespace {
// The preflight's job (h5_preflight.h): the same read in the helper.
void readHdf5Job(const std::vector<std::string>& a) { readHdf5Dataset(a.at(0), ArrayDatasetOptions{a.at(1), a.at(2)}); }
}  // namespace

ImageDataset readHdf5Dataset(const std::string& path, const ArrayDatasetOptions& o) {
    h5::silenceErrorStack();
    H5::H5File f = h5::openReadOnly(path);
    try {
        const std::vector<std::string> names = h5::childNames(f);
        const auto [xn, yn] = pickNames(names, o, path);
        auto read = [&](const std::string& name) {
            const H5::DataSet ds = f.openDataSet(name);
            const H5::DataSpace space = ds.getSpace();
            const int rank = space.getSimpleExtentNdims();
            if (rank < 1 || rank > 4) throw Error(path, name, "has rank " + std::to_string(rank));
            std::vector<hsize_t> dims(static_cast<size_t>(rank));
            space.getSimpleExtentDims(dims.data());
            Array a;
            for (hsize_t d : dims) a.shape.push_back(static_cast<int64_t>(d));
            const H5T_class_t cls = ds.getTypeClass();
            H5::PredType mem = H5::PredType::NATIVE_DOUBLE;
            if (cls == H5T_INTEGER && ds.getDataType().getSize() == 1 && ds.getIntType().getSign() == H5T_SGN_NONE) {
                a.descr = "|u1";
                mem = H5::PredType::NATIVE_UINT8;
            } else if (cls == H5T_INTEGER) {
                a.descr = "<i8";
                mem = H5::PredType::NATIVE_INT64;
            } else if (cls == H5T_FLOAT) {
                a.descr = "<f8";
            } else {
                throw Error(path, name, "is not numeric");
            }
            const double bytes = static_cast<double>(a.count()) * a.width();
            if (bytes > static_cast<double>(kMaxArrayBytes)) throw Error(path, name, "larger than 4 GiB");
            a.bytes.resize(static_cast<size_t>(bytes));
            ds.read(a.bytes.data(), mem);
            return a;
        };
        const Array x = read(xn), y = read(yn);
        ImageDataset d = fromArrays(x, y, path, xn, yn);
        d.source = path + " (" + xn + ", " + yn + ")";
        return d;
    } catch (const H5::Exception& e) {
        throw Error(path, "", "HDF5 read failed: " + h5::innermostErrorMessage());
    }
}

ImageDataset readDataset(const std::string& path, const ArrayDatasetOptions& o) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        // An IDX pair first (what Debian's dataset packages hold); else class sub-folders of images.
        if (findIdxPair(path) || !hasClassFolders(path)) return readIdxFolder(path);
        return readImageFolder(path);
    }
    const std::vector<char> head = [&] {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw Error(path, "", "no such file");
        std::vector<char> b(8, 0);
        in.read(b.data(), 8);
        return b;
    }();
    if (std::memcmp(head.data(), "PK", 2) == 0) return readNpzDataset(path, o);
    if (std::memcmp(head.data(), "\x89HDF", 4) == 0) {
        // libhdf5 can crash on a damaged file: read it in the helper first (h5_preflight.h).
        // It names no steps, so the whole read runs there before it runs here.
        h5::Preflight checked(&readHdf5Job, {path, o.x_name, o.y_name}, static_cast<int64_t>(fs::file_size(path)), path);
        checked.finish();
        return readHdf5Dataset(path, o);
    }
    if (std::memcmp(head.data(), "\x93NUMPY", 6) == 0) {
        std::string labels = path;
        for (auto [from, to] : {std::pair{"x_", "y_"}, std::pair{"images", "labels"}, std::pair{"X_", "y_"}}) {
            const size_t at = labels.rfind(from);
            if (at != std::string::npos) {
                labels.replace(at, std::strlen(from), to);
                if (fs::exists(labels, ec)) return readNpyPair(path, labels);
                labels = path;
            }
        }
        throw Error(path, "", "an .npy images file needs its labels beside it (x_*.npy with y_*.npy, or *images*.npy with *labels*.npy)");
    }
    std::string labels = path;
    const size_t at = labels.find("images-idx3");
    if (at == std::string::npos) throw Error(path, "", "not a dataset Quantscope reads (IDX folder or images file, .npz, .npy, HDF5)");
    labels.replace(at, 11, "labels-idx1");
    return readIdxPair(path, labels);
}

std::optional<ImageDataset> readTrainingSplit(const std::string& data_path, const ImageDataset& test) {
    std::error_code ec;
    if (!fs::is_directory(data_path, ec)) return std::nullopt;
    for (const char* ext : {"", ".gz"}) {
        const fs::path dir(data_path);
        const fs::path im = dir / (std::string("train-images-idx3-ubyte") + ext), lb = dir / (std::string("train-labels-idx1-ubyte") + ext);
        if (!fs::exists(im, ec) || !fs::exists(lb, ec)) continue;
        ImageDataset train = readIdxPair(im.string(), lb.string());
        if (train.rows == test.rows && train.cols == test.cols && train.channels == test.channels) return train;
    }
    return std::nullopt;
}

Preprocessing choosePreprocessing(const ImageDataset& data, std::optional<double> scale, double mean, double std, std::string* why) {
    if ((scale && !(*scale != 0)) || !(std != 0)) throw std::invalid_argument("the scale and the standard deviation must be non-zero");
    Preprocessing p = inferPreprocessing(data, why);
    if (scale) {
        p.scale = *scale;
        if (why) *why = "scale given";
    }
    p.mean = mean, p.std = std;
    return p;
}

Preprocessing inferPreprocessing(const ImageDataset& d, std::string* why) {
    Preprocessing p;
    if (!d.pixels.empty()) {
        if (why) *why = "uint8 pixels: x = pixel / 255";
        return p;
    }
    float hi = 0;
    for (float v : d.values) hi = std::max(hi, v);
    if (hi > 1.5f) {
        if (why) *why = "values up to " + std::to_string(hi) + ": x = value / 255";
        return p;
    }
    p.scale = 1;
    if (why) *why = "float values already in [0, 1] (or centred): used as they are";
    return p;
}

RowMatrix calibrationRows(const std::string& data_path, const ImageDataset& test, const Preprocessing& pre, int64_t count,
                          std::string* source) {
    const std::optional<ImageDataset> train = readTrainingSplit(data_path, test);
    const ImageDataset& from = train ? *train : test;
    if (source) *source = from.source;
    return preprocessSpread(from, pre, count);
}

}  // namespace qs
