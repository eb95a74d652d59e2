// Quantizers, candidate scales and error statistics. Golden values from the seed documents
// and TFLite's tests, a small tensor worked by hand for every statistic, properties on random
// tensors, agreement with a straightforward float64 reference, and the same bits on every ISA.
#include <QtTest>

#include <array>
#include <cmath>
#include <map>
#include <limits>
#include <numeric>
#include <random>

#include "quant/calibration.h"
#include "quant/kernels/quant_error_kernel.h"
#include "quant/magnitude_overview.h"
#include "quant/quant_analysis.h"
#include "quant/quant_params.h"

using namespace qs;

namespace {

Tensor randomTensor(std::vector<int64_t> shape, uint32_t seed, float sigma = 0.05f) {
    Tensor t;
    t.name = "w";
    t.shape = shape;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, sigma);
    t.data.resize(static_cast<size_t>(n));
    // Per-channel ranges differ (scale per last-axis channel), like real kernels.
    const int64_t C = shape.back();
    for (int64_t i = 0; i < n; ++i) t.data[static_cast<size_t>(i)] = nd(rng) * (1.0f + static_cast<float>(i % C) * 0.7f);
    return t;
}

// TensorRT's entropy calibration written out bin by bin (O(bins^2) logs): the reference for
// klClip, which works per merged group. Returns KL(P || Q) for every threshold i (index i).
std::vector<double> klByThreshold(const Histogram& h, int bits) {
    const int nbins = static_cast<int>(h.counts.size()), levels = 1 << (bits - 1);
    std::vector<double> out(static_cast<size_t>(nbins) + 1, std::numeric_limits<double>::quiet_NaN());
    for (int i = levels; i <= nbins; ++i) {
        std::vector<double> p(h.counts.begin(), h.counts.begin() + i), q(static_cast<size_t>(i), 0.0);
        double fold = static_cast<double>(h.above);
        for (int k = i; k < nbins; ++k) fold += static_cast<double>(h.counts[static_cast<size_t>(k)]);
        p.back() += fold;
        const double merged = static_cast<double>(i) / levels;
        for (int j = 0; j < levels; ++j) {
            const int start = static_cast<int>(std::floor(j * merged));
            const int end = j == levels - 1 ? i : static_cast<int>(std::floor((j + 1) * merged));
            double total = 0;
            int nz = 0;
            for (int k = start; k < end; ++k) total += static_cast<double>(h.counts[static_cast<size_t>(k)]), nz += h.counts[static_cast<size_t>(k)] != 0;
            for (int k = start; k < end; ++k)
                if (h.counts[static_cast<size_t>(k)]) q[static_cast<size_t>(k)] = total / nz;
        }
        double ps = 0, qs_ = 0;
        for (int k = 0; k < i; ++k) ps += p[static_cast<size_t>(k)], qs_ += q[static_cast<size_t>(k)];
        if (ps <= 0 || qs_ <= 0) continue;
        double kl = 0;
        for (int k = 0; k < i; ++k) {
            if (p[static_cast<size_t>(k)] <= 0) continue;
            const double pk = p[static_cast<size_t>(k)] / ps, qk = q[static_cast<size_t>(k)] > 0 ? q[static_cast<size_t>(k)] / qs_ : 1e-12;
            kl += pk * std::log(pk / qk);
        }
        out[static_cast<size_t>(i)] = kl;
    }
    return out;
}

// The values and the 2-bit candidate (clip 2, scale 2) of the hand-worked statistics below.
std::vector<float> handWorkedValues() { return {0.5f, -1.0f, 0.9f, 2.0f, 0.0f, 3.1f, -2.9f}; }
Candidate handWorkedCandidate() {
    Candidate c;
    c.method = "hand";
    c.bits = 2;
    c.params = {symmetricParams(2.0, 2)};
    return c;
}

const Candidate& cand(const TensorAnalysis& a, const std::string& m) {
    for (const Candidate& c : a.candidates)
        if (c.method == m) return c;
    qFatal("no candidate");
}

}  // namespace

class QuantTest : public QObject {
    Q_OBJECT
private slots:
    // ../shared/seeds/004: "0.0269 ... best precision scaling ... 2^-12 ... the integer 110".
    void seedFixedPointGolden() {
        QCOMPARE(bestPrecisionFractionLength(0.0269, 8), 12);
        QCOMPARE(quantize(0.0269f, powerOfTwoParams(12, 8)), 110);
        QCOMPARE(powerOfTwoParams(12, 8).scale, std::ldexp(1.0, -12));
    }

    // ../shared/seeds/000: range -3.0..6.0 in 8 bits: byte 0 -> -3.0, 255 -> 6.0, 128 -> about 1.5.
    void seedMinMaxGolden() {
        const QuantParams p = asymmetricParams(-3.0, 6.0, QuantRange{0, 255});
        QCOMPARE(p.zero_point, 85);  // 3.0 / (9/255) = 85 exactly
        QVERIFY(std::fabs(dequantize(0, p) - -3.0f) < 1e-6f);
        QVERIFY(std::fabs(dequantize(255, p) - 6.0f) < 1e-6f);
        QVERIFY(std::fabs(dequantize(128, p) - 1.5f) < 0.05f);  // 43 * 9/255 = 1.5176
    }

    // TFLite quantization_util_test: uint8 over (-10, 30) -> scale 0.156863, zero_point 64.
    void tfliteChooseParamsGolden() {
        const QuantParams p = asymmetricParams(-10.0, 30.0, QuantRange{0, 255});
        QVERIFY(std::fabs(p.scale - 0.156863) < 1e-6);
        QCOMPARE(p.zero_point, 64);
        // A range not containing 0 is widened to include it: (2, 10) behaves as (0, 10).
        QCOMPARE(asymmetricParams(2.0, 10.0, QuantRange{-128, 127}).zero_point, -128);
    }

    void ranges() {
        QCOMPARE(quantRange(8, Scheme::Symmetric).qmin, -127);
        QCOMPARE(quantRange(8, Scheme::Symmetric).qmax, 127);
        QCOMPARE(quantRange(4, Scheme::Symmetric).qmax, 7);
        QCOMPARE(quantRange(2, Scheme::Symmetric).qmin, -1);
        QCOMPARE(quantRange(16, Scheme::Symmetric).qmax, 32767);
        QCOMPARE(quantRange(8, Scheme::Asymmetric).qmin, -128);
    }

