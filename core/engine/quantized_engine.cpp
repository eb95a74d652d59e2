#include "engine/quantized_engine.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <optional>

#include "base/error.h"
#include "engine/depthwise_taps.h"
#include "engine/im2col.h"
#include "engine/int8_gemm.h"
#include "engine/kernels/float_gemm.h"
#include "engine/kernels/quantize_row.h"
#include "engine/max_pool_requant.h"

namespace qs {

namespace {

// A tensor between ops: int8 / int16 values with their quantization, or float.
struct QValue {
    Domain domain = Domain::Float;
    std::vector<int8_t> i8;
    std::vector<int16_t> i16;
    RowMatrix f;
    Shape shape;
    int64_t rows = 0;
    bool chw = false;
    QuantParams p;
    int64_t perSample() const { return prod(shape); }
};

template <class T>
std::vector<T>& values(QValue& v);
template <>
std::vector<int8_t>& values<int8_t>(QValue& v) { return v.i8; }
template <>
std::vector<int16_t>& values<int16_t>(QValue& v) { return v.i16; }
template <class T>
const std::vector<T>& values(const QValue& v) { return values<T>(const_cast<QValue&>(v)); }

// Inputs by value for the multi-input ops (small helper over the pointer list).
struct InputList {
    const std::vector<const QValue*>& p;
    const QValue& operator[](size_t i) const { return *p[i]; }
    size_t size() const { return p.size(); }
    auto begin() const { return Deref{p.begin()}; }
    auto end() const { return Deref{p.end()}; }
    struct Deref {
        std::vector<const QValue*>::const_iterator it;
        const QValue& operator*() const { return **it; }
        Deref& operator++() { return ++it, *this; }
        bool operator!=(const Deref& o) const { return it != o.it; }
    };
};
InputList deref(const std::vector<const QValue*>& p) { return InputList{p}; }

bool sameParams(const QuantParams& a, const QuantParams& b) { return a.scale == b.scale && a.zero_point == b.zero_point; }

QValue intLike(const QValue& src, Domain d, const QuantParams& p, const Shape& shape) {
    QValue v;
    v.domain = d;
    v.p = p;
    v.shape = shape;
    v.rows = src.rows;
    v.chw = src.chw;
    const size_t n = static_cast<size_t>(v.rows * prod(shape));
    if (d == Domain::Int8) v.i8.resize(n);
    else v.i16.resize(n);
    return v;
}

int32_t at(const QValue& v, size_t i) { return v.domain == Domain::Int8 ? v.i8[i] : v.i16[i]; }

void put(QValue& v, size_t i, int32_t q) {
    if (v.domain == Domain::Int8) v.i8[i] = static_cast<int8_t>(q);
    else v.i16[i] = static_cast<int16_t>(q);
}

template <class T>
void dequantizeRow(const T* q, int64_t n, const QuantParams& p, float* out) {
    const float scale = static_cast<float>(p.scale);
    const int32_t zp = p.zero_point;
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(q[i] - zp) * scale;
}

// One quantization pass per value crossing into the integer domain (the model input above
// all): AVX-512 where the CPU has it (kernels/quantize_row.h), else the scalar definition, AVX2
// where the CPU has that (same C++ expression, so the same integers).
template <class T>
inline __attribute__((always_inline)) void quantizeRowBody(const float* x, int64_t n, const QuantParams& p, T* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(quantize(x[i], p));
}
__attribute__((target_clones("avx2", "default"))) void quantizeRowScalar(const float* x, int64_t n, const QuantParams& p, int8_t* out) {
    quantizeRowBody(x, n, p, out);
}
__attribute__((target_clones("avx2", "default"))) void quantizeRowScalar(const float* x, int64_t n, const QuantParams& p, int16_t* out) {
    quantizeRowBody(x, n, p, out);
}
template <class T>
void quantizeRow(const float* x, int64_t n, const QuantParams& p, T* out) {
    if (kernels::activeIsa() == kernels::Isa::Avx512)
        return kernels::quantizeRowAvx512(x, n, static_cast<float>(p.scale), p.zero_point, p.qmin, p.qmax, out);
    quantizeRowScalar(x, n, p, out);
}

// q's values (sized by intLike) quantized from n floats.
void quantizeInto(const float* x, int64_t n, QValue& q) {
    if (q.domain == Domain::Int8) quantizeRow(x, n, q.p, q.i8.data());
    else quantizeRow(x, n, q.p, q.i16.data());
}

// `own`: v itself when nothing reads it later (a float value then moves instead of copying).
Act toFloat(const QValue& v, QValue* own = nullptr) {
    Act a;
    a.shape = v.shape;
    a.chw_logical = v.chw;
    if (v.domain == Domain::Float) {
        a.x = own ? std::move(own->f) : v.f;
        return a;
    }
    a.x.resize(v.rows, v.perSample());
    if (v.domain == Domain::Int8) dequantizeRow(v.i8.data(), a.x.size(), v.p, a.x.data());
    else dequantizeRow(v.i16.data(), a.x.size(), v.p, a.x.data());
    return a;
}

// Takes `a` by value: callers that are done with it move it in, and a float result then keeps
// its matrix instead of copying it (a batch of 256 inputs is 0.8 MB).
QValue fromFloat(Act a, Domain d, const QuantParams& p) {
    QValue v;
    v.domain = d;
    v.shape = a.shape;
    v.rows = a.x.rows();
    v.chw = a.chw_logical;
    v.p = p;
    if (d == Domain::Float) {
        v.f = std::move(a.x);
        return v;
    }
    v = intLike(v, d, p, a.shape);
    quantizeInto(a.x.data(), a.x.size(), v);
    return v;
}

// A float value quantized straight from its matrix (no float copy first).
QValue quantizedFromFloat(const QValue& v, Domain d, const QuantParams& p) {
    QValue o = intLike(v, d, p, v.shape);
    quantizeInto(v.f.data(), v.f.size(), o);
    return o;
}

// `v` in domain d with parameters p: as is, requantized in integers, or across the float edge.
QValue converted(const QValue& v, Domain d, const QuantParams& p) {
    if (v.domain == d && (d == Domain::Float || sameParams(v.p, p))) return v;
    if (v.domain == Domain::Float) return quantizedFromFloat(v, d, p);
    if (d == Domain::Float) return fromFloat(toFloat(v), d, p);
    QValue o = intLike(v, d, p, v.shape);
    const FixedMultiplier m = quantizeMultiplier(v.p.scale / p.scale);
    const size_t n = static_cast<size_t>(v.rows * v.perSample());
    for (size_t i = 0; i < n; ++i) put(o, i, requantize(at(v, i) - v.p.zero_point, m, p.zero_point, p.qmin, p.qmax));
    return o;
}

int32_t requant64(int64_t acc, FixedMultiplier m, int32_t zp, int32_t lo, int32_t hi) {
    const int64_t v = multiplyByQuantizedMultiplier64(acc, m) + zp;
    return static_cast<int32_t>(std::clamp<int64_t>(v, lo, hi));
}

thread_local GemmScratch tls_scratch;

// An int16-activation layer's output n from its exact product sum (without the bias): the
// 64-bit output stage of all three product paths below.
int16_t wideOutput(const QuantizedOp& o, int64_t n, int64_t sum) {
    const size_t j = static_cast<size_t>(n);
    return static_cast<int16_t>(requant64(sum + o.bias_q[j], o.mult[j], o.out.zero_point, o.qlo, o.qhi));
}

// int16 values split into their high byte (a >> 8, signed) and low byte minus 128 (so that it is
// an int8 too), through restrict pointers so that it vectorises (see flippedSigns below).
void splitBytes(const int16_t* __restrict a, int64_t n, int8_t* __restrict hi, int8_t* __restrict lo) {
    for (int64_t i = 0; i < n; ++i) {
        hi[i] = static_cast<int8_t>(a[i] >> 8);
        lo[i] = static_cast<int8_t>((a[i] & 0xFF) ^ 0x80);
    }
}

// int16 activations against weights of 8 bits or fewer, on the int8 GEMM and exactly: with
// a = 256 * hi + lo, hi = a >> 8 (int8) and lo = a & 255 (0 .. 255),
//     sum_k (a - zp) * w = 256 * sum_k hi * w + sum_k lo * w - zp * colsum(w),
// two int8 GEMMs (lo enters as the int8 lo - 128 with zero point -128) whose int32 sums cannot
// overflow while K < 2^16 (kMaxSplitDepth: |hi * w| <= 2^14, lo * w < 2^15), joined in int64.
// The double GEMM below ran these layers at a sixteenth of the VNNI rate: int16-activation cells
// were a fifth of the sensitivity benchmark's time (perf). False when the op has no packed int8
// weights or is deeper.
bool matmulWideSplit(const int16_t* a, int64_t M, int64_t K, int32_t a_zero, const QuantizedOp& o, int64_t N, int16_t* c) {
    if (o.gemm.K != K || o.gemm.N != N || K >= kMaxSplitDepth) return false;
    thread_local std::vector<int8_t> hi, lo;
    thread_local std::vector<int32_t> s_hi, s_lo;
    hi.resize(static_cast<size_t>(M * K)), lo.resize(static_cast<size_t>(M * K));
    splitBytes(a, M * K, hi.data(), lo.data());
    s_hi.resize(static_cast<size_t>(M * N)), s_lo.resize(static_cast<size_t>(M * N));
    gemmInt32(hi.data(), K, M, 0, o.gemm, s_hi.data(), N, tls_scratch);
    gemmInt32(lo.data(), K, M, -128, o.gemm, s_lo.data(), N, tls_scratch);
    const std::vector<int32_t>& colsum = o.gemm.col_sums;  // summed once, when the weights were packed
    for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
            const size_t i = static_cast<size_t>(m * N + n);
            c[i] = wideOutput(o, n, 256 * int64_t{s_hi[i]} + s_lo[i] - int64_t{a_zero} * colsum[static_cast<size_t>(n)]);
        }
    return true;
}

// Products of int16-activation layers: int16 x (up to) int16 in 64 bits, requantized per channel.
// With weights of 8 bits or fewer on the int8 GEMM (above); else as a double GEMM, which is exact
// here: each product is below 2^31 in magnitude and K of
// them sum below 2^53 while K < 2^22, so every partial sum is an integer a double holds exactly
// (and a GEMM runs at SIMD speed, where the int64 loop ran about 1 multiply-add per cycle; the
// dispatched one, kernels/float_gemm.h, at the CPU's widest: AVX-512 runs 8 doubles a lane).
void matmulWide(const int16_t* a, int64_t M, int64_t K, int32_t a_zero, const QuantizedOp& o, int64_t N, int16_t* c) {
    if (matmulWideSplit(a, M, K, a_zero, o, N, c)) return;
    if (K < (int64_t(1) << 22) && static_cast<int64_t>(o.w_wide.size()) == K * N) {
        thread_local std::vector<double> A, C;
        A.resize(static_cast<size_t>(M * K));
        C.resize(static_cast<size_t>(M * N));
        for (int64_t i = 0; i < M * K; ++i) A[static_cast<size_t>(i)] = static_cast<double>(a[i] - a_zero);
        kernels::floatGemm(A.data(), M, K, o.w_wide.data(), N, C.data());
        for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) c[m * N + n] = wideOutput(o, n, static_cast<int64_t>(C[static_cast<size_t>(m * N + n)]));
        return;
    }
    std::vector<int64_t> acc(static_cast<size_t>(N));
    for (int64_t m = 0; m < M; ++m) {
        std::fill(acc.begin(), acc.end(), 0);
        for (int64_t k = 0; k < K; ++k) {
            const int64_t x = a[m * K + k] - a_zero;
            if (x == 0) continue;
            const int16_t* w = o.wq.data() + k * N;
            for (int64_t n = 0; n < N; ++n) acc[static_cast<size_t>(n)] += x * w[n];
        }
        for (int64_t n = 0; n < N; ++n) c[m * N + n] = wideOutput(o, n, acc[static_cast<size_t>(n)]);
    }
}

