#include "formats/zip_reader.h"

#include <zip.h>

#include <cstring>
#include <fstream>

#include "base/allocator.h"
#include "base/error.h"
#include "formats/hdf5_util.h"

namespace qs {

bool looksLikeZip(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    return in.gcount() == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0;
}

ZipArchive::ZipArchive(const std::string& path) : path_(path) {
    int err = 0;
    zip_ = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!zip_) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        std::string msg = zip_error_strerror(&ze);
        zip_error_fini(&ze);
        throw Error(path, "", "not a readable zip archive (" + msg + ")");
    }
    for (const std::string& n : names())
        if (n.find("..") != std::string::npos || (!n.empty() && n[0] == '/') || n.find('\0') != std::string::npos)
            throw Error(path, n, "zip member name escapes the archive; refusing to read it");
}

ZipArchive::~ZipArchive() {
    if (zip_) zip_discard(zip_);
}

std::vector<std::string> ZipArchive::names() const {
    std::vector<std::string> out;
    const zip_int64_t n = zip_get_num_entries(zip_, 0);
    for (zip_int64_t i = 0; i < n; ++i) {
        const char* name = zip_get_name(zip_, static_cast<zip_uint64_t>(i), 0);
        if (name) out.emplace_back(name);
    }
    return out;
}

bool ZipArchive::contains(const std::string& name) const {
    return zip_name_locate(zip_, name.c_str(), 0) >= 0;
}

std::vector<char> ZipArchive::read(const std::string& name, size_t max_bytes) const {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat(zip_, name.c_str(), 0, &st) != 0) throw Error(path_, name, "the archive has no member '" + name + "'");
    if (!(st.valid & ZIP_STAT_SIZE)) throw Error(path_, name, "zip member has no size");
    if (st.size > max_bytes)
        throw Error(path_, name, "zip member expands to " + std::to_string(st.size >> 20) + " MiB, over the limit of " +
                                     std::to_string(max_bytes >> 20) + " MiB (zip bomb?)");
    if ((st.valid & ZIP_STAT_COMP_SIZE) && st.comp_size > 0 && st.size / st.comp_size > 2000 && st.size > (64u << 20))
        throw Error(path_, name, "zip member has a compression ratio over 2000:1 (zip bomb?); refusing it");
    zip_file_t* f = zip_fopen(zip_, name.c_str(), 0);
    if (!f) throw Error(path_, name, std::string("cannot open zip member (") + zip_strerror(zip_) + ")");
    std::vector<char> buf;
    resizeOnHugePages(buf, static_cast<size_t>(st.size));  // a model.weights.h5 can be the whole model
    zip_int64_t got = buf.empty() ? 0 : zip_fread(f, buf.data(), buf.size());
    // One byte more must not come: the declared size is all we accept.
    char extra;
    const zip_int64_t more = zip_fread(f, &extra, 1);
    zip_fclose(f);
    if (got < 0 || static_cast<zip_uint64_t>(got) != st.size || more > 0)
        throw Error(path_, name, "zip member is corrupt or truncated");
    return buf;
}

std::string ZipArchive::readText(const std::string& name) const {
    std::vector<char> b = read(name, size_t(256) << 20);
    return std::string(b.begin(), b.end());
}

}  // namespace qs
