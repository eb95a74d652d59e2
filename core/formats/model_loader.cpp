#include "formats/model_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "base/error.h"
#include "formats/architecture_file.h"
#include "formats/h5_preflight.h"
#include "formats/hdf5_util.h"
#include "formats/keras_config.h"
#include "formats/keras_h5_loader.h"
#include "formats/qat_layers.h"
#include "formats/weight_binding.h"
#include "formats/zip_reader.h"
#include "model/shape_inference.h"

namespace qs {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr unsigned char kHdf5Signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

std::string hexBytes(const std::string& path, size_t n) {
    std::ifstream in(path, std::ios::binary);
    std::string buf(n, '\0');
    in.read(buf.data(), static_cast<std::streamsize>(n));
    buf.resize(static_cast<size_t>(in.gcount()));
    static const char* digits = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : buf) {
        if (!hex.empty()) hex += ' ';
        hex += digits[c >> 4];
        hex += digits[c & 15];
    }
    return hex;
}

bool hasHdf5SignatureAnywhere(const std::string& path) {
    // Mangled files (a text-mode round trip turns 0x89 into ef bf bd) keep "HDF\r\n" near the start.
    std::ifstream in(path, std::ios::binary);
    std::string head(64, '\0');
    in.read(head.data(), 64);
    head.resize(static_cast<size_t>(in.gcount()));
    return head.find("HDF\r\n") != std::string::npos;
}

enum class FileKind { Zip, Hdf5, Other, NotRegular };

// What the file is, from its first bytes: a zip archive (.keras), or HDF5 with the signature
// where the format puts the superblock, at 0, 512, 1024, 2048, ... (after a user block; HDF5
// File Format Specification, "Format Signature"): what H5Fis_hdf5 looks for, without opening
// the file in libhdf5 a first time. One descriptor and pread: the helper does this on the
// preflight's critical path (three ifstreams cost about as much as libhdf5's open of a small file).
FileKind fileKind(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block us
    if (fd < 0) return FileKind::Other;
    struct stat st {};
    FileKind kind = FileKind::Other;
    char head[8] = {};
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) kind = FileKind::NotRegular;  // nothing more to open: a FIFO could block
    else if (pread(fd, head, 8, 0) == 8) {
        if (std::memcmp(head, "PK\x03\x04", 4) == 0) kind = FileKind::Zip;
        for (off_t at = 0; kind == FileKind::Other && at + 8 <= st.st_size; at = at == 0 ? 512 : at * 2)
            if ((at == 0 || pread(fd, head, 8, at) == 8) && std::memcmp(head, "\x89HDF\r\n\x1a\n", 8) == 0) kind = FileKind::Hdf5;
    }
    ::close(fd);
    return kind;
}

void checkReadableFile(const std::string& path) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st)) throw Error(path, "", "no such file");
    if (fs::is_directory(st)) throw Error(path, "", "is a directory, not a model file");
    if (!fs::is_regular_file(st)) throw Error(path, "", "is not a regular file");
    const auto size = fs::file_size(path, ec);
    if (ec) throw Error(path, "", "cannot read its size");
    if (size == 0) throw Error(path, "", "file is empty");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path, "", "cannot open for reading (permission?)");
}

std::optional<std::string> rootString(const H5::Group& root, const char* name, const std::string& path) {
    return h5::readStringAttr(root, name, path, "/");
}

struct ArchSource {
    json config;
    std::string source;
};

// A .keras archive's config.json, and its architecture once parsed.
struct ArchiveArchitecture {
    ArchSource config;
    std::optional<Architecture> parsed;
};

std::optional<ArchSource> architectureFor(const std::string& path, const LoadOptions& options) {
    std::string arch_path = options.arch_path;
    if (arch_path.empty() && options.find_sidecar) {
        if (auto found = findSidecarArchitecture(path)) arch_path = *found;
    }
    if (arch_path.empty()) return std::nullopt;
    return ArchSource{readArchitectureFile(arch_path), arch_path};
}