    // Round half away from zero (ties deliberately), then saturate.
    void roundingAndSaturation() {
        QCOMPARE(roundHalfAway(2.5), 3.0);
        QCOMPARE(roundHalfAway(-2.5), -3.0);
        QCOMPARE(roundHalfAway(0.49999997), 0.0);
        QCOMPARE(roundHalfAway(-0.5), -1.0);
        const QuantParams p = symmetricParams(127.0, 8);  // scale 1
        QCOMPARE(quantize(2.5f, p), 3);
        QCOMPARE(quantize(-2.5f, p), -3);
        QCOMPARE(quantize(1000.0f, p), 127);
        QCOMPARE(quantize(-1000.0f, p), -127);
        QCOMPARE(quantize(0.0f, p), 0);  // real 0 is exact
    }

    void float16Rounding() {
        QCOMPARE(roundToFloat16(1.0f + std::ldexp(1.0f, -11)), 1.0f);                   // tie -> even
        QCOMPARE(roundToFloat16(1.0f + 3 * std::ldexp(1.0f, -11)), 1.0f + std::ldexp(1.0f, -9));  // tie -> even (up)
        QCOMPARE(roundToFloat16(65504.0f), 65504.0f);
        QVERIFY(std::isinf(roundToFloat16(65520.0f)));
        QCOMPARE(roundToFloat16(std::ldexp(1.0f, -25)), 0.0f);                           // subnormal tie -> 0
        QCOMPARE(roundToFloat16(3 * std::ldexp(1.0f, -25)), std::ldexp(1.0f, -23));
        std::mt19937 rng(7);
        std::uniform_real_distribution<float> u(-70000.f, 70000.f);
        for (int i = 0; i < 10000; ++i) {  // agree with the compiler's _Float16 conversion
            const float x = u(rng) * (i % 3 == 0 ? 1e-6f : 1.0f);
            const float ref = static_cast<float>(static_cast<_Float16>(x));
            QCOMPARE(roundToFloat16(x), ref);
        }
        // The array form (F16C where the CPU has it) rounds every value as the scalar one does:
        // values of every exponent, ties, the overflow edge, subnormal halves, zeros, infinities.
        std::vector<float> v;
        for (int e = -30; e <= 17; ++e)
            for (int k = 0; k < 4096; ++k) {
                const float x = std::ldexp(1.0f + static_cast<float>(k) / 4096.0f, e);
                v.push_back(x);
                v.push_back(-x);
            }
        for (float x : {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, std::numeric_limits<float>::infinity(), std::ldexp(1.0f, -25),
                        3 * std::ldexp(1.0f, -25), std::ldexp(1.0f, -14) * 0.99999f})
            v.push_back(x);
        std::vector<float> r = v;
        roundToFloat16(r.data(), static_cast<int64_t>(r.size()));
        for (size_t i = 0; i < v.size(); ++i)
            if (r[i] != roundToFloat16(v[i])) QFAIL(qPrintable(QString("%1 -> %2, scalar %3").arg(v[i], 0, 'g', 9).arg(r[i], 0, 'g', 9).arg(roundToFloat16(v[i]), 0, 'g', 9)));
        float nan = std::numeric_limits<float>::quiet_NaN();
        roundToFloat16(&nan, 1);
        QVERIFY(std::isnan(nan));
    }

    // x = {0.5, -1, 0.9, 2, 0, 3.1, -2.9}, 2 bits ([-1, 1]), clip 2 -> scale 2:
    // x/s = {.25, -.5, .45, 1, 0, 1.55, -1.45} -> q = {0, -1, 0, 1, 0, 1 (clipped from 2), -1}
    // e = {-.5, -1, -.9, 0, 0, -1.1, .9}: sum e^2 = 4.08, sum x^2 = 24.08.
    void handWorkedStatistics() {
        const std::vector<float> x = handWorkedValues();
        const Candidate c = handWorkedCandidate();
        QCOMPARE(c.params[0].scale, 2.0);
        std::vector<Candidate> cs{c};
        evaluateCandidates(x.data(), 7, 1, cs, true, 11, 1);
        const CandidateStats& s = cs[0].stats;
        QCOMPARE(s.count, int64_t(7));
        QVERIFY(std::fabs(s.mse - 4.08 / 7) < 1e-6);
        QVERIFY(std::fabs(s.rmse - std::sqrt(4.08 / 7)) < 1e-6);
        QVERIFY(std::fabs(s.sqnr_db - 10 * std::log10(24.08 / 4.08)) < 1e-5);  // 7.7100 dB
        QVERIFY(std::fabs(s.max_abs_error - 1.1) < 1e-6);
        QVERIFY(std::fabs(s.mean_error - (-2.6 / 7)) < 1e-6);
        QVERIFY(std::fabs(s.pct_below_precision - 100.0 * 2 / 7) < 1e-9);  // 0.5 and 0.9 -> 0
        QVERIFY(std::fabs(s.pct_beyond_range - 100.0 / 7) < 1e-9);         // 3.1 saturates
        QCOMPARE(s.levels_used, int64_t(3));
        QCOMPARE(s.level_counts, (std::vector<int64_t>{2, 3, 2}));
        const double h = -(2 * (2.0 / 7) * std::log2(2.0 / 7) + (3.0 / 7) * std::log2(3.0 / 7));  // 1.5567
        QVERIFY(std::fabs(s.entropy_bits_per_weight - h) < 1e-12);
        QCOMPARE(s.entropy_coded_bytes, int64_t(std::ceil(h * 7 / 8)));
        QCOMPARE(s.packed_bytes, int64_t(2 + 4));  // 14 bits -> 2 bytes, one float32 scale
        // Error histogram in steps: range 0.55 (3.1 overshoots hi=2 by 1.1 = 0.55 steps), all 7 counted.
        int64_t total = 0;
        for (int64_t k : s.error_hist.counts) total += k;
        QCOMPARE(total, int64_t(7));
    }

    // The same hand-worked quantizer listed twice, the second time as a power-of-two candidate
    // (scale 2 = 2^1, its scale stored as a 1-byte exponent), between them another: the repeat
    // takes the first one's statistics (evaluateCandidates counts it once) but keeps its own
    // packed size: 2 + 1 bytes against 2 + 4.
    void repeatedQuantizerSharesStatistics() {
        const std::vector<float> x = handWorkedValues();
        const Candidate a = handWorkedCandidate();
        Candidate other = a;
        other.method = "other";
        other.params = {symmetricParams(4.0, 2)};
        Candidate b = a;
        b.method = "pow2";
        b.fraction_lengths = {-1};
        std::vector<Candidate> cs{a, other, b};
        evaluateCandidates(x.data(), 7, 1, cs, true, 11, 1);
        const CandidateStats &s = cs[0].stats, &o = cs[1].stats, &r = cs[2].stats;
        QCOMPARE(r.mse, s.mse);
        QVERIFY(std::fabs(r.mse - 4.08 / 7) < 1e-6);
        QCOMPARE(r.level_counts, (std::vector<int64_t>{2, 3, 2}));
        QCOMPARE(r.error_hist.counts, s.error_hist.counts);
        QCOMPARE(r.pct_beyond_range, s.pct_beyond_range);
        QCOMPARE(s.packed_bytes, int64_t(2 + 4));
        QCOMPARE(r.packed_bytes, int64_t(2 + 1));
        QVERIFY(o.mse != s.mse);  // scale 4: x/s = {.125, -.25, ...} -> a different error
        QCOMPARE(o.level_counts, referenceStats(x.data(), 7, 1, cs[1]).level_counts);
    }