Requant requantOf(const QuantizedOp& o) {
    Requant rq{o.bias32.data(), o.mult.data(), o.out.zero_point, o.qlo, o.qhi};
    if (!o.mult_m.empty()) rq.m = o.mult_m.data(), rq.rshift = o.mult_rshift.data();
    if (!o.mult_lshift.empty()) rq.lshift = o.mult_lshift.data();
    return rq;
}

QValue denseInt(const QValue& x, const Op& op, const QuantizedOp& o) {
    const int64_t N = op.kernel.shape.back(), K = op.kernel.size() / N;
    const int64_t outer = x.perSample() / K, M = x.rows * outer;
    Shape shape = x.shape;
    shape.back() = N;
    QValue y = intLike(x, o.domain, o.out, shape);
    y.chw = false;
    if (o.domain == Domain::Int8) {
        const Requant rq = requantOf(o);
        gemmRequant(x.i8.data(), K, M, x.p.zero_point, o.gemm, rq, y.i8.data(), N, tls_scratch);
    } else {
        matmulWide(x.i16.data(), M, K, x.p.zero_point, o, N, y.i16.data());
    }
    return y;
}

// A padded sample's row: int8 as uint8 (+128) for vpdpbusd, or minus the zero point as int16 for
// vpmaddwd. Raw pointers: through the thread-local buffers' operator[], every int8 store may alias
// the vector's own pointer (a char type aliases anything), so GCC reloaded it per byte and did not
// vectorise (10% of fmnist_cnn's int8 time in perf).
void flippedSigns(const int8_t* __restrict from, int64_t n, int8_t* __restrict to) {
    for (int64_t i = 0; i < n; ++i) to[i] = static_cast<int8_t>(from[i] ^ 0x80);
}
void minusZeroPoint(const int8_t* __restrict from, int64_t n, int16_t zp, int16_t* __restrict to) {
    for (int64_t i = 0; i < n; ++i) to[i] = static_cast<int16_t>(from[i] - zp);
}

