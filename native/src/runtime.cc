// Process-wide state of libtorch (threads, seeds, grad mode, autocast) and autograd entry points.
#include <napi.h>
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/utils.h>
#include <torch/version.h>

#include "caching_allocator.h"
#include "errors.h"
#include "tensor_handle.h"

namespace {

std::vector<at::Tensor> tensorsFrom(Napi::Value v, const char* what, bool allowNull) {
  std::vector<at::Tensor> out;
  if (!v.IsArray()) fail(v.Env(), std::string(what) + ": expected an array of tensors");
  Napi::Array arr = v.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value e = arr.Get(i);
    if (allowNull && (e.IsNull() || e.IsUndefined())) out.emplace_back();
    else out.push_back(TensorHandle::From(e, what));
  }
  return out;
}

bool flag(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsBoolean() && info[i].As<Napi::Boolean>().Value();
}

}  // namespace

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int n = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  if (n < 1) fail(info.Env(), "setNumThreads: expected a positive integer");
  at::set_num_threads(n);
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

// manualSeed(seed): seeds the default generators of every device, as torch.manual_seed does.
Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) fail(info.Env(), "manualSeed: expected a non-negative integer");
  double s = info[0].As<Napi::Number>().DoubleValue();
  if (s < 0 || s != static_cast<double>(static_cast<uint64_t>(s))) fail(info.Env(), "manualSeed: expected a non-negative integer");
  torch::manual_seed(static_cast<uint64_t>(s));
  return info.Env().Undefined();
}

// setGradEnabled(bool) -> previous value
Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  bool previous = at::GradMode::is_enabled();
  at::GradMode::set_enabled(flag(info, 0));
  return Napi::Boolean::New(info.Env(), previous);
}

Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled());
}

// setAutocast(enabled, scalarTypeCode) -> previous enabled; bf16 autocast on CPU (AMX) is a speed lever.
Napi::Value SetAutocast(const Napi::CallbackInfo& info) {
  bool previous = at::autocast::is_cpu_enabled();
  bool enabled = flag(info, 0);
  if (info.Length() > 1 && info[1].IsNumber()) {
    at::autocast::set_autocast_cpu_dtype(static_cast<at::ScalarType>(info[1].As<Napi::Number>().Int32Value()));
  }
  at::autocast::set_cpu_enabled(enabled);
  if (!enabled) at::autocast::clear_cache();
  return Napi::Boolean::New(info.Env(), previous);
}

// autocastState(device 'cpu'|'cuda', enabled, scalarTypeCode?) -> [previous enabled, previous dtype code].
// Sets autocast of one device type and reports what it replaced, so a scope can restore both
// exactly. Leaving autocast drops its cache of lower-precision weight copies: the weights change
// at the next optimizer step, and an fp32 pass afterwards must not see stale casts.
Napi::Value AutocastState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBoolean()) {
    fail(env, "autocastState: expected (device 'cpu' or 'cuda', enabled, dtype code?)");
  }
  std::string device = info[0].As<Napi::String>().Utf8Value();
  if (device != "cpu" && device != "cuda") fail(env, "autocastState: device must be 'cpu' or 'cuda', got '" + device + "'");
  bool cpu = device == "cpu";
  bool enabled = info[1].As<Napi::Boolean>().Value();
  Napi::Array previous = Napi::Array::New(env, 2);
  previous.Set(0u, Napi::Boolean::New(env, cpu ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled()));
  previous.Set(1u, Napi::Number::New(env, static_cast<int>(cpu ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype())));
  if (info.Length() > 2 && info[2].IsNumber()) {
    auto dtype = static_cast<at::ScalarType>(info[2].As<Napi::Number>().Int32Value());
    if (dtype != at::kBFloat16 && dtype != at::kHalf) fail(env, "autocastState: the autocast dtype must be bfloat16 or float16");
    if (cpu) at::autocast::set_autocast_cpu_dtype(dtype);
    else at::autocast::set_autocast_gpu_dtype(dtype);
  }
  if (cpu) at::autocast::set_cpu_enabled(enabled);
  else at::autocast::set_enabled(enabled);
  if (!enabled) at::autocast::clear_cache();
  return previous;
}