    // Worked by hand: int4 with scale 0.25 rounds |x| < 0.125 to zero and clips |x| > 7.5 steps
    // (1.875); the bins are the powers of two of each value (0.001 in [2^-10, 2^-9), ...).
    void magnitudeOverviewHandWorked() {
        const std::vector<float> x{0.0f, 0.001f, 0.003f, 0.1f, 0.3f, -0.5f, 1.0f, -3.0f};
        Candidate c;
        c.method = "hand";
        c.bits = 4;
        c.params = {QuantParams{0.25, 0, -7, 7}};
        std::vector<Candidate> cs{c};
        evaluateCandidates(x.data(), 8, 1, cs, false, 11, 1);
        TensorAnalysis a;
        a.log2_hist = log2MagnitudeHistogram(x.data(), 8, 1);
        a.candidates = cs;
        const MagnitudeOverview o = magnitudeOverview(a, a.candidates[0]);
        QCOMPARE(o.zeros, int64_t(1));
        QCOMPARE(o.below, int64_t(3));   // 0.001, 0.003, 0.1
        QCOMPARE(o.beyond, int64_t(1));  // -3.0
        QCOMPARE(o.bins.front().exponent, -10);
        QCOMPARE(o.bins.back().exponent, 1);
        std::map<int, std::array<int64_t, 3>> want{{-10, {1, 0, 0}}, {-9, {1, 0, 0}}, {-4, {1, 0, 0}},
                                                   {-2, {0, 1, 0}},  {-1, {0, 1, 0}}, {0, {0, 1, 0}}, {1, {0, 0, 1}}};
        for (const MagnitudeBin& b : o.bins) {
            const std::array<int64_t, 3> got{b.below, b.in_range, b.beyond};
            const std::array<int64_t, 3> expect = want.count(b.exponent) ? want[b.exponent] : std::array<int64_t, 3>{0, 0, 0};
            QVERIFY2(got == expect, qPrintable(QString("bin 2^%1").arg(b.exponent)));
        }
        // A candidate that neither rounds to zero nor clips leaves every bin in range.
        Candidate fine = c;
        fine.params = {QuantParams{0.0005, 0, -7000, 7000}};
        cs = {fine};
        evaluateCandidates(x.data(), 8, 1, cs, false, 11, 1);
        const MagnitudeOverview f = magnitudeOverview(a, cs[0]);
        for (const MagnitudeBin& b : f.bins) QCOMPARE(b.below + b.beyond, int64_t(0));
    }

    void packedSizes() {
        Candidate c;
        c.bits = 4;
        c.params = std::vector<QuantParams>(3);
        QCOMPARE(packedBytes(9, c), int64_t(5 + 12));  // two 4-bit weights a byte, 3 scales
        c.scheme = Scheme::Asymmetric;
        QCOMPARE(packedBytes(9, c), int64_t(5 + 12 + 12));
        c.bits = 2;
        c.scheme = Scheme::Symmetric;
        c.fraction_lengths = {1, 2, 3};
        QCOMPARE(packedBytes(9, c), int64_t(3 + 3));  // four 2-bit weights a byte, 1-byte exponents
    }

    // Every statistic equals the float64 reference on odd shapes, for every candidate.
    void matchesReference_data() {
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("channels");
        QTest::addColumn<int>("bits");
        QTest::addColumn<bool>("perChannel");
        for (int ch : {1, 3, 7, 17})
            for (int bits : {2, 4, 8, 16})
                for (bool pc : {false, true})
                    QTest::newRow(qPrintable(QString("c%1 b%2 %3").arg(ch).arg(bits).arg(pc ? "pc" : "pt"))) << 255 << ch << bits << pc;
    }
    void matchesReference() {
        QFETCH(int, rows);
        QFETCH(int, channels);
        QFETCH(int, bits);
        QFETCH(bool, perChannel);
        const Tensor t = randomTensor({rows, channels}, 1234u + static_cast<uint32_t>(channels * 31 + bits));
        AnalysisOptions o;
        o.bits = bits;
        o.granularity = perChannel ? Granularity::PerChannel : Granularity::PerTensor;
        const TensorAnalysis a = analyzeTensor(t, channels, o);
        QCOMPARE(a.candidates.size(), candidateMethods().size());
        for (const Candidate& c : a.candidates) {
            const CandidateStats ref = referenceStats(t.data.data(), static_cast<int64_t>(t.data.size()), a.channels, c);
            const CandidateStats& s = c.stats;
            QCOMPARE(s.count, ref.count);
            QCOMPARE(s.levels_used, ref.levels_used);
            if (ref.level_counts.size() <= kKeptLevelCounts) {
                QCOMPARE(s.level_counts, ref.level_counts);
            } else {  // analyzeTensor dropped them (16 bits): the same candidate evaluated alone keeps them
                QVERIFY(s.level_counts.empty());
                std::vector<Candidate> one{c};
                evaluateCandidates(t.data.data(), static_cast<int64_t>(t.data.size()), a.channels, one, true, 101, 0, &a.stats);
                QCOMPARE(one[0].stats.level_counts, ref.level_counts);
            }
            QVERIFY2(std::fabs(s.mse - ref.mse) <= 1e-9 * ref.mse + 1e-30, qPrintable(QString::fromStdString(c.method)));
            QVERIFY(std::fabs(s.mean_error - ref.mean_error) <= 1e-9 * std::fabs(ref.rmse) + 1e-30);
            QCOMPARE(s.max_abs_error, ref.max_abs_error);
            QCOMPARE(s.pct_below_precision, ref.pct_below_precision);
            QCOMPARE(s.pct_beyond_range, ref.pct_beyond_range);
            QCOMPARE(s.packed_bytes, ref.packed_bytes);
            if (std::isfinite(ref.sqnr_db)) QVERIFY(std::fabs(s.sqnr_db - ref.sqnr_db) < 1e-9);
            QVERIFY(std::fabs(s.entropy_bits_per_weight - ref.entropy_bits_per_weight) < 1e-12 || c.float16);
        }
    }

