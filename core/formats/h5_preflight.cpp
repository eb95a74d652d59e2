#include "formats/h5_preflight.h"

#include <H5Cpp.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <mutex>
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

// ---- the worker: one metadata-only load, in a process of its own -----------------------------

[[noreturn]] void runWorker(PreflightJob job, const std::vector<std::string>& args, int step_fd, int64_t address_limit) {
    if (!sanitized()) {
        const rlimit as{static_cast<rlim_t>(address_limit), static_cast<rlim_t>(address_limit)};
        setrlimit(RLIMIT_AS, &as);
    }
    setMetadataOnly(step_fd);
    silenceErrorStack();  // first, so the loader's own call does not replace the handler
    H5Eset_auto2(H5E_DEFAULT, exitIfOutOfMemory, nullptr);
    int code = kWalked;
    try {
        job(args);
    } catch (const std::bad_alloc&) {
        code = kOutOfMemory;
    } catch (...) {
    }
    _exit(code);
}

struct Outcome {
    bool timed_out = false;
    int status = 0;  // waitpid's
    std::string where;
};

// Waits for `pid` until `deadline`, then kills it. Polls: the worker usually ends in milliseconds.
bool waitUntil(pid_t pid, std::chrono::steady_clock::time_point deadline, int* status) {
    for (;;) {
        const pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) return true;
        if (std::chrono::steady_clock::now() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
            }
            return false;
        }
        usleep(500);
    }
}

bool writeAll(int fd, const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w, n -= static_cast<size_t>(w);
    }
    return true;
}

bool readAll(int fd, void* data, size_t n) {
    char* p = static_cast<char*>(data);
    while (n > 0) {
        const ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r, n -= static_cast<size_t>(r);
    }
    return true;
}

// ---- the helper: one long-lived child that runs the loads --------------------------------------
// Forking the main process for each file costs more than the fork: a process that has freed a
// large model reuses those heap pages for the next one, and after a fork each such page takes a
// copy-on-write fault on its first write (0.28 s for the VGG16-shaped file in bench_open), and a
// fresh child pays its lazy symbol binding and page faults again (about 10 ms here). So one
// helper, forked at the first check while the process is small, runs every metadata-only load
// itself and stays warm. A load that crashes, times out or exhausts memory ends the helper, so
// no such file's leftovers touch the next check; the next call starts a new one. A load that
// libhdf5 or our checks refuse with an error keeps it (libhdf5 unwinds its state on errors).
// Programs start the helper first thing (startPreflightHelper), while they have one thread:
// forking a process whose other threads may hold a lock (GCC 12's ASan allocator has no fork
// handlers) can leave the child waiting on that lock forever; a restart later forks from
// wherever it is (the deadline bounds the harm to a refused file).

struct Request {
    PreflightJob job;       // a function of this same program: valid in the forked helper
    int64_t data_bytes;
    int64_t extra_bytes;
    uint32_t nargs;
};

constexpr char kStatusMark = '\x01';  // the helper's status line starts with it, after the steps
enum JobEnd { kClean = 0, kThrew = 1, kMemory = 2 };

// A crash in the child must just end it: the host program's crash handlers (Qt Test's runs gdb
// for a backtrace, 2 s) are not for a child that exists to crash in its place.
void defaultCrashSignals() {
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGTRAP}) signal(sig, SIG_DFL);
}

[[noreturn]] void helperLoop(int sock) {
    defaultCrashSignals();
    setMetadataOnly(sock);
    silenceErrorStack();
    H5Eset_auto2(H5E_DEFAULT, exitIfOutOfMemory, nullptr);
    for (;;) {
        Request r{};
        if (!readAll(sock, &r, sizeof r) || r.nargs > 16) _exit(0);  // the main process has gone
        std::vector<std::string> args(r.nargs);
        for (std::string& a : args) {
            uint32_t len = 0;
            if (!readAll(sock, &len, sizeof len) || len > (1u << 20)) _exit(0);
            a.resize(len);
            if (len > 0 && !readAll(sock, a.data(), len)) _exit(0);
        }
        rlimit as{};
        getrlimit(RLIMIT_AS, &as);
        if (!sanitized()) {  // this load may take the file's size and the margin, no more
            rlimit limited = as;
            limited.rlim_cur = static_cast<rlim_t>(currentAddressSpace() + r.data_bytes + r.extra_bytes);
            setrlimit(RLIMIT_AS, &limited);
        }
        int end = kClean;
        try {
            r.job(args);
        } catch (const std::bad_alloc&) {
            end = kMemory;
        } catch (...) {
            end = kThrew;
        }
        setrlimit(RLIMIT_AS, &as);
        char line[16];
        const int n = std::snprintf(line, sizeof line, "\n%c%d\n", kStatusMark, end);
        if (!writeAll(sock, line, static_cast<size_t>(n)) || end == kMemory) _exit(0);
    }
}

struct Helper {
    std::mutex mutex;
    pid_t pid = -1;
    int sock = -1;

    // Ends the helper; its wait status when it had already ended by itself (else 0).
    int stop(bool kill_it) {
        int status = 0;
        if (sock >= 0) close(sock);
        if (pid > 0) {
            if (kill_it) kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
        pid = -1, sock = -1;
        return status;
    }
    bool start() {
        H5open();  // the helper starts from a ready library
        silenceErrorStack();
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return false;
        const pid_t p = fork();
        if (p < 0) {
            close(fds[0]);
            close(fds[1]);
            return false;
        }
        if (p == 0) {
            close(fds[0]);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            signal(SIGINT, SIG_IGN);  // Ctrl-C is for the main process; it ends us by closing the socket
            helperLoop(fds[1]);
        }
        close(fds[1]);
        pid = p, sock = fds[0];
        return true;
    }
};

Helper& helper() {
    static Helper* h = new Helper;  // never destroyed: the helper ends when our socket closes at exit
    return *h;
}

}  // namespace

