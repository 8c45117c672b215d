#include "tensor_handle.h"

#include <atomic>

#include "errors.h"

namespace {
Napi::FunctionReference* constructor = nullptr;
at::Tensor* pending = nullptr;
std::atomic<int64_t> live{0};
// Bytes released by finalizers, reported to V8 at the next ordinary call: adjusting V8's external
// memory from inside a GC finalizer is not safe.
std::atomic<int64_t> unreported{0};

int64_t bytesOf(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return 0;
  return static_cast<int64_t>(t.storage().nbytes());
}

// Tells V8 how much native memory its handles hold, so the GC safety net runs under pressure.
// Batched: a V8 call per tensor would cost more than small operations themselves.
int64_t pendingReport = 0;
constexpr int64_t kReportGranularity = 4 << 20;

void report(Napi::Env env, int64_t delta) {
  pendingReport += delta - unreported.exchange(0);
  if (pendingReport >= kReportGranularity || pendingReport <= -kReportGranularity) {
    Napi::MemoryManagement::AdjustExternalMemory(env, pendingReport);
    pendingReport = 0;
  }
}
}  // namespace

Napi::Function TensorHandle::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "TensorHandle",
                                    {InstanceMethod("dispose", &TensorHandle::Dispose),
                                     InstanceAccessor("disposed", &TensorHandle::Disposed, nullptr)});
  constructor = new Napi::FunctionReference(Napi::Persistent(ctor));
  return ctor;
}

Napi::Value TensorHandle::Wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  pending = &t;
  Napi::Object obj;
  try {
    obj = constructor->New({});
  } catch (...) {
    pending = nullptr;
    throw;
  }
  pending = nullptr;
  return obj;
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {
  if (pending == nullptr) {
    throw Napi::TypeError::New(info.Env(), "TensorHandle is made by the engine, not constructed from JS");
  }
  tensor_ = std::move(*pending);
  pending = nullptr;
  reportedBytes_ = bytesOf(tensor_);
  live++;
  report(info.Env(), reportedBytes_);
}

TensorHandle::~TensorHandle() {
  if (tensor_.defined()) {
    unreported += reportedBytes_;
    live--;
    tensor_.reset();
  }
}

void TensorHandle::Release() {
  if (!tensor_.defined()) return;
  tensor_.reset();
  live--;
  report(Env(), -reportedBytes_);
  reportedBytes_ = 0;
}

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  Release();
  return info.Env().Undefined();
}

Napi::Value TensorHandle::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !tensor_.defined());
}

bool TensorHandle::Is(Napi::Value v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(constructor->Value());
}

const at::Tensor& TensorHandle::From(Napi::Value v, const char* what) {
  if (!Is(v)) fail(v.Env(), std::string(what) + ": expected a tensor");
  TensorHandle* h = Unwrap(v.As<Napi::Object>());
  if (!h->tensor_.defined()) fail(v.Env(), std::string(what) + ": tensor used after dispose()");
  return h->tensor_;
}

int64_t TensorHandle::Live() { return live.load(); }
