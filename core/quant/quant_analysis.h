#pragma once
// Candidate scales for one tensor and their error statistics: the heart of per-layer tuning.
//
// For a tensor, a bit width and a granularity, `analyzeTensor` builds every candidate
// (max_abs, min_max, pow2 with neighbours, percentiles, mse, kl, float16), then evaluates all
// of them in one pass over the data (chunk by chunk, both cores, SIMD chosen at run time),
// and says which one the requested method picks.
#include <optional>
#include <string>
#include <vector>

#include "base/progress.h"
#include "model/model.h"
#include "quant/histogram.h"
#include "quant/quant_params.h"
#include "quant/tensor_stats.h"

namespace qs {

enum class Granularity { PerTensor, PerChannel };

const char* granularityName(Granularity g);

// Every method name analyze knows, in display order.
const std::vector<std::string>& candidateMethods();

// Candidates with more levels than this (above 8 bits) leave analyzeTensor without their
// level_counts (levels_used and the entropy are computed from them first); evaluateCandidates
// and referenceStats always fill them.
constexpr size_t kKeptLevelCounts = 256;

struct CandidateStats {
    int64_t count = 0;              // finite values evaluated
    double mse = 0, rmse = 0, sqnr_db = 0, max_abs_error = 0, mean_error = 0;
    int64_t below_precision = 0;     // non-zero values that quantize to 0
    int64_t beyond_range = 0;        // values clipped at qmin/qmax
    double pct_below_precision = 0;  // the same as shares of `count` (0..100)
    double pct_beyond_range = 0;
    int64_t levels_used = 0;         // distinct quantized values (float16: -1, not counted)
    double entropy_bits_per_weight = 0;
    int64_t entropy_coded_bytes = 0; // what an ideal entropy coder reaches (Deep Compression)
    int64_t packed_bytes = 0;        // packed weights + scales + zero points
    std::vector<int64_t> level_counts;  // index q - qmin; analyzeTensor keeps at most kKeptLevelCounts
    Histogram error_hist;            // in units of one quantization step (LSB)
};

struct Candidate {
    std::string method;
    int bits = 8;
    Granularity granularity = Granularity::PerTensor;
    Scheme scheme = Scheme::Symmetric;
    bool float16 = false;
    std::vector<QuantParams> params;           // 1 (per tensor) or one per channel
    std::vector<int> fraction_lengths;          // pow2 methods: scale = 2^-f
    CandidateStats stats;
};

struct AnalysisOptions {
    int bits = 8;
    Granularity granularity = Granularity::PerChannel;
    std::string method = "max_abs";   // the pick; every candidate is evaluated unless only_chosen
    bool only_chosen = false;         // evaluate the pick alone (mse: with its finalists and max_abs)
    bool error_histograms = true;
    int error_hist_bins = 101;
    int threads = 0;                  // 0: all cores
};

struct TensorAnalysis {
    std::string name;
    std::vector<int64_t> shape;
    int64_t channels = 1;
    TensorStats stats;                // range, NaN/Inf counts
    Histogram weight_hist;            // linear, 101 bins over [min, max]
    Log2Histogram log2_hist;          // one bin per power of two
    std::vector<Candidate> candidates;
    int chosen = 0;                   // index into candidates
    std::vector<std::string> warnings;
};

TensorAnalysis analyzeTensor(const Tensor& tensor, int64_t channels, const AnalysisOptions& options,
                             const Progress& progress = Progress::none());

// What every bit width's analysis of a tensor at one granularity shares, computed once: the
// range statistics, the weight histograms and the |x| histograms the clip searches read (per
// channel or of the whole tensor). A third of a whole-model analysis went into computing them
// again for each width.
struct AnalysisPrep {
    Granularity granularity = Granularity::PerChannel;
    int64_t channels = 1;  // as TensorAnalysis::channels (1 per tensor)
    int64_t size = 0;      // values in the tensor it was made from
    TensorStats stats;
    Histogram weight_hist;
    Log2Histogram log2_hist;
    std::vector<Histogram> abs_hists;  // one per channel, or one (2048 bins) for the tensor
};
AnalysisPrep prepareAnalysis(const Tensor& tensor, int64_t channels, Granularity granularity, int threads = 0,
                             const Progress& progress = Progress::none());
// The same analysis as above from a preparation of this tensor at options.granularity
// (std::invalid_argument otherwise); identical results.
TensorAnalysis analyzeTensor(const Tensor& tensor, const AnalysisPrep& prep, const AnalysisOptions& options,
                             const Progress& progress = Progress::none());
// One analysis per bit width in `widths`, sharing one preparation.
std::vector<TensorAnalysis> analyzeTensorWidths(const Tensor& tensor, int64_t channels, const AnalysisOptions& options,
                                                const std::vector<int>& widths, const Progress& progress = Progress::none());

// Only the candidate statistics (the benchmarked part): evaluates `candidates` in one pass.
void evaluateCandidates(const float* data, int64_t n, int64_t channels, std::vector<Candidate>& candidates,
                        bool error_histograms, int error_hist_bins, int threads);
// Same, with the tensor's range statistics to size each candidate's error histogram.
void evaluateCandidates(const float* data, int64_t n, int64_t channels, std::vector<Candidate>& candidates,
                        bool error_histograms, int error_hist_bins, int threads, const TensorStats* stats);

// The kernels count in 32 bits and fold into 64-bit totals every this many values per thread
// (default and for values <= 0: 2^32 - 1, the most a counter can take). Tests lower it.
void setCounterFoldInterval(int64_t values);

// Straightforward float64 reference of the same statistics (the spec for the tests).
CandidateStats referenceStats(const float* data, int64_t n, int64_t channels, const Candidate& c);

// Bytes for n weights at `bits`, packed (two 4-bit or four 2-bit values per byte), plus
// per-channel scales (float32; pow2 scales as a 1-byte exponent) and zero points (int32,
// asymmetric only).
int64_t packedBytes(int64_t n, const Candidate& c);

}  // namespace qs
