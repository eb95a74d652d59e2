#include "formats/zip_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>

#include "base/allocator.h"
#include "base/byte_io.h"
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
    // One byte more must not come: the declared size is all we accept. libzip checks the CRC
    // once the data has ended, so this read is also where a mismatch shows (-1, ZIP_ER_CRC).
    char extra;
    const zip_int64_t more = zip_fread(f, &extra, 1);
    const bool crc_failed = more < 0 && zip_error_code_zip(zip_file_get_error(f)) == ZIP_ER_CRC;
    zip_fclose(f);
    if (crc_failed) throw Error(path_, name, "zip member does not match its CRC: the archive is damaged");
    if (got < 0 || static_cast<zip_uint64_t>(got) != st.size || more != 0)
        throw Error(path_, name, "zip member is corrupt or truncated");
    return buf;
}

std::string ZipArchive::readText(const std::string& name) const {
    std::vector<char> b = read(name, size_t(256) << 20);
    return std::string(b.begin(), b.end());
}

MappedMember& MappedMember::operator=(MappedMember&& o) noexcept {
    if (this != &o) {
        this->~MappedMember();
        map_ = std::exchange(o.map_, nullptr), map_bytes_ = std::exchange(o.map_bytes_, 0);
        data_ = std::exchange(o.data_, nullptr), size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

MappedMember::~MappedMember() {
    if (map_) munmap(map_, map_bytes_);
    map_ = nullptr, data_ = nullptr;
}

namespace {

// Where the stored member `name`'s bytes start in the archive (APPNOTE.TXT 4.3: the end of
// central directory record, the central directory's file headers, the local file header), when
// the central directory's entry agrees with libzip's `st`; nullopt otherwise.
std::optional<uint64_t> storedDataOffset(int fd, uint64_t file_size, const std::string& name, const zip_stat_t& st) {
    constexpr uint64_t kEocd = 22, kMaxComment = 65535;
    const uint64_t tail_len = std::min(file_size, kEocd + kMaxComment);
    std::vector<unsigned char> tail(tail_len);
    if (tail_len < kEocd || !preadAll(fd, tail.data(), tail_len, file_size - tail_len)) return std::nullopt;
    size_t e = tail_len - kEocd + 1;
    do {
        --e;
    } while (e > 0 && std::memcmp(&tail[e], "PK\x05\x06", 4) != 0);
    if (std::memcmp(&tail[e], "PK\x05\x06", 4) != 0) return std::nullopt;
    const uint64_t entries = littleEndian(&tail[e + 10], 2), cd_size = littleEndian(&tail[e + 12], 4), cd_offset = littleEndian(&tail[e + 16], 4);
    if (entries == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff) return std::nullopt;  // ZIP64: left to read()
    if (cd_size > (uint64_t{64} << 20) || cd_offset > file_size || cd_size > file_size - cd_offset) return std::nullopt;
    std::vector<unsigned char> cd(cd_size);
    if (!preadAll(fd, cd.data(), cd_size, cd_offset)) return std::nullopt;
    for (uint64_t at = 0, i = 0; i < entries && at + 46 <= cd_size; ++i) {
        const unsigned char* h = &cd[at];
        if (std::memcmp(h, "PK\x01\x02", 4) != 0) return std::nullopt;
        const uint64_t n = littleEndian(h + 28, 2), extra = littleEndian(h + 30, 2), comment = littleEndian(h + 32, 2);
        if (at + 46 + n > cd_size) return std::nullopt;
        if (std::string(reinterpret_cast<const char*>(h + 46), n) == name) {
            const uint64_t local = littleEndian(h + 42, 4);
            if (littleEndian(h + 10, 2) != ZIP_CM_STORE || (littleEndian(h + 8, 2) & 1) != 0 || littleEndian(h + 16, 4) != st.crc || littleEndian(h + 20, 4) != st.comp_size ||
                littleEndian(h + 24, 4) != st.size || local == 0xffffffff)
                return std::nullopt;
            unsigned char lh[30];
            if (local > file_size || !preadAll(fd, lh, sizeof lh, local) || std::memcmp(lh, "PK\x03\x04", 4) != 0) return std::nullopt;
            const uint64_t data = local + 30 + littleEndian(lh + 26, 2) + littleEndian(lh + 28, 2);
            if (data > file_size || st.size > file_size - data) return std::nullopt;
            return data;
        }
        at += 46 + n + extra + comment;
    }
    return std::nullopt;
}

}  // namespace

std::optional<ZipArchive::StoredSpan> ZipArchive::storedSpan(const std::string& name, size_t max_bytes) const {
    zip_stat_t st;
    zip_stat_init(&st);
    const zip_uint64_t need = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD | ZIP_STAT_CRC | ZIP_STAT_ENCRYPTION_METHOD;
    if (zip_stat(zip_, name.c_str(), 0, &st) != 0 || (st.valid & need) != need || st.comp_method != ZIP_CM_STORE ||
        st.encryption_method != ZIP_EM_NONE || st.size == 0 || st.size != st.comp_size || st.size > max_bytes)
        return std::nullopt;
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::optional<StoredSpan> out;
    struct stat fs {};
    if (fstat(fd, &fs) == 0 && S_ISREG(fs.st_mode))
        if (const std::optional<uint64_t> data = storedDataOffset(fd, static_cast<uint64_t>(fs.st_size), name, st))
            out = StoredSpan{*data, st.size, st.crc};
    ::close(fd);
    return out;
}

std::vector<char> ZipArchive::readSpan(const std::string& name, const StoredSpan& span) const {
    std::vector<char> buf;
    resizeOnHugePages(buf, static_cast<size_t>(span.size));  // a model.weights.h5 can be the whole model
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    const bool read = fd >= 0 && preadAll(fd, buf.data(), buf.size(), span.offset);
    if (fd >= 0) ::close(fd);
    // The CRC as libzip checks it; zlib's crc32_z takes the whole length at once.
    if (!read) throw Error(path_, name, "zip member is corrupt or truncated");
    if (crc32_z(0, reinterpret_cast<const Bytef*>(buf.data()), buf.size()) != span.crc)
        throw Error(path_, name, "zip member does not match its CRC: the archive is damaged");
    return buf;
}

MappedMember ZipArchive::mapSpan(const StoredSpan& span) const {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    MappedMember out;
    const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    const uint64_t start = span.offset / page * page, bytes = span.offset - start + span.size;
    // Private and writable: libhdf5 never writes a read-only image, and if it did, no write could
    // reach the archive.
    void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, static_cast<off_t>(start));
    if (map != MAP_FAILED) out = MappedMember(map, bytes, static_cast<const char*>(map) + (span.offset - start), span.size);
    ::close(fd);
    return out;
}

}  // namespace qs
