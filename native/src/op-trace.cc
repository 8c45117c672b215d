// An op recorder over libtorch's RecordFunction callbacks: every dispatcher call (nested ones, the
// casts autocast inserts, backward nodes) with its input dtypes and shapes, in the format PyTorch's
// profiler reports them (record_shapes), so a step here and the same step in PyTorch can be diffed
// op by op. The callback exists only between opTraceStart and opTraceStop: when off, the dispatcher
// sees no callback and pays nothing.
// libtorch is built with NDEBUG: its RecordFunction never sets the debug-only flag that inputs()
// asserts on in a build without NDEBUG (the flag sits in padding, so the layout is the same).
#ifndef NDEBUG
#define NDEBUG
#endif
#include <napi.h>
#include <ATen/record_function.h>
#include <ATen/core/ivalue.h>

#include <mutex>
#include <string>
#include <vector>

#include "errors.h"

namespace {

struct OpRecord {
  std::string name;
  int depth;
  std::vector<std::string> dtypes;
  std::vector<std::vector<int64_t>> shapes;
};

std::mutex& recordsMutex = *new std::mutex();
std::vector<OpRecord>& records = *new std::vector<OpRecord>();
bool active = false;
at::CallbackHandle handle = 0;
thread_local int depth = 0;

// As the profiler names them: a tensor's dtype, "Scalar" for a number, "" for anything else.
void describe(const c10::IValue& v, std::string& dtype, std::vector<int64_t>& shape) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    if (t.defined()) {
      dtype = std::string(t.dtype().name());
      shape = t.sizes().vec();
    }
  } else if (v.isScalar()) {
    dtype = "Scalar";
  } else if (v.isTensorList()) {
    dtype = "TensorList";
  }
}

std::unique_ptr<at::ObserverContext> onStart(const at::RecordFunction& fn) {
  OpRecord r{fn.name(), depth++, {}, {}};
  for (const c10::IValue& v : fn.inputs()) {
    std::string dtype;
    std::vector<int64_t> shape;
    describe(v, dtype, shape);
    r.dtypes.push_back(std::move(dtype));
    r.shapes.push_back(std::move(shape));
  }
  std::lock_guard<std::mutex> lock(recordsMutex);
  records.push_back(std::move(r));
  return nullptr;
}

void onEnd(const at::RecordFunction&, at::ObserverContext*) { depth--; }

}  // namespace

// opTraceStart(): records every op from now on (all threads), dropping an earlier unread trace.
Napi::Value OpTraceStart(const Napi::CallbackInfo& info) {
  if (active) fail(info.Env(), "opTraceStart: a trace is already recording (call opTraceStop first)");
  {
    std::lock_guard<std::mutex> lock(recordsMutex);
    records.clear();
  }
  depth = 0;
  handle = at::addGlobalCallback(at::RecordFunctionCallback(onStart, onEnd)
                                     .needsInputs(true)
                                     .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
  active = true;
  return info.Env().Undefined();
}

// opTraceStop() -> [{name, depth, dtypes, shapes}] in call order; removes the callback.
Napi::Value OpTraceStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!active) fail(env, "opTraceStop: no trace is recording (call opTraceStart first)");
  at::removeCallback(handle);
  active = false;
  std::vector<OpRecord> taken;
  {
    std::lock_guard<std::mutex> lock(recordsMutex);
    taken.swap(records);
  }
  Napi::Array out = Napi::Array::New(env, taken.size());
  for (size_t i = 0; i < taken.size(); i++) {
    const OpRecord& r = taken[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", Napi::String::New(env, r.name));
    o.Set("depth", Napi::Number::New(env, r.depth));
    Napi::Array dtypes = Napi::Array::New(env, r.dtypes.size());
    Napi::Array shapes = Napi::Array::New(env, r.shapes.size());
    for (size_t j = 0; j < r.dtypes.size(); j++) {
      dtypes.Set(j, Napi::String::New(env, r.dtypes[j]));
      Napi::Array shape = Napi::Array::New(env, r.shapes[j].size());
      for (size_t k = 0; k < r.shapes[j].size(); k++) shape.Set(k, Napi::Number::New(env, static_cast<double>(r.shapes[j][k])));
      shapes.Set(j, shape);
    }
    o.Set("dtypes", dtypes);
    o.Set("shapes", shapes);
    out.Set(i, o);
  }
  return out;
}
