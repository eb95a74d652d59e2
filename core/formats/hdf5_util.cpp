#include "formats/hdf5_util.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>

#include "base/allocator.h"
#include "base/error.h"
#include "formats/h5_preflight.h"
#include "formats/h5_vlen_check.h"

namespace qs::h5 {

void silenceErrorStack() {
    static std::once_flag once;
    std::call_once(once, [] { H5::Exception::dontPrint(); });
}

namespace {

herr_t collectErrorMessage(unsigned, const H5E_error2_t* err, void* data) {
    auto* out = static_cast<std::vector<std::string>*>(data);
    if (err->desc && *err->desc) out->push_back(err->desc);
    return 0;
}

}  // namespace

std::string innermostErrorMessage() {
    std::vector<std::string> messages;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collectErrorMessage, &messages);
    return messages.empty() ? std::string() : messages.front();
}

H5::H5File openReadOnly(const std::string& path) {
    silenceErrorStack();
    try {
        H5::H5File file(path, H5F_ACC_RDONLY);
        startHeapChecks(file.getId(), path, nullptr, 0);
        return file;
    } catch (const H5::Exception& e) {
        const std::string why = innermostErrorMessage();
        std::string msg = "cannot open as HDF5: ";
        if (why.find("truncated") != std::string::npos) msg += "the file is truncated (" + why + ")";
        else msg += (why.empty() ? e.getDetailMsg() : why) + "; the file may be damaged";
        throw Error(path, "", msg);
    }
}

namespace {

// File-image callbacks that lend HDF5 our buffer instead of letting it copy: the core driver
// "allocates" by returning the buffer, "copies" onto itself, and frees nothing. (HDF5 1.10's
// H5LTopen_file_image does the same but leaks its bookkeeping with DONT_RELEASE.)
void* imageMalloc(size_t size, H5FD_file_image_op_t, void* udata) {
    const auto* image = static_cast<const ImageBytes*>(udata);
    return size == image->size ? const_cast<char*>(image->data) : nullptr;  // read-only: never written
}
void* imageMemcpy(void* dest, const void* src, size_t size, H5FD_file_image_op_t, void*) {
    if (dest != src) std::memcpy(dest, src, size);
    return dest;
}
void* imageRealloc(void*, size_t, H5FD_file_image_op_t, void*) { return nullptr; }  // read-only
herr_t imageFree(void*, H5FD_file_image_op_t, void*) { return 0; }
void* udataCopy(void* udata) { return udata; }
herr_t udataFree(void*) { return 0; }

}  // namespace

H5::H5File openImageReadOnly(const ImageBytes& image, const std::string& display_name) {
    silenceErrorStack();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5FD_file_image_callbacks_t cb = {imageMalloc, imageMemcpy, imageRealloc, imageFree, udataCopy, udataFree, const_cast<ImageBytes*>(&image)};
    hid_t fid = -1;
    if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 20, false) >= 0 && H5Pset_file_image_callbacks(fapl, &cb) >= 0 &&
        H5Pset_file_image(fapl, const_cast<char*>(image.data), image.size) >= 0)
        fid = H5Fopen("in-memory.h5", H5F_ACC_RDONLY, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (fid < 0) {
        const std::string why = innermostErrorMessage();
        throw Error(display_name, "", "not a readable HDF5 file" + (why.empty() ? std::string() : " (" + why + ")"));
    }
    H5::H5File file;
    file.setId(fid);   // takes its own reference
    H5Idec_ref(fid);
    startHeapChecks(file.getId(), "", image.data, image.size);
    return file;
}

bool hasAttr(const H5::H5Object& obj, const std::string& name) {
    return H5Aexists(obj.getId(), name.c_str()) > 0;
}

bool hasListAttr(const H5::H5Object& obj, const std::string& name) {
    return hasAttr(obj, name) || hasAttr(obj, name + "0");
}

