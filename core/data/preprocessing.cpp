#include "data/preprocessing.h"

#include <algorithm>

namespace qs {

RowMatrix preprocessRows(const ImageDataset& data, const Preprocessing& pre, int64_t begin, int64_t count) {
    const int64_t per = data.rows * data.cols * data.channels;
    const float scale = static_cast<float>(1.0 / pre.scale), mean = static_cast<float>(pre.mean), inv_std = static_cast<float>(1.0 / pre.std);
    RowMatrix x(count, per);
    if (!data.values.empty())
        for (int64_t i = 0; i < count * per; ++i) x.data()[i] = (data.values[static_cast<size_t>(begin * per + i)] * scale - mean) * inv_std;
    else
        for (int64_t i = 0; i < count * per; ++i)
            x.data()[i] = (static_cast<float>(data.pixels[static_cast<size_t>(begin * per + i)]) * scale - mean) * inv_std;
    return x;
}

RowMatrix preprocessSpread(const ImageDataset& data, const Preprocessing& pre, int64_t count) {
    count = std::min(count, data.n);
    const int64_t per = data.rows * data.cols * data.channels;
    RowMatrix x(count, per);
    for (int64_t i = 0; i < count; ++i) x.row(i) = preprocessRows(data, pre, i * data.n / count, 1);
    return x;
}

}  // namespace qs
