// One-pass Adam over a flat float32 buffer, as an XLA FFI custom call: a
// prototype for benchmarks/fused_adam/run.py, not part of jgd. XLA:CPU has no
// multi-output loop fusion, so XLA's Adam makes three passes over memory (40
// bytes per parameter); this loop reads p, g, m, v once and writes p, m, v
// once (28 bytes), on two threads.
//
// The arithmetic is XLA's own, so that the results can be compared: a
// division by a broadcast scalar becomes a multiply by its reciprocal, and
// a*b + c contracts to an FMA where the CPU has one (build with
// -march=native -ffp-contract=fast).
#include <cmath>
#include <cstdint>
#include <thread>
#include "xla/ffi/api/ffi.h"
namespace ffi = xla::ffi;

// s = [1 - b1, b1, 1 - b2, b2, 1 / bc1, 1 / bc2, eps, eps_root, -lr]
static void adam_range(const float* g, float* p, float* m, float* v,
                       const float* s, int64_t lo, int64_t hi) {
  const float omb1 = s[0], b1 = s[1], omb2 = s[2], b2 = s[3], r1 = s[4],
              r2 = s[5], eps = s[6], eps_root = s[7], neg_lr = s[8];
  for (int64_t i = lo; i < hi; ++i) {
    float gi = g[i];
    float mi = omb1 * gi + b1 * m[i];
    float vi = omb2 * (gi * gi) + b2 * v[i];
    m[i] = mi;
    v[i] = vi;
    float u = (mi * r1) / (std::sqrt(vi * r2 + eps_root) + eps);
    p[i] = p[i] + u * neg_lr;
  }
}

static ffi::Error AdamImpl(ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> s,
                           ffi::Buffer<ffi::F32> p_in, ffi::Buffer<ffi::F32> m_in,
                           ffi::Buffer<ffi::F32> v_in,
                           ffi::ResultBuffer<ffi::F32> p, ffi::ResultBuffer<ffi::F32> m,
                           ffi::ResultBuffer<ffi::F32> v) {
  int64_t n = g.element_count();
  const float* sc = s.typed_data();
  float *pp = p->typed_data(), *mm = m->typed_data(), *vv = v->typed_data();
  const float* gg = g.typed_data();
  if (n < (1 << 20)) { adam_range(gg, pp, mm, vv, sc, 0, n); return ffi::Error::Success(); }
  int64_t half = (n / 2) & ~int64_t(63);
  std::thread t([&] { adam_range(gg, pp, mm, vv, sc, half, n); });
  adam_range(gg, pp, mm, vv, sc, 0, half);
  t.join();
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(JgdAdam, AdamImpl,
    ffi::Ffi::Bind()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Ret<ffi::Buffer<ffi::F32>>()
        .Ret<ffi::Buffer<ffi::F32>>()
        .Ret<ffi::Buffer<ffi::F32>>());
