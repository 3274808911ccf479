// jgd's CPU kernels for jgd.train's flat step, XLA FFI custom calls built and
// loaded by jgd/kernels.py: a one-pass Adam/AdamW over a flat float32 bucket
// (JgdFusedAdam), the squared norm of a bucket (JgdSumSquares), packing
// per-leaf gradients into a bucket (JgdPack), and handing out the leaves'
// offsets (JgdUnstack, at the end).
//
// XLA:CPU has no multi-output loop fusion, so XLA's Adam makes three passes
// over memory (new m, new v, then p reading both back: 40 bytes per
// parameter). This loop reads g, p, m, v once and writes p, m, v once (28
// bytes), on up to two threads, in place (the outputs alias p, m, v). It
// also returns sum(g**2), accumulated in double, for make_step's grad_norm
// metric, which would otherwise read g once more.
//
// The arithmetic is XLA's own, operation for operation, so the results are
// bit-identical to jgd's XLA path (tests/test_kernels.py): XLA turns a
// division by a broadcast scalar into a multiply by its reciprocal (so the
// bias corrections arrive as 1/bc), and LLVM contracts a*b + c to an FMA
// where the CPU has one: each std::fma below is one XLA emits (the file is
// built with -ffp-contract=off, so there are no others).
//
// s = [1 - b1, b1, 1 - b2, b2, 1/bc1, 1/bc2, eps, eps_root, step, wd, gscale]
//   step = -learning_rate; wd = weight decay (mode & 1); gscale = the
//   global-norm clipping factor applied to g first (mode & 2).
#include <cmath>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

// The loops walk a bucket in blocks of this many elements (16 KiB of g), so
// that summing a block's squares after updating it reads g from L1.
constexpr int64_t kBlock = 4096;

// Buckets of at least this many elements are split over two threads: below
// it, starting a thread (tens of microseconds) costs more than it saves.
constexpr int64_t kTwoThreads = int64_t{1} << 17;

template <bool kDecay, bool kScale>
static void AdamLoop(const float* g, const float* s, float* p, float* m,
                     float* v, int64_t lo, int64_t hi) {
  const float omb1 = s[0], b1 = s[1], omb2 = s[2], b2 = s[3], r1 = s[4],
              r2 = s[5], eps = s[6], eps_root = s[7], step = s[8], wd = s[9],
              gscale = s[10];
  for (int64_t i = lo; i < hi; ++i) {
    float gi = g[i];
    if (kScale) gi = gi * gscale;
    const float mi = std::fma(omb1, gi, b1 * m[i]);
    // XLA (LLVM) contracts nu's update one way or the other depending on
    // whether g was scaled first; each FMA here is the one it emits.
    const float vi = kScale ? std::fma(b2, v[i], omb2 * (gi * gi))
                            : std::fma(omb2, gi * gi, b2 * v[i]);
    m[i] = mi;
    v[i] = vi;
    float u = (mi * r1) / (std::sqrt(std::fma(vi, r2, eps_root)) + eps);
    if (kDecay) u = std::fma(wd, p[i], u);
    p[i] = std::fma(step, u, p[i]);
  }
}

// sum(g**2) over one block [lo, hi): 32 float lanes, so that the compiler
// vectorises it without reassociating, each summing at most 128 squares;
// the lanes and the blocks are then added in double.
static double SumSquares(const float* g, int64_t lo, int64_t hi) {
  float lane[32] = {};
  int64_t i = lo;
  for (; i + 32 <= hi; i += 32) {
    for (int j = 0; j < 32; ++j) lane[j] += g[i + j] * g[i + j];
  }
  double total = 0;
  for (; i < hi; ++i) total += double(g[i]) * double(g[i]);
  for (int j = 0; j < 32; ++j) total += lane[j];
  return total;
}

// The update over [lo, hi), block by block; each block's g is summed for
// the grad-norm metric while it is still in L1, so g is read from memory once.
template <bool kDecay, bool kScale>
static double AdamRange(const float* g, const float* s, float* p, float* m,
                        float* v, int64_t lo, int64_t hi) {
  double sumsq = 0;
  for (int64_t b = lo; b < hi; b += kBlock) {
    const int64_t e = std::min(b + kBlock, hi);
    AdamLoop<kDecay, kScale>(g, s, p, m, v, b, e);
    if (!kScale) sumsq += SumSquares(g, b, e);  // with clipping: SumSquaresFfi
  }
  return sumsq;
}

