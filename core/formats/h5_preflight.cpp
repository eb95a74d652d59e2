#include "formats/h5_preflight.h"

#include <H5Cpp.h>
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

// ---- metadata-only mode (set only in the helper) ------------------------------------------------

namespace {

int step_fd = -1;  // the helper's socket; -1 in every other process

bool writeAll(int fd, const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);  // a peer that has gone is an error, not SIGPIPE
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

}  // namespace

bool metadataOnly() { return step_fd >= 0; }

void noteStep(const std::string& where) {
    if (step_fd >= 0) writeAll(step_fd, (where + "\n").data(), where.size() + 1);
}

namespace {

constexpr int kOutOfMemoryExit = 3;  // the helper's exit code when libhdf5 could not allocate

// A failed read in the helper is fine (the in-process load reports it), but one that failed
// because libhdf5 could not allocate means loading would need more than the limit. libhdf5
// calls this when an API call fails, with the reason still on its error stack.
herr_t exitIfOutOfMemory(hid_t, void*) {
    const std::string why = innermostErrorMessage();
    if (why.find("memory allocation failed") != std::string::npos || why.find("out of memory") != std::string::npos)
        _exit(kOutOfMemoryExit);
    return 0;
}

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
    const size_t from = start == std::string::npos ? 0 : start + 1;
    return log.substr(from, end - from);
}

// ---- the helper: one long-lived child that runs the loads --------------------------------------
// Forking the main process for each file costs more than the fork: a process that has freed a
// large model reuses those heap pages for the next one, and after a fork each such page takes a
// copy-on-write fault on its first write (0.28 s for the VGG16-shaped file in bench_open), and a
// fresh child pays its lazy symbol binding and page faults again (about 10 ms here). So one
// helper runs every metadata-only load itself and stays warm. A load that crashes, times out or
// exhausts memory ends the helper, so no such file's leftovers touch the next check; the next
// call starts a new one. A load that libhdf5 or our checks refuse with an error keeps it
// (libhdf5 unwinds its state on errors). Helpers are forked by the zygote below.

struct Request {
    PreflightJob job;  // a function of this same program: valid in the forked helper
    int64_t data_bytes;
    int64_t extra_bytes;
    uint32_t nargs;
};

constexpr char kStatusMark = '\x01';  // the helper's status line starts with it, after the steps
enum JobEnd { kClean = 0, kOutOfMemory = 1 };

// A crash in the helper must just end it: the host program's crash handlers (Qt Test's runs gdb
// for a backtrace, 2 s) are not for a process that exists to crash in its place.
void defaultCrashSignals() {
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGTRAP}) signal(sig, SIG_DFL);
}

bool readRequest(int sock, Request& r, std::vector<std::string>& args) {
    if (!readAll(sock, &r, sizeof r) || r.nargs > 16) return false;
    args.assign(r.nargs, {});
    for (std::string& a : args) {
        uint32_t len = 0;
        if (!readAll(sock, &len, sizeof len) || len > (1u << 20)) return false;
        a.resize(len);
        if (len > 0 && !readAll(sock, a.data(), len)) return false;
    }
    return true;
}

[[noreturn]] void helperLoop(int sock) {
    defaultCrashSignals();
    step_fd = sock;
    silenceErrorStack();  // first, so the loader's own call does not replace the handler
    H5Eset_auto2(H5E_DEFAULT, exitIfOutOfMemory, nullptr);
    Request r{};
    std::vector<std::string> args;
    while (readRequest(sock, r, args)) {
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
            end = kOutOfMemory;
        } catch (...) {  // refused with an error: the in-process load will say why
        }
        setrlimit(RLIMIT_AS, &as);
        const char line[] = {'\n', kStatusMark, static_cast<char>('0' + end), '\n'};
        if (!writeAll(sock, line, sizeof line) || end == kOutOfMemory) break;
    }
    _exit(0);  // the main process has gone, or this helper must not run another load
}