    void properties() {
        const Tensor t = randomTensor({64, 3, 3, 32}, 99);  // a conv kernel
        AnalysisOptions pt, pc;
        pt.granularity = Granularity::PerTensor;
        pc.granularity = Granularity::PerChannel;
        const TensorAnalysis a = analyzeTensor(t, 32, pt), b = analyzeTensor(t, 32, pc);
        // Inside the range the error is at most half a step.
        const Candidate& m = cand(a, "max_abs");
        QVERIFY(m.stats.pct_beyond_range == 0);
        QVERIFY(m.stats.max_abs_error <= m.params[0].scale / 2 * (1 + 1e-6));
        // Per-channel never worse than per-tensor; MSE-optimal never worse than max-abs.
        QVERIFY(cand(b, "max_abs").stats.mse <= cand(a, "max_abs").stats.mse);
        QVERIFY(cand(a, "mse").stats.mse <= cand(a, "max_abs").stats.mse);
        QVERIFY(cand(b, "mse").stats.mse <= cand(b, "max_abs").stats.mse);
        // More bits, more SQNR.
        double sqnr[3];
        int i = 0;
        for (int bits : {8, 4, 2}) {
            AnalysisOptions o;
            o.bits = bits;
            sqnr[i++] = cand(analyzeTensor(t, 32, o), "max_abs").stats.sqnr_db;
        }
        QVERIFY(sqnr[0] > sqnr[1] && sqnr[1] > sqnr[2]);
        // About 6 dB per bit for a Gaussian at max-abs (sanity of the SQNR definition).
        QVERIFY(sqnr[0] - sqnr[1] > 20 && sqnr[0] - sqnr[1] < 28);
        // pow2: best precision holds max|w|; its finer neighbour saturates.
        QCOMPARE(cand(a, "pow2").stats.pct_beyond_range, 0.0);
        QVERIFY(cand(a, "pow2_p1").stats.pct_beyond_range > 0);
        QVERIFY(cand(a, "percentile_99.9").params[0].scale < cand(a, "max_abs").params[0].scale);
        QVERIFY(cand(a, "kl").params[0].scale <= cand(a, "max_abs").params[0].scale * 1.0001);
    }

    // The same bits whichever SIMD path runs: a clean tensor (the kernels' fast path) and one
    // with NaN, Inf and zeros (the masked path), per channel and per tensor; the masked one also
    // equals the float64 reference.
    void sameResultsOnEveryIsa() {
        Tensor dirty = randomTensor({1001, 17}, 5);
        for (size_t i : {3u, 40u, 41u, 900u}) dirty.data[i] = std::nanf("");
        for (size_t i : {7u, 500u}) dirty.data[i] = i == 7 ? INFINITY : -INFINITY;
        for (size_t i = 100; i < 140; ++i) dirty.data[i] = 0.0f;
        int checked = 0;
        for (const Tensor& t : {randomTensor({1001, 17}, 5), dirty})
            for (Granularity g : {Granularity::PerChannel, Granularity::PerTensor}) {
                AnalysisOptions o;
                o.granularity = g;
                kernels::forceIsa(kernels::Isa::Portable);
                const TensorAnalysis ref = analyzeTensor(t, 17, o);
                for (const Candidate& c : ref.candidates) {
                    const CandidateStats r = referenceStats(t.data.data(), static_cast<int64_t>(t.data.size()), ref.channels, c);
                    QCOMPARE(c.stats.level_counts, r.level_counts);
                    QCOMPARE(c.stats.pct_below_precision, r.pct_below_precision);
                    QCOMPARE(c.stats.pct_beyond_range, r.pct_beyond_range);
                    QVERIFY(std::fabs(c.stats.mse - r.mse) <= 1e-9 * r.mse);
                }
                for (kernels::Isa isa : {kernels::Isa::Avx2, kernels::Isa::Avx512}) {
                    if (!kernels::isaSupported(isa)) continue;
                    kernels::forceIsa(isa);
                    const TensorAnalysis a = analyzeTensor(t, 17, o);
                    for (size_t i = 0; i < a.candidates.size(); ++i) {
                        const CandidateStats &x = a.candidates[i].stats, &y = ref.candidates[i].stats;
                        QCOMPARE(x.mse, y.mse);
                        QCOMPARE(x.mean_error, y.mean_error);
                        QCOMPARE(x.sqnr_db, y.sqnr_db);
                        QCOMPARE(x.max_abs_error, y.max_abs_error);
                        QCOMPARE(x.pct_below_precision, y.pct_below_precision);
                        QCOMPARE(x.pct_beyond_range, y.pct_beyond_range);
                        QCOMPARE(x.level_counts, y.level_counts);
                        QCOMPARE(x.error_hist.counts, y.error_hist.counts);
                    }
                    ++checked;
                }
            }
        kernels::clearForcedIsa();
        qInfo("ISA runs compared with portable: %d (this CPU: avx2 %d, avx512 %d)", checked,
              kernels::isaSupported(kernels::Isa::Avx2), kernels::isaSupported(kernels::Isa::Avx512));
    }

    // The first pass (range, sums, counts) gives the same bits on every path, per tensor and per
    // channel, with NaN, Inf and zeros, and its counts add up.
    void tensorStatsSameOnEveryIsa() {
        Tensor t = randomTensor({777, 24}, 8);
        t.data[10] = std::nanf(""), t.data[11] = INFINITY, t.data[500] = -INFINITY, t.data[501] = 0.0f, t.data[502] = -0.0f;
        for (int64_t ch : {int64_t(1), int64_t(8), int64_t(24), int64_t(7)}) {
            kernels::forceIsa(kernels::Isa::Portable);
            const TensorStats ref = computeTensorStats(t.data.data(), static_cast<int64_t>(t.data.size()), ch, 2);
            QCOMPARE(ref.all.nan, int64_t(1));
            QCOMPARE(ref.all.inf, int64_t(2));
            QCOMPARE(ref.all.finite + 3, static_cast<int64_t>(t.data.size()));
            QVERIFY(ref.all.zeros >= 2);
            for (kernels::Isa isa : {kernels::Isa::Avx2, kernels::Isa::Avx512}) {
                if (!kernels::isaSupported(isa)) continue;
                kernels::forceIsa(isa);
                const TensorStats s = computeTensorStats(t.data.data(), static_cast<int64_t>(t.data.size()), ch, 2);
                QCOMPARE(s.per_channel.size(), ref.per_channel.size());
                std::vector<RangeStats> a = s.per_channel, b = ref.per_channel;
                a.push_back(s.all), b.push_back(ref.all);
                for (size_t c = 0; c < a.size(); ++c) {
                    QCOMPARE(a[c].min, b[c].min);
                    QCOMPARE(a[c].max, b[c].max);
                    QCOMPARE(a[c].sum, b[c].sum);
                    QCOMPARE(a[c].sum_sq, b[c].sum_sq);
                    QCOMPARE(a[c].finite, b[c].finite);
                    QCOMPARE(a[c].zeros, b[c].zeros);
                    QCOMPARE(a[c].nan, b[c].nan);
                    QCOMPARE(a[c].inf, b[c].inf);
                }
            }
        }
        kernels::clearForcedIsa();
    }