// An int8 convolution's GEMM input, one sample at a time: implicit patches where the packed
// weights allow (no horizontal dilation; kernel rows padded to whole quads), else im2col. Each
// sample is copied once into a buffer padded with its zero point and the GEMM reads its patches
// from there: the copy is the input's size where im2col writes KH * KW times the output's. The
// VNNI path reads them as uint8 (int8_gemm.h: ImplicitPatches), the AVX2 path the values minus
// the zero point as int16 (ImplicitPairPatches; padding 0). The buffer's padding is written once per
// batch: each sample overwrites the same interior.
class ConvInput {
public:
    ConvInput(const QValue& x, const ConvGeometry& g, const QuantizedOp& o) : x_(x), g_(g), o_(o) {
        const PackedWeights& w = o.gemm_patches.K ? o.gemm_patches : o.gemm;
        const int64_t run = g.KW * g.C, run_quads = (run + 3) / 4;
        if (g.dw != 1 || w.K != g.KH * run_quads * 4) return;
        mode_ = implicitPatchesSupported(w) ? Mode::Quads : implicitPairPatchesSupported(w) ? Mode::Pairs : Mode::Im2col;
        if (mode_ == Mode::Im2col) return;
        weights_ = &w;
        const int64_t Hp = (g.OH - 1) * g.sh + (g.KH - 1) * g.dh + 1, Wp = (g.OW - 1) * g.sw + g.KW;
        copy_rows_ = std::min(g.H, Hp - g.pt), copy_cols_ = std::min(g.W, Wp - g.pl), Wp_ = Wp;
        // Slack: the last run's whole quads; for AMX, tiles of 16 pixels past the last one, each
        // kernel row read to whole 64-byte chunks (int8_gemm.h: ImplicitPatches::readable).
        const size_t size = static_cast<size_t>(Hp * Wp * g.C + 16 * g.sw * g.C + 128);
        if (mode_ == Mode::Quads) {
            buf_.assign(size, static_cast<int8_t>(x.p.zero_point ^ 0x80));  // stored as uint8: int8 + 128
            patches_ = {buf_.data(), g.OW, Wp * g.C, g.sh, g.dh, g.sw * g.C, g.KH, run_quads, static_cast<int64_t>(size)};
        } else {
            buf16_.assign(size, 0);
            pair_patches_ = {buf16_.data(), g.OW, Wp * g.C, g.sh, g.dh, g.sw * g.C, g.KH, 2 * run_quads};
        }
    }
    // Sample n's patches into the padded buffer or im2col's rows; the calls below read them.
    void load(int64_t n) {
        const int8_t* src = x_.i8.data() + n * x_.perSample();
        if (mode_ == Mode::Im2col) return im2col(src, g_, static_cast<int8_t>(x_.p.zero_point), cols_);
        const int16_t zp = static_cast<int16_t>(x_.p.zero_point);
        const int64_t count = copy_cols_ * g_.C;
        for (int64_t iy = 0; iy < copy_rows_; ++iy) {
            const int8_t* from = src + iy * g_.W * g_.C;
            const int64_t at = ((iy + g_.pt) * Wp_ + g_.pl) * g_.C;
            if (mode_ == Mode::Quads) flippedSigns(from, count, buf_.data() + at);
            else minusZeroPoint(from, count, zp, buf16_.data() + at);
        }
    }
    // The loaded sample's int32 sums (bias not added) of output rows r0 .. r1 - 1 into sums,
    // stored as `how` says (int8_gemm.h: SumsStore).
    void sums(int64_t r0, int64_t r1, int32_t* sums, int64_t N, SumsStore how) {
        const int64_t M = (r1 - r0) * g_.OW;
        if (mode_ == Mode::Quads) {
            ImplicitPatches rows = patches_;
            rows.src += r0 * g_.sh * patches_.row_bytes;
            return gemmInt32Patches(rows, M, x_.p.zero_point, *weights_, sums, N, tls_scratch, how);
        }
        if (mode_ == Mode::Pairs) {
            ImplicitPairPatches rows = pair_patches_;
            rows.src += r0 * g_.sh * pair_patches_.row;
            return gemmInt32PairPatches(rows, M, *weights_, sums, N, tls_scratch, how);
        }
        const int64_t K = g_.KH * g_.KW * g_.C;
        gemmInt32(cols_.data() + r0 * g_.OW * K, K, M, x_.p.zero_point, o_.gemm, sums, N, tls_scratch, how);
    }
    // Whether pooled2 runs: the VNNI path, reading patches in place.
    bool poolsInPlace() const { return mode_ == Mode::Quads; }
    // The loaded sample's outputs max-pooled 2x2 with stride 2 to PH x PW (isInsideMaxPool2),
    // requantized.
    void pooled2(const Requant& rq, int64_t PH, int64_t PW, int8_t* out, int64_t N) {
        gemmRequantPatchesMaxPool2(patches_, PH, PW, x_.p.zero_point, *weights_, rq, out, N, tls_scratch);
    }
    // The loaded sample's requantized outputs.
    void requantized(const Requant& rq, int8_t* out, int64_t N) {
        const int64_t M = g_.OH * g_.OW;
        if (mode_ == Mode::Quads) gemmRequantPatches(patches_, M, x_.p.zero_point, *weights_, rq, out, N, tls_scratch);
        else if (mode_ == Mode::Pairs) gemmRequantPairPatches(pair_patches_, M, *weights_, rq, out, N, tls_scratch);
        else gemmRequant(cols_.data(), g_.KH * g_.KW * g_.C, M, x_.p.zero_point, o_.gemm, rq, out, N, tls_scratch);
    }

private:
    enum class Mode { Im2col, Quads, Pairs };
    const QValue& x_;
    const ConvGeometry& g_;
    const QuantizedOp& o_;
    Mode mode_ = Mode::Im2col;
    const PackedWeights* weights_ = nullptr;
    int64_t copy_rows_ = 0, copy_cols_ = 0, Wp_ = 0;
    ImplicitPatches patches_;
    ImplicitPairPatches pair_patches_;
    static thread_local std::vector<int8_t> buf_, cols_;
    static thread_local std::vector<int16_t> buf16_;
};
thread_local std::vector<int8_t> ConvInput::buf_, ConvInput::cols_;
thread_local std::vector<int16_t> ConvInput::buf16_;

QValue convInt(const QValue& x, const Op& op, const QuantizedOp& o) {
    const ConvGeometry g = convGeometry(x.shape, op.kernel.shape, op.config);
    const int64_t N = op.kernel.shape[3], K = g.KH * g.KW * g.C;
    QValue y = intLike(x, o.domain, o.out, {g.OH, g.OW, N});
    y.chw = op.chw_logical;
    const int64_t in_per = x.perSample(), out_per = g.OH * g.OW * N;
    if (o.domain == Domain::Int8) {
        ConvInput in(x, g, o);
        const Requant rq = requantOf(o);
        for (int64_t n = 0; n < x.rows; ++n) {
            in.load(n);
            in.requantized(rq, y.i8.data() + n * out_per, N);
        }
    } else {
        std::vector<int16_t> cols;
        for (int64_t n = 0; n < x.rows; ++n) {
            im2col(x.i16.data() + n * in_per, g, static_cast<int16_t>(x.p.zero_point), cols);
            matmulWide(cols.data(), g.OH * g.OW, K, x.p.zero_point, o, N, y.i16.data() + n * out_per);
        }
    }
    return y;
}

