#include "atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "error.h"

namespace qs {

namespace {

std::string errnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Closes and removes the temporary file unless released (the rename happened).
struct TempFile {
    std::string path;
    int fd = -1;
    bool keep = false;
    ~TempFile() {
        if (fd >= 0) ::close(fd);
        if (!keep && !path.empty()) ::unlink(path.c_str());
    }
};

}  // namespace

void writeFileAtomically(const std::string& path, std::string_view bytes) {
    namespace fs = std::filesystem;
    const fs::path target(path);
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    std::string tmpl = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
    TempFile tmp;
    tmp.fd = ::mkstemp(tmpl.data());
    if (tmp.fd < 0) throw Error(path, "", errnoText("cannot create a temporary file beside it"));
    tmp.path = tmpl;
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(tmp.fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw Error(path, "", errnoText("write failed; the previous file is unchanged"));
        done += static_cast<size_t>(n);
    }
    // mkstemp creates 0600; a saved config or export is an ordinary file (0644 less umask).
    const mode_t mask = ::umask(0);
    ::umask(mask);
    if (::fchmod(tmp.fd, 0666 & ~mask) != 0) throw Error(path, "", errnoText("cannot set permissions"));
    if (::fsync(tmp.fd) != 0) throw Error(path, "", errnoText("fsync failed; the previous file is unchanged"));
    ::close(tmp.fd);
    tmp.fd = -1;
    if (::rename(tmp.path.c_str(), path.c_str()) != 0) throw Error(path, "", errnoText("cannot replace the file"));
    tmp.keep = true;
}

}  // namespace qs