// sum(g**2) over [lo, hi), block by block.
static double SumSquaresRange(const float* g, int64_t lo, int64_t hi) {
  double total = 0;
  for (int64_t b = lo; b < hi; b += kBlock) {
    total += SumSquares(g, b, std::min(b + kBlock, hi));
  }
  return total;
}

// A bucket's gradient as the per-leaf buffers it is made of (the leaves in
// bucket order), so that nothing has to pack them first.
struct Leaves {
  std::vector<const float*> g;
  std::vector<int64_t> start;  // start[i]: leaf i's offset; start.back(): total
};

static ffi::ErrorOr<Leaves> GetLeaves(const ffi::RemainingArgs& args) {
  Leaves leaves;
  leaves.start.push_back(0);
  for (size_t i = 0; i < args.size(); ++i) {
    auto leaf = args.get<ffi::Buffer<ffi::F32>>(i);
    if (!leaf.has_value()) return ffi::Unexpected(leaf.error());
    leaves.g.push_back(leaf->typed_data());
    leaves.start.push_back(leaves.start.back() + leaf->element_count());
  }
  return leaves;
}

// fn(g, a, len) for each piece of a leaf inside [lo, hi): g points at the
// leaf's element for bucket index a.
template <typename F>
static void ForPieces(const Leaves& leaves, int64_t lo, int64_t hi, F fn) {
  const auto& start = leaves.start;
  size_t i = std::upper_bound(start.begin(), start.end(), lo) - start.begin();
  for (i = i == 0 ? 0 : i - 1; i < leaves.g.size() && start[i] < hi; ++i) {
    const int64_t a = std::max(lo, start[i]), b = std::min(hi, start[i + 1]);
    if (a < b) fn(leaves.g[i] + (a - start[i]), a, b - a);
  }
}

// body(lo, hi) over [0, n) on one or two threads; the sum of what it returns.
template <typename F>
static double Split(int64_t n, F body) {
  if (n < kTwoThreads) return body(int64_t{0}, n);
  const int64_t half = (n / 2) & ~int64_t{63};  // cache-line aligned split
  double upper = 0;
  std::thread other([&] { upper = body(half, n); });
  const double lower = body(int64_t{0}, half);
  other.join();
  return lower + upper;
}

