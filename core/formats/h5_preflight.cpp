#include "formats/h5_preflight.h"

#include <H5Cpp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <new>

#include "base/error.h"
#include "formats/hdf5_util.h"

namespace qs::h5 {

namespace {

// Exit codes of the child; a signal means libhdf5 crashed.
enum ChildExit { kWalked = 0, kOutOfMemory = 3 };

// A failed read in the child is fine (the in-process load reports it), but one that failed
// because libhdf5 could not allocate means loading would need more than the limit. libhdf5
// calls this when an API call fails, with the reason still on its error stack.
herr_t exitIfOutOfMemory(hid_t stack, void*) {
    const std::string why = innermostErrorMessage();
    (void)stack;
    if (why.find("memory allocation failed") != std::string::npos || why.find("out of memory") != std::string::npos)
        _exit(kOutOfMemory);
    return 0;
}

// ---- the parent: run the child under limits ------------------------------------------------

int64_t currentAddressSpace() {
    std::ifstream statm("/proc/self/statm");
    int64_t pages = 0;
    statm >> pages;
    return pages * sysconf(_SC_PAGESIZE);
}

std::string secondsText(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", s);
    return buf;
}

bool sanitized() {
#ifdef QUANTSCOPE_SANITIZED
    return true;
#else
    return false;
#endif
}

bool disabled() {
    const char* v = std::getenv("QUANTSCOPE_PREFLIGHT");
    return v && std::strcmp(v, "0") == 0;
}

std::string lastLine(const std::string& log) {
    size_t end = log.size();
    while (end > 0 && log[end - 1] == '\n') --end;
    const size_t start = log.rfind('\n', end == 0 ? 0 : end - 1);
    return log.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1));
}

// Forks; the child runs `metadata_load` in metadata-only mode, naming each step on the pipe.
void runChild(const std::function<void()>& metadata_load, int64_t data_bytes, const std::string& display_name) {
    const PreflightLimits limits = preflightLimits();
    int fds[2];
    if (pipe(fds) != 0) return;  // no pipe, no check: load as before rather than refuse
    const int64_t address_limit = currentAddressSpace() + data_bytes + limits.extra_bytes;
    const pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        if (!sanitized()) {
            const rlimit as{static_cast<rlim_t>(address_limit), static_cast<rlim_t>(address_limit)};
            setrlimit(RLIMIT_AS, &as);
        }
        setMetadataOnly(fds[1]);
        silenceErrorStack();  // first, so the loader's own call does not replace the handler
        H5Eset_auto2(H5E_DEFAULT, exitIfOutOfMemory, nullptr);
        int code = kWalked;
        try {
            metadata_load();
        } catch (const std::bad_alloc&) {
            code = kOutOfMemory;
        } catch (...) {
        }
        _exit(code);
    }
    close(fds[1]);
    std::string log;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limits.seconds);
    bool timed_out = false;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        const int ready = poll(&p, 1, static_cast<int>(left));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) continue;
        char buf[4096];
        const ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // EOF: the child has exited (or closed the pipe)
        log.append(buf, static_cast<size_t>(n));
        if (log.size() > (1u << 16)) log.erase(0, log.size() - 4096);  // only the last step matters
    }
    close(fds[0]);
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const std::string where = lastLine(log);
    if (timed_out)
        throw Error(display_name, where,
                    "the file is damaged: libhdf5 spent more than " + secondsText(limits.seconds) + " s reading its metadata; refused");
    if (WIFSIGNALED(status))
        throw Error(display_name, where,
                    "the file is damaged: libhdf5 crashed reading its metadata (signal " + std::to_string(WTERMSIG(status)) +
                        ", " + strsignal(WTERMSIG(status)) + "); refused");
    if (WIFEXITED(status) && WEXITSTATUS(status) == kOutOfMemory)
        throw Error(display_name, where,
                    "the file is damaged: libhdf5 needed more than " + std::to_string(limits.extra_bytes >> 20) +
                        " MiB beyond the file's size to read its metadata; refused");
}

}  // namespace

PreflightLimits preflightLimits() {
    PreflightLimits l;
    if (sanitized()) l.seconds *= 5;
    if (const char* s = std::getenv("QUANTSCOPE_PREFLIGHT_SECONDS")) {
        const double v = std::atof(s);
        if (v > 0) l.seconds = v;
    }
    return l;
}

void preflight(const std::function<void()>& metadata_load, int64_t data_bytes, const std::string& display_name) {
    if (disabled()) return;
    runChild(metadata_load, data_bytes, display_name);
}

}  // namespace qs::h5
