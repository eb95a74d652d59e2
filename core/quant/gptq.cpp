#include "quant/gptq.h"

#include <algorithm>

namespace qs {

std::vector<int32_t> gptqLevels(const float* w, int64_t K, int64_t N, const std::vector<QuantParams>& params, Eigen::MatrixXd H) {
    auto param = [&](int64_t n) -> const QuantParams& { return params.size() == 1 ? params[0] : params[static_cast<size_t>(n)]; };
    Eigen::MatrixXd W(K, N);
    for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) W(k, n) = w[k * N + n];
    std::vector<int32_t> q(static_cast<size_t>(K * N));
    // Inputs that were always zero carry no error: keep them out of the inverse.
    for (int64_t k = 0; k < K; ++k)
        if (H(k, k) <= 0) H.row(k).setZero(), H.col(k).setZero(), H(k, k) = 1;
    const double damp = 0.01 * H.diagonal().mean();
    H.diagonal().array() += damp;
    // U: the upper Cholesky factor of H^-1 (H^-1 = U^T U); row k of U gives how row k's error
    // is spread over rows k+1.. once row k is fixed.
    const Eigen::MatrixXd Hinv = H.llt().solve(Eigen::MatrixXd::Identity(K, K));
    const Eigen::LLT<Eigen::MatrixXd> chol(Hinv);
    if (chol.info() != Eigen::Success) {  // numerically singular: fall back to nearest rounding
        for (int64_t k = 0; k < K; ++k)
            for (int64_t n = 0; n < N; ++n) q[static_cast<size_t>(k * N + n)] = quantize(w[k * N + n], param(n));
        return q;
    }
    const Eigen::MatrixXd U = chol.matrixU();
    Eigen::RowVectorXd err(N);
    for (int64_t k = 0; k < K; ++k) {
        for (int64_t n = 0; n < N; ++n) {
            const QuantParams& p = param(n);
            const int32_t level = quantize(static_cast<float>(W(k, n)), p);
            q[static_cast<size_t>(k * N + n)] = level;
            err(n) = (W(k, n) - dequantize(level, p)) / U(k, k);
        }
        if (k + 1 < K) W.bottomRows(K - k - 1).noalias() -= U.row(k).tail(K - k - 1).transpose() * err;
    }
    return q;
}

std::vector<int32_t> depthwiseGptqLevels(const float* w, int64_t T, int64_t C, int64_t M, const std::vector<QuantParams>& params,
                                         const Eigen::MatrixXd& h) {
    if (h.rows() != T || h.cols() != T * C || (params.size() != 1 && static_cast<int64_t>(params.size()) != C * M)) return {};
    std::vector<int32_t> levels(static_cast<size_t>(T * C * M));
    std::vector<float> wc(static_cast<size_t>(T * M));
    for (int64_t c = 0; c < C; ++c) {
        for (int64_t t = 0; t < T; ++t)
            for (int64_t m = 0; m < M; ++m) wc[static_cast<size_t>(t * M + m)] = w[(t * C + c) * M + m];
        std::vector<QuantParams> p = params;  // one for the tensor, or this channel's M
        if (params.size() > 1) p.assign(params.begin() + c * M, params.begin() + (c + 1) * M);
        const std::vector<int32_t> q = gptqLevels(wc.data(), T, M, p, h.middleCols(c * T, T));
        for (int64_t t = 0; t < T; ++t)
            for (int64_t m = 0; m < M; ++m) levels[static_cast<size_t>((t * C + c) * M + m)] = q[static_cast<size_t>(t * M + m)];
    }
    return levels;
}

}  // namespace qs