// An int8 Conv2D and the MaxPool that is its only reader, as one op (max_pool_requant.h): the
// pool's value, in the conv's quantization as the unfused pool keeps it. A few pooled rows at a
// time, so the conv's int32 sums for them stay in the L1 cache between the GEMM and the pooling.
QValue convMaxPoolInt(const QValue& x, const Op& op, const QuantizedOp& o, const Op& pool) {
    const ConvGeometry g = convGeometry(x.shape, op.kernel.shape, op.config);
    const int64_t N = op.kernel.shape[3];
    const PoolGeometry pg = poolGeometry({g.OH, g.OW, N}, pool.config);
    QValue y = intLike(x, Domain::Int8, o.out, {pg.OH, pg.OW, N});
    y.chw = pool.chw_logical;
    ConvInput in(x, g, o);
    const Requant rq = requantOf(o);
    if (in.poolsInPlace() && isInsideMaxPool2(pg)) {  // the common 2x2 pooling: in the GEMM's registers
        for (int64_t n = 0; n < x.rows; ++n) {
            in.load(n);
            in.pooled2(rq, pg.OH, pg.OW, y.i8.data() + n * pg.OH * pg.OW * N, N);
        }
        return y;
    }
    const int64_t band = std::max<int64_t>(1, (int64_t{32} << 10) / (pg.ph * g.OW * N * 4));  // pooled rows per step
    // Where the GEMM's store can pool pixel pairs, the pooling afterwards reads half the sums
    // (it read all of them in about 14% of fmnist_cnn's int8 time).
    const std::optional<PoolGeometry> after_pairs = afterPixelPairs(pg);
    const SumsStore store = after_pairs ? SumsStore::PairMax : SumsStore::Copy;
    const PoolGeometry& rest = after_pairs ? *after_pairs : pg;
    thread_local std::vector<int32_t> sums, scratch;
    sums.resize(static_cast<size_t>(std::min(band * pg.sh + pg.ph, g.OH) * g.OW * N));
    for (int64_t n = 0; n < x.rows; ++n) {
        in.load(n);
        int8_t* out = y.i8.data() + n * pg.OH * pg.OW * N;
        for (int64_t p0 = 0; p0 < pg.OH; p0 += band) {
            const PooledRows rows = pooledRows(pg, p0, std::min(p0 + band, pg.OH));
            in.sums(rows.r0, rows.r1, sums.data(), N, store);
            maxPoolRequant(sums.data(), rows, rest, rq, out + p0 * pg.OW * N, scratch);
        }
    }
    return y;
}

template <class T, class Acc>
void depthwiseLoop(const QValue& x, const Op& op, const QuantizedOp& o, const ConvGeometry& g, QValue& y) {
    const int64_t M = op.kernel.shape[3], CM = g.C * M;
    const std::vector<T>& in = values<T>(x);
    std::vector<T>& out = values<T>(y);
    std::vector<Acc> acc(static_cast<size_t>(CM));
    std::vector<Acc> w(o.wq.begin(), o.wq.end());
    const Acc zp = x.p.zero_point;
    for (int64_t n = 0; n < x.rows; ++n) {
        const T* src = in.data() + n * g.H * g.W * g.C;
        T* dst = out.data() + n * g.OH * g.OW * CM;
        for (int64_t oy = 0; oy < g.OH; ++oy)
            for (int64_t ox = 0; ox < g.OW; ++ox) {
                for (int64_t ch = 0; ch < CM; ++ch) acc[static_cast<size_t>(ch)] = static_cast<Acc>(o.bias_q[static_cast<size_t>(ch)]);
                for (int64_t ky = 0; ky < g.KH; ++ky) {
                    const int64_t iy = oy * g.sh - g.pt + ky * g.dh;
                    if (iy < 0 || iy >= g.H) continue;
                    for (int64_t kx = 0; kx < g.KW; ++kx) {
                        const int64_t ix = ox * g.sw - g.pl + kx * g.dw;
                        if (ix < 0 || ix >= g.W) continue;
                        const T* xin = src + (iy * g.W + ix) * g.C;
                        const Acc* k = w.data() + (ky * g.KW + kx) * CM;
                        if (M == 1)
                            for (int64_t ch = 0; ch < CM; ++ch) acc[static_cast<size_t>(ch)] += (xin[ch] - zp) * k[ch];
                        else
                            for (int64_t ch = 0; ch < CM; ++ch) acc[static_cast<size_t>(ch)] += (xin[ch / M] - zp) * k[ch];
                    }
                }
                T* o_px = dst + (oy * g.OW + ox) * CM;
                for (int64_t ch = 0; ch < CM; ++ch) {
                    const FixedMultiplier m = o.mult[static_cast<size_t>(ch)];
                    o_px[ch] = static_cast<T>(sizeof(Acc) == 4 ? requantize(static_cast<int32_t>(acc[static_cast<size_t>(ch)]), m, o.out.zero_point, o.qlo, o.qhi)
                                                              : requant64(acc[static_cast<size_t>(ch)], m, o.out.zero_point, o.qlo, o.qhi));
                }
            }
    }
}

// Depthwise with depth multiplier 1 in integers: each sample minus its zero point, widened to W
// (int16 for int8 activations, exact doubles for int16 ones), in a padded copy whose padding is
// 0 (the zero point), so no tap is bounds-checked; each output row's tap sums
// (depthwise_taps.h) go to storeRow(sample, oy, sums). The same integers as depthwiseLoop.
template <class T, class W, class S, class StoreRow>
void depthwiseM1(const std::vector<T>& in, int64_t rows, int32_t zero_point, const std::vector<W>& w, const ConvGeometry& g,
                 StoreRow storeRow) {
    const auto [Hp, Wp] = paddedExtent(g);
    std::vector<W> xs(static_cast<size_t>(Hp * Wp * g.C), W(0));
    std::vector<S> sums(static_cast<size_t>(g.OW * g.C));
    const TapRow taps = tapRow(g, Wp);
    for (int64_t n = 0; n < rows; ++n) {
        padInto(in.data() + n * g.H * g.W * g.C, g, Wp, static_cast<W>(zero_point), xs.data());
        for (int64_t oy = 0; oy < g.OH; ++oy) {
            depthwiseTapSums(xs.data() + oy * g.sh * Wp * g.C, taps, w.data(), sums.data());
            storeRow(n, oy, sums.data());
        }
    }
}

QValue depthwiseInt(const QValue& x, const Op& op, const QuantizedOp& o) {
    const ConvGeometry g = convGeometry(x.shape, op.kernel.shape, op.config);
    QValue y = intLike(x, o.domain, o.out, {g.OH, g.OW, g.C * op.kernel.shape[3]});
    y.chw = op.chw_logical;
    const int64_t row = g.OW * g.C, per = g.OH * row;  // output values per row and per sample (M = 1)
    if (op.kernel.shape[3] != 1) {
        if (o.domain == Domain::Int8) depthwiseLoop<int8_t, int32_t>(x, op, o, g, y);
        else depthwiseLoop<int16_t, int64_t>(x, op, o, g, y);
    } else if (o.domain == Domain::Int8) {  // int32 sums, the vectorised output stage per row
        const Requant rq = requantOf(o);
        depthwiseM1<int8_t, int16_t, int32_t>(x.i8, x.rows, x.p.zero_point, o.wq, g, [&](int64_t n, int64_t oy, const int32_t* sums) {
            requantRows(sums, g.C, g.OW, 0, g.C, rq, y.i8.data() + n * per + oy * row, g.C);
        });
    } else {  // exact double sums, the 64-bit output stage per value
        const std::vector<double> w(o.wq.begin(), o.wq.end());
        depthwiseM1<int16_t, double, double>(x.i16, x.rows, x.p.zero_point, w, g, [&](int64_t n, int64_t oy, const double* sums) {
            int16_t* out = y.i16.data() + n * per + oy * row;
            for (int64_t i = 0; i < row; ++i) {
                const size_t ch = static_cast<size_t>(i % g.C);
                out[i] = static_cast<int16_t>(requant64(static_cast<int64_t>(sums[i]) + o.bias_q[ch], o.mult[ch], o.out.zero_point, o.qlo, o.qhi));
            }
        });
    }
    return y;
}

