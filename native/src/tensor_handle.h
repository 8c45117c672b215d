#pragma once
// Tensors live in a native table; JS holds plain numbers (slot index + generation). No per-tensor
// JS wrapper object or N-API finalizer: those run only when the event loop turns, so a synchronous
// training loop piled up freed-but-unfinalized handles (measured: ~24 KB per step), and building
// the wrapper objects cost more than small operations themselves.
#include <napi.h>
#include <ATen/ATen.h>

namespace TensorHandle {
// The handle of t (a number), or null for an undefined tensor.
Napi::Value Wrap(Napi::Env env, at::Tensor t);
// The tensor behind a handle; a clear Error for anything else or a disposed handle.
const at::Tensor& From(Napi::Value v, const char* what);
// The same without the error: nullptr for anything but a live handle (the caller words the error).
const at::Tensor* Find(Napi::Value v);
// Counts the tensor's bytes in V8's external memory until it is disposed: called by the JS side when
// only the GC can free it (no scope owns it). Wrap counts nothing. False if not live or already counted.
bool CountForGc(Napi::Env env, Napi::Value v);
// Frees the slot; false if the handle was already disposed (or never valid).
bool Dispose(Napi::Env env, Napi::Value v);
bool IsLive(Napi::Value v);
int64_t Live();
}  // namespace TensorHandle
