#pragma once
// The one object type of the addon: a JS handle owning a reference to an at::Tensor.
#include <napi.h>
#include <ATen/ATen.h>

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Makes a JS handle that owns t (an undefined tensor becomes null).
  static Napi::Value Wrap(Napi::Env env, at::Tensor t);
  // The tensor behind a JS value; a clear Error for anything else or a disposed handle.
  static const at::Tensor& From(Napi::Value v, const char* what);
  static bool Is(Napi::Value v);
  static int64_t Live();

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  void Release();

  at::Tensor tensor_;
  int64_t reportedBytes_ = 0;
};
