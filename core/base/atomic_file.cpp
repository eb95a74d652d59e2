#include "base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/error.h"

namespace qs {

namespace {

std::string errnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Removes the temporary file unless the rename happened.
struct TempFile {
    std::string path;
    bool keep = false;
    ~TempFile() {
        if (!keep && !path.empty()) ::unlink(path.c_str());
    }
};

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

void replaceFileAtomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write) {
    namespace fs = std::filesystem;
    const fs::path target(path);
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    std::string tmpl = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
    TempFile tmp;
    {
        Fd created{::mkstemp(tmpl.data())};
        if (created.fd < 0) throw Error(path, "", errnoText("cannot create a temporary file beside it"));
        tmp.path = tmpl;
    }
    write(tmp.path);
    Fd f{::open(tmp.path.c_str(), O_RDWR)};
    if (f.fd < 0) throw Error(path, "", errnoText("cannot reopen the temporary file"));
    // mkstemp creates 0600; a saved config or export is an ordinary file (0666 less umask).
    const mode_t mask = ::umask(0);
    ::umask(mask);
    if (::fchmod(f.fd, 0666 & ~mask) != 0) throw Error(path, "", errnoText("cannot set permissions"));
    if (::fsync(f.fd) != 0) throw Error(path, "", errnoText("fsync failed; the previous file is unchanged"));
    if (::rename(tmp.path.c_str(), path.c_str()) != 0) throw Error(path, "", errnoText("cannot replace the file"));
    tmp.keep = true;
}

void writeFileAtomically(const std::string& path, std::string_view bytes) {
    replaceFileAtomically(path, [&](const std::string& tmp_path) {
        Fd f{::open(tmp_path.c_str(), O_WRONLY | O_TRUNC)};
        if (f.fd < 0) throw Error(path, "", errnoText("cannot open the temporary file"));
        size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::write(f.fd, bytes.data() + done, bytes.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw Error(path, "", errnoText("write failed; the previous file is unchanged"));
            done += static_cast<size_t>(n);
        }
    });
}

}  // namespace qs
