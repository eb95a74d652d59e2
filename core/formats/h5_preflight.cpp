#include "formats/h5_preflight.h"

#include <H5Cpp.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <new>
#include <stdexcept>

#include "base/error.h"
#include "formats/hdf5_util.h"

namespace qs::h5 {

// ---- metadata-only mode (set only in the helper) ------------------------------------------------

namespace {

int step_fd = -1;  // the helper's socket; -1 in every other process

// Where the helper names its steps: memory shared by the caller and every helper (mapped before
// the zygote is forked, so its helpers inherit it), written without a system call per step and
// read by the caller while it follows. One job at a time uses it (the Helper's mutex).
struct StepBoard {
    std::atomic<int64_t> steps{0};     // steps the helper has named in this job
    std::atomic<uint32_t> length{0};   // of the last one's name
    std::atomic<int32_t> ended{0};     // 1 once the job has ended, just before its end byte is sent
    char name[4096];
};
static_assert(std::atomic<int64_t>::is_always_lock_free, "the step count is shared between processes");
StepBoard* board = nullptr;

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

namespace {
thread_local Preflight* following = nullptr;  // the caller's load that trails the helper's, on this thread
}  // namespace

void noteLibraryFree() {
    if (following) following->passStep();
    else if (step_fd >= 0) noteStep("");
}

void noteStep(const std::string& where) {
    if (following) {
        following->awaitStep();
        return;
    }
    if (step_fd < 0 || !board) return;
    const size_t n = std::min(where.size(), sizeof board->name);
    std::memcpy(board->name, where.data(), n);
    board->length.store(static_cast<uint32_t>(n), std::memory_order_relaxed);
    board->steps.fetch_add(1, std::memory_order_release);
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
    // Plain system calls: an ifstream costs more than the rest of a small file's check.
    const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    char buf[64] = {};
    const ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    return n > 0 ? std::atoll(buf) * sysconf(_SC_PAGESIZE) : 0;
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
    uint32_t args_bytes;  // what follows: per argument its length (uint32) and bytes
};

constexpr int kHelperSpinMicroseconds = 2000;  // awaitNextRequest
// How long the caller spins on the board before sleeping in short slices: waking from a sleep
// costs 100-200 us on this kind of VM, more than most steps (a .keras archive's first step waited
// 720 us for a helper that had named the next one 200 us earlier with 0.5 ms here).
constexpr int kCallerSpinMilliseconds = 5;

// The one byte the helper writes on its socket at the end of each job (steps go on the board).
enum JobEnd : char { kClean = '0', kOutOfMemory = 'm' };

// A crash in the helper must just end it: the host program's crash handlers (Qt Test's runs gdb
// for a backtrace, 2 s) are not for a process that exists to crash in its place.
void defaultCrashSignals() {
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGTRAP}) signal(sig, SIG_DFL);
}

bool readRequest(int sock, Request& r, std::vector<std::string>& args) {
    // One read for the whole request when it has arrived whole (it is sent with one write): each
    // read is a system call on the way to the caller's first step.
    thread_local std::vector<char> buf(4096);
    size_t have = 0;
    auto need = [&](size_t n) {
        if (buf.size() < n) buf.resize(n);
        while (have < n) {
            const ssize_t got = read(sock, buf.data() + have, buf.size() - have);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) return false;
            have += static_cast<size_t>(got);
        }
        return true;
    };
    if (!need(sizeof r)) return false;
    std::memcpy(&r, buf.data(), sizeof r);
    if (r.nargs > 16 || r.args_bytes > (16u << 20) || !need(sizeof r + r.args_bytes)) return false;
    args.assign(r.nargs, {});
    size_t at = sizeof r;
    for (std::string& a : args) {
        uint32_t len = 0;
        if (at + sizeof len > have) return false;
        std::memcpy(&len, buf.data() + at, sizeof len);
        at += sizeof len;
        if (len > have - at) return false;
        a.assign(buf.data() + at, len);
        at += len;
    }
    return true;
}

