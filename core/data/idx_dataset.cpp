#include "data/idx_dataset.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>

#include "base/error.h"

namespace qs {

namespace fs = std::filesystem;

namespace {

// Whole file through zlib's gz reader (reads plain files unchanged), with a size cap.
std::vector<uint8_t> readMaybeGz(const std::string& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw Error(path, "", "no such file");
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) throw Error(path, "", "cannot open");
    std::vector<uint8_t> out;
    uint8_t buf[1 << 16];
    int got;
    while ((got = gzread(f, buf, sizeof buf)) > 0) {
        out.insert(out.end(), buf, buf + got);
        if (out.size() > (size_t(4) << 30)) {
            gzclose(f);
            throw Error(path, "", "decompresses to more than 4 GiB");
        }
    }
    int errnum = 0;
    const char* msg = gzerror(f, &errnum);
    gzclose(f);
    if (got < 0 || errnum < 0) throw Error(path, "", std::string("corrupt gzip data (") + msg + ")");
    return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
    return (uint32_t(b[at]) << 24) | (uint32_t(b[at + 1]) << 16) | (uint32_t(b[at + 2]) << 8) | b[at + 3];
}

// IDX header: 0x00 0x00 <type 0x08 = ubyte> <ndim>, then ndim big-endian uint32 sizes.
std::vector<int64_t> header(const std::vector<uint8_t>& b, const std::string& path, int want_ndim) {
    if (b.size() < 4 || b[0] != 0 || b[1] != 0) throw Error(path, "", "not an IDX file (bad magic number)");
    if (b[2] != 0x08) throw Error(path, "", "IDX element type is not unsigned byte");
    const int ndim = b[3];
    if (ndim != want_ndim)
        throw Error(path, "", "IDX file has " + std::to_string(ndim) + " dimensions, expected " + std::to_string(want_ndim));
    if (b.size() < 4 + 4 * size_t(ndim)) throw Error(path, "", "IDX header is truncated");
    std::vector<int64_t> dims;
    uint64_t total = 1;
    for (int i = 0; i < ndim; ++i) {
        dims.push_back(be32(b, 4 + 4 * size_t(i)));
        total *= static_cast<uint64_t>(dims.back());
        if (total > (uint64_t(1) << 40)) throw Error(path, "", "IDX dimensions are implausibly large");
    }
    if (b.size() - (4 + 4 * size_t(ndim)) < total)
        throw Error(path, "", "IDX header promises " + std::to_string(total) + " values but the file holds " +
                                  std::to_string(b.size() - (4 + 4 * size_t(ndim))));
    return dims;
}

}  // namespace

ImageDataset readIdxPair(const std::string& images_path, const std::string& labels_path) {
    const std::vector<uint8_t> ib = readMaybeGz(images_path), lb = readMaybeGz(labels_path);
    const std::vector<int64_t> id = header(ib, images_path, 3), ld = header(lb, labels_path, 1);
    if (id[0] != ld[0])
        throw Error(labels_path, "", std::to_string(ld[0]) + " labels for " + std::to_string(id[0]) + " images in " + images_path);
    ImageDataset d;
    d.n = id[0];
    d.rows = id[1];
    d.cols = id[2];
    d.source = images_path;
    d.pixels.assign(ib.begin() + 16, ib.begin() + 16 + d.n * d.rows * d.cols);
    d.labels.assign(lb.begin() + 8, lb.begin() + 8 + d.n);
    d.num_classes = d.n ? *std::max_element(d.labels.begin(), d.labels.end()) + 1 : 0;
    return d;
}

std::optional<std::pair<std::string, std::string>> findIdxPair(const std::string& dir) {
    for (const char* split : {"t10k", "test", "train"})
        for (const char* ext : {".gz", ""}) {
            const fs::path img = fs::path(dir) / (std::string(split) + "-images-idx3-ubyte" + ext);
            const fs::path lab = fs::path(dir) / (std::string(split) + "-labels-idx1-ubyte" + ext);
            if (fs::exists(img) && fs::exists(lab)) return std::make_pair(img.string(), lab.string());
        }
    return std::nullopt;
}

ImageDataset readIdxFolder(const std::string& dir) {
    if (const auto pair = findIdxPair(dir)) return readIdxPair(pair->first, pair->second);
    throw Error(dir, "", "no IDX images/labels pair (t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]) in this folder");
}

void keepFirstImages(ImageDataset& data, int64_t n) {
    if (n <= 0 || n >= data.n) return;
    const auto per_image = static_cast<size_t>(data.rows * data.cols * data.channels);
    if (!data.pixels.empty()) data.pixels.resize(static_cast<size_t>(n) * per_image);
    if (!data.values.empty()) data.values.resize(static_cast<size_t>(n) * per_image);
    data.labels.resize(static_cast<size_t>(n));
    data.n = n;
}

}  // namespace qs