void startPreflightHelper() {
    if (disabled()) return;
    Helper& h = helper();
    std::lock_guard<std::mutex> lock(h.mutex);
    if (h.pid < 0) h.start();
}

namespace {

// Runs the job in the helper; false when no helper could be started or spoken to (then the
// caller forks a child of its own).
bool runInHelper(PreflightJob job, const std::vector<std::string>& args, int64_t data_bytes, const PreflightLimits& limits, Outcome& out) {
    Helper& h = helper();
    std::lock_guard<std::mutex> lock(h.mutex);
    if (h.pid < 0 && !h.start()) return false;
    Request r{job, data_bytes, limits.extra_bytes, static_cast<uint32_t>(args.size())};
    std::string msg(reinterpret_cast<const char*>(&r), sizeof r);
    for (const std::string& a : args) {
        const uint32_t len = static_cast<uint32_t>(a.size());
        msg.append(reinterpret_cast<const char*>(&len), sizeof len);
        msg += a;
    }
    if (!writeAll(h.sock, msg.data(), msg.size())) {
        h.stop(true);
        return false;
    }
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(limits.seconds));
    std::string log;
    for (;;) {
        const size_t mark = log.find(std::string("\n") + kStatusMark);
        if (mark != std::string::npos && log.find('\n', mark + 2) != std::string::npos) {
            const int end = std::atoi(log.c_str() + mark + 2);
            out.where = lastLine(log.substr(0, mark));
            out.status = end == kMemory ? (kOutOfMemory << 8) : 0;  // as waitpid would say exit(kOutOfMemory)
            if (end == kMemory) h.stop(false);  // it exits after such a load
            return true;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            out.timed_out = true;
            out.where = lastLine(log);
            h.stop(true);
            return true;
        }
        pollfd p{h.sock, POLLIN, 0};
        const int ready = poll(&p, 1, static_cast<int>(left));
        if (ready < 0 && errno == EINTR) continue;
        if (ready == 0) continue;
        char buf[4096];
        const ssize_t n = read(h.sock, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {  // the helper died in the load: crashed, or exited for lack of memory
            out.where = lastLine(log);
            out.status = h.stop(false);
            return true;
        }
        log.append(buf, static_cast<size_t>(n));
        if (log.size() > (1u << 16)) log.erase(0, log.size() - 4096);  // only the last step matters
    }
}

// Without a helper: fork the worker from here, steps on a pipe.
void runDirect(PreflightJob job, const std::vector<std::string>& args, int64_t data_bytes, const PreflightLimits& limits, Outcome& out) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;  // no pipe, no check: load as before rather than refuse
    const int64_t address_limit = currentAddressSpace() + data_bytes + limits.extra_bytes;
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(limits.seconds));
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        defaultCrashSignals();
        runWorker(job, args, fds[1], address_limit);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return;
    }
    std::string log;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) break;
        pollfd p{fds[0], POLLIN, 0};
        const int ready = poll(&p, 1, static_cast<int>(left));
        if (ready <= 0) continue;
        char buf[4096];
        const ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // EOF: the worker has exited
        log.append(buf, static_cast<size_t>(n));
        if (log.size() > (1u << 16)) log.erase(0, log.size() - 4096);
    }
    close(fds[0]);
    out.timed_out = !waitUntil(pid, deadline, &out.status);
    out.where = lastLine(log);
}

}  // namespace

PreflightLimits preflightLimits(int64_t file_bytes) {
    PreflightLimits l;
    l.seconds = std::min(10.0, l.seconds + static_cast<double>(file_bytes) / double(int64_t(64) << 20));
    if (sanitized()) l.seconds *= 5;
    if (const char* s = std::getenv("QUANTSCOPE_PREFLIGHT_SECONDS")) {
        const double v = std::atof(s);
        if (v > 0) l.seconds = v;
    }
    return l;
}

void preflight(PreflightJob job, const std::vector<std::string>& args, int64_t data_bytes, const std::string& display_name) {
    if (disabled() || metadataOnly()) return;
    const PreflightLimits limits = preflightLimits(data_bytes);
    Outcome o;
    if (!runInHelper(job, args, data_bytes, limits, o)) runDirect(job, args, data_bytes, limits, o);
    if (o.timed_out)
        throw Error(display_name, o.where,
                    "the file is damaged: libhdf5 spent more than " + secondsText(limits.seconds) + " s reading its metadata; refused");
    if (WIFSIGNALED(o.status))
        throw Error(display_name, o.where,
                    "the file is damaged: libhdf5 crashed reading its metadata (signal " + std::to_string(WTERMSIG(o.status)) + ", " +
                        strsignal(WTERMSIG(o.status)) + "); refused");
    if (WIFEXITED(o.status) && WEXITSTATUS(o.status) == kOutOfMemory)
        throw Error(display_name, o.where,
                    "the file is damaged: libhdf5 needed more than " + std::to_string(limits.extra_bytes >> 20) +
                        " MiB beyond the file's size to read its metadata; refused");
}

}  // namespace qs::h5
