#pragma once
// Every entry point runs inside guard(): libtorch's exceptions become JS Errors carrying libtorch's
// message (without its C++ backtrace), so the addon never aborts the process.
#include <napi.h>

using Entry = Napi::Value (*)(const Napi::CallbackInfo&);

Napi::Value guard(const Napi::CallbackInfo& info, Entry fn);

template <Entry F>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  return guard(info, F);
}

[[noreturn]] void fail(Napi::Env env, const std::string& message);
