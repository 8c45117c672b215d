#include "tensor_handle.h"

#include <vector>

#include "errors.h"

namespace {

struct Slot {
  at::Tensor tensor;
  uint32_t generation = 0;
  // Bytes counted in V8's external memory (CountForGc), 0 while a scope owns the tensor.
  int64_t countedBytes = 0;
  bool counted = false;
};

constexpr double kIndexSpan = 16777216.0;  // 2^24 slots; the generation fills the rest of 53 bits
constexpr uint32_t kGenerationMod = 1u << 29;

// Never destroyed: at process exit, static destructors run in no fixed order across libraries, and
// releasing tensors after libtorch's (or our allocator's) statics are gone crashed the process.
std::vector<Slot>& slots = *new std::vector<Slot>();
std::vector<uint32_t>& freeSlots = *new std::vector<uint32_t>();
int64_t live = 0;

// Native bytes of the tensors whose release is up to the GC (the JS side's FinalizationRegistry),
// told to V8 so that forgotten tensors are collected under memory pressure. Only those: a tensor a
// tidy() scope owns is freed when the scope closes, and the scope holds it strongly, so no GC can
// free it earlier. Counting a pass's activations too made V8 start a major GC in most forward passes
// (their tens of MB crossed its 64 MB external soft limit) for memory no collection could release.
// Batched: a V8 call per tensor would cost more than small operations.
int64_t pendingReport = 0;
constexpr int64_t kReportGranularity = 4 << 20;

void report(Napi::Env env, int64_t delta) {
  pendingReport += delta;
  if (pendingReport >= kReportGranularity || pendingReport <= -kReportGranularity) {
    Napi::MemoryManagement::AdjustExternalMemory(env, pendingReport);
    pendingReport = 0;
  }
}

int64_t bytesOf(const at::Tensor& t) {
  if (!t.has_storage()) return 0;
  return static_cast<int64_t>(t.storage().nbytes());
}

// The slot a JS value names, or nullptr (not a handle, out of range, or disposed).
Slot* lookup(Napi::Value v) {
  if (!v.IsNumber()) return nullptr;
  double id = v.As<Napi::Number>().DoubleValue();
  if (!(id >= 0) || id != static_cast<double>(static_cast<int64_t>(id))) return nullptr;
  auto n = static_cast<int64_t>(id);
  auto index = static_cast<size_t>(n % static_cast<int64_t>(kIndexSpan));
  auto generation = static_cast<uint32_t>(n / static_cast<int64_t>(kIndexSpan));
  if (index >= slots.size()) return nullptr;
  Slot& s = slots[index];
  if (s.generation != generation || !s.tensor.defined()) return nullptr;
  return &s;
}

}  // namespace

namespace TensorHandle {

Napi::Value Wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  uint32_t index;
  if (!freeSlots.empty()) {
    index = freeSlots.back();
    freeSlots.pop_back();
  } else {
    if (slots.size() >= static_cast<size_t>(kIndexSpan)) fail(env, "too many live tensors (16M): dispose() what you no longer need");
    index = static_cast<uint32_t>(slots.size());
    slots.emplace_back();
  }
  Slot& s = slots[index];
  s.tensor = std::move(t);
  live++;
  return Napi::Number::New(env, s.generation * kIndexSpan + index);
}

const at::Tensor& From(Napi::Value v, const char* what) {
  Slot* s = lookup(v);
  if (s == nullptr) {
    if (v.IsNumber()) fail(v.Env(), std::string(what) + ": tensor used after dispose()");
    fail(v.Env(), std::string(what) + ": expected a tensor");
  }
  return s->tensor;
}

bool Dispose(Napi::Env env, Napi::Value v) {
  Slot* s = lookup(v);
  if (s == nullptr) return false;
  s->tensor.reset();
  s->generation = (s->generation + 1) % kGenerationMod;
  if (s->counted) report(env, -s->countedBytes);
  s->countedBytes = 0;
  s->counted = false;
  live--;
  freeSlots.push_back(static_cast<uint32_t>(s - slots.data()));
  return true;
}

bool CountForGc(Napi::Env env, Napi::Value v) {
  Slot* s = lookup(v);
  if (s == nullptr || s->counted) return false;
  s->counted = true;
  s->countedBytes = bytesOf(s->tensor);
  report(env, s->countedBytes);
  return true;
}

const at::Tensor* Find(Napi::Value v) {
  Slot* s = lookup(v);
  return s == nullptr ? nullptr : &s->tensor;
}

bool IsLive(Napi::Value v) { return lookup(v) != nullptr; }

int64_t Live() { return live; }

}  // namespace TensorHandle
