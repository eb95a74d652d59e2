#include "formats/keras_h5_loader.h"

#include <algorithm>
#include <map>
#include <optional>

#include "base/error.h"
#include "formats/h5_preflight.h"
#include "formats/hdf5_util.h"

namespace qs {

namespace {

std::string join(const std::string& a, const std::string& b) {
    if (a.empty() || a == "/") return "/" + b;
    return a + "/" + b;
}

void checkHardLink(hid_t loc, const std::string& name, const std::string& file, const std::string& full_path) {
    H5L_info_t info;
    if (H5Lexists(loc, name.c_str(), H5P_DEFAULT) <= 0 || H5Lget_info(loc, name.c_str(), &info, H5P_DEFAULT) < 0)
        throw Error(file, full_path, "missing object '" + name + "'");
    if (info.type != H5L_TYPE_HARD)
        throw Error(file, full_path, std::string(info.type == H5L_TYPE_EXTERNAL ? "external" : "soft") +
                                         " link; links are not followed (they can point outside this file)");
}

H5::Group openGroupHardLinksOnly(const H5::Group& base, const std::string& name, const std::string& file,
                                 const std::string& full_path) {
    checkHardLink(base.getId(), name, file, full_path);
    try {
        return base.openGroup(name);
    } catch (const H5::Exception& e) {
        throw Error(file, full_path, "cannot open group (" + e.getDetailMsg() + ")");
    }
}

}  // namespace

H5::DataSet openDatasetHardLinksOnly(const H5::Group& base, const std::string& rel_path, const std::string& file,
                                     const std::string& full_path) {
    H5::Group g = base;
    size_t start = 0;
    try {
        while (true) {
            const size_t slash = rel_path.find('/', start);
            const std::string part = rel_path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
            if (part.empty()) throw Error(file, full_path, "empty component in weight path");
            checkHardLink(g.getId(), part, file, full_path);
            if (slash == std::string::npos) {
                if (H5Oexists_by_name(g.getId(), part.c_str(), H5P_DEFAULT) <= 0)
                    throw Error(file, full_path, "dataset does not exist");
                return g.openDataSet(part);
            }
            g = g.openGroup(part);
            start = slash + 1;
        }
    } catch (const H5::Exception& e) {
        throw Error(file, full_path, "cannot open dataset (" + e.getDetailMsg() + ")");
    }
}

std::vector<WeightGroup> readLegacyWeightGroups(const H5::Group& group, const std::string& file,
                                                const std::string& group_path, const Progress& progress) {
    const std::vector<std::string> layer_names = h5::readStringArrayAttr(group, "layer_names", file, group_path);
    std::vector<WeightGroup> out;
    out.reserve(layer_names.size());
    for (size_t i = 0; i < layer_names.size(); ++i) {
        progress.checkCancelled();
        const std::string& name = layer_names[i];
        const std::string lpath = join(group_path, name);
        H5::Group lg = openGroupHardLinksOnly(group, name, file, lpath);
        WeightGroup wg{name, {}};
        for (const std::string& wn : h5::readStringArrayAttr(lg, "weight_names", file, lpath)) {
            const std::string wpath = join(lpath, wn);
            H5::DataSet ds = openDatasetHardLinksOnly(lg, wn, file, wpath);
            wg.tensors.push_back(h5::readWeightTensor(ds, file, wpath, wn));
        }
        out.push_back(std::move(wg));
        progress.report(static_cast<int64_t>(i + 1), static_cast<int64_t>(layer_names.size()));
    }
    return out;
}

std::vector<WeightGroup> readKeras0WeightGroups(const H5::Group& root, const std::string& file, const Progress& progress) {
    const auto nb_layers = h5::readIntAttr(root, "nb_layers");
    if (!nb_layers || *nb_layers < 0 || *nb_layers > 100000) throw Error(file, "/@nb_layers", "invalid layer count");
    std::vector<WeightGroup> out;
    for (int64_t i = 0; i < *nb_layers; ++i) {
        progress.checkCancelled();
        const std::string name = "layer_" + std::to_string(i);
        H5::Group lg = openGroupHardLinksOnly(root, name, file, "/" + name);
        const auto nb_params = h5::readIntAttr(lg, "nb_params");
        if (!nb_params || *nb_params < 0 || *nb_params > 1000) throw Error(file, "/" + name + "@nb_params", "invalid parameter count");
        WeightGroup wg{name, {}};
        for (int64_t j = 0; j < *nb_params; ++j) {
            const std::string pn = "param_" + std::to_string(j);
            const std::string wpath = "/" + name + "/" + pn;
            wg.tensors.push_back(h5::readWeightTensor(openDatasetHardLinksOnly(lg, pn, file, wpath), file, wpath, name + "/" + pn));
        }
        out.push_back(std::move(wg));
        progress.report(i + 1, *nb_layers);
    }
    return out;
}

// ---- Keras 3 layout ----

namespace {

struct KeyGroup {
    std::string key;
    std::string path;  // relative to the root, e.g. "layers/conv2d"
    std::optional<std::string> name_attr;
};

const char* kTfCheckpointDeps = "_layer_checkpoint_dependencies";

// The key groups of one container level.
std::vector<KeyGroup> listKeys(const H5::Group& root, const std::string& container, const std::string& file) {
    std::vector<KeyGroup> keys;
    auto add = [&](const H5::Group& parent, const std::string& child, const std::string& key, const std::string& path) {
        // One preflight step per key group: the caller's load trails the helper's by a step
        // (h5_preflight.h), and a whole level's walk is most of a small archive's metadata.
        h5::noteStep("/" + path);
        H5O_info_t oi;
        if (H5Oget_info_by_name(parent.getId(), child.c_str(), &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_GROUP) return;
        KeyGroup k{key, path, std::nullopt};
        H5::Group g = openGroupHardLinksOnly(parent, child, file, "/" + path);
        if (h5::hasChild(g, "vars")) {
            H5::Group vars = openGroupHardLinksOnly(g, "vars", file, "/" + path + "/vars");
            k.name_attr = h5::readStringAttr(vars, "name", file, "/" + path + "/vars");
        }
        keys.push_back(std::move(k));
    };
    if (container.empty()) {  // top level: layers/, _layer_checkpoint_dependencies/, or Windows "...\key"
        if (h5::hasChild(root, "layers")) {
            H5::Group lg = openGroupHardLinksOnly(root, "layers", file, "/layers");
            for (const std::string& c : h5::childNames(lg)) add(lg, c, c, "layers/" + c);
        } else if (h5::hasChild(root, kTfCheckpointDeps)) {
            H5::Group lg = openGroupHardLinksOnly(root, kTfCheckpointDeps, file, std::string("/") + kTfCheckpointDeps);
            for (const std::string& c : h5::childNames(lg)) add(lg, c, c, std::string(kTfCheckpointDeps) + "/" + c);
        } else {
            const std::string prefix = std::string(kTfCheckpointDeps) + "\\";
            for (const std::string& c : h5::childNames(root))
                if (c.rfind(prefix, 0) == 0) add(root, c, c.substr(prefix.size()), c);
        }
    } else {
        H5::Group parent = openGroupHardLinksOnly(root, container, file, "/" + container);
        if (h5::hasChild(parent, "layers")) {
            H5::Group lg = openGroupHardLinksOnly(parent, "layers", file, "/" + container + "/layers");
            for (const std::string& c : h5::childNames(lg)) add(lg, c, c, container + "/layers/" + c);
        }
    }
    return keys;
}

std::vector<Tensor> readVars(const H5::Group& root, const KeyGroup& k, const std::string& file) {
    std::vector<Tensor> tensors;
    H5::Group g = root.openGroup(k.path);
    if (!h5::hasChild(g, "vars")) return tensors;
    H5::Group vars = openGroupHardLinksOnly(g, "vars", file, "/" + k.path + "/vars");
    std::vector<std::pair<long, std::string>> idx;
    for (const std::string& c : h5::childNames(vars)) {
        char* end = nullptr;
        const long i = std::strtol(c.c_str(), &end, 10);
        if (end && *end == '\0' && i >= 0) idx.emplace_back(i, c);
    }
    std::sort(idx.begin(), idx.end());
    for (const auto& [i, c] : idx) {
        const std::string rel = k.path + "/vars/" + c;
        tensors.push_back(h5::readWeightTensor(openDatasetHardLinksOnly(vars, c, file, "/" + rel), file, "/" + rel, rel));
    }
    return tensors;
}

// "dense_4" -> ("dense", 4); "dense" -> ("dense", 0).
std::pair<std::string, long> splitCounter(const std::string& key) {
    const size_t us = key.rfind('_');
    if (us != std::string::npos && us + 1 < key.size() &&
        std::all_of(key.begin() + static_cast<long>(us) + 1, key.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return {key.substr(0, us), std::strtol(key.c_str() + us + 1, nullptr, 10)};
    return {key, 0};
}

void bindLevel(const H5::Group& root, const std::string& file, const std::string& container,
               const std::vector<ArchNode>& nodes, std::vector<WeightGroup>& out, const Progress& progress) {
    std::vector<KeyGroup> keys = listKeys(root, container, file);
    const bool by_name = std::any_of(keys.begin(), keys.end(), [](const KeyGroup& k) { return k.name_attr.has_value(); });
    // Per snake-cased class: its keys sorted by counter (tf.keras 2.13 skips numbers; order holds).
    std::map<std::string, std::vector<const KeyGroup*>> by_class;
    for (const KeyGroup& k : keys) by_class[splitCounter(k.key).first].push_back(&k);
    for (auto& [cls, v] : by_class)
        std::stable_sort(v.begin(), v.end(), [](const KeyGroup* a, const KeyGroup* b) {
            return splitCounter(a->key).second < splitCounter(b->key).second;
        });
    std::map<std::string, size_t> used;
    for (const ArchNode& n : nodes) {
        progress.checkCancelled();
        const KeyGroup* match = nullptr;
        if (by_name) {
            for (const KeyGroup& k : keys)
                if (k.name_attr && *k.name_attr == n.layer.name) match = &k;
        }
        if (!match && n.layer.class_name) {
            const std::string cls = kerasSnakeCase(*n.layer.class_name);
            auto it = by_class.find(cls);
            const size_t i = used[cls]++;
            // InputLayer is not in model.layers, so it never takes a key.
            if (n.layer.kind == "InputLayer") --used[cls];
            else if (it != by_class.end() && i < it->second.size()) match = it->second[i];
        }
        if (!match) continue;
        if (n.is_model) bindLevel(root, file, match->path, n.children, out, progress);
        else out.push_back(WeightGroup{n.layer.name, readVars(root, *match, file)});
    }
}

}  // namespace

bool hasKeras3Layout(const H5::Group& root) {
    if (h5::hasChild(root, "layers") || h5::hasChild(root, kTfCheckpointDeps)) return true;
    for (const std::string& c : h5::childNames(root))
        if (c.rfind(std::string(kTfCheckpointDeps) + "\\", 0) == 0) return true;
    return false;
}

std::vector<WeightGroup> readKeras3WeightGroups(const H5::Group& root, const std::string& file, const Architecture* arch,
                                                const Progress& progress) {
    std::vector<WeightGroup> out;
    try {
        if (arch) {
            bindLevel(root, file, "", arch->tree, out, progress);
        } else {
            for (const KeyGroup& k : listKeys(root, "", file)) {
                std::vector<Tensor> t = readVars(root, k, file);
                if (!t.empty() || k.name_attr) out.push_back(WeightGroup{k.name_attr.value_or(k.key), std::move(t)});
            }
        }
    } catch (const H5::Exception& e) {
        throw Error(file, "", "cannot read Keras 3 weights (" + e.getDetailMsg() + ")");
    }
    return out;
}

// ---- any HDF5 file ----

namespace {

herr_t visitDataset(hid_t, const char* name, const H5O_info_t* info, void* op_data) {
    if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(op_data)->push_back(name);
    return 0;
}

}  // namespace

std::vector<WeightGroup> readGenericDatasets(const H5::H5File& file, const std::string& path, const Progress& progress) {
    std::vector<std::string> names;
    // H5Ovisit walks hard links only: soft and external links are not followed.
    if (H5Ovisit(file.getId(), H5_INDEX_NAME, H5_ITER_INC, visitDataset, &names) < 0)
        throw Error(path, "/", "cannot walk the file's objects");
    std::vector<WeightGroup> groups;
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < names.size(); ++i) {
        progress.checkCancelled();
        const std::string& n = names[i];
        H5::DataSet ds;
        try {
            ds = file.openDataSet(n);
        } catch (const H5::Exception& e) {
            throw Error(path, "/" + n, "cannot open dataset (" + e.getDetailMsg() + ")");
        }
        // Integer and boolean datasets too: listed with their dtype and shape (never analysed,
        // never converted: separateIntegerTensors sets them apart).
        if (!h5::isFloatDataset(ds) && !h5::isIntegerDataset(ds)) continue;
        const size_t slash = n.rfind('/');
        const std::string parent = slash == std::string::npos ? "/" : n.substr(0, slash);
        auto [it, inserted] = index.emplace(parent, groups.size());
        if (inserted) groups.push_back(WeightGroup{parent, {}});
        groups[it->second].tensors.push_back(h5::readWeightTensor(ds, path, "/" + n, n));
        progress.report(static_cast<int64_t>(i + 1), static_cast<int64_t>(names.size()));
    }
    return groups;
}

}  // namespace qs
