// jgd's one-pass Adam/AdamW over a flat float32 bucket: an XLA FFI custom
// call, built and loaded by jgd/kernels.py for jgd.train's flat step on CPU.
//
// XLA:CPU has no multi-output loop fusion, so XLA's Adam makes three passes
// over memory (new m, new v, then p reading both back: 40 bytes per
// parameter). This loop reads g, p, m, v once and writes p, m, v once (28
// bytes), on up to two threads, in place (the outputs alias p, m, v).
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
#include <thread>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

template <bool kDecay, bool kScale>
static void AdamRange(const float* g, const float* s, float* p, float* m,
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

template <bool kDecay, bool kScale>
static void Run(const float* g, const float* s, float* p, float* m, float* v,
                int64_t n) {
  // Below ~1M elements one thread is faster than starting a second.
  if (n < (int64_t{1} << 20)) {
    AdamRange<kDecay, kScale>(g, s, p, m, v, 0, n);
    return;
  }
  const int64_t half = (n / 2) & ~int64_t{63};  // cache-line aligned split
  std::thread other(
      [=] { AdamRange<kDecay, kScale>(g, s, p, m, v, half, n); });
  AdamRange<kDecay, kScale>(g, s, p, m, v, 0, half);
  other.join();
}

static ffi::Error FusedAdam(ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> s,
                            ffi::Buffer<ffi::F32> p_in,
                            ffi::Buffer<ffi::F32> m_in,
                            ffi::Buffer<ffi::F32> v_in, int32_t mode,
                            ffi::ResultBuffer<ffi::F32> p_out,
                            ffi::ResultBuffer<ffi::F32> m_out,
                            ffi::ResultBuffer<ffi::F32> v_out) {
  const int64_t n = g.element_count();
  if (s.element_count() != 11 || p_in.element_count() != n ||
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
  const float* gp = g.typed_data();
  const float* sp = s.typed_data();
  switch (mode) {
    case 0: Run<false, false>(gp, sp, p, m, v, n); break;
    case 1: Run<true, false>(gp, sp, p, m, v, n); break;
    case 2: Run<false, true>(gp, sp, p, m, v, n); break;
    case 3: Run<true, true>(gp, sp, p, m, v, n); break;
    default: return ffi::Error::InvalidArgument("jgd_fused_adam: bad mode");
  }
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(JgdFusedAdam, FusedAdam,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // g
                                  .Arg<ffi::Buffer<ffi::F32>>()  // s
                                  .Arg<ffi::Buffer<ffi::F32>>()  // p
                                  .Arg<ffi::Buffer<ffi::F32>>()  // m
                                  .Arg<ffi::Buffer<ffi::F32>>()  // v
                                  .Attr<int32_t>("mode")
                                  .Ret<ffi::Buffer<ffi::F32>>()   // p
                                  .Ret<ffi::Buffer<ffi::F32>>()   // m
                                  .Ret<ffi::Buffer<ffi::F32>>());  // v