// The squared l2 norm of a bucket's gradient, for clip_by_global_norm, which
// needs it over all buckets before any update: one read of g.
static ffi::Error SumSquaresFfi(ffi::RemainingArgs args,
                                ffi::ResultBuffer<ffi::F32> out) {
  auto leaves = GetLeaves(args);
  if (!leaves.has_value()) return leaves.error();
  const double total = Split(leaves->start.back(), [&](int64_t lo, int64_t hi) {
    double t = 0;
    ForPieces(*leaves, lo, hi, [&](const float* g, int64_t, int64_t len) {
      t += SumSquaresRange(g, 0, len);
    });
    return t;
  });
  *out->typed_data() = static_cast<float>(total);
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(JgdSumSquares, SumSquaresFfi,
                              ffi::Ffi::Bind()
                                  .RemainingArgs()  // the gradient's leaves
                                  .Ret<ffi::Buffer<ffi::F32>>());

template <bool kDecay, bool kScale>
static double RunAdam(const Leaves& leaves, const float* s, float* p, float* m,
                      float* v) {
  return Split(leaves.start.back(), [&](int64_t lo, int64_t hi) {
    double t = 0;
    ForPieces(leaves, lo, hi, [&](const float* g, int64_t a, int64_t len) {
      t += AdamRange<kDecay, kScale>(g, s, p + a, m + a, v + a, 0, len);
    });
    return t;
  });
}

static ffi::Error FusedAdam(ffi::Buffer<ffi::F32> s, ffi::Buffer<ffi::F32> p_in,
                            ffi::Buffer<ffi::F32> m_in,
                            ffi::Buffer<ffi::F32> v_in, ffi::RemainingArgs g,
                            int32_t mode, ffi::ResultBuffer<ffi::F32> p_out,
                            ffi::ResultBuffer<ffi::F32> m_out,
                            ffi::ResultBuffer<ffi::F32> v_out,
                            ffi::ResultBuffer<ffi::F32> sumsq_out) {
  auto leaves = GetLeaves(g);
  if (!leaves.has_value()) return leaves.error();
  const int64_t n = p_in.element_count();
  if (s.element_count() != 11 || leaves->start.back() != n ||
      m_in.element_count() != n || v_in.element_count() != n) {
    return ffi::Error::InvalidArgument("jgd_fused_adam: mismatched buffers");
  }
  float* p = p_out->typed_data();
  float* m = m_out->typed_data();
  float* v = v_out->typed_data();
  // The outputs alias the inputs; copy if XLA gave distinct buffers.
  if (p != p_in.typed_data()) std::copy_n(p_in.typed_data(), n, p);
  if (m != m_in.typed_data()) std::copy_n(m_in.typed_data(), n, m);
  if (v != v_in.typed_data()) std::copy_n(v_in.typed_data(), n, v);
  const float* sp = s.typed_data();
  double sumsq;
  switch (mode) {
    case 0: sumsq = RunAdam<false, false>(*leaves, sp, p, m, v); break;
    case 1: sumsq = RunAdam<true, false>(*leaves, sp, p, m, v); break;
    case 2: sumsq = RunAdam<false, true>(*leaves, sp, p, m, v); break;
    case 3: sumsq = RunAdam<true, true>(*leaves, sp, p, m, v); break;
    default: return ffi::Error::InvalidArgument("jgd_fused_adam: bad mode");
  }
  *sumsq_out->typed_data() = static_cast<float>(sumsq);
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(JgdFusedAdam, FusedAdam,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // s
                                  .Arg<ffi::Buffer<ffi::F32>>()  // p
                                  .Arg<ffi::Buffer<ffi::F32>>()  // m
                                  .Arg<ffi::Buffer<ffi::F32>>()  // v
                                  .RemainingArgs()  // g: the bucket's leaves
                                  .Attr<int32_t>("mode")
                                  .Ret<ffi::Buffer<ffi::F32>>()    // p
                                  .Ret<ffi::Buffer<ffi::F32>>()    // m
                                  .Ret<ffi::Buffer<ffi::F32>>()    // v
                                  .Ret<ffi::Buffer<ffi::F32>>());  // sum(g**2)

// Packing a flat step's per-leaf gradients into their bucket: the leaves,
// in bucket order, copied one after another into the output. XLA:CPU's
// concatenate costs about 1 us per operand at run time and compiles in time
// growing with their number (20 s for 10000); this is one call, a memcpy per
// leaf, on up to two threads.
static ffi::Error Pack(ffi::RemainingArgs leaves, ffi::Result<ffi::AnyBuffer> out) {
  const size_t n = leaves.size();
  std::vector<const char*> src(n);
  std::vector<size_t> bytes(n), start(n);
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    auto leaf = leaves.get<ffi::AnyBuffer>(i);
    if (!leaf.has_value()) return leaf.error();
    src[i] = static_cast<const char*>(leaf->untyped_data());
    bytes[i] = leaf->size_bytes();
    start[i] = total;
    total += bytes[i];
  }
  if (total != out->size_bytes()) {
    return ffi::Error::InvalidArgument("jgd_pack: leaves do not fill the bucket");
  }
  char* dst = static_cast<char*>(out->untyped_data());
  auto copy = [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) std::memcpy(dst + start[i], src[i], bytes[i]);
  };
  if (total < 4 * kTwoThreads || n < 2) {
    copy(0, n);
    return ffi::Error::Success();
  }
  size_t mid = 0;  // the first leaf of the second half, by bytes
  while (mid < n && start[mid] < total / 2) ++mid;
  std::thread other([&] { copy(mid, n); });
  copy(0, mid);
  other.join();
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(JgdPack, Pack,
                              ffi::Ffi::Bind()
                                  .RemainingArgs()
                                  .Ret<ffi::AnyBuffer>());

// A flat step's leaf offsets, passed to the program as one int32 array and
// handed out as one scalar per leaf. Each leaf is cut out of its bucket at
// its scalar (Layout.unpack), so XLA compiles one kernel per distinct leaf
// computation; passed as one scalar argument per leaf instead, the offsets
// cost the runtime about a microsecond per argument on every call, more
// than linearly in their number.
static ffi::Error Unstack(ffi::Buffer<ffi::S32> offsets, ffi::RemainingRets outs) {
  const size_t n = outs.size();
  if (offsets.element_count() != n) {
    return ffi::Error::InvalidArgument("jgd_unstack: one offset per output");
  }
  const int32_t* src = offsets.typed_data();
  for (size_t i = 0; i < n; ++i) {
    auto out = outs.get<ffi::AnyBuffer>(i);
    if (!out.has_value()) return out.error();
    std::memcpy((*out)->untyped_data(), src + i, sizeof(int32_t));
  }
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(JgdUnstack, Unstack,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .RemainingRets());