bool hasChild(const H5::Group& group, const std::string& name) {
    // H5Lexists on a path with '/' checks intermediate links; we only ask for direct children.
    return H5Lexists(group.getId(), name.c_str(), H5P_DEFAULT) > 0;
}

namespace {

// Strip the NUL (or, from numpy 'S' arrays, trailing space) padding of fixed-length strings.
std::string trimFixed(const char* p, size_t n) {
    size_t len = 0;
    while (len < n && p[len] != '\0') ++len;
    while (len > 0 && p[len - 1] == ' ') --len;
    return std::string(p, len);
}

// `owner` holds the attribute `name`: a variable-length one's heap references are checked from
// the file's bytes before libhdf5 follows them (h5_vlen_check.h).
std::vector<std::string> readStrings(const H5::Attribute& attr, hid_t owner, const std::string& name, const std::string& file,
                                     const std::string& where) {
    H5::DataSpace space = attr.getSpace();
    const hssize_t n = space.getSimpleExtentNpoints();
    if (n < 0 || n > (1 << 24)) throw Error(file, where, "string attribute has an invalid element count");
    if (n == 0) return {};
    // Read with the attribute's own type: HDF5 1.10 does not convert between fixed- and
    // variable-length strings, and a longer memory type overflows the heap in the wrapper.
    H5::StrType st = attr.getStrType();
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(n));
    if (st.isVariableStr()) {
        const VlenHeapCheck check = checkVlenStringHeap(owner, name);
        if (check.result == HeapCheck::Damaged) throw Error(file, where, "the file is damaged: " + check.why + "; refused");
        std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
        attr.read(st, ptrs.data());
        for (char* p : ptrs) out.emplace_back(p ? p : "");
        H5Dvlen_reclaim(st.getId(), space.getId(), H5P_DEFAULT, ptrs.data());
    } else {
        const size_t width = st.getSize();
        if (width == 0 || width > (1u << 20)) throw Error(file, where, "string attribute has an invalid width");
        std::vector<char> buf(static_cast<size_t>(n) * width);
        attr.read(st, buf.data());
        for (hssize_t i = 0; i < n; ++i) out.push_back(trimFixed(buf.data() + i * width, width));
    }
    return out;
}

}  // namespace

std::optional<std::string> readStringAttr(const H5::H5Object& obj, const std::string& name,
                                          const std::string& file, const std::string& obj_path) {
    if (!hasAttr(obj, name)) return std::nullopt;
    const std::string where = obj_path + "@" + name;
    noteStep(where);
    try {
        H5::Attribute attr = obj.openAttribute(name);
        if (attr.getTypeClass() != H5T_STRING) return std::nullopt;
        std::vector<std::string> v = readStrings(attr, obj.getId(), name, file, where);
        if (v.empty()) return std::string();
        return std::move(v.front());  // a model_config can be tens of MB: not a second copy
    } catch (const H5::Exception& e) {
        throw Error(file, where, "cannot read attribute (" + e.getDetailMsg() + ")");
    }
}

std::vector<std::string> readStringArrayAttr(const H5::H5Object& obj, const std::string& name,
                                             const std::string& file, const std::string& obj_path) {
    auto readOne = [&](const std::string& attr_name) -> std::vector<std::string> {
        const std::string where = obj_path + "@" + attr_name;
        noteStep(where);
        try {
            H5::Attribute attr = obj.openAttribute(attr_name);
            if (attr.getTypeClass() != H5T_STRING) {
                if (attr.getSpace().getSimpleExtentNpoints() == 0) return {};
                throw Error(file, where, "expected a list of strings");
            }
            return readStrings(attr, obj.getId(), attr_name, file, where);
        } catch (const H5::Exception& e) {
            throw Error(file, where, "cannot read attribute (" + e.getDetailMsg() + ")");
        }
    };
    if (hasAttr(obj, name)) return readOne(name);
    // Keras splits attributes over 64 KiB into name0, name1, ... (hdf5_format.save_attributes_to_hdf5_group).
    std::vector<std::string> all;
    for (int chunk = 0; hasAttr(obj, name + std::to_string(chunk)); ++chunk) {
        std::vector<std::string> part = readOne(name + std::to_string(chunk));
        all.insert(all.end(), part.begin(), part.end());
    }
    return all;
}

