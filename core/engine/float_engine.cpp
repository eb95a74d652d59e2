#include "engine/float_engine.h"

namespace qs {

FloatEngine::FloatEngine(const Model& m, const Shape& fallback_input)
    : graph_(lowerModel(m, fallback_input, /*fold_batch_norm=*/false)) {}

int64_t FloatEngine::inputSize() const { return prod(graph_.input_shape); }

RowMatrix FloatEngine::forward(const RowMatrix& input) const {
    std::vector<Act> acts = runFloatGraph(graph_, input, false);
    return std::move(acts[static_cast<size_t>(graph_.output)].x);
}

}  // namespace qs
