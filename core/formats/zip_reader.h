#pragma once
// Reads members of a zip archive (.keras files) into memory with libzip, refusing what a
// hostile archive could use against us: members whose declared or real size is past a limit
// (zip bombs), and member names with "..", absolute paths or NULs.
#include <cstddef>
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
    // The member mapped in place when it is stored, unencrypted, not ZIP64 and at most
    // `max_bytes`; else empty (read() it). Its CRC is not checked: only for a reader whose bytes
    // someone else checks through read() (the preflight's helper, whose caller unpacks the same
    // member). The central directory entry is found by our own reading of the archive's end
    // records and must agree with libzip's (size, method, CRC), so both see the same bytes.
    MappedMember mapStored(const std::string& name, size_t max_bytes) const;

private:
    std::string path_;
    zip* zip_ = nullptr;
};

}  // namespace qs