std::optional<int64_t> readIntAttr(const H5::H5Object& obj, const std::string& name) {
    if (!hasAttr(obj, name)) return std::nullopt;
    try {
        H5::Attribute attr = obj.openAttribute(name);
        if (attr.getTypeClass() != H5T_INTEGER || attr.getSpace().getSimpleExtentNpoints() != 1)
            return std::nullopt;
        int64_t v = 0;
        attr.read(H5::PredType::NATIVE_INT64, &v);
        return v;
    } catch (const H5::Exception&) {
        return std::nullopt;
    }
}

std::vector<std::string> childNames(const H5::Group& group) {
    std::vector<std::string> names;
    H5G_info_t info;
    if (H5Gget_info(group.getId(), &info) < 0) return names;
    if (info.nlinks > (1u << 24)) return names;
    // Creation order when the file tracks it (h5py does not by default), else name order.
    H5_index_t index = H5_INDEX_NAME;
    hid_t gcpl = H5Gget_create_plist(group.getId());
    if (gcpl >= 0) {
        unsigned flags = 0;
        if (H5Pget_link_creation_order(gcpl, &flags) >= 0 && (flags & H5P_CRT_ORDER_INDEXED)) index = H5_INDEX_CRT_ORDER;
        H5Pclose(gcpl);
    }
    for (hsize_t i = 0; i < info.nlinks; ++i) {
        ssize_t len = H5Lget_name_by_idx(group.getId(), ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
        if (len < 0) continue;
        std::string name(static_cast<size_t>(len), '\0');
        H5Lget_name_by_idx(group.getId(), ".", index, H5_ITER_INC, i, name.data(), name.size() + 1, H5P_DEFAULT);
        names.push_back(std::move(name));
    }
    return names;
}

namespace {
thread_local bool skip_values = false;
}  // namespace

SkipValues::SkipValues() : previous_(skip_values) { skip_values = true; }
SkipValues::~SkipValues() { skip_values = previous_; }

int64_t maxTensorBytes() {
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return int64_t(8) << 30;
    return static_cast<int64_t>(pages) * page / 10 * 8;  // 80% of physical memory
}

bool isFloatDataset(const H5::DataSet& ds) {
    return ds.getTypeClass() == H5T_FLOAT;
}

namespace {

DType dtypeOf(const H5::DataSet& ds) {
    if (ds.getTypeClass() != H5T_FLOAT) return DType::Other;
    switch (ds.getFloatType().getSize()) {
        case 2: return DType::Float16;
        case 4: return DType::Float32;
        case 8: return DType::Float64;
        default: return DType::Other;
    }
}

}  // namespace

namespace {

// The integer type behind a dataset's type: itself, or an enum's base type.
hid_t integerBase(hid_t type) {
    if (H5Tget_class(type) == H5T_ENUM) return H5Tget_super(type);
    return H5Tcopy(type);
}

DType integerDType(hid_t type, bool is_bool) {
    if (is_bool) return DType::Bool;
    const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    switch (H5Tget_size(type)) {
        case 1: return is_signed ? DType::Int8 : DType::UInt8;
        case 2: return is_signed ? DType::Int16 : DType::UInt16;
        case 4: return is_signed ? DType::Int32 : DType::UInt32;
        case 8: return is_signed ? DType::Int64 : DType::UInt64;
        default: return DType::Other;
    }
}

// h5py writes numpy bool as an enum over int8 with exactly the members FALSE and TRUE.
bool isBoolEnum(hid_t type) {
    if (H5Tget_class(type) != H5T_ENUM || H5Tget_nmembers(type) != 2) return false;
    for (unsigned i = 0; i < 2; ++i) {
        char* name = H5Tget_member_name(type, i);
        const bool ok = name && (std::strcmp(name, "FALSE") == 0 || std::strcmp(name, "TRUE") == 0);
        H5free_memory(name);
        if (!ok) return false;
    }
    return true;
}

}  // namespace

namespace {

// A damaged header can declare billions of elements: allocating them alone takes seconds and
// gigabytes. A contiguous dataset must have its bytes in the file; a chunked one (compressed
// perhaps) may not expand more than 1024x what the file stores for it.
void checkStoredBytes(const H5::DataSet& ds, int64_t count, const std::string& file, const std::string& h5_path) {
    constexpr int64_t kSmall = int64_t(64) << 20;  // below this, allocating is cheap anyway
    const int64_t needed = count * static_cast<int64_t>(ds.getDataType().getSize());
    if (needed <= kSmall) return;
    const hid_t dcpl = H5Dget_create_plist(ds.getId());
    const bool chunked = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED;
    if (dcpl >= 0) H5Pclose(dcpl);
    const int64_t stored = static_cast<int64_t>(H5Dget_storage_size(ds.getId()));
    const bool plausible = chunked ? needed / 1024 <= stored : needed <= stored;
    if (!plausible)
        throw Error(file, h5_path,
                    "dataset declares " + std::to_string(needed) + " bytes but the file stores " + std::to_string(stored) +
                        " for it; the file is damaged or truncated");
}

}  // namespace

bool isIntegerDataset(const H5::DataSet& ds) {
    const H5T_class_t c = ds.getTypeClass();
    if (c == H5T_INTEGER) return true;
    if (c != H5T_ENUM) return false;
    const hid_t type = H5Dget_type(ds.getId());
    const hid_t base = integerBase(type);
    const bool ok = base >= 0 && H5Tget_class(base) == H5T_INTEGER;
    if (base >= 0) H5Tclose(base);
    H5Tclose(type);
    return ok;
}

Tensor readIntegerTensor(const H5::DataSet& ds, const std::string& file, const std::string& h5_path, const std::string& name) {
    Tensor t;
    t.name = name;
    t.h5_path = h5_path;
    noteStep(h5_path);
    const hid_t type = H5Dget_type(ds.getId());
    const hid_t base = type >= 0 ? integerBase(type) : -1;
    try {
        if (base < 0) throw Error(file, h5_path, "cannot read the integer dataset's type");
        const bool is_bool = isBoolEnum(type);
        t.stored_dtype = integerDType(base, is_bool);
        H5::DataSpace space = ds.getSpace();
        const int rank = space.getSimpleExtentNdims();
        if (rank < 0 || rank > 32) throw Error(file, h5_path, "dataset has an invalid rank");
        std::vector<hsize_t> dims(static_cast<size_t>(rank));
        if (rank > 0) space.getSimpleExtentDims(dims.data());
        for (hsize_t d : dims) t.shape.push_back(static_cast<int64_t>(std::min<hsize_t>(d, hsize_t(1) << 62)));
        t.stored_shape = t.shape;
        const int64_t n = t.size();
        const size_t width = H5Tget_size(base);
        if (!metadataOnly() && n > 0 && n <= Tensor::kMaxIntValues && t.stored_dtype != DType::Other) {
            // Read in the file's own type (an enum converts only to an enum), then widen by hand.
            const hid_t mem = H5Tget_class(type) == H5T_ENUM ? H5Tcopy(type) : H5Tget_native_type(type, H5T_DIR_ASCEND);
            std::vector<unsigned char> raw(static_cast<size_t>(n) * width);
            const bool native_order = H5Tget_order(base) == H5T_ORDER_LE;
            if (mem >= 0 && native_order && H5Tget_size(mem) == width && H5Dread(ds.getId(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) >= 0) {
                const bool is_signed = H5Tget_sign(base) == H5T_SGN_2;
                for (int64_t i = 0; i < n; ++i) {
                    const unsigned char* p = raw.data() + static_cast<size_t>(i) * width;
                    uint64_t u = 0;
                    std::memcpy(&u, p, width);  // little-endian host
                    if (is_signed && width < 8 && (u >> (8 * width - 1)) & 1) u |= ~uint64_t(0) << (8 * width);
                    t.int_values.push_back(static_cast<int64_t>(u));
                }
            }
            if (mem >= 0) H5Tclose(mem);
        }
    } catch (...) {
        if (base >= 0) H5Tclose(base);
        if (type >= 0) H5Tclose(type);
        throw;
    }
    H5Tclose(base);
    H5Tclose(type);
    return t;
}

Tensor readWeightTensor(const H5::DataSet& ds, const std::string& file, const std::string& h5_path, const std::string& name) {
    try {
        if (isIntegerDataset(ds) && !isQuantizedDataset(ds)) return readIntegerTensor(ds, file, h5_path, name);
    } catch (const H5::Exception& e) {
        throw Error(file, h5_path, "cannot read dataset (" + e.getDetailMsg() + ")");
    }
    return readFloatTensor(ds, file, h5_path, name);
}

Tensor readFloatTensor(const H5::DataSet& ds, const std::string& file, const std::string& h5_path,
                       const std::string& tensor_name) {
    Tensor t;
    t.name = tensor_name;
    t.h5_path = h5_path;
    noteStep(h5_path);
    try {
        if (isQuantizedDataset(ds)) return readQuantizedTensor(ds, file, h5_path, tensor_name);
        if (ds.getTypeClass() != H5T_FLOAT)
            throw Error(file, h5_path, "weight tensor is neither a number nor a boolean (HDF5 type class " +
                                           std::to_string(static_cast<int>(ds.getTypeClass())) + ")");
        t.stored_dtype = dtypeOf(ds);
        // A damaged header can declare a float of any width; libhdf5 then converts through a
        // buffer of that width per element (seconds of calloc for gigabytes). Keras writes 2, 4, 8.
        if (t.stored_dtype == DType::Other)
            throw Error(file, h5_path,
                        "floating-point dataset " + std::to_string(ds.getFloatType().getSize()) +
                            " bytes wide (float16, float32 and float64 are read); the file may be damaged");
        H5::DataSpace space = ds.getSpace();
        const int rank = space.getSimpleExtentNdims();
        if (rank < 0 || rank > 32) throw Error(file, h5_path, "dataset has an invalid rank");
        std::vector<hsize_t> dims(static_cast<size_t>(rank));
        if (rank > 0) space.getSimpleExtentDims(dims.data());
        // Multiply with an overflow check before anything is allocated.
        int64_t count = 1;
        for (hsize_t d : dims) {
            if (d > static_cast<hsize_t>(std::numeric_limits<int64_t>::max()) ||
                (d != 0 && count > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(d)))
                throw Error(file, h5_path, "dataset dimensions multiply past 2^63 elements");
            count *= static_cast<int64_t>(d);
            t.shape.push_back(static_cast<int64_t>(d));
        }
        t.stored_shape = t.shape;
        const int64_t limit = maxTensorBytes();
        if (count > limit / int64_t(sizeof(float)))
            throw Error(file, h5_path,
                        "dataset needs " + std::to_string(count) + " floats (" +
                            std::to_string(count / (1 << 20) * 4) + " MiB), more than this machine's memory allows");
        checkStoredBytes(ds, count, file, h5_path);
        // The helper reads no values (they are read in-process, after the preflight); nor does a
        // load without values (SkipValues).
        if (metadataOnly() || skip_values) return t;
        resizeOnHugePages(t.data, static_cast<size_t>(count));
        if (count > 0) ds.read(t.data.data(), H5::PredType::NATIVE_FLOAT);
    } catch (const H5::Exception& e) {
        throw Error(file, h5_path, "cannot read dataset (" + e.getDetailMsg() + ")");
    }
    return t;
}

}  // namespace qs::h5