QValue affineInt(const QValue& x, const QuantizedOp& o) {
    QValue y = intLike(x, o.domain, o.out, x.shape);
    const size_t C = o.mult.size(), n = static_cast<size_t>(x.rows * x.perSample());
    for (size_t i = 0; i < n; ++i) {
        const size_t c = i % C;
        const int64_t acc = static_cast<int64_t>(at(x, i) - x.p.zero_point) * o.wq[c] + o.bias_q[c];
        put(y, i, requant64(acc, o.mult[c], o.out.zero_point, o.qlo, o.qhi));
    }
    return y;
}

// Average of q values: the same scale and zero point in and out, so no rescaling; rounded
// half away from zero, as the fake-quant rounding of the float average.
int32_t roundedMean(int64_t sum, int64_t count) {
    return static_cast<int32_t>(sum >= 0 ? (sum + count / 2) / count : -((-sum + count / 2) / count));
}

// Calls cell(px) for each cell of output (oy, ox)'s pooling window that lies inside the image
// (px: the cell's C channels in one sample's `src`).
template <class T, class Cell>
void forWindow(const T* src, const PoolGeometry& g, int64_t oy, int64_t ox, Cell cell) {
    for (int64_t ky = 0; ky < g.ph; ++ky) {
        const int64_t iy = oy * g.sh - g.pt + ky;
        if (iy < 0 || iy >= g.H) continue;
        for (int64_t kx = 0; kx < g.pw; ++kx) {
            const int64_t ix = ox * g.sw - g.pl + kx;
            if (ix >= 0 && ix < g.W) cell(src + (iy * g.W + ix) * g.C);
        }
    }
}

// Max pooling in the stored type: the maximum of int8 values is an int8 value, so there is
// nothing to widen, and the channel loop vectorises (a window with no cell inside the image
// cannot occur with Keras' padding; it would give 0, as the widening loop did). Average
// pooling sums in int32 and rounds the mean half away from zero over the window's valid cells
// only, as Keras averages.
template <class T>
void poolLoop(const QValue& x, const PoolGeometry& g, bool is_max, QValue& y) {
    const std::vector<T>& in = values<T>(x);
    std::vector<T>& out = values<T>(y);
    std::vector<int32_t> acc(static_cast<size_t>(g.C));
    for (int64_t n = 0; n < x.rows; ++n) {
        const T* src = in.data() + n * g.H * g.W * g.C;
        T* dst = out.data() + n * g.OH * g.OW * g.C;
        for (int64_t oy = 0; oy < g.OH; ++oy)
            for (int64_t ox = 0; ox < g.OW; ++ox) {
                T* o = dst + (oy * g.OW + ox) * g.C;
                int64_t cnt = 0;
                if (is_max) {
                    forWindow(src, g, oy, ox, [&](const T* px) {
                        if (cnt++ == 0) copyFew(o, px, static_cast<size_t>(g.C) * sizeof(T));
                        else
                            for (int64_t c = 0; c < g.C; ++c) o[c] = std::max(o[c], px[c]);
                    });
                    if (cnt == 0) std::fill(o, o + g.C, T(0));
                    continue;
                }
                std::fill(acc.begin(), acc.end(), 0);
                forWindow(src, g, oy, ox, [&](const T* px) {
                    for (int64_t c = 0; c < g.C; ++c) acc[static_cast<size_t>(c)] += px[c];
                    ++cnt;
                });
                for (int64_t c = 0; c < g.C; ++c)
                    o[c] = static_cast<T>(roundedMean(acc[static_cast<size_t>(c)], std::max<int64_t>(cnt, 1)));
            }
    }
}

QValue poolInt(const QValue& x, const Op& op, bool is_max) {
    const PoolGeometry g = poolGeometry(x.shape, op.config);
    QValue y = intLike(x, x.domain, x.p, {g.OH, g.OW, g.C});
    y.chw = op.chw_logical;
    if (x.domain == Domain::Int8) poolLoop<int8_t>(x, g, is_max, y);
    else poolLoop<int16_t>(x, g, is_max, y);
    return y;
}

QValue globalPoolInt(const QValue& x, bool is_max) {
    const int64_t C = x.shape.back(), hw = x.perSample() / C;
    QValue y = intLike(x, x.domain, x.p, {C});
    y.chw = false;
    std::vector<int64_t> acc(static_cast<size_t>(C));
    for (int64_t n = 0; n < x.rows; ++n) {
        std::fill(acc.begin(), acc.end(), is_max ? INT64_MIN : 0);
        const size_t src = static_cast<size_t>(n * hw * C);
        for (int64_t p = 0; p < hw; ++p)
            for (int64_t c = 0; c < C; ++c) {
                const int64_t v = at(x, src + static_cast<size_t>(p * C + c));
                acc[static_cast<size_t>(c)] = is_max ? std::max(acc[static_cast<size_t>(c)], v) : acc[static_cast<size_t>(c)] + v;
            }
        for (int64_t c = 0; c < C; ++c)
            put(y, static_cast<size_t>(n * C + c), is_max ? static_cast<int32_t>(acc[static_cast<size_t>(c)]) : roundedMean(acc[static_cast<size_t>(c)], hw));
    }
    return y;
}

QValue flattenInt(const QValue& x, const Op& op, QValue* own) {
    const bool reorder = op.chw_flatten && x.shape.size() == 3;
    QValue y = own && !reorder ? std::move(*own) : x;  // without a reorder: same values, new shape
    y.shape = {y.perSample()};
    y.chw = false;
    if (reorder) {
        const int64_t H = x.shape[0], W = x.shape[1], C = x.shape[2], per = H * W * C;
        for (int64_t n = 0; n < x.rows; ++n)
            for (int64_t p = 0; p < H * W; ++p)
                for (int64_t c = 0; c < C; ++c)
                    put(y, static_cast<size_t>(n * per + c * H * W + p), at(x, static_cast<size_t>(n * per + p * C + c)));
    }
    return y;
}

QValue padInt(const QValue& x, const Op& op) {
    const int64_t H = x.shape[0], W = x.shape[1], C = x.shape[2], OH = op.reshape[0], OW = op.reshape[1];
    const auto [top, left] = zeroPadding(op.config);
    QValue y = intLike(x, x.domain, x.p, {OH, OW, C});
    for (size_t i = 0; i < static_cast<size_t>(x.rows * OH * OW * C); ++i) put(y, i, x.p.zero_point);
    for (int64_t n = 0; n < x.rows; ++n)
        for (int64_t r = 0; r < H; ++r)
            for (int64_t q = 0; q < W; ++q)
                for (int64_t c = 0; c < C; ++c)
                    put(y, static_cast<size_t>(((n * OH + r + top) * OW + q + left) * C + c), at(x, static_cast<size_t>(((n * H + r) * W + q) * C + c)));
    return y;
}

