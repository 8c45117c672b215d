// Moving bytes between JS typed arrays and tensors, and reading a tensor's metadata.
#include <napi.h>
#include <ATen/ATen.h>

#include <cstring>

#include "errors.h"
#include "tensor_handle.h"

namespace {

std::vector<int64_t> shapeFrom(Napi::Value v) {
  if (!v.IsArray()) fail(v.Env(), "fromBuffer: shape must be an array of non-negative integers");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value d = arr.Get(i);
    double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (x < 0 || x != static_cast<double>(static_cast<int64_t>(x))) {
      fail(v.Env(), "fromBuffer: shape must be an array of non-negative integers");
    }
    shape.push_back(static_cast<int64_t>(x));
  }
  return shape;
}

}  // namespace

// fromBuffer(typedArray, scalarTypeCode, shape) -> handle (the bytes are copied)
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsNumber()) {
    fail(env, "fromBuffer: expected (typedArray, dtype, shape)");
  }
  Napi::TypedArray array = info[0].As<Napi::TypedArray>();
  auto dtype = static_cast<at::ScalarType>(info[1].As<Napi::Number>().Int32Value());
  std::vector<int64_t> shape = shapeFrom(info[2]);
  // Check the size before allocating: a wrong (or hostile) shape must not trigger a huge allocation.
  size_t itemSize = c10::elementSize(dtype);
  size_t bytes = itemSize;
  for (int64_t d : shape) {
    if (d != 0 && bytes > SIZE_MAX / static_cast<size_t>(d)) fail(env, "fromBuffer: shape too large");
    bytes *= static_cast<size_t>(d);
  }
  if (array.ByteLength() != bytes) {
    fail(env, "fromBuffer: " + std::to_string(array.ByteLength()) + " bytes given, shape " +
                  c10::str(at::IntArrayRef(shape)) + " of " + std::string(c10::toString(dtype)) + " needs " + std::to_string(bytes));
  }
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  const uint8_t* src = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  if (bytes > 0) std::memcpy(t.data_ptr(), src, bytes);
  return TensorHandle::Wrap(env, t);
}

// toBuffer(handle) -> ArrayBuffer holding the tensor's elements in row-major order, on the CPU
Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  at::Tensor t = TensorHandle::From(info[0], "toBuffer").detach().to(at::kCPU).contiguous();
  size_t bytes = t.numel() * t.element_size();
  Napi::ArrayBuffer out = Napi::ArrayBuffer::New(env, bytes);
  if (bytes > 0) std::memcpy(out.Data(), t.data_ptr(), bytes);
  return out;
}

// meta(handle) -> { shape, strides, dtype, device, requiresGrad, isLeaf }
Napi::Value Meta(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = TensorHandle::From(info[0], "meta");
  Napi::Object out = Napi::Object::New(env);
  Napi::Array shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); i++) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.size(i))));
  out.Set("shape", shape);
  Napi::Array strides = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); i++) strides.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.stride(i))));
  out.Set("strides", strides);
  out.Set("dtype", Napi::Number::New(env, static_cast<int>(t.scalar_type())));
  out.Set("device", Napi::String::New(env, t.device().str()));
  out.Set("requiresGrad", Napi::Boolean::New(env, t.requires_grad()));
  out.Set("isLeaf", Napi::Boolean::New(env, t.is_leaf()));
  return out;
}

// shape(handle) -> number[]: the hot path of shape checks, without building a whole meta object
Napi::Value Shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = TensorHandle::From(info[0], "shape");
  Napi::Array shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); i++) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.size(i))));
  return shape;
}