// Keras 0.3 layers have no names: they take the weights file's group names, layer_<i>.
void nameUnnamedLayers(Architecture& arch) {
    for (size_t i = 0; i < arch.tree.size(); ++i)
        if (arch.tree[i].layer.name.empty()) arch.tree[i].layer.name = "layer_" + std::to_string(i);
    for (size_t i = 0; i < arch.layers.size(); ++i)
        if (arch.layers[i].name.empty()) arch.layers[i].name = "layer_" + std::to_string(i);
    for (size_t i = 1; i < arch.layers.size(); ++i)
        if (arch.layers[i].inbound.empty() && arch.layers[i].kind != "InputLayer")
            arch.layers[i].inbound = {InboundRef{arch.layers[i - 1].name, 0, 0}};
    if (!arch.layers.empty()) {
        arch.inputs = {InboundRef{arch.layers.front().name, 0, 0}};
        arch.outputs = {InboundRef{arch.layers.back().name, 0, 0}};
    }
}

// Adopts `arch` into the model and binds the file's weight groups to its layers.
void adoptAndBind(Model& m, Architecture arch, std::vector<WeightGroup> groups, const std::string& source, bool order_fallback) {
    Architecture tree_only;  // binding needs the nesting (adoptArchitecture takes the flat layers only)
    tree_only.tree = std::move(arch.tree);  // a copy was 7% of a small file's load (every layer's config JSON)
    adoptArchitecture(m, std::move(arch), source);
    bindWeights(m, tree_only, std::move(groups), order_fallback);
}

// Weights-only files: bind to the architecture when one is given or found beside the file.
void bindWeightsOnly(Model& m, std::vector<WeightGroup> groups, const std::optional<ArchSource>& src) {
    if (!src) {
        adoptGroupsWithoutArchitecture(m, std::move(groups));
        m.warnings.push_back("weights-only file without an architecture: analysis only (give --arch FILE to run it)");
        return;
    }
    Architecture arch = parseKerasArchitecture(src->config, src->source, "");
    nameUnnamedLayers(arch);
    adoptAndBind(m, std::move(arch), std::move(groups), src->source, /*order_fallback=*/true);
}