QValue addInt(const std::vector<const QValue*>& pin, const QuantizedOp& o) {
    const InputList in = deref(pin);
    QValue y = intLike(in[0], o.domain, o.out, in[0].shape);
    const size_t n = static_cast<size_t>(y.rows * y.perSample());
    for (const QValue& v : in)
        if (static_cast<size_t>(v.rows * v.perSample()) != n) throw Error("", "", "Add: inputs of different sizes");
    for (size_t i = 0; i < n; ++i) {
        int32_t acc = 0;
        for (size_t j = 0; j < in.size(); ++j) {
            const int32_t shifted = (at(in[j], i) - in[j].p.zero_point) * (1 << o.left_shift);
            const int32_t s = multiplyByQuantizedMultiplier(shifted, o.in_mult[j]);
            acc += o.in_negate[j] ? -s : s;
        }
        put(y, i, requantize(acc, o.out_mult, o.out.zero_point, o.qlo, o.qhi));
    }
    return y;
}

QValue multiplyInt(const std::vector<const QValue*>& pin, const QuantizedOp& o) {
    const InputList in = deref(pin);
    QValue y = intLike(in[0], o.domain, o.out, in[0].shape);
    const size_t n = static_cast<size_t>(y.rows * y.perSample());
    for (size_t i = 0; i < n; ++i) {
        const int64_t prodv = static_cast<int64_t>(at(in[0], i) - in[0].p.zero_point) * (at(in[1], i) - in[1].p.zero_point);
        put(y, i, requant64(prodv, o.out_mult, o.out.zero_point, o.qlo, o.qhi));
    }
    return y;
}

QValue rescaled(const QValue& v, FixedMultiplier m, const QuantizedOp& o) {
    if (sameParams(v.p, o.out)) return v;
    QValue y = intLike(v, o.domain, o.out, v.shape);
    for (size_t i = 0; i < static_cast<size_t>(v.rows * v.perSample()); ++i)
        put(y, i, requantize(at(v, i) - v.p.zero_point, m, o.out.zero_point, o.out.qmin, o.out.qmax));
    return y;
}

QValue minMaxInt(const std::vector<const QValue*>& pin, const QuantizedOp& o, bool is_max) {
    const InputList in = deref(pin);
    QValue y = rescaled(in[0], o.in_mult[0], o);
    for (size_t j = 1; j < in.size(); ++j) {
        const QValue r = rescaled(in[j], o.in_mult[j], o);
        for (size_t i = 0; i < static_cast<size_t>(y.rows * y.perSample()); ++i)
            put(y, i, is_max ? std::max(at(y, i), at(r, i)) : std::min(at(y, i), at(r, i)));
    }
    for (size_t i = 0; i < static_cast<size_t>(y.rows * y.perSample()); ++i) put(y, i, std::clamp(at(y, i), o.qlo, o.qhi));
    return y;
}

QValue concatInt(const std::vector<const QValue*>& pin, const QuantizedOp& o) {
    const InputList in = deref(pin);
    std::vector<QValue> parts;
    int64_t total = 0;
    for (size_t j = 0; j < in.size(); ++j) {
        parts.push_back(rescaled(in[j], o.in_mult[j], o));
        total += in[j].shape.back();
    }
    Shape shape = in[0].shape;
    shape.back() = total;
    QValue y = intLike(in[0], o.domain, o.out, shape);
    const int64_t outer = prod(shape) / total;
    for (int64_t n = 0; n < y.rows; ++n)
        for (int64_t p = 0; p < outer; ++p) {
            int64_t off = 0;
            for (const QValue& v : parts) {
                const int64_t cj = v.shape.back();
                for (int64_t c = 0; c < cj; ++c)
                    put(y, static_cast<size_t>((n * outer + p) * total + off + c), at(v, static_cast<size_t>((n * outer + p) * cj + c)));
                off += cj;
            }
        }
    return y;
}

QValue lutInt(const QValue& x, const QuantizedOp& o) {
    QValue y = intLike(x, o.domain, o.out, x.shape);
    const int32_t base = x.p.qmin;
    for (size_t i = 0; i < static_cast<size_t>(x.rows * x.perSample()); ++i) put(y, i, o.lut[static_cast<size_t>(at(x, i) - base)]);
    return y;
}

// Hybrid Dense/Conv2D: each sample's input quantized symmetrically on the fly (scale =
// max |x| / 127), int8 x int8 in the GEMM, the int32 sums scaled back to float.
Act hybridOp(const Act& x, const Op& op, const QuantizedOp& o) {
    const bool conv = op.kind == OpKind::Conv2D;
    const int64_t N = o.gemm.N, K = o.gemm.K;
    Act y;
    y.chw_logical = op.chw_logical;
    std::vector<int8_t> q, cols;
    std::vector<int32_t> acc;
    ConvGeometry g{};
    if (conv) {
        g = convGeometry(x.shape, op.kernel.shape, op.config);
        y.shape = {g.OH, g.OW, N};
    } else {
        y.shape = x.shape;
        y.shape.back() = N;
    }
    const int64_t in_per = prod(x.shape), out_per = prod(y.shape), M = conv ? g.OH * g.OW : in_per / K;
    y.x.resize(x.x.rows(), out_per);
    for (Eigen::Index n = 0; n < x.x.rows(); ++n) {
        const float* src = x.x.row(n).data();
        float max_abs = 0;
        for (int64_t i = 0; i < in_per; ++i) max_abs = std::max(max_abs, std::fabs(src[i]));
        const QuantParams p = symmetricParams(max_abs, 8);
        q.resize(static_cast<size_t>(in_per));
        quantizeRow(src, in_per, p, q.data());
        const int8_t* a = q.data();
        if (conv) {
            im2col(q.data(), g, int8_t(0), cols);
            a = cols.data();
        }
        acc.resize(static_cast<size_t>(M * N));
        gemmInt32(a, K, M, 0, o.gemm, acc.data(), N, tls_scratch);
        float* dst = y.x.row(n).data();
        for (int64_t m = 0; m < M; ++m)
            for (int64_t c = 0; c < N; ++c) {
                const double s = p.scale * o.w_params[o.w_params.size() == 1 ? 0 : static_cast<size_t>(c)].scale;
                const float v = static_cast<float>(acc[static_cast<size_t>(m * N + c)] * s) + op.bias[static_cast<size_t>(c)];
                dst[m * N + c] = std::clamp(v, op.clamp_lo, op.clamp_hi);
            }
    }
    return y;
}

void roundActToFloat16(Act& a) { roundToFloat16(a.x.data(), a.x.size()); }

// A float layer: its inputs as float (moved where they already are float and nothing reads
// them later), run by the float engine's op, which may then edit its own first input in place.
QValue runFloatSide(const Op& op, const QuantizedOp& o, const std::vector<const QValue*>& in, const std::vector<QValue*>& spare) {
    std::vector<Act> fin;
    for (size_t j = 0; j < in.size(); ++j) fin.push_back(toFloat(*in[j], spare[j]));
    std::vector<const Act*> ptrs;
    for (const Act& a : fin) ptrs.push_back(&a);
    Act y = o.hybrid && !o.gemm.data.empty() ? hybridOp(fin[0], op, o) : runFloatOp(o.sim, ptrs, &fin[0]);
    if (o.precision == Precision::Float16) roundActToFloat16(y);
    return fromFloat(std::move(y), Domain::Float, {});
}