// After a job the helper watches its socket for 2 ms before sleeping in read(): an idle process
// on this kind of VM takes 100-200 us to wake (a no-op job's round trip: 35-60 us back to back,
// 135-220 us after 2 ms idle), a fifth to a third of a small file's whole open, and files are
// often opened in a row (a model and its sidecar, a batch of models). A single isolated open
// still pays the wake-up; the watch costs at most 2 ms of one core per file.
void awaitNextRequest(int sock) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kHelperSpinMicroseconds);
    pollfd p{sock, POLLIN, 0};
    while (std::chrono::steady_clock::now() < until) {
        if (poll(&p, 1, 0) != 0) return;  // a request, the caller gone, or an error: read() tells
#if defined(__x86_64__) || defined(__i386__)
        for (int i = 0; i < 16; ++i) __builtin_ia32_pause();
#endif
    }
}

[[noreturn]] void helperLoop(int sock) {
    defaultCrashSignals();
    step_fd = sock;
    silenceErrorStack();  // first, so the loader's own call does not replace the handler
    H5Eset_auto2(H5E_DEFAULT, exitIfOutOfMemory, nullptr);
    Request r{};
    std::vector<std::string> args;
    // The address space before a job, measured after the last one (reading /proc is a few system
    // calls, not to be spent while the caller waits for our first step).
    int64_t address_space = currentAddressSpace();
    while (readRequest(sock, r, args)) {
        rlimit as{};
        getrlimit(RLIMIT_AS, &as);
        if (!sanitized()) {  // this load may take the file's size and the margin, no more
            rlimit limited = as;
            limited.rlim_cur = static_cast<rlim_t>(address_space + r.data_bytes + r.extra_bytes);
            setrlimit(RLIMIT_AS, &limited);
        }
        JobEnd end = kClean;
        try {
            r.job(args);
        } catch (const std::bad_alloc&) {
            end = kOutOfMemory;
        } catch (...) {  // refused with an error: the in-process load will say why
        }
        // The board first: a caller spinning on it sees the end without waiting for a system call.
        board->ended.store(1, std::memory_order_release);
        const bool sent = writeAll(sock, &end, 1);
        setrlimit(RLIMIT_AS, &as);
        if (!sent || end == kOutOfMemory) break;
        address_space = currentAddressSpace();
        awaitNextRequest(sock);
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
        if (!board) {  // shared with every zygote and helper forked from now on
            void* m = mmap(nullptr, sizeof(StepBoard), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) return false;
            board = new (m) StepBoard;
        }
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
    bool send(Request r, const std::vector<std::string>& args) {
        r.args_bytes = 0;
        for (const std::string& a : args) r.args_bytes += static_cast<uint32_t>(sizeof(uint32_t) + a.size());
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

}  // namespace

void startPreflightHelper() {
    if (disabled()) return;
    Helper& h = helper();
    std::lock_guard<std::mutex> lock(h.mutex);
    if (h.pid < 0) h.start();
}

PreflightLimits preflightLimits(int64_t file_bytes) {
    PreflightLimits l;
    l.seconds = std::min(10.0, l.seconds + static_cast<double>(file_bytes) / double(int64_t(16) << 20));
    if (sanitized()) l.seconds *= 5;
    if (const char* s = std::getenv("QUANTSCOPE_PREFLIGHT_SECONDS")) {
        const double v = std::atof(s);
        if (v > 0) l.seconds = v;
    }
    return l;
}

Preflight::Preflight(PreflightJob job, const std::vector<std::string>& args, int64_t data_bytes, std::string display_name)
    : display_name_(std::move(display_name)) {
    if (disabled() || metadataOnly()) return;
    if (following) throw std::logic_error("h5::Preflight: one load at a time on a thread (it would wait for itself)");
    limits_ = preflightLimits(data_bytes);
    Helper& h = helper();
    lock_ = std::unique_lock<std::mutex>(h.mutex);
    deadline_ = std::chrono::steady_clock::now() +
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(limits_.seconds));
    const Request r{job, data_bytes, limits_.extra_bytes, static_cast<uint32_t>(args.size()), 0};
    for (int attempt = 0; attempt < 2 && !checking_; ++attempt) {
        if (h.pid < 0 && !h.start()) break;
        board->steps.store(0), board->length.store(0), board->ended.store(0);  // the helper waits for the request: no race
        if (h.send(r, args)) checking_ = true;
        else h.stop(true);  // a helper that has gone away since the last file
    }
    if (!checking_) {  // no helper: the file is loaded unchecked, as before the preflight existed
        lock_.unlock();
        return;
    }
    previous_ = following;
    following = this;
}

Preflight::~Preflight() {
    if (!checking_) return;
    following = previous_;
    // The caller's load ended early (an error, a cancel): let the helper end this job too, so it
    // can take the next file; pump() stops it at the deadline.
    while (end_ == Running) pump(std::chrono::milliseconds(10));
}

void Preflight::awaitStep() {
    ++steps_;
    waitFor(steps_ + 1);
}

void Preflight::finish() {
    if (checking_) waitFor(0);
}

void Preflight::waitFor(int64_t helper_steps) {
    // The helper is usually a step or two ahead: spin on the board for a while (waking a
    // sleeping process costs more than a step here), then sleep in short slices.
    auto reached = [&] { return helper_steps > 0 && board->steps.load(std::memory_order_acquire) >= helper_steps; };
    auto idle_since = std::chrono::steady_clock::now();
    for (int spin = 1; end_ == Running && !reached(); ++spin) {
        // Its end byte is on the way once the board says so: read it now (the last step waits for it).
        if (spin % 64 != 0 && board->ended.load(std::memory_order_acquire) == 0) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            continue;
        }
        const auto now = std::chrono::steady_clock::now();
        const bool sleep = now - idle_since > std::chrono::milliseconds(kCallerSpinMilliseconds);
        pump(sleep ? std::chrono::microseconds(100) : std::chrono::microseconds(0));
    }
    // A helper that crashed after finishing this step has still read it safely: the caller goes
    // on, and stops at the step the helper did not finish.
    if (end_ != Running && end_ != Clean && !reached()) refuse();
}