// backward(roots, gradients|null, retainGraph, createGraph)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  std::vector<at::Tensor> roots = tensorsFrom(info[0], "backward", false);
  std::vector<at::Tensor> grads;
  if (info.Length() > 1 && info[1].IsArray()) grads = tensorsFrom(info[1], "backward", true);
  c10::optional<bool> retain;
  if (info.Length() > 2 && info[2].IsBoolean()) retain = info[2].As<Napi::Boolean>().Value();
  torch::autograd::backward(roots, grads, retain, flag(info, 3));
  return info.Env().Undefined();
}

// grad(outputs, inputs, gradOutputs|null, retainGraph, createGraph, allowUnused) -> (handle|null)[]
Napi::Value Grad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<at::Tensor> outputs = tensorsFrom(info[0], "grad", false);
  std::vector<at::Tensor> inputs = tensorsFrom(info[1], "grad", false);
  std::vector<at::Tensor> gradOutputs;
  if (info.Length() > 2 && info[2].IsArray()) gradOutputs = tensorsFrom(info[2], "grad", true);
  c10::optional<bool> retain;
  if (info.Length() > 3 && info[3].IsBoolean()) retain = info[3].As<Napi::Boolean>().Value();
  auto result = torch::autograd::grad(outputs, inputs, gradOutputs, retain, flag(info, 4), flag(info, 5));
  Napi::Array out = Napi::Array::New(env, result.size());
  for (size_t i = 0; i < result.size(); i++) out.Set(i, TensorHandle::Wrap(env, result[i]));
  return out;
}

// tensorGrad(handle) -> handle of .grad, or null
Napi::Value TensorGrad(const Napi::CallbackInfo& info) {
  return TensorHandle::Wrap(info.Env(), TensorHandle::From(info[0], "grad").grad());
}

// setTensorGrad(handle, grad|null): null frees the gradient (zero_grad with set_to_none)
Napi::Value SetTensorGrad(const Napi::CallbackInfo& info) {
  const at::Tensor& t = TensorHandle::From(info[0], "setGrad");
  if (info.Length() < 2 || info[1].IsNull() || info[1].IsUndefined()) {
    t.mutable_grad().reset();
  } else {
    t.mutable_grad() = TensorHandle::From(info[1], "setGrad");
  }
  return info.Env().Undefined();
}

Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  const at::Tensor& t = TensorHandle::From(info[0], "setRequiresGrad");
  const_cast<at::Tensor&>(t).set_requires_grad(flag(info, 1));
  return info.Env().Undefined();
}

Napi::Value LiveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(TensorHandle::Live()));
}

Napi::Value Version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), TORCH_VERSION);
}

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  int n = at::hasCUDA() ? static_cast<int>(at::detail::getCUDAHooks().getNumGPUs()) : 0;
  return Napi::Number::New(info.Env(), n);
}

// Whether this libtorch was built with CUDA (its CUDA library loaded), whatever the machine has.
Napi::Value CudaBuilt(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::hasCUDA());
}

Napi::Value ParallelInfo(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), at::get_parallel_info());
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(emptyCpuCache()));
}

Napi::Value CachedBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(cachedCpuBytes()));
}

// dispose(handle) -> whether it was live; disposing twice is harmless
Napi::Value Dispose(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), TensorHandle::Dispose(info.Env(), info[0]));
}

// countForGc(handle): from now until it is disposed, the tensor's bytes count in V8's external memory
// (the JS side calls it when no scope owns the tensor, so only the GC would free a forgotten one)
Napi::Value CountForGc(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), TensorHandle::CountForGc(info.Env(), info[0]));
}

Napi::Value IsLive(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), TensorHandle::IsLive(info[0]));
}

// setData(handle, source): the handle's tensor takes source's storage, shape, strides and dtype while
// keeping its identity and autograd leaf status (PyTorch's `param.data = source`). Used to move a
// parameter to another memory format or device without the optimizer losing track of it.
Napi::Value SetData(const Napi::CallbackInfo& info) {
  const at::Tensor& t = TensorHandle::From(info[0], "setData");
  const at::Tensor& source = TensorHandle::From(info[1], "setData");
  const_cast<at::Tensor&>(t).set_data(source);
  return info.Env().Undefined();
}
