#pragma once
// Reads members of a zip archive (.keras files) into memory with libzip, refusing what a
// hostile archive could use against us: members whose declared or real size is past a limit
// (zip bombs), and member names with "..", absolute paths or NULs.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct zip;

namespace qs {

// A stored (uncompressed) member's bytes mapped in place from the archive file: no unpacking and
// no CRC check. Empty when the member cannot be mapped that way.
class MappedMember {
public:
    MappedMember() = default;
    MappedMember(void* map, size_t map_bytes, const char* data, size_t size) : map_(map), map_bytes_(map_bytes), data_(data), size_(size) {}
    MappedMember(MappedMember&& o) noexcept { *this = std::move(o); }
    MappedMember& operator=(MappedMember&& o) noexcept;
    MappedMember(const MappedMember&) = delete;
    MappedMember& operator=(const MappedMember&) = delete;
    ~MappedMember();

    explicit operator bool() const { return data_ != nullptr; }
    const char* data() const { return data_; }
    size_t size() const { return size_; }

private:
    void* map_ = nullptr;
    size_t map_bytes_ = 0;
    const char* data_ = nullptr;
    size_t size_ = 0;
};

bool looksLikeZip(const std::string& path);

class ZipArchive {
public:
    explicit ZipArchive(const std::string& path);
    ~ZipArchive();
    ZipArchive(const ZipArchive&) = delete;
    ZipArchive& operator=(const ZipArchive&) = delete;

    std::vector<std::string> names() const;
    bool contains(const std::string& name) const;
    // Whole member; throws qs::Error naming the archive and member when missing or too large.
    std::vector<char> read(const std::string& name, size_t max_bytes) const;
    std::string readText(const std::string& name) const;
    // Where a stored (uncompressed), unencrypted, non-ZIP64 member of at most `max_bytes` lies in
    // the archive file, found by our own reading of the end record, central directory and local
    // header (APPNOTE.TXT 4.3), whose entry must agree with libzip's (size, method, CRC);
    // nullopt otherwise (read() it). Both processes of the preflight take the member's bytes
    // from this same span: the helper maps it (mapSpan), the caller reads it (readSpan).
    struct StoredSpan {
        uint64_t offset = 0;
        uint64_t size = 0;
        uint32_t crc = 0;
    };
    std::optional<StoredSpan> storedSpan(const std::string& name, size_t max_bytes) const;
    // The span's bytes read into memory and checked against the entry's CRC (a qs::Error naming
    // the archive and `name` otherwise), as read() would.
    std::vector<char> readSpan(const std::string& name, const StoredSpan& span) const;
    // The span mapped in place, unchecked: for a reader whose caller checks the same bytes
    // through readSpan (the preflight's helper). Empty when it cannot be mapped.
    MappedMember mapSpan(const StoredSpan& span) const;

private:
    std::string path_;
    zip* zip_ = nullptr;
};

}  // namespace qs