Model loadFromH5(const H5::H5File& file, const std::string& path, const LoadOptions& options, const Progress& progress,
                 ArchiveArchitecture* archive) {
    Model m;
    m.source_path = path;
    H5::Group root = file.openGroup("/");
    // The format probes below read the root's attributes: a step apart from the open, so the
    // caller opens its copy while the helper probes (the first step is the one it waits for).
    h5::noteStep("/");
    m.keras_version = rootString(root, "keras_version", path).value_or("");
    m.backend = rootString(root, "backend", path).value_or("");
    std::optional<bool> theano_flip;  // set for Theano-era weights files: convert their kernels

    if (archive) {  // inside a .keras archive: the config comes from config.json
        m.format = ModelFormat::Keras3Archive;
        // The architecture guides which groups are read, so the helper parses it too, here;
        // the caller has parsed its own before opening the image (loadArchive).
        h5::noteLibraryFree();
        if (!archive->parsed) archive->parsed = parseKerasArchitecture(archive->config.config, path, archive->config.source);
        h5::noteStep("/");
        std::vector<WeightGroup> groups = readKeras3WeightGroups(root, path, &*archive->parsed, progress);
        // The caller's last step waits for the helper's end: nothing library-free after it there.
        if (h5::metadataOnly()) return m;
        adoptAndBind(m, std::move(*archive->parsed), std::move(groups), archive->config.source, false);
    } else if (auto config_text = rootString(root, "model_config", path)) {
        m.format = ModelFormat::Keras2FullH5;
        if (!h5::hasChild(root, "model_weights")) throw Error(path, "/model_weights", "the file has a model_config but no model_weights group");
        H5::Group mw = root.openGroup("model_weights");
        if (m.keras_version.empty()) m.keras_version = h5::readStringAttr(mw, "keras_version", path, "/model_weights").value_or("");
        if (m.backend.empty()) m.backend = h5::readStringAttr(mw, "backend", path, "/model_weights").value_or("");
        std::vector<WeightGroup> groups = readLegacyWeightGroups(mw, path, "/model_weights", progress);
        // The preflight exercises libhdf5 only: parsing the JSON and binding are ours, in-process.
        if (h5::metadataOnly()) return m;
        Architecture arch = parseKerasArchitecture(parseJsonText(*config_text, path, "/@model_config"), path, "/@model_config");
        adoptAndBind(m, std::move(arch), std::move(groups), "model_config", false);
    } else if (h5::hasListAttr(root, "layer_names")) {
        m.format = ModelFormat::KerasWeightsH5;
        std::vector<WeightGroup> groups = readLegacyWeightGroups(root, path, "/", progress);
        if (h5::metadataOnly()) return m;  // the architecture beside the file is ours to read, not libhdf5's
        bindWeightsOnly(m, std::move(groups), architectureFor(path, options));
        // Keras 1 (no keras_version attribute, or 1.x) stored 'th' kernels in Theano layout.
        if (m.keras_version.empty() || m.keras_version.rfind("1.", 0) == 0) theano_flip = m.backend != "tensorflow";
    } else if (h5::hasAttr(root, "nb_layers")) {
        m.format = ModelFormat::Keras0WeightsH5;
        std::vector<WeightGroup> groups = readKeras0WeightGroups(root, path, progress);
        if (h5::metadataOnly()) return m;
        bindWeightsOnly(m, std::move(groups), architectureFor(path, options));
        theano_flip = true;  // Keras 0.x ran on Theano, which convolves
    } else if (hasKeras3Layout(root)) {
        m.format = ModelFormat::Keras3WeightsH5;
        // The architecture guides which groups are read, so the helper reads and parses it too;
        // meanwhile we do ours instead of waiting for it (no libhdf5 call in between).
        h5::noteLibraryFree();
        std::optional<ArchSource> src = architectureFor(path, options);
        std::optional<Architecture> parsed;
        if (src) parsed = parseKerasArchitecture(src->config, src->source, "");
        h5::noteStep("/");
        if (src) {
            Architecture arch = std::move(*parsed);
            std::vector<WeightGroup> groups = readKeras3WeightGroups(root, path, &arch, progress);
            if (h5::metadataOnly()) return m;
            adoptAndBind(m, std::move(arch), std::move(groups), src->source, false);
        } else {
            std::vector<WeightGroup> groups = readKeras3WeightGroups(root, path, nullptr, progress);
            if (h5::metadataOnly()) return m;
            adoptGroupsWithoutArchitecture(m, std::move(groups));
            m.warnings.push_back("weights-only file without an architecture: analysis only (give --arch FILE to run it)");
        }
    } else {
        m.format = ModelFormat::GenericH5;
        std::vector<WeightGroup> groups = readGenericDatasets(file, path, progress);
        if (h5::metadataOnly()) return m;
        adoptGroupsWithoutArchitecture(m, std::move(groups));
        const bool any_float = std::any_of(m.layers.begin(), m.layers.end(), [](const Layer& l) {
            return std::any_of(l.weights.begin(), l.weights.end(), [](const Tensor& t) { return isFloat(t.stored_dtype); });
        });
        if (!any_float) throw Error(path, "/", "HDF5 file without Keras metadata and without floating-point datasets");
        m.warnings.push_back("not a Keras file: every floating-point dataset is shown as a tensor (integer and boolean ones listed, not analysed); inference needs an architecture");
    }
    if (h5::metadataOnly()) return m;  // the preflight has done all libhdf5 does here; no values to convert
    if (theano_flip) convertTheanoKernels(m, *theano_flip);
    separateIntegerTensors(m);  // QAT state (bits, keep_negative): listed, never analysed
    readTrainedQuantization(m);
    inferShapes(m);
    return m;
}