QValue runIntegerOp(const Op& op, const QuantizedOp& o, const std::vector<const QValue*>& in, QValue* own) {
    const QValue& x = *in[0];
    switch (op.kind) {
        case OpKind::Input: return own ? std::move(*own) : x;
        case OpKind::Dense: return denseInt(x, op, o);
        case OpKind::Conv2D: return convInt(x, op, o);
        case OpKind::Depthwise: return depthwiseInt(x, op, o);
        case OpKind::ChannelAffine: return affineInt(x, o);
        case OpKind::MaxPool: return poolInt(x, op, true);
        case OpKind::AvgPool: return poolInt(x, op, false);
        case OpKind::GlobalAvgPool: return globalPoolInt(x, false);
        case OpKind::GlobalMaxPool: return globalPoolInt(x, true);
        case OpKind::Flatten: return flattenInt(x, op, own);
        case OpKind::Reshape: {
            QValue y = own ? std::move(*own) : x;
            y.shape = op.reshape;
            return y;
        }
        case OpKind::Pad: return padInt(x, op);
        case OpKind::Add: return addInt(in, o);
        case OpKind::Multiply: return multiplyInt(in, o);
        case OpKind::Maximum: return minMaxInt(in, o, true);
        case OpKind::Minimum: return minMaxInt(in, o, false);
        case OpKind::Concat: return concatInt(in, o);
        case OpKind::Elementwise: return lutInt(x, o);
        case OpKind::Softmax: break;
    }
    throw Error("", "layer " + op.layer, std::string("no integer kernel for ") + opKindName(op.kind));
}

// Quantize-dequantize of n values: the values the integer engine would hold, in float. Cloned
// for AVX-512 and AVX2: the IEEE division per value is most of the simulation's own time, and
// the same steps give the same bits at any width.
__attribute__((target_clones("avx512f", "avx2", "default")))
void fakeQuantizeValues(float* x, int64_t n, const QuantParams p, int32_t lo, int32_t hi) {
    for (int64_t i = 0; i < n; ++i) x[i] = dequantize(std::clamp(quantize(x[i], p), lo, hi), p);
}

void fakeQuantize(Act& a, const QuantParams& p, int32_t lo, int32_t hi) { fakeQuantizeValues(a.x.data(), a.x.size(), p, lo, hi); }

Act fakeQuantOp(const Op& op, const QuantizedOp& o, std::vector<Act> in) {
    if (o.domain != Domain::Float && op.kind != OpKind::Input)
        for (size_t j = 0; j < in.size(); ++j) fakeQuantize(in[j], o.in[j], o.in[j].qmin, o.in[j].qmax);
    if (o.hybrid && !o.gemm.data.empty())  // the dynamic per-sample input quantization of hybridOp
        for (Eigen::Index n = 0; n < in[0].x.rows(); ++n) {
            auto row = in[0].x.row(n);
            const QuantParams p = symmetricParams(row.cwiseAbs().maxCoeff(), 8);
            for (Eigen::Index i = 0; i < row.size(); ++i) row[i] = dequantize(quantize(row[i], p), p);
        }
    std::vector<const Act*> ptrs;
    for (const Act& a : in) ptrs.push_back(&a);
    if (o.domain != Domain::Float && (op.kind == OpKind::AvgPool || op.kind == OpKind::GlobalAvgPool)) {
        // Averages of grid values often fall exactly on .5 steps; averaging the integer levels
        // (exact in float) rounds those ties as the integer engine does, where averaging the
        // real values would leave them a rounding error either side of .5.
        const QuantParams& p = o.in[0];
        Act& x = in[0];
        for (Eigen::Index i = 0; i < x.x.size(); ++i) x.x.data()[i] = static_cast<float>(quantize(x.x.data()[i], p) - p.zero_point);
        Act y = runFloatOp(o.sim, ptrs);
        const QuantParams level{1.0, 0, o.qlo - p.zero_point, o.qhi - p.zero_point};
        for (Eigen::Index i = 0; i < y.x.size(); ++i) y.x.data()[i] = dequantize(quantize(y.x.data()[i], level) + p.zero_point, o.out);
        return y;
    }
    Act y = runFloatOp(o.sim, ptrs, &in[0]);  // in is this function's own copy
    if (o.domain != Domain::Float) fakeQuantize(y, o.out, o.qlo, o.qhi);
    if (o.precision == Precision::Float16) roundActToFloat16(y);
    return y;
}

// The shared graph walk (op_graph.h), handing each op its quantization too.
template <class Value, class RunOp>
std::vector<Value> runGraph(const QuantizedModel& m, Value input, bool keep_all, RunOp run) {
    return walkGraph<Value>(m.graph, std::move(input), keep_all,
                            [&](size_t i, const Op& op, const std::vector<const Value*>& ins, const std::vector<Value*>& spare) {
                                return run(op, m.ops[i], ins, spare);
                            });
}

// The integer engine's start: the caller's float input, or, when the graph's one Input op
// quantizes it and no layout change is needed, the input quantized straight from the
// caller's matrix (saves copying the floats first: 0.8 MB for a batch of 256 MNIST images).
QValue startValue(const QuantizedModel& m, const RowMatrix& input) {
    const OpGraph& g = m.graph;
    const auto is_input = [](const Op& op) { return op.kind == OpKind::Input; };
    const auto first = std::find_if(g.ops.begin(), g.ops.end(), is_input);
    if (first == g.ops.end() || std::count_if(g.ops.begin(), g.ops.end(), is_input) != 1 || g.chw_input ||
        input.cols() != prod(g.input_shape))
        return fromFloat(graphInput(g, input), Domain::Float, {});
    const QuantizedOp& o = m.ops[static_cast<size_t>(first - g.ops.begin())];
    if (o.domain == Domain::Float || o.in.empty()) return fromFloat(graphInput(g, input), Domain::Float, {});
    QValue v;
    v.rows = input.rows();
    QValue q = intLike(v, o.domain, o.in[0], g.input_shape);
    quantizeInto(input.data(), input.size(), q);
    return q;
}

// One op of the integer engine, its inputs brought to its domain and quantization first;
// `pool`: the MaxPool fused into this Conv2D (fusedMaxPools).
QValue integerStep(const Op& op, const QuantizedOp& o, const std::vector<const QValue*>& ins, const std::vector<QValue*>& spare,
                   const Op* pool = nullptr) {
    if (o.domain == Domain::Float) return runFloatSide(op, o, ins, spare);
    std::vector<QValue> conv(ins.size());  // only inputs in another domain or quantization are converted
    std::vector<const QValue*> use(ins);
    for (size_t j = 0; j < ins.size(); ++j) {
        const QValue& v = *ins[j];
        if (v.domain == o.domain && sameParams(v.p, o.in.at(j))) continue;
        conv[j] = converted(v, o.domain, o.in.at(j));
        use[j] = &conv[j];
    }
    if (pool) return convMaxPoolInt(*use[0], op, o, *pool);
    // The first input when nothing else reads it (converted here, or walkGraph's spare):
    // Input, Flatten and Reshape then pass its values on without a copy.
    QValue* own = use[0] == &conv[0] ? &conv[0] : spare[0];
    return runIntegerOp(op, o, use, own);
}