    // Per-channel ranges, sums and counts against a direct loop over each channel's values, for
    // channel counts that are and are not multiples of 8 (the latter accumulate in lcm(c, 8)
    // lanes folded back into channels), on every ISA.
    void tensorStatsPerChannelMatchReference() {
        Tensor t = randomTensor({840, 24}, 21);  // 20,160 values: divisible by 3, 7, 10, 12, 24; 1001 and
        // 8193 (lanes beyond 2^16: one per channel) leave a partial last row
        t.data[10] = std::nanf(""), t.data[11] = INFINITY, t.data[500] = -INFINITY, t.data[501] = 0.0f, t.data[9001] = 0.0f;
        t.data[777] = 5.0f, t.data[778] = -6.0f;  // extremes in channels 777 % c and 778 % c
        const int64_t n = static_cast<int64_t>(t.data.size());
        for (kernels::Isa isa : {kernels::Isa::Portable, kernels::Isa::Avx2, kernels::Isa::Avx512}) {
            if (!kernels::isaSupported(isa)) continue;
            kernels::forceIsa(isa);
            for (int64_t ch : {int64_t(3), int64_t(7), int64_t(10), int64_t(12), int64_t(24), int64_t(1001), int64_t(8193)}) {
                const TensorStats s = computeTensorStats(t.data.data(), n, ch, 2);
                QCOMPARE(static_cast<int64_t>(s.per_channel.size()), ch);
                for (int64_t c = 0; c < ch; ++c) {
                    RangeStats r;
                    r.min = INFINITY, r.max = -INFINITY;
                    for (int64_t i = c; i < n; i += ch) {
                        const float v = t.data[static_cast<size_t>(i)];
                        if (std::isnan(v)) ++r.nan;
                        else if (std::isinf(v)) ++r.inf;
                        else {
                            ++r.finite, r.zeros += v == 0.0f;
                            r.min = std::min(r.min, static_cast<double>(v)), r.max = std::max(r.max, static_cast<double>(v));
                            r.sum += v, r.sum_sq += static_cast<double>(v) * v;
                        }
                    }
                    const RangeStats& g = s.per_channel[static_cast<size_t>(c)];
                    QCOMPARE(g.finite, r.finite);
                    QCOMPARE(g.nan, r.nan);
                    QCOMPARE(g.inf, r.inf);
                    QCOMPARE(g.zeros, r.zeros);
                    QCOMPARE(g.min, r.min);
                    QCOMPARE(g.max, r.max);
                    QCOMPARE(g.max_abs, std::max(std::fabs(r.min), std::fabs(r.max)));
                    QVERIFY(std::fabs(g.sum - r.sum) <= 1e-12 * r.sum_sq + 1e-12);
                    QVERIFY(std::fabs(g.sum_sq - r.sum_sq) <= 1e-12 * r.sum_sq);
                }
                QCOMPARE(s.all.min, -6.0);
                QCOMPARE(s.all.max, 5.0);
                QCOMPARE(s.all.nan + s.all.inf + s.all.finite, n);
            }
        }
        kernels::clearForcedIsa();
    }

    // Per-channel clips come from each channel's own |w| histogram (256 bins): the same as
    // building that histogram from the channel's values alone, NaN/Inf left out, on 2 threads.
    void perChannelClipsFromOwnHistogram() {
        Tensor t = randomTensor({3000, 24}, 17);  // 72,000 values: both threads take part
        t.data[30] = std::nanf(""), t.data[31] = INFINITY;
        AnalysisOptions o;
        o.granularity = Granularity::PerChannel;
        o.threads = 2;
        const TensorAnalysis a = analyzeTensor(t, 24, o);
        for (int64_t c = 0; c < 24; ++c) {
            std::vector<float> v;
            for (size_t i = static_cast<size_t>(c); i < t.data.size(); i += 24)
                if (std::isfinite(t.data[i])) v.push_back(t.data[i]);
            const Histogram h = absHistogram(v.data(), static_cast<int64_t>(v.size()), a.stats.per_channel[static_cast<size_t>(c)].max_abs, 256);
            for (const char* m : {"percentile_99.9", "kl"}) {
                const double clip = std::string(m) == "kl" ? klClip(h, 8) : percentileClip(h, 99.9);
                QCOMPARE(cand(a, m).params[static_cast<size_t>(c)].scale, symmetricParams(clip, 8).scale);
            }
        }
    }

    // klClip (per merged group, prefix sums) picks a threshold whose KL is the smallest of the
    // bin-by-bin reference's, on Gaussian, heavy-tailed, sparse (empty bins, an empty last bin
    // with mass folded into it) and tiny histograms, at 8 and 4 bits.
    void klClipMatchesBinByBin() {
        std::mt19937 rng(7);
        std::normal_distribution<double> nd(0.0, 1.0);
        std::vector<Histogram> hs;
        for (int kind = 0; kind < 4; ++kind) {
            Histogram h;
            const int bins = kind == 3 ? 200 : 2048;
            h.lo = 0, h.hi = 4.0;
            h.counts.assign(static_cast<size_t>(bins), 0);
            for (int s = 0; s < 200000 / (kind == 3 ? 100 : 1); ++s) {
                double v = std::fabs(nd(rng));
                if (kind == 1) v = v * v * 0.5;                    // heavy tail
                if (kind == 2) v = std::round(v * 20) / 20;         // sparse: most bins empty
                const int b = static_cast<int>(v / h.hi * bins);
                if (b < bins) ++h.counts[static_cast<size_t>(b)];
                else ++h.above;
            }
            hs.push_back(h);
        }
        int checked = 0;
        for (const Histogram& h : hs)
            for (int bits : {8, 4}) {
                const std::vector<double> ref = klByThreshold(h, bits);
                double best = std::numeric_limits<double>::infinity();
                for (double k : ref)
                    if (k < best) best = k;  // NaN compares false
                const double clip = klClip(h, bits);
                const size_t i = static_cast<size_t>(std::lround((clip - h.lo) / h.binWidth()));
                QVERIFY(i < ref.size());
                QVERIFY2(std::fabs(ref[i] - best) <= 1e-9 * std::fabs(best) + 1e-12,
                         qPrintable(QString("bits %1: kl %2 at the pick, best %3").arg(bits).arg(ref[i], 0, 'g', 17).arg(best, 0, 'g', 17)));
                ++checked;
            }
        QCOMPARE(checked, 8);
    }

