#include "formats/architecture_file.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "formats/keras_config.h"
#include "formats/zip_reader.h"

namespace qs {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string readSmallTextFile(const std::string& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw Error(path, "", "architecture file does not exist or is not a file");
    const auto size = fs::file_size(path, ec);
    if (ec || size > (size_t(256) << 20)) throw Error(path, "", "architecture file is unreadable or over 256 MiB");
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    if (!in && !in.eof()) throw Error(path, "", "cannot read architecture file");
    return ss.str();
}

json scalarToJson(const YAML::Node& n) {
    const std::string& s = n.Scalar();
    if (n.Tag() == "!") return s;  // quoted: always a string
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    try {
        size_t pos = 0;
        long long v = std::stoll(s, &pos, 10);
        if (pos == s.size()) return v;
    } catch (...) {
    }
    try {
        size_t pos = 0;
        double v = std::stod(s, &pos);
        if (pos == s.size()) return v;
    } catch (...) {
    }
    if (s == ".inf" || s == ".Inf") return std::numeric_limits<double>::infinity();
    return s;
}

json nodeToJson(const YAML::Node& n, const std::string& file, int depth) {
    if (depth > 512) throw Error(file, "", "YAML is nested too deep");
    switch (n.Type()) {
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined: return nullptr;
        case YAML::NodeType::Scalar: return scalarToJson(n);
        case YAML::NodeType::Sequence: {
            json a = json::array();
            for (const YAML::Node& c : n) a.push_back(nodeToJson(c, file, depth + 1));
            return a;
        }
        case YAML::NodeType::Map: {
            json o = json::object();
            for (const auto& kv : n) o[kv.first.as<std::string>()] = nodeToJson(kv.second, file, depth + 1);
            return o;
        }
    }
    return nullptr;
}

}  // namespace

json yamlToJson(const std::string& text, const std::string& file) {
    try {
        return nodeToJson(YAML::Load(text), file, 0);
    } catch (const YAML::Exception& e) {
        throw Error(file, "", std::string("malformed YAML: ") + e.what());
    }
}

json readArchitectureFile(const std::string& path) {
    if (looksLikeZip(path)) {
        ZipArchive zip(path);
        return parseJsonText(zip.readText("config.json"), path, "config.json");
    }
    const std::string text = readSmallTextFile(path);
    const std::string ext = fs::path(path).extension().string();
    size_t i = 0;
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const bool looks_json = i < text.size() && (text[i] == '{' || text[i] == '[');
    if (ext == ".yaml" || ext == ".yml" || !looks_json) return yamlToJson(text, path);
    return parseJsonText(text, path, "");
}

std::optional<std::string> findSidecarArchitecture(const std::string& weights_path) {
    const fs::path p(weights_path);
    std::string stem = p.filename().string();
    for (const char* suffix : {".weights.h5", ".hdf5", ".h5", ".keras"}) {
        const std::string s(suffix);
        if (stem.size() > s.size() && stem.compare(stem.size() - s.size(), s.size(), s) == 0) {
            stem.resize(stem.size() - s.size());
            break;
        }
    }
    std::vector<std::string> stems{stem};
    for (const char* tail : {"_weights", "-weights", ".weights", "_weight", "_w"}) {
        const std::string t(tail);
        if (stem.size() > t.size() && stem.compare(stem.size() - t.size(), t.size(), t) == 0)
            stems.push_back(stem.substr(0, stem.size() - t.size()));
    }
    for (const std::string& s : stems)
        for (const char* ext : {".json", ".yaml", ".yml", ".arch.json", ".keras"}) {
            const fs::path cand = p.parent_path() / (s + ext);
            std::error_code ec;
            if (cand != p && fs::is_regular_file(cand, ec)) return cand.string();
        }
    return std::nullopt;
}

}  // namespace qs