Model loadArchive(const std::string& path, const LoadOptions& options, const Progress& progress) {
    ZipArchive zip(path);
    if (!zip.contains("model.weights.h5")) throw Error(path, "model.weights.h5", "the .keras archive has no model.weights.h5");
    ArchiveArchitecture arch{{parseJsonText(zip.readText("config.json"), path, "config.json"), "config.json"}, std::nullopt};
    std::string keras_version;
    if (zip.contains("metadata.json")) {
        try {
            json meta = json::parse(zip.readText("metadata.json"));
            if (meta.contains("keras_version") && meta["keras_version"].is_string()) keras_version = meta["keras_version"];
        } catch (const json::exception&) {
        }
    }
    // A stored member (as Keras writes it) is taken from the same span of the archive by both
    // processes: the helper maps it in place (no copy, no CRC: its first step comes long before
    // ours and it holds no second copy of the weights), the caller reads it and checks its CRC
    // before its libhdf5 reads, which trail the helper's on those same bytes. Anything else
    // (deflated, ZIP64) is unpacked by libzip in both.
    const size_t max_bytes = static_cast<size_t>(h5::maxTensorBytes());
    const std::optional<ZipArchive::StoredSpan> span = zip.storedSpan("model.weights.h5", max_bytes);
    const MappedMember mapped = span && h5::metadataOnly() ? zip.mapSpan(*span) : MappedMember{};
    const std::vector<char> unpacked = mapped ? std::vector<char>{}
                                       : span ? zip.readSpan("model.weights.h5", *span)
                                              : zip.read("model.weights.h5", max_bytes);
    const h5::ImageBytes image = mapped ? h5::ImageBytes{mapped.data(), mapped.size()} : h5::ImageBytes{unpacked.data(), unpacked.size()};
    // The caller parses the architecture now, while the helper opens the image (the step it
    // waits for next); the helper parses it after that step (loadFromH5), so its open is not
    // delayed. Library-free either way.
    if (!h5::metadataOnly()) arch.parsed = parseKerasArchitecture(arch.config.config, path, arch.config.source);
    h5::noteStep("model.weights.h5");  // its superblock, as for a plain file
    H5::H5File file = h5::openImageReadOnly(image, path + ":model.weights.h5");
    Model m = loadFromH5(file, path, options, progress, &arch);
    m.keras_version = keras_version;
    m.format = ModelFormat::Keras3Archive;
    return m;
}

// The load itself; loadModel runs it checked by the preflight.
Model loadChecked(const std::string& path, const LoadOptions& options, const Progress& progress) {
    h5::silenceErrorStack();
    std::optional<h5::SkipValues> skip;
    if (!options.values) skip.emplace();
    const FileKind kind = fileKind(path);
    if (kind == FileKind::Zip) return loadArchive(path, options, progress);
    if (kind == FileKind::NotRegular) throw Error(path, "", "is not a regular file");
    if (kind != FileKind::Hdf5) {
        std::string msg = "not an HDF5 file or a .keras zip archive (first bytes: " + hexBytes(path, 8) + ")";
        if (hasHdf5SignatureAnywhere(path))
            msg += "; it looks like an HDF5 file damaged by a text-mode transfer (bytes >= 0x80 replaced)";
        throw Error(path, "", msg);
    }
    try {
        h5::noteStep("");  // the superblock and root group: read nowhere before the helper has read them (h5_preflight.h)
        H5::H5File file = h5::openReadOnly(path);
        return loadFromH5(file, path, options, progress, nullptr);
    } catch (const H5::Exception& e) {
        throw Error(path, "", "HDF5 error (" + e.getDetailMsg() + "); is the file truncated or damaged?");
    } catch (const json::exception& e) {
        throw Error(path, "", std::string("unexpected JSON content: ") + e.what());
    }
}

// The preflight's job: the same load in the helper, in metadata-only mode (h5_preflight.h). Not
// loadModel: the caller has checked the file is a readable regular one meanwhile, and the
// helper's start is what the caller's first step waits for.
void metadataOnlyLoad(const std::vector<std::string>& a) { loadChecked(a.at(0), LoadOptions{a.at(1), a.at(2) == "1"}, Progress::none()); }

}  // namespace

Model loadModel(const std::string& path, const LoadOptions& options, const Progress& progress) {
    // A file that crashes libhdf5 crashes the helper that reads its metadata a step ahead of us,
    // not us. Asked first, so that the helper wakes while we check the file (it checks it too).
    std::error_code ec;
    const auto bytes = fs::file_size(path, ec);
    h5::Preflight checked(&metadataOnlyLoad, {path, options.arch_path, options.find_sidecar ? "1" : "0"},
                          ec ? 0 : static_cast<int64_t>(bytes), path);
    checkReadableFile(path);
    Model m = loadChecked(path, options, progress);
    checked.finish();
    return m;
}

}  // namespace qs