    // mseClipFinalists scores the clips hi * s / 128 (s = 1..128) by the histogram's estimated
    // error (step^2 / 12 per value inside the clip, the squared excess beyond it, at bin
    // centres): its finalists are the clips with the smallest scores of a direct evaluation of
    // that definition, best first, at 8, 4 and 2 bits, on a histogram with empty bins.
    void mseClipFinalistsMatchDefinition() {
        Histogram h;
        h.lo = 0, h.hi = 2.0;
        h.counts.assign(64, 0);
        std::mt19937 rng(5);
        std::exponential_distribution<double> ed(3.0);
        for (int k = 0; k < 20000; ++k) {
            const int b = static_cast<int>(ed(rng) / h.hi * 64);
            if (b < 64 && b % 5 != 3) ++h.counts[static_cast<size_t>(b)];  // every fifth bin empty
        }
        for (int bits : {8, 4, 2}) {
            const double qmax = (1 << (bits - 1)) - 1;
            std::vector<std::pair<double, double>> scored;
            for (int s = 1; s <= 128; ++s) {
                const double clip = h.hi * s / 128, step = clip / qmax;
                double err = 0;
                for (size_t i = 0; i < h.counts.size(); ++i) {
                    const double v = h.lo + h.binWidth() * (static_cast<double>(i) + 0.5);
                    err += (v > clip ? (v - clip) * (v - clip) : step * step / 12.0) * static_cast<double>(h.counts[i]);
                }
                scored.emplace_back(err, clip);
            }
            std::sort(scored.begin(), scored.end());
            const std::vector<double> f = mseClipFinalists(h, bits, 3);
            QCOMPARE(f.size(), size_t(3));
            for (size_t k = 0; k < 3; ++k) QCOMPARE(f[k], scored[k].second);
            QVERIFY(f[0] < h.hi);  // the tail is long: clipping it beats covering it
        }
    }

    // The kernels round x / s half away from zero with trunc(t + copysign(0.5 - 2^-25, t)); every
    // tie k + 0.5, its float neighbours and 0.49999997 (where t + 0.5 would go wrong) land on
    // the level std::round gives, on every ISA, including values past the range and 2^23.
    void roundingAtTies() {
        std::vector<float> v;
        for (int k = 0; k <= 4100; ++k) {
            const float tie = static_cast<float>(k) + 0.5f;
            for (float y : {tie, std::nextafter(tie, 0.0f), std::nextafter(tie, 1e9f), static_cast<float>(k),
                            std::nextafter(static_cast<float>(k), 1e9f)})
                v.push_back(y), v.push_back(-y);
        }
        for (float y : {0.49999997f, 0.5f, 8388607.5f, 8388609.0f, 4194303.5f, 1e30f, 32766.5f, 32767.49f})
            v.push_back(y), v.push_back(-y);
        Candidate c;
        c.method = "unit";
        c.bits = 16;
        c.params = {powerOfTwoParams(0, 16)};  // scale 1: x / s is x itself
        std::vector<int64_t> want(65535, 0);
        int64_t beyond = 0;
        for (float y : v) {
            const double r = std::round(static_cast<double>(y));  // half away from zero
            beyond += r < -32767 || r > 32767;
            ++want[static_cast<size_t>(std::clamp(r, -32767.0, 32767.0) + 32767)];
        }
        for (kernels::Isa isa : {kernels::Isa::Portable, kernels::Isa::Avx2, kernels::Isa::Avx512}) {
            if (!kernels::isaSupported(isa)) continue;
            kernels::forceIsa(isa);
            std::vector<Candidate> one{c};
            evaluateCandidates(v.data(), static_cast<int64_t>(v.size()), 1, one, true, 101, 1);
            QVERIFY2(one[0].stats.level_counts == want, kernels::isaName(isa));
            QCOMPARE(one[0].stats.pct_beyond_range, 100.0 * static_cast<double>(beyond) / static_cast<double>(v.size()));
        }
        kernels::clearForcedIsa();
        // Level 1 by hand: 0.5 (twice), 0.50000006, 1, 1.0000001, 1.4999999; not 0.49999997.
        QCOMPARE(want[32767 + 1], int64_t(6));
    }

    // x / s beyond 2^30 and beyond float's range (Inf): the portable kernel holds it to +-2^30,
    // the AVX2 one does not; every statistic and the error histogram must still agree bit for bit.
    void hugeRatiosSameOnEveryIsa() {
        std::vector<float> v;
        for (float y : {3e38f, 1e30f, 1073741824.0f, 1073741952.0f, 1e9f, 1.0f, 0.5f, 0.0f, 1e-30f})
            for (int k = 0; k < 9; ++k) v.push_back(k % 2 ? -y : y);  // odd count: the tail path too
        for (const double scale : {1e-30, 1.0, 1e-45}) {
            Candidate c;
            c.method = "tiny";
            c.bits = 8;
            c.params = {QuantParams{scale, 0, -127, 127}};
            kernels::forceIsa(kernels::Isa::Portable);
            std::vector<Candidate> ref{c};
            evaluateCandidates(v.data(), static_cast<int64_t>(v.size()), 1, ref, true, 101, 1);
            QVERIFY(ref[0].stats.pct_beyond_range > 0);
            for (kernels::Isa isa : {kernels::Isa::Avx2, kernels::Isa::Avx512}) {
                if (!kernels::isaSupported(isa)) continue;
                kernels::forceIsa(isa);
                std::vector<Candidate> one{c};
                evaluateCandidates(v.data(), static_cast<int64_t>(v.size()), 1, one, true, 101, 1);
                const CandidateStats &x = one[0].stats, &y = ref[0].stats;
                QCOMPARE(x.mse, y.mse);
                QCOMPARE(x.mean_error, y.mean_error);
                QCOMPARE(x.max_abs_error, y.max_abs_error);
                QCOMPARE(x.pct_beyond_range, y.pct_beyond_range);
                QCOMPARE(x.pct_below_precision, y.pct_below_precision);
                QCOMPARE(x.level_counts, y.level_counts);
                QCOMPARE(x.error_hist.counts, y.error_hist.counts);
            }
        }
        kernels::clearForcedIsa();
    }

