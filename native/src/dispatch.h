#pragma once
#include <napi.h>

// Generic calls into ATen's operator registry: findOp("aten::conv2d", "") resolves an operator once,
// call(id, args, kwargs) converts JS values to the schema's argument types and runs it through the
// dispatcher (so autograd, autocast and every backend apply), converting results back.
Napi::Value FindOp(const Napi::CallbackInfo& info);
Napi::Value Call(const Napi::CallbackInfo& info);
Napi::Value CallVoid(const Napi::CallbackInfo& info);
Napi::Value OpSchema(const Napi::CallbackInfo& info);
Napi::Value OpReturns(const Napi::CallbackInfo& info);
