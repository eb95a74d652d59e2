#include "data/image_folder_dataset.h"

#include <stb/stb_image.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "base/error.h"

namespace qs {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kMaxPixels = int64_t(1) << 26;         // one image: 64 Mpixel
constexpr int64_t kMaxDatasetBytes = int64_t(4) << 30;   // all of them, decoded

bool isImageFile(const fs::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    // keras.utils.image_dataset_from_directory's ALLOWLIST_FORMATS.
    static const std::array<const char*, 5> kExts = {".bmp", ".gif", ".jpeg", ".jpg", ".png"};
    return std::any_of(kExts.begin(), kExts.end(), [&](const char* e) { return ext == e; });
}

std::vector<fs::path> sortedEntries(const fs::path& dir, bool directories) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
        std::error_code ec2;
        if (directories ? e.is_directory(ec2) : (e.is_regular_file(ec2) && isImageFile(e.path()))) out.push_back(e.path());
    }
    if (ec) throw Error(dir.string(), "", "cannot list the folder (" + ec.message() + ")");
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<unsigned char> readBytes(const fs::path& p) {
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    if (ec) throw Error(p.string(), "", "cannot read (" + ec.message() + ")");
    if (size > (uint64_t(256) << 20)) throw Error(p.string(), "", "image file larger than 256 MiB");
    std::ifstream in(p, std::ios::binary);
    std::vector<unsigned char> bytes(static_cast<size_t>(size));
    if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
        throw Error(p.string(), "", "cannot read");
    return bytes;
}

struct Decoded {
    int w = 0, h = 0, channels = 0;  // as stored: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
};

// The header only: size and channels, without decoding (bounds the work before it starts).
Decoded probe(const std::vector<unsigned char>& bytes, const fs::path& p) {
    Decoded d;
    if (bytes.empty() || bytes.size() > static_cast<size_t>(INT32_MAX) ||
        !stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &d.w, &d.h, &d.channels))
        throw Error(p.string(), "", std::string("cannot decode image (") + (bytes.empty() ? "empty file" : stbi_failure_reason()) + ")");
    if (d.w <= 0 || d.h <= 0 || int64_t(d.w) * d.h > kMaxPixels)
        throw Error(p.string(), "", "image of " + std::to_string(d.w) + " x " + std::to_string(d.h) + " pixels, over the limit of " +
                                        std::to_string(kMaxPixels) + " pixels");
    return d;
}

// Decodes into `out` (appended) with `want` channels (stb converts grey and drops alpha).
void decodeInto(const std::vector<unsigned char>& bytes, const fs::path& p, int want, std::vector<uint8_t>& out) {
    int w = 0, h = 0, c = 0;
    unsigned char* px = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &c, want);
    if (!px) throw Error(p.string(), "", std::string("cannot decode image (") + stbi_failure_reason() + ")");
    out.insert(out.end(), px, px + static_cast<size_t>(w) * static_cast<size_t>(h) * static_cast<size_t>(want));
    stbi_image_free(px);
}

}  // namespace

bool hasClassFolders(const std::string& dir) {
    std::error_code ec;
    return fs::is_directory(dir, ec) && !sortedEntries(dir, true).empty();
}

namespace {

// Grey images are often stored as RGB (BMP, some PNG): when every pixel has R = G = B the
// set is grey, one channel, as a grey model's input wants it.
void collapseGrey(ImageDataset& d) {
    const std::vector<uint8_t>& p = d.pixels;
    for (size_t i = 0; i + 2 < p.size(); i += 3)
        if (p[i] != p[i + 1] || p[i] != p[i + 2]) return;
    std::vector<uint8_t> grey(p.size() / 3);
    for (size_t i = 0; i < grey.size(); ++i) grey[i] = p[3 * i];
    d.pixels = std::move(grey);
    d.channels = 1;
}

}  // namespace

ImageDataset readImageFolder(const std::string& dir) {
    const std::vector<fs::path> classes = sortedEntries(dir, true);
    if (classes.empty()) throw Error(dir, "", "no class sub-folders (an image folder has one sub-folder of images per class)");
    ImageDataset d;
    d.source = dir + " (" + std::to_string(classes.size()) + " class folders)";
    d.num_classes = static_cast<int>(classes.size());
    d.channels = 3;  // decoded as RGB; collapsed to grey below when no pixel has colour
    Decoded first;
    for (size_t label = 0; label < classes.size(); ++label) {
        for (const fs::path& file : sortedEntries(classes[label], false)) {
            const std::vector<unsigned char> bytes = readBytes(file);
            const Decoded info = probe(bytes, file);
            if (d.n == 0) {
                first = info;
                d.rows = info.h, d.cols = info.w;
            } else if (info.w != first.w || info.h != first.h) {
                throw Error(file.string(), "", "image is " + std::to_string(info.w) + " x " + std::to_string(info.h) + " but the first one (" +
                                                   std::to_string(first.w) + " x " + std::to_string(first.h) +
                                                   ") is not; resize the folder to one size");
            }
            if (static_cast<int64_t>(d.pixels.size()) + int64_t(info.w) * info.h * 3 > kMaxDatasetBytes)
                throw Error(dir, "", "the images decode to more than 4 GiB");
            decodeInto(bytes, file, 3, d.pixels);
            d.labels.push_back(static_cast<int32_t>(label));
            ++d.n;
        }
    }
    if (d.n == 0) throw Error(dir, "", "the class folders hold no .png, .jpg, .jpeg, .bmp or .gif files");
    collapseGrey(d);
    return d;
}

}  // namespace qs