    // The error histogram against a per-value reference written from its definition (bin of
    // clamp(r) - x/s in steps, floor(v * bins / (2 range) + bins / 2), held to the bins; NaN/Inf
    // not counted). Up to 8 bits the kernels count it jointly with the levels, at 16 bits
    // separately; both on every ISA, per tensor and per channel (asymmetric, so every channel has
    // its own zero point), and with the 32-bit counters folded every 1000 values per thread.
    void errorHistogramMatchesReference() {
        for (int64_t rows : {1001, 20001})  // 8 bits: joint only with more values than the table's 26 K cells
            errorHistogramCase(rows);
    }
    void errorHistogramCase(int64_t rows) {
        Tensor t = randomTensor({rows, 3}, 11);
        const int64_t n = static_cast<int64_t>(t.data.size());
        t.data[17] = std::nanf(""), t.data[static_cast<size_t>(n / 2)] = INFINITY, t.data[static_cast<size_t>(n - 2)] = -INFINITY;
        const TensorStats st = computeTensorStats(t.data.data(), n, 3, 2);
        constexpr int kBins = 101;
        int checked = 0;
        for (int bits : {2, 4, 8, 16})
            for (bool per_channel : {false, true}) {
                Candidate c;
                c.method = "h";
                c.bits = bits;
                for (int64_t ch = 0; ch < (per_channel ? 3 : 1); ++ch) {
                    const RangeStats& r = per_channel ? st.per_channel[static_cast<size_t>(ch)] : st.all;
                    // clipped a little inside the range, so that errors beyond half a step occur
                    c.params.push_back(per_channel ? asymmetricParams(r.min * 0.8, r.max * 0.9, quantRange(bits, Scheme::Asymmetric))
                                                   : symmetricParams(r.max_abs * 0.7, bits));
                }
                std::vector<int64_t> want;
                double range = 0;
                for (int64_t fold : {int64_t{0}, int64_t{1000}})
                    for (kernels::Isa isa : {kernels::Isa::Portable, kernels::Isa::Avx2, kernels::Isa::Avx512}) {
                        if (!kernels::isaSupported(isa)) continue;
                        kernels::forceIsa(isa);
                        setCounterFoldInterval(fold);
                        std::vector<Candidate> one{c};
                        evaluateCandidates(t.data.data(), n, per_channel ? 3 : 1, one, true, kBins, 2, &st);
                        const Histogram& h = one[0].stats.error_hist;
                        if (want.empty()) {
                            range = h.hi;
                            QVERIFY(range > 0.5);  // the clip makes errors beyond half a step
                            const float rf = static_cast<float>(range), per_step = static_cast<float>(kBins) / (2.0f * rf);
                            want.assign(kBins, 0);
                            for (int64_t i = 0; i < n; ++i) {
                                const float x = t.data[static_cast<size_t>(i)];
                                if (!std::isfinite(x)) continue;
                                const QuantParams& p = c.params[per_channel ? static_cast<size_t>(i % 3) : 0];
                                const float v = static_cast<float>(quantize(x, p) - p.zero_point) - x / static_cast<float>(p.scale);
                                const float b = std::floor(v * per_step + rf * per_step);
                                ++want[static_cast<size_t>(std::clamp(b, 0.0f, static_cast<float>(kBins - 1)))];
                            }
                            QCOMPARE(std::accumulate(want.begin(), want.end(), int64_t{0}), n - 3);
                        }
                        QCOMPARE(h.hi, range);
                        QCOMPARE(h.counts, want);
                        const CandidateStats ref = referenceStats(t.data.data(), n, per_channel ? 3 : 1, c);
                        QCOMPARE(one[0].stats.level_counts, ref.level_counts);
                        std::vector<Candidate> plain{c};  // no error histogram: levels alone (AVX-512: as bytes up to 8 bits)
                        evaluateCandidates(t.data.data(), n, per_channel ? 3 : 1, plain, false, 0, 2, &st);
                        QCOMPARE(plain[0].stats.level_counts, ref.level_counts);
                        ++checked;
                    }
            }
        setCounterFoldInterval(0);
        kernels::clearForcedIsa();
        QVERIFY(checked >= 16);
    }

