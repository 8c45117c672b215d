#include "errors.h"

#include <c10/util/Exception.h>

Napi::Value guard(const Napi::CallbackInfo& info, Entry fn) {
  Napi::Env env = info.Env();
  try {
    return fn(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  } catch (...) {
    throw Napi::Error::New(env, "unknown native error");
  }
}

void fail(Napi::Env env, const std::string& message) {
  throw Napi::Error::New(env, message);
}
