#pragma once
// Architecture files that training code saves beside weights-only HDF5 files:
// model.to_json() (.json), model.to_yaml() (.yaml, with !!python/tuple tags), Keras 0.3's
// .arch.json, and a .keras archive's config.json.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace qs {

nlohmann::json readArchitectureFile(const std::string& path);

// YAML text -> JSON value (plain scalars typed as YAML 1.1 core: null, bool, int, float).
nlohmann::json yamlToJson(const std::string& text, const std::string& file);

// m_weights.h5 -> m.json, m.yaml, m.yml, m.arch.json, m.keras (the first that exists).
std::optional<std::string> findSidecarArchitecture(const std::string& weights_path);

}  // namespace qs
