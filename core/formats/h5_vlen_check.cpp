#include "formats/h5_vlen_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "base/byte_io.h"

namespace qs::h5 {

namespace {

// ---- the file's bytes, as libhdf5 sees them ----------------------------------------------------

struct RawFile {
    int fd = -1;                          // the sec2 driver's descriptor
    const unsigned char* mem = nullptr;   // or the core driver's image
    uint64_t size = 0;                    // bytes readable
    unsigned sizeof_addr = 8, sizeof_size = 8;

    // Reads n bytes at the file address `addr` (files with a user block, whose addresses are
    // relative to it, are never checked: readSuperblockSizes); false when any lies outside the file.
    bool read(uint64_t addr, void* out, uint64_t n) const {
        if (addr > size || n > size - addr) return false;
        if (mem) {
            std::memcpy(out, mem + addr, n);
            return true;
        }
        return preadAll(fd, out, n, addr);
    }
    bool read(uint64_t addr, std::vector<unsigned char>& out, uint64_t n) const {
        out.resize(n);
        return read(addr, out.data(), n);
    }
    // Up to n bytes at `addr` (fewer at the end of the file): one read where a structure's size
    // is known only from its first bytes.
    void readUpTo(uint64_t addr, std::vector<unsigned char>& out, uint64_t n) const {
        out.clear();
        if (addr < size && read(addr, out, std::min(n, size - addr))) return;
        out.clear();
    }
};

// The sizes of addresses and lengths from the superblock at the start of the file (II.A: at 13
// and 14 in versions 0 and 1, at 9 and 10 in versions 2 and 3). False for a file with a user
// block (its signature further on: every address moves by its size): left unchecked rather than
// read wrongly; h5py and Keras never write one.
bool readSuperblockSizes(RawFile& f) {
    unsigned char sb[16];
    if (!f.read(0, sb, sizeof sb) || std::memcmp(sb, "\x89HDF\r\n\x1a\n", 8) != 0) return false;
    const unsigned version = sb[8];
    const unsigned at = version <= 1 ? 13 : version <= 3 ? 9 : 0;
    if (at == 0) return false;
    f.sizeof_addr = sb[at], f.sizeof_size = sb[at + 1];
    return (f.sizeof_addr == 4 || f.sizeof_addr == 8) && (f.sizeof_size == 4 || f.sizeof_size == 8);
}

// The bytes of `file` of `size`, asking its property list which driver reads it: for a file not
// opened by hdf5_util.cpp (which tells startHeapChecks instead).
std::optional<RawFile> rawFileOf(hid_t file, uint64_t size) {
    const hid_t fapl = H5Fget_access_plist(file);
    if (fapl < 0) return std::nullopt;
    RawFile f;
    f.size = size;
    void* handle = nullptr;
    if (H5Fget_vfd_handle(file, fapl, &handle) >= 0 && handle) {
        // H5FD_sec2_get_handle hands out &file->fd, H5FD__core_get_handle &file->mem (HDF5 1.10).
        const hid_t driver = H5Pget_driver(fapl);
        if (driver == H5FD_SEC2) f.fd = *static_cast<int*>(handle);
        else if (driver == H5FD_CORE) f.mem = *static_cast<unsigned char**>(handle);
    }
    H5Pclose(fapl);
    if ((f.fd < 0 && !f.mem) || !readSuperblockSizes(f)) return std::nullopt;
    return f;
}

// ---- little-endian fields ----------------------------------------------------------------------

uint64_t align8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

bool undefinedAddress(uint64_t a, unsigned sizeof_addr) {
    return sizeof_addr == 8 ? a == UINT64_MAX : a == UINT32_MAX;
}

// A span of bytes with bounds-checked reads: every parser below goes through it.
struct Bytes {
    const unsigned char* p;
    uint64_t n;
    bool has(uint64_t at, uint64_t len) const { return at <= n && len <= n - at; }
    uint64_t get(uint64_t at, unsigned len) const { return littleEndian(p + at, len); }  // callers check has() first
};

// ---- object headers (File Format Specification, IV.A) -------------------------------------------

struct Message {
    unsigned type;
    unsigned flags;
    Bytes data;
};

constexpr unsigned kContinuation = 0x10, kAttribute = 0x0C;
// A header of more continuation blocks or bytes than this is not one we check (a hostile chain
// of blocks, or one pointing back at itself, must not make us read gigabytes).
constexpr size_t kMaxChunks = 1024;
constexpr uint64_t kMaxHeaderBytes = uint64_t{64} << 20;

// Every message of the object header at `addr`, following continuation blocks; nullopt for a
// header this reader does not follow (libhdf5 has opened it, so that is ours to skip, not damage).
std::optional<std::vector<Message>> readHeaderMessages(const RawFile& f, uint64_t addr, std::deque<std::vector<unsigned char>>& store) {
    // The prefix and, usually, the whole first chunk in one read.
    std::vector<unsigned char> first;
    f.readUpTo(addr, first, 1024);
    const Bytes prefix{first.data(), first.size()};
    if (!prefix.has(0, 16)) return std::nullopt;
    const bool v2 = std::memcmp(first.data(), "OHDR", 4) == 0;
    if (!v2 && first[0] != 1) return std::nullopt;
    std::vector<std::pair<uint64_t, uint64_t>> chunks;  // address, length of each message area
    bool creation_order = false;
    if (v2) {
        if (first[4] != 2) return std::nullopt;
        const unsigned flags = first[5];
        creation_order = (flags & 0x04) != 0;
        const uint64_t at = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
        const unsigned width = 1u << (flags & 0x03);
        if (!prefix.has(at, width)) return std::nullopt;
        chunks.emplace_back(addr + at + width, prefix.get(at, width));
    } else {
        chunks.emplace_back(addr + 16, prefix.get(8, 4));  // the 12-byte prefix is padded to 16
    }
    std::vector<Message> out;
    uint64_t total = 0;
    for (size_t c = 0; c < chunks.size(); ++c) {
        if (c >= kMaxChunks || chunks[c].second > kMaxHeaderBytes - total) return std::nullopt;
        total += chunks[c].second;
        uint64_t at = chunks[c].first, len = chunks[c].second;
        if (v2 && c > 0) {  // a continuation block: "OCHK", messages, checksum
            unsigned char sig[4];
            if (len < 8 || !f.read(at, sig, 4) || std::memcmp(sig, "OCHK", 4) != 0) return std::nullopt;
            at += 4, len -= 8;
        }
        std::vector<unsigned char>& buf = store.emplace_back();
        if (c == 0 && at - addr <= first.size() && len <= first.size() - (at - addr))
            buf.assign(first.begin() + static_cast<long>(at - addr), first.begin() + static_cast<long>(at - addr + len));
        else if (!f.read(at, buf, len)) return std::nullopt;
        const Bytes b{buf.data(), buf.size()};
        const uint64_t head = v2 ? (creation_order ? 6 : 4) : 8;
        for (uint64_t p = 0; b.has(p, head);) {
            const unsigned type = static_cast<unsigned>(v2 ? b.get(p, 1) : b.get(p, 2));
            const uint64_t size = v2 ? b.get(p + 1, 2) : b.get(p + 2, 2);
            const unsigned flags = static_cast<unsigned>(v2 ? b.get(p + 3, 1) : b.get(p + 4, 1));
            if (!b.has(p + head, size)) return std::nullopt;
            const Bytes data{b.p + p + head, size};
            if (type == kContinuation) {
                if (!data.has(0, f.sizeof_addr + f.sizeof_size)) return std::nullopt;
                chunks.emplace_back(data.get(0, f.sizeof_addr), data.get(f.sizeof_addr, f.sizeof_size));
            }
            out.push_back(Message{type, flags, data});
            p += head + size;
        }
    }
    return out;
}

// ---- the attribute's references ---------------------------------------------------------------

struct VlenRef {
    uint64_t length;      // characters
    uint64_t collection;  // address of the global heap collection
    uint64_t index;       // object in it
};

struct ParsedAttribute {
    uint64_t base_size = 1;
    std::vector<VlenRef> refs;
};

// The attribute message `m` if it is the one named `name` (nullopt: another attribute, or one
// whose layout we do not read). IV.A.2.m: versions 1 (fields padded to 8), 2 and 3.
enum class Match { Other, Found, Unreadable };

Match parseAttribute(const RawFile& f, const Message& m, const std::string& name, ParsedAttribute& out, std::string& why) {
    const Bytes d = m.data;
    if (!d.has(0, 8)) return Match::Unreadable;
    const unsigned version = static_cast<unsigned>(d.get(0, 1));
    if (version < 1 || version > 3) return Match::Unreadable;
    const uint64_t name_size = d.get(2, 2), type_size = d.get(4, 2), space_size = d.get(6, 2);
    uint64_t at = version == 3 ? 9 : 8;
    auto field = [&](uint64_t n) {
        const uint64_t start = at;
        at += version == 1 ? align8(n) : n;
        return start;
    };
    const uint64_t name_at = field(name_size), type_at = field(type_size), space_at = field(space_size);
    if (!d.has(name_at, name_size) || !d.has(type_at, type_size) || !d.has(space_at, space_size) || at > d.n)
        return Match::Unreadable;
    std::string attr_name(reinterpret_cast<const char*>(d.p + name_at), name_size);
    while (!attr_name.empty() && attr_name.back() == '\0') attr_name.pop_back();
    if (attr_name != name) return Match::Other;
    if (m.flags & 0x02) return Match::Unreadable;                        // the whole message is shared
    if (version >= 2 && (d.get(1, 1) & 0x03) != 0) return Match::Unreadable;  // shared datatype or dataspace

    // Datatype (IV.A.2.d): only variable-length strings concern libhdf5's global heap here.
    const Bytes t{d.p + type_at, type_size};
    if (!t.has(0, 8)) return Match::Unreadable;
    if ((t.get(0, 1) & 0x0F) != 9) return Match::Found;  // not variable-length: nothing to check
    if ((t.get(1, 1) & 0x0F) != 1) return Match::Unreadable;  // a vlen sequence: we never read those
    if (t.has(8, 8)) out.base_size = std::max<uint64_t>(1, t.get(12, 4));  // the base type's size

    // Dataspace (IV.A.2.b): the element count.
    const Bytes s{d.p + space_at, space_size};
    if (!s.has(0, 4)) return Match::Unreadable;
    const unsigned space_version = static_cast<unsigned>(s.get(0, 1)), rank = static_cast<unsigned>(s.get(1, 1));
    uint64_t dims_at = 0;
    uint64_t count = 1;
    if (space_version == 1) dims_at = 8;
    else if (space_version == 2) {
        dims_at = 4;
        if (s.get(3, 1) == 2) count = 0;  // a null dataspace
    } else return Match::Unreadable;
    if (rank > 32 || !s.has(dims_at, uint64_t{rank} * f.sizeof_size)) return Match::Unreadable;
    for (unsigned i = 0; i < rank; ++i) {
        const uint64_t dim = s.get(dims_at + uint64_t{i} * f.sizeof_size, f.sizeof_size);
        if (dim != 0 && count > UINT64_MAX / dim) return Match::Unreadable;
        count *= dim;
    }

    // The data: per element its length, the collection's address and the object's index (IV.A.2.d,
    // "Variable-length": 4 + sizeof_addr + 4 bytes).
    const uint64_t element = 4 + f.sizeof_addr + 4;
    const Bytes data{d.p + at, d.n - at};
    if (count > data.n / element) {
        why = "attribute '" + name + "' holds " + std::to_string(data.n) + " bytes for " + std::to_string(count) + " strings";
        return Match::Found;  // with refs left empty: the caller reports `why`
    }
    out.refs.reserve(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i) {
        const uint64_t e = i * element;
        out.refs.push_back(VlenRef{data.get(e, 4), data.get(e + 4, f.sizeof_addr), data.get(e + 4 + f.sizeof_addr, 4)});
    }
    return Match::Found;
}

// ---- global heap collections (III.E) -----------------------------------------------------------

struct HeapObject {
    uint64_t size;
};

struct Collection {
    std::map<uint64_t, HeapObject> objects;
    std::string damage;  // why it is unsound, or empty
};

// The objects of the collection at `addr` as libhdf5 1.10's H5HG__cache_heap_deserialize lists
// them (the last of a repeated index wins), or a reason it is unsound: an object running past the
// collection's end (H5HG_read would copy past it) or a free-space record that would make that
// loop stand still.
Collection readCollection(const RawFile& f, uint64_t addr) {
    Collection c;
    auto unsound = [&](const std::string& why) {
        c.objects.clear();
        c.damage = "global heap collection at " + std::to_string(addr) + ": " + why;
        return c;
    };
    // Collections are 4 KiB unless an object needs more (libhdf5's minimum): usually one read.
    std::vector<unsigned char> whole;
    f.readUpTo(addr, whole, 4096);
    const uint64_t header = 8 + f.sizeof_size;
    if (whole.size() < header || std::memcmp(whole.data(), "GCOL", 4) != 0) return unsound("not a collection (or past the end of the file)");
    const uint64_t size = littleEndian(whole.data() + 8, f.sizeof_size);
    const uint64_t object_header = 8 + f.sizeof_size;  // index, references, reserved, size
    const bool small = size <= (uint64_t{64} << 20);  // else walk the object headers one by one
    unsigned char last;
    const bool fits = size >= header && (size <= whole.size() || (addr <= UINT64_MAX - size && f.read(addr + size - 1, &last, 1)));
    if (!fits || (small && size > whole.size() && !f.read(addr, whole, size)))
        return unsound("its size (" + std::to_string(size) + " bytes) runs past the end of the file");
    unsigned char oh[16];
    for (uint64_t p = header; p < size;) {
        if (size - p < object_header) break;  // too small for an object: free space
        const unsigned char* h = small ? whole.data() + p : oh;
        if (!small && !f.read(addr + p, oh, object_header)) break;
        const uint64_t index = littleEndian(h, 2), osize = littleEndian(h + 8, f.sizeof_size);
        if (index > 0 && osize > size - p - object_header)
            return unsound("object " + std::to_string(index) + " claims " + std::to_string(osize) + " bytes, past the collection's end");
        const uint64_t need = index > 0 ? object_header + align8(osize) : osize;
        if (need == 0) return unsound("a free-space record of 0 bytes");
        c.objects[index] = HeapObject{osize};
        if (need > size - p) break;  // libhdf5's loop ends here too
        p += need;
    }
    return c;
}

// ---- what one file's checks have read, kept while the file stays the same ----------------------
// Asking libhdf5 for the file's driver and sizes copies two property lists (8 us); reading the
// same root header and collection for every attribute would cost as much again. A file's entry
// is known by its driver handle's address, size and name, and for a file on disk its inode and
// mtime too (another file opened later at the same address must not inherit it); every open in
// hdf5_util.cpp starts afresh (startHeapChecks).

struct Header {
    std::deque<std::vector<unsigned char>> bytes;  // what the messages point into
    std::optional<std::vector<Message>> messages;  // nullopt: a layout we do not read
};

struct FileEntry {
    const void* handle = nullptr;
    uint64_t size = 0;
    std::string name;
    dev_t dev = 0;
    ino_t ino = 0;
    timespec mtime{};
    std::optional<RawFile> raw;
    std::map<uint64_t, Header> headers;
    std::map<uint64_t, Collection> collections;
};

thread_local FileEntry cache;

// How the cache knows the file behind `obj`: its driver handle's address, size and name.
struct FileKey {
    hid_t file = -1;  // a reference for the caller to close
    const void* handle = nullptr;
    uint64_t size = 0;
    std::string name;
};

FileKey keyOf(hid_t obj) {
    FileKey k;
    k.file = H5Iget_file_id(obj);
    void* handle = nullptr;
    hsize_t size = 0;
    char name[1024] = {};
    if (k.file >= 0 && H5Fget_vfd_handle(k.file, H5P_DEFAULT, &handle) >= 0 && H5Fget_filesize(k.file, &size) >= 0) {
        H5Fget_name(k.file, name, sizeof name);
        k.handle = handle, k.size = size, k.name = name;
    }
    return k;
}

// The cache starts afresh on `key`'s file, read through `raw` (none: left unchecked); a file on
// disk is also known by its inode and mtime from then on.
void startEntry(const FileKey& key, std::optional<RawFile> raw) {
    cache = FileEntry{};
    struct stat st {};
    if (raw && raw->fd >= 0) {
        if (fstat(raw->fd, &st) != 0) raw.reset();
        cache.dev = st.st_dev, cache.ino = st.st_ino, cache.mtime = st.st_mtim;
    }
    cache.handle = key.handle, cache.size = key.size, cache.name = key.name;
    cache.raw = std::move(raw);
}

bool isCached(const FileKey& key) {
    if (!key.handle || cache.handle != key.handle || cache.size != key.size || cache.name != key.name) return false;
    if (!cache.raw || cache.raw->fd < 0) return true;
    struct stat st {};
    return fstat(cache.raw->fd, &st) == 0 && cache.dev == st.st_dev && cache.ino == st.st_ino &&
           cache.mtime.tv_sec == st.st_mtim.tv_sec && cache.mtime.tv_nsec == st.st_mtim.tv_nsec;
}

// The entry for the file behind `obj`, asking libhdf5 for its driver when it is a new one.
FileEntry& entryFor(hid_t obj) {
    const FileKey key = keyOf(obj);
    if (!isCached(key)) startEntry(key, key.handle ? rawFileOf(key.file, key.size) : std::nullopt);
    if (key.file >= 0) H5Fclose(key.file);
    return cache;
}

const Header& headerAt(FileEntry& e, uint64_t addr) {
    auto it = e.headers.find(addr);
    if (it != e.headers.end()) return it->second;
    Header& h = e.headers[addr];
    h.messages = readHeaderMessages(*e.raw, addr, h.bytes);
    return h;
}

const Collection& collectionAt(FileEntry& e, uint64_t addr) {
    auto it = e.collections.find(addr);
    if (it != e.collections.end()) return it->second;
    return e.collections[addr] = readCollection(*e.raw, addr);
}

}  // namespace

void startHeapChecks(hid_t file, const std::string& path, const char* image, size_t image_size) {
    cache = FileEntry{};  // if the file is not known here, the first check asks libhdf5 (entryFor)
    const FileKey key = keyOf(file);
    if (key.file >= 0) H5Fclose(key.file);
    if (!key.handle) return;
    RawFile f;
    f.size = key.size;
    if (image) {  // the core driver lends our buffer (openImageReadOnly): its handle points at it
        if (*static_cast<unsigned char* const*>(key.handle) != reinterpret_cast<const unsigned char*>(image) || key.size != image_size) return;
        f.mem = reinterpret_cast<const unsigned char*>(image);
    } else {  // sec2: the handle points at its descriptor, which must be this path's file
        struct stat by_fd {}, by_path {};
        const int fd = *static_cast<const int*>(key.handle);
        if (fstat(fd, &by_fd) != 0 || stat(path.c_str(), &by_path) != 0 || by_fd.st_dev != by_path.st_dev || by_fd.st_ino != by_path.st_ino) return;
        f.fd = fd;
    }
    startEntry(key, readSuperblockSizes(f) ? std::optional<RawFile>(f) : std::nullopt);
}

VlenHeapCheck checkVlenStringHeap(hid_t obj, const std::string& name) {
    FileEntry& e = entryFor(obj);
    if (!e.raw) return {};
    H5O_info_t info;
    if (H5Oget_info2(obj, &info, H5O_INFO_BASIC) < 0) return {};
    const Header& header = headerAt(e, info.addr);
    if (!header.messages) return {};
    for (const Message& m : *header.messages) {
        if (m.type != kAttribute) continue;
        ParsedAttribute a;
        std::string why;
        const Match match = parseAttribute(*e.raw, m, name, a, why);
        if (match == Match::Other) continue;
        if (match == Match::Unreadable) return {};
        if (!why.empty()) return {HeapCheck::Damaged, why};
        for (const VlenRef& r : a.refs) {
            if (r.collection == 0 || undefinedAddress(r.collection, e.raw->sizeof_addr)) continue;  // a nil string: nothing read
            const Collection& c = collectionAt(e, r.collection);
            if (!c.damage.empty()) return {HeapCheck::Damaged, c.damage};
            const auto o = c.objects.find(r.index);
            auto where = [&] { return "global heap collection at " + std::to_string(r.collection) + ", object " + std::to_string(r.index); };
            if (r.index == 0 || o == c.objects.end()) return {HeapCheck::Damaged, where() + ": no such object"};
            if (r.length > UINT64_MAX / a.base_size || o->second.size > r.length * a.base_size)
                return {HeapCheck::Damaged, where() + ": holds " + std::to_string(o->second.size) + " bytes for a string of " +
                                                std::to_string(r.length)};
        }
        return {HeapCheck::Consistent, ""};
    }
    return {};  // not found in the header: dense attribute storage, read by libhdf5 as before
}

}  // namespace qs::h5