// The Conv2D -> MaxPool pairs a walk from op `first` runs as one op (convMaxPoolInt): [i] is the
// MaxPool that is int8 Conv2D i's only reader, in the conv's quantization; -1 elsewhere.
std::vector<int> fusedMaxPools(const QuantizedModel& m, size_t first) {
    const std::vector<Op>& ops = m.graph.ops;
    std::vector<int> readers(ops.size(), 0), reader(ops.size(), -1), fuse(ops.size(), -1);
    if (m.shapes.size() != ops.size()) return fuse;  // shapes come from calibration; a model built without them runs unfused
    for (size_t i = first; i < ops.size(); ++i)
        for (int j : ops[i].inputs) ++readers[static_cast<size_t>(j)], reader[static_cast<size_t>(j)] = static_cast<int>(i);
    for (size_t i = first; i < ops.size(); ++i) {
        const QuantizedOp& o = m.ops[i];
        if (ops[i].kind != OpKind::Conv2D || o.domain != Domain::Int8 || readers[i] != 1 || static_cast<int>(i) == m.graph.output) continue;
        const size_t j = static_cast<size_t>(reader[i]);
        const Op& pool = ops[j];
        const QuantizedOp& po = m.ops[j];
        if (pool.kind == OpKind::MaxPool && pool.inputs.size() == 1 && po.domain == Domain::Int8 && sameParams(po.in.at(0), o.out) &&
            maxPoolWindowsNonEmpty(poolGeometry(m.shapes[i], pool.config)))
            fuse[i] = static_cast<int>(j);
    }
    return fuse;
}

// The integer engine's walk (walkGraph's arguments). Unless keep_all (which wants every op's
// own value), fused pairs run as one op: the conv's slot holds the pooled value, which the
// MaxPool passes on.
std::vector<QValue> integerWalk(const QuantizedModel& m, QValue input, bool keep_all, size_t first = 0,
                                const std::vector<QValue>* before = nullptr) {
    const std::vector<int> fuse = keep_all ? std::vector<int>(m.ops.size(), -1) : fusedMaxPools(m, first);
    std::vector<char> pooled(m.ops.size(), 0);
    for (int j : fuse)
        if (j >= 0) pooled[static_cast<size_t>(j)] = 1;
    const auto run = [&](size_t i, const Op& op, const std::vector<const QValue*>& ins, const std::vector<QValue*>& spare) {
        if (pooled[i]) return spare[0] ? std::move(*spare[0]) : *ins[0];
        return integerStep(op, m.ops[i], ins, spare, fuse[i] >= 0 ? &m.graph.ops[static_cast<size_t>(fuse[i])] : nullptr);
    };
    return walkGraph<QValue>(m.graph, std::move(input), keep_all, run, first, before);
}

}  // namespace

struct QuantizedTrace::Values {
    QValue input;
    std::vector<QValue> ops;
};
QuantizedTrace::QuantizedTrace() = default;
QuantizedTrace::QuantizedTrace(QuantizedTrace&&) noexcept = default;
QuantizedTrace& QuantizedTrace::operator=(QuantizedTrace&&) noexcept = default;
QuantizedTrace::~QuantizedTrace() = default;

QuantizedTrace traceQuantized(const QuantizedModel& m, const RowMatrix& input) {
    QuantizedTrace t;
    t.values = std::make_unique<QuantizedTrace::Values>();
    t.values->input = startValue(m, input);
    t.values->ops = integerWalk(m, t.values->input, true);
    return t;
}

RowMatrix runQuantizedFrom(const QuantizedModel& m, const QuantizedTrace& trace, size_t first) {
    const size_t out = static_cast<size_t>(m.graph.output);
    const std::vector<QValue>& before = trace.values->ops;
    if (out < first) return toFloat(before[out]).x;
    QValue y = std::move(integerWalk(m, trace.values->input, false, first, &before)[out]);
    return toFloat(y, &y).x;
}

// The integer engine runs a batch in chunks whose widest value (int8: a byte a number) fits in
// 256 KiB, so an op's output is still in L2 for the op that reads it. A conv whose max pooling is
// fused into it never holds its whole output, so its pooled value is what counts (fmnist_cnn:
// 6 KB a sample, chunks of 40 rather than 10 for its 25 KB unpooled first conv; the MLP's widest
// is 784 bytes: batches stay whole). Chunks are whole VNNI tiles (8 rows) where they can be:
// a dense layer's leftover rows go one at a time, each reading all of its weights.
int64_t integerChunkRows(const QuantizedModel& m) {
    const std::vector<int> fuse = fusedMaxPools(m, 0);
    int64_t widest = 1;
    for (size_t i = 0; i < m.shapes.size(); ++i)
        if (fuse[i] < 0) widest = std::max(widest, prod(m.shapes[i]));
    const int64_t rows = std::max<int64_t>((int64_t{256} << 10) / widest, 1);
    return rows >= kernels::kVnniMR ? rows / kernels::kVnniMR * kernels::kVnniMR : rows;
}

// The fake-quant simulation holds float values and fuses nothing: chunks whose widest value
// fits in 1 MiB (fmnist_cnn's first conv: 86 KB a sample, chunks of 12). A whole batch of 256
// made each op a pass over 22 MB, and the simulation took 4x the float engine's time.
int64_t fakeQuantChunkRows(const QuantizedModel& m) {
    int64_t widest = 1;
    for (const Shape& s : m.shapes) widest = std::max(widest, prod(s));
    return std::max<int64_t>((int64_t{1} << 20) / (widest * int64_t(sizeof(float))), 1);
}

RowMatrix runQuantizedOutput(const QuantizedModel& m, QuantizedRun how, const RowMatrix& input) {
    const auto run = [&](const RowMatrix& x) { return std::move(runQuantized(m, how, x, false)[static_cast<size_t>(m.graph.output)]); };
    return inChunks(input, how == QuantizedRun::Integer ? integerChunkRows(m) : fakeQuantChunkRows(m), run);
}

std::vector<RowMatrix> runQuantized(const QuantizedModel& m, QuantizedRun how, const RowMatrix& input, bool keep_all) {
    std::vector<RowMatrix> out(m.graph.ops.size());
    if (how == QuantizedRun::FakeQuant) {
        std::vector<Act> acts = runGraph<Act>(m, graphInput(m.graph, input), keep_all,
                                              [](const Op& op, const QuantizedOp& o, const std::vector<const Act*>& ins,
                                                 const std::vector<Act*>& spare) {
            std::vector<Act> copies;  // fakeQuantOp edits its inputs: take those nothing reads later
            for (size_t j = 0; j < ins.size(); ++j) copies.push_back(spare[j] ? std::move(*spare[j]) : *ins[j]);
            return fakeQuantOp(op, o, std::move(copies));
        });
        for (size_t i = 0; i < acts.size(); ++i) out[i] = std::move(acts[i].x);
        return out;
    }
    std::vector<QValue> vals = integerWalk(m, startValue(m, input), keep_all);
    for (size_t i = 0; i < vals.size(); ++i)
        if (keep_all || static_cast<int>(i) == m.graph.output) out[i] = toFloat(vals[i], &vals[i]).x;
    return out;
}

}  // namespace qs