// Sends one message with an optional file descriptor attached (SCM_RIGHTS).
bool sendWithFd(int sock, const void* data, size_t n, int fd) {
    iovec iov{const_cast<void*>(data), n};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (fd >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    for (;;) {
        const ssize_t w = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        return w == static_cast<ssize_t>(n);
    }
}

// Receives one fixed-size message and the descriptor sent with it (-1 when none).
bool receiveWithFd(int sock, void* data, size_t n, int& fd) {
    fd = -1;
    iovec iov{data, n};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t r;
    while ((r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); r > 0 && c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return r == static_cast<ssize_t>(n);
}

// ---- the zygote: forks helpers from a process that has one thread ------------------------------
// A helper that crashed must be replaced, but by then the GUI has many threads, and forking a
// process whose other threads may hold a lock (GCC 12's ASan allocator has no fork handlers;
// libhdf5 in a worker thread) can leave the child waiting on that lock forever. So the first fork,
// at program start, makes a small process that does nothing but fork helpers on request and reap
// them: every helper starts from that clean single-threaded state.

struct ZygoteCall {
    enum Op : int32_t { Spawn, Reap } op;
    int32_t pid = 0;   // Reap: the helper to wait for
    int32_t kill = 0;  // Reap: SIGKILL it first
};

[[noreturn]] void zygoteLoop(int ctl) {
    defaultCrashSignals();
    ZygoteCall call{};
    int fd = -1;
    while (receiveWithFd(ctl, &call, sizeof call, fd)) {
        int64_t reply = -1;
        if (call.op == ZygoteCall::Spawn && fd >= 0) {
            const pid_t p = fork();
            if (p == 0) {
                close(ctl);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                helperLoop(fd);
            }
            reply = p;
        } else if (call.op == ZygoteCall::Reap && call.pid > 0) {
            if (call.kill) ::kill(call.pid, SIGKILL);
            int status = 0;
            while (waitpid(call.pid, &status, 0) < 0 && errno == EINTR) {
            }
            reply = status;
        }
        if (fd >= 0) close(fd);
        if (!writeAll(ctl, &reply, sizeof reply)) break;
    }
    _exit(0);  // the main process has gone; our helpers follow (PR_SET_PDEATHSIG)
}

struct Helper {
    std::mutex mutex;
    pid_t zygote = -1;
    int ctl = -1;   // to the zygote
    pid_t pid = -1; // the helper
    int sock = -1;  // to the helper

    bool call(const ZygoteCall& c, int fd, int64_t& reply) {
        return ctl >= 0 && sendWithFd(ctl, &c, sizeof c, fd) && readAll(ctl, &reply, sizeof reply);
    }
    void stopZygote() {
        if (ctl >= 0) close(ctl);
        if (zygote > 0) {
            kill(zygote, SIGKILL);
            while (waitpid(zygote, nullptr, 0) < 0 && errno == EINTR) {
            }
        }
        zygote = -1, ctl = -1;
    }
    bool startZygote() {
        H5open();  // helpers start from a ready library
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
            zygoteLoop(fds[1]);
        }
        close(fds[1]);
        zygote = p, ctl = fds[0];
        return true;
    }

    // Ends the helper (killing it first when asked); its wait status.
    int stop(bool kill_it) {
        if (sock >= 0) close(sock);
        int64_t status = 0;
        if (pid > 0 && !call({ZygoteCall::Reap, pid, kill_it ? 1 : 0}, -1, status)) {
            kill(pid, SIGKILL);  // the zygote has gone, and the helper with it
            stopZygote();
        }
        pid = -1, sock = -1;
        return static_cast<int>(status);
    }
    bool start() {
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (zygote < 0 && !startZygote()) return false;
            int fds[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return false;
            int64_t p = -1;
            const bool ok = call({ZygoteCall::Spawn}, fds[1], p);
            close(fds[1]);
            if (ok && p > 0) {
                pid = static_cast<pid_t>(p), sock = fds[0];
                return true;
            }
            close(fds[0]);
            stopZygote();  // gone or unable to fork: the second attempt forks a new one from here
        }
        return false;
    }
    bool send(const Request& r, const std::vector<std::string>& args) {
        std::string msg(reinterpret_cast<const char*>(&r), sizeof r);
        for (const std::string& a : args) {
            const uint32_t len = static_cast<uint32_t>(a.size());
            msg.append(reinterpret_cast<const char*>(&len), sizeof len);
            msg += a;
        }
        return writeAll(sock, msg.data(), msg.size());
    }
};

Helper& helper() {
    static Helper* h = new Helper;  // never destroyed: the helper ends when our socket closes at exit
    return *h;
}

struct Verdict {
    enum Kind { Clean, TimedOut, Crashed, OutOfMemory, Unchecked } kind = Clean;
    int signal = 0;
    std::string where;  // the last object the helper named
};

// Waits for the helper's status line after its steps; ends the helper when the load did not end
// cleanly.
Verdict awaitVerdict(Helper& h, double seconds) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
    std::string log;
    for (;;) {
        const size_t mark = log.find(std::string("\n") + kStatusMark);
        if (mark != std::string::npos && mark + 3 < log.size()) {
            const bool memory = log[mark + 2] - '0' == kOutOfMemory;
            if (memory) h.stop(false);  // it exits after such a load
            return {memory ? Verdict::OutOfMemory : Verdict::Clean, 0, lastLine(log.substr(0, mark))};
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            h.stop(true);
            return {Verdict::TimedOut, 0, lastLine(log)};
        }
        pollfd p{h.sock, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;  // EINTR or time: checked above
        char buf[4096];
        const ssize_t n = read(h.sock, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {  // the helper died in the load: crashed, or exited for lack of memory
            const int status = h.stop(false);
            if (WIFSIGNALED(status)) return {Verdict::Crashed, WTERMSIG(status), lastLine(log)};
            return {Verdict::OutOfMemory, 0, lastLine(log)};
        }
        log.append(buf, static_cast<size_t>(n));
        if (log.size() > (1u << 16)) log.erase(0, log.size() - 4096);  // only the last step matters
    }
}

// Runs the job in the helper, starting one when there is none or the last one has gone. A
// helper that cannot be started leaves the file unchecked (loaded as before the preflight).
Verdict runInHelper(PreflightJob job, const std::vector<std::string>& args, int64_t data_bytes, const PreflightLimits& limits) {
    Helper& h = helper();
    std::lock_guard<std::mutex> lock(h.mutex);
    const Request r{job, data_bytes, limits.extra_bytes, static_cast<uint32_t>(args.size())};
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (h.pid < 0 && !h.start()) break;
        if (h.send(r, args)) return awaitVerdict(h, limits.seconds);
        h.stop(true);  // a helper that has gone away since the last file
    }
    return {Verdict::Unchecked, 0, {}};
}

}  // namespace

void startPreflightHelper() {
    if (disabled()) return;
    Helper& h = helper();
    std::lock_guard<std::mutex> lock(h.mutex);
    if (h.pid < 0) h.start();
}

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
    const Verdict v = runInHelper(job, args, data_bytes, limits);
    switch (v.kind) {
        case Verdict::Clean:
        case Verdict::Unchecked: return;
        case Verdict::TimedOut:
            throw Error(display_name, v.where,
                        "the file is damaged: libhdf5 spent more than " + secondsText(limits.seconds) + " s reading its metadata; refused");
        case Verdict::Crashed:
            throw Error(display_name, v.where,
                        "the file is damaged: libhdf5 crashed reading its metadata (signal " + std::to_string(v.signal) + ", " +
                            strsignal(v.signal) + "); refused");
        case Verdict::OutOfMemory:
            throw Error(display_name, v.where,
                        "the file is damaged: libhdf5 needed more than " + std::to_string(limits.extra_bytes >> 20) +
                            " MiB beyond the file's size to read its metadata; refused");
    }
}

}  // namespace qs::h5
