#include "engine/float_engine.h"

#include <algorithm>

namespace qs {

namespace {

// Samples per chunk: the largest value one sample makes (read from a walk of an empty batch:
// every op gives its shape without arithmetic) times the chunk fits in 512 KiB, half of a
// common L2. Small models keep whole batches (the MLP's widest value is 784 floats).
int64_t chunkFor(const OpGraph& g) {
    int64_t widest = 1;
    for (const Act& a : runFloatGraph(g, RowMatrix(0, prod(g.input_shape)), true)) widest = std::max(widest, prod(a.shape));
    return std::clamp<int64_t>((int64_t{512} << 10) / (widest * 4), 1, 256);
}

}  // namespace

FloatEngine::FloatEngine(const Model& m, const Shape& fallback_input)
    : graph_(lowerModel(m, fallback_input, /*fold_batch_norm=*/false)), chunk_(chunkFor(graph_)) {}

int64_t FloatEngine::inputSize() const { return prod(graph_.input_shape); }

RowMatrix FloatEngine::forward(const RowMatrix& input) const {
    const auto run = [&](const RowMatrix& x) {
        std::vector<Act> acts = runFloatGraph(graph_, x, false);
        return std::move(acts[static_cast<size_t>(graph_.output)].x);
    };
    return inChunks(input, chunk_, run);
}

}  // namespace qs