void Preflight::pump(std::chrono::microseconds wait) {
    Helper& h = helper();
    // What the helper has written counts even past the deadline (we may be the slow one: our
    // load trails its own by a step, and a step can be a 100 MB attribute).
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline_ - std::chrono::steady_clock::now());
    const auto us = std::max<int64_t>(0, std::min(left, wait).count());
    const timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
    pollfd p{h.sock, POLLIN, 0};
    if (ppoll(&p, 1, &ts, nullptr) <= 0) {
        if (left.count() <= 0) {
            h.stop(true);
            end_ = TimedOut;
        }
        return;  // EINTR or time: the caller checks again
    }
    char job_end = 0;
    const ssize_t n = read(h.sock, &job_end, 1);
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) {  // the helper died in the load: crashed, or exited for lack of memory
        const int status = h.stop(false);
        end_ = WIFSIGNALED(status) ? Crashed : OutOfMemory;
        signal_ = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        return;
    }
    end_ = job_end == kOutOfMemory ? OutOfMemory : Clean;
    if (end_ == OutOfMemory) h.stop(false);  // it exits after such a load
}

void Preflight::refuse() const {
    // The helper has ended: its last step's name stays on the board.
    const std::string where_(board->name, std::min<size_t>(board->length.load(), sizeof board->name));
    switch (end_) {
        case Running:
        case Clean: return;
        case TimedOut:
            throw Error(display_name_, where_,
                        "the file is damaged: libhdf5 spent more than " + secondsText(limits_.seconds) + " s reading its metadata; refused");
        case Crashed:
            throw Error(display_name_, where_,
                        "the file is damaged: libhdf5 crashed reading its metadata (signal " + std::to_string(signal_) + ", " +
                            strsignal(signal_) + "); refused");
        case OutOfMemory:
            throw Error(display_name_, where_,
                        "the file is damaged: libhdf5 needed more than " + std::to_string(limits_.extra_bytes >> 20) +
                            " MiB beyond the file's size to read its metadata; refused");
    }
}

}  // namespace qs::h5
