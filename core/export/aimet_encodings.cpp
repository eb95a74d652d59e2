// AIMET encodings export (exports.h). Conventions from AIMET's encoding specification 0.5.0:
// real = scale * (q + offset) with q in [0, 2^bitwidth - 1], so for our signed grids
// (real = scale * (q_s - zero_point), q_s in [qmin, qmax]) offset = qmin - zero_point over
// the full 2^bits range starting at qmin = -2^(bits-1). Symmetric weights: offset -2^(bits-1),
// min = -2^(bits-1) * scale, max = (2^(bits-1) - 1) * scale.
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "export/exports.h"

namespace qs {

namespace {

using nlohmann::json;

json intEncoding(const QuantParams& p, int bits, bool symmetric) {
    const int64_t full_min = -(int64_t{1} << (bits - 1));
    const int64_t offset = full_min - p.zero_point;
    const int64_t levels = (int64_t{1} << bits) - 1;
    return {{"bitwidth", bits},
            {"dtype", "int"},
            {"is_symmetric", symmetric ? "True" : "False"},
            {"scale", p.scale},
            {"offset", offset},
            {"min", p.scale * static_cast<double>(offset)},
            {"max", p.scale * static_cast<double>(levels + offset)}};
}

json floatEncoding(int bits) { return {{"bitwidth", bits}, {"dtype", "float"}}; }

}  // namespace

std::vector<std::string> exportAimetEncodings(const QuantizedModel& qm, const std::string& path) {
    std::vector<std::string> notes;
    json params = json::object(), acts = json::object();
    for (size_t i = 0; i < qm.ops.size(); ++i) {
        const Op& op = qm.graph.ops[i];
        const QuantizedOp& qo = qm.ops[i];
        const std::string param = op.kernel.name.empty() ? op.name + "/kernel:0" : op.kernel.name;
        if (!qo.w_params.empty()) {
            if (qo.weight_bits < 4) {
                notes.push_back(op.name + ": " + std::to_string(qo.weight_bits) + "-bit weights are below AIMET's minimum bitwidth (4); left out");
            } else {
                json list = json::array();
                for (const QuantParams& p : qo.w_params) list.push_back(intEncoding(p, qo.weight_bits, true));
                params[param] = list;
            }
        } else if (op.hasWeights() && qo.precision == Precision::Float16) {
            params[param] = json::array({floatEncoding(16)});
        }
        if (qo.domain == Domain::Int8 || qo.domain == Domain::Int16) {
            const int bits = qo.domain == Domain::Int8 ? 8 : 16;
            acts[op.name + ":0"] = json::array({intEncoding(qo.out, bits, qo.domain == Domain::Int16)});  // int16: symmetric
        } else if (qo.precision == Precision::Float16) {
            acts[op.name + ":0"] = json::array({floatEncoding(16)});
        }
    }
    const json doc = {{"version", "0.5.0"}, {"activation_encodings", acts}, {"param_encodings", params}};
    writeFileAtomically(path, doc.dump(2) + "\n");
    return notes;
}

}  // namespace qs
