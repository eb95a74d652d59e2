#pragma once
// Reads members of a zip archive (.keras files) into memory with libzip, refusing what a
// hostile archive could use against us: members whose declared or real size is past a limit
// (zip bombs), and member names with "..", absolute paths or NULs.
#include <string>
#include <vector>

struct zip;

namespace qs {

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

private:
    std::string path_;
    zip* zip_ = nullptr;
};

}  // namespace qs