    void onlyChosenEqualsFullAnalysis() {
        // Evaluating the pick alone (what configs, exports and the quantized model need) gives
        // the very candidate the full analysis picks, for every method and both granularities.
        const Tensor t = randomTensor({288, 24}, 21);
        for (Granularity g : {Granularity::PerTensor, Granularity::PerChannel})
            for (const std::string& method : candidateMethods()) {
                AnalysisOptions o;
                o.bits = 4;
                o.granularity = g;
                o.method = method;
                o.error_histograms = false;
                const TensorAnalysis full = analyzeTensor(t, 24, o);
                o.only_chosen = true;
                const TensorAnalysis one = analyzeTensor(t, 24, o);
                QVERIFY(one.candidates.size() <= (method == "mse" ? size_t(2) : size_t(1)));
                const Candidate& a = full.candidates[size_t(full.chosen)];
                const Candidate& b = one.candidates[size_t(one.chosen)];
                QCOMPARE(b.method, method);
                QCOMPARE(b.params.size(), a.params.size());
                for (size_t c = 0; c < a.params.size(); ++c) {
                    QCOMPARE(b.params[c].scale, a.params[c].scale);
                    QCOMPARE(b.params[c].zero_point, a.params[c].zero_point);
                }
                QCOMPARE(b.stats.mse, a.stats.mse);
                QCOMPARE(b.stats.sqnr_db, a.stats.sqnr_db);
            }
        AnalysisOptions bad;
        bad.method = "nope";
        bad.only_chosen = true;
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, analyzeTensor(t, 24, bad));
    }

    // The widths of one tensor share one preparation (statistics, weight and |x| histograms):
    // every width's analysis is the one analyzeTensor gives alone, candidate by candidate, at
    // both granularities and with a NaN in the tensor; a preparation for the other granularity
    // or another tensor is refused.
    void widthsShareOnePreparation() {
        Tensor t = randomTensor({288, 24}, 23);
        t.data[40] = std::nanf("");
        const std::vector<int> widths = {16, 8, 4, 2};
        for (Granularity g : {Granularity::PerTensor, Granularity::PerChannel}) {
            AnalysisOptions o;
            o.granularity = g;
            o.threads = 2;
            const std::vector<TensorAnalysis> shared = analyzeTensorWidths(t, 24, o, widths);
            QCOMPARE(shared.size(), widths.size());
            for (size_t w = 0; w < widths.size(); ++w) {
                o.bits = widths[w];
                const TensorAnalysis alone = analyzeTensor(t, 24, o);
                const TensorAnalysis& a = shared[w];
                QCOMPARE(a.channels, alone.channels);
                QCOMPARE(a.warnings, alone.warnings);
                QCOMPARE(a.weight_hist.counts, alone.weight_hist.counts);
                QCOMPARE(a.chosen, alone.chosen);
                QCOMPARE(a.candidates.size(), alone.candidates.size());
                for (size_t k = 0; k < a.candidates.size(); ++k) {
                    const Candidate &x = a.candidates[k], &y = alone.candidates[k];
                    QCOMPARE(x.method, y.method);
                    QCOMPARE(x.bits, y.bits);
                    QCOMPARE(x.params.size(), y.params.size());
                    for (size_t c = 0; c < x.params.size(); ++c) QCOMPARE(x.params[c].scale, y.params[c].scale);
                    QCOMPARE(x.stats.mse, y.stats.mse);
                    QCOMPARE(x.stats.level_counts, y.stats.level_counts);
                    QCOMPARE(x.stats.error_hist.counts, y.stats.error_hist.counts);
                }
            }
            const AnalysisPrep prep = prepareAnalysis(t, 24, g);
            AnalysisOptions other;
            other.granularity = g == Granularity::PerTensor ? Granularity::PerChannel : Granularity::PerTensor;
            QVERIFY_THROWS_EXCEPTION(std::invalid_argument, analyzeTensor(t, prep, other));
            const Tensor smaller = randomTensor({24, 24}, 23);
            AnalysisOptions same;
            same.granularity = g;
            QVERIFY_THROWS_EXCEPTION(std::invalid_argument, analyzeTensor(smaller, prep, same));
        }
    }

    void nanInfCountedNotPoisoning() {
        Tensor t = randomTensor({100, 4}, 3);
        t.data[5] = std::nanf("");
        t.data[77] = INFINITY;
        t.data[78] = -INFINITY;
        const TensorAnalysis a = analyzeTensor(t, 4, AnalysisOptions{});
        QCOMPARE(a.stats.all.nan, int64_t(1));
        QCOMPARE(a.stats.all.inf, int64_t(2));
        QCOMPARE(a.stats.all.finite, int64_t(397));
        QVERIFY(!a.warnings.empty());
        for (const Candidate& c : a.candidates) {
            QCOMPARE(c.stats.count, int64_t(397));
            QVERIFY(std::isfinite(c.stats.mse) && std::isfinite(c.stats.sqnr_db));
            QVERIFY(std::isfinite(c.params.empty() ? 0.0 : c.params[0].scale));
        }
    }

    // The fused histogram pass equals the separate, straightforward ones.
    void fusedHistogramsMatchSeparate() {
        Tensor t = randomTensor({333, 7}, 11);
        t.data[3] = 0.0f;
        t.data[4] = 1e-42f;  // subnormal
        t.data[5] = std::nanf("");
        const TensorStats st = computeTensorStats(t.data.data(), static_cast<int64_t>(t.data.size()), 1);
        const int64_t n = static_cast<int64_t>(t.data.size());
        const WeightHistograms w = weightHistograms(t.data.data(), n, st.all.min, st.all.max, 101, st.all.max_abs, 2048);
        const Histogram lin = linearHistogram(t.data.data(), n, st.all.min, st.all.max, 101);
        const Histogram abs = absHistogram(t.data.data(), n, st.all.max_abs, 2048);
        const Log2Histogram l2 = log2MagnitudeHistogram(t.data.data(), n);
        QCOMPARE(w.linear.counts, lin.counts);
        QCOMPARE(w.abs.counts, abs.counts);
        QCOMPARE(w.log2.counts, l2.counts);
        QCOMPARE(w.log2.min_exponent, l2.min_exponent);
        QCOMPARE(w.log2.zeros, int64_t(1));
        QCOMPARE(l2.min_exponent, -140);  // 1e-42 is in [2^-140 = 7.2e-43, 2^-139 = 1.4e-42)
        // The SIMD pass counts exactly what the portable one does, also with Inf, subnormals
        // in every lane position, and ranges narrower than the data (below / above / past max).
        // The big tensor gives each of two threads more values than the SIMD kernels' joint
        // table has cells (below that a thread counts as the portable path does).
        Tensor big = randomTensor({12001, 7}, 12);
        for (Tensor* u : {&t, &big}) {
            u->data[6] = INFINITY;
            for (size_t i = 40; i < 56; ++i) u->data[i] = (i % 2 ? 1.0f : -1.0f) * 3e-40f * static_cast<float>(i);
        }
        for (size_t i = 60000; i < 60016; ++i) big.data[i] = -3e-41f * static_cast<float>(i - 59990);  // second thread's range
        for (size_t i : {3u, 100u, 101u, 60100u, 84006u}) big.data[i] = 0.0f;
        big.data[70000] = std::nanf("");
        for (const Tensor* u : {&t, &big}) {
        const int64_t m = static_cast<int64_t>(u->data.size());
        kernels::forceIsa(kernels::Isa::Portable);
        const WeightHistograms ref = weightHistograms(u->data.data(), m, -0.0625, 0.0625, 101, 0.1, 2048, 2);
        QVERIFY(ref.linear.below > 0 && ref.linear.above > 0 && ref.abs.above > 0);
        for (kernels::Isa isa : {kernels::Isa::Avx2, kernels::Isa::Avx512}) {
            if (!kernels::isaSupported(isa)) continue;
            kernels::forceIsa(isa);
            const WeightHistograms h = weightHistograms(u->data.data(), m, -0.0625, 0.0625, 101, 0.1, 2048, 2);
            QCOMPARE(h.linear.counts, ref.linear.counts);
            QCOMPARE(h.linear.below, ref.linear.below);
            QCOMPARE(h.linear.above, ref.linear.above);
            QCOMPARE(h.abs.counts, ref.abs.counts);
            QCOMPARE(h.abs.above, ref.abs.above);
            QCOMPARE(h.log2.counts, ref.log2.counts);
            QCOMPARE(h.log2.min_exponent, ref.log2.min_exponent);
            QCOMPARE(h.log2.zeros, ref.log2.zeros);
        }
        }
        kernels::clearForcedIsa();
    }

    void emptyAndConstantTensors() {
        Tensor empty;
        empty.shape = {0, 4};
        const TensorAnalysis e = analyzeTensor(empty, 4, AnalysisOptions{});
        for (const Candidate& c : e.candidates) {
            QCOMPARE(c.stats.count, int64_t(0));
            QCOMPARE(c.stats.mse, 0.0);
        }
        Tensor zeros;
        zeros.shape = {10};
        zeros.data.assign(10, 0.0f);
        const TensorAnalysis z = analyzeTensor(zeros, 1, AnalysisOptions{});
        for (const Candidate& c : z.candidates) {
            QCOMPARE(c.stats.mse, 0.0);
            QCOMPARE(c.stats.pct_below_precision, 0.0);
            QVERIFY(!std::isnan(c.stats.sqnr_db));
        }
        Tensor constant;
        constant.shape = {10};
        constant.data.assign(10, 0.3f);
        const TensorAnalysis k = analyzeTensor(constant, 1, AnalysisOptions{});
        QCOMPARE(cand(k, "max_abs").stats.levels_used, int64_t(1));
        QVERIFY(cand(k, "max_abs").stats.mse < 1e-12);
    }
};

QTEST_GUILESS_MAIN(QuantTest)
#include "test_quant.moc"
