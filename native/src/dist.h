#pragma once
#include <napi.h>

// Adds the dist module's functions (distInit, distAllReduce, ddpCreate, ...) to the addon's exports.
void RegisterDist(Napi::Env env, Napi::Object exports);
