#include <napi.h>

#include "caching_allocator.h"
#include "dispatch.h"
#include "dist.h"
#include "errors.h"
#include "tensor_handle.h"

#define DECLARE(name) Napi::Value name(const Napi::CallbackInfo& info);
DECLARE(FromBuffer)
DECLARE(ToBuffer)
DECLARE(Meta)
DECLARE(Shape)
DECLARE(SetNumThreads)
DECLARE(GetNumThreads)
DECLARE(ManualSeed)
DECLARE(SetGradEnabled)
DECLARE(IsGradEnabled)
DECLARE(SetAutocast)
DECLARE(AutocastState)
DECLARE(Backward)
DECLARE(Grad)
DECLARE(TensorGrad)
DECLARE(SetTensorGrad)
DECLARE(SetRequiresGrad)
DECLARE(LiveTensors)
DECLARE(Version)
DECLARE(CudaDeviceCount)
DECLARE(CudaBuilt)
DECLARE(ParallelInfo)
DECLARE(EmptyCache)
DECLARE(Dispose)
DECLARE(SetData)
DECLARE(IsLive)
DECLARE(CountForGc)
DECLARE(CachedBytes)
DECLARE(OpTraceStart)
DECLARE(OpTraceStop)

#define EXPORT(jsName, fn) exports.Set(jsName, Napi::Function::New(env, guarded<fn>, jsName))

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  installCachingAllocator();
  EXPORT("findOp", FindOp);
  EXPORT("call", Call);
  EXPORT("callVoid", CallVoid);
  EXPORT("opSchema", OpSchema);
  EXPORT("opReturns", OpReturns);
  EXPORT("fromBuffer", FromBuffer);
  EXPORT("toBuffer", ToBuffer);
  EXPORT("meta", Meta);
  EXPORT("shape", Shape);
  EXPORT("setNumThreads", SetNumThreads);
  EXPORT("getNumThreads", GetNumThreads);
  EXPORT("manualSeed", ManualSeed);
  EXPORT("setGradEnabled", SetGradEnabled);
  EXPORT("isGradEnabled", IsGradEnabled);
  EXPORT("setAutocast", SetAutocast);
  EXPORT("autocastState", AutocastState);
  EXPORT("backward", Backward);
  EXPORT("grad", Grad);
  EXPORT("tensorGrad", TensorGrad);
  EXPORT("setTensorGrad", SetTensorGrad);
  EXPORT("setRequiresGrad", SetRequiresGrad);
  EXPORT("liveTensors", LiveTensors);
  EXPORT("version", Version);
  EXPORT("cudaDeviceCount", CudaDeviceCount);
  EXPORT("cudaBuilt", CudaBuilt);
  EXPORT("parallelInfo", ParallelInfo);
  EXPORT("emptyCache", EmptyCache);
  EXPORT("dispose", Dispose);
  EXPORT("setData", SetData);
  EXPORT("isLive", IsLive);
  EXPORT("countForGc", CountForGc);
  EXPORT("cachedBytes", CachedBytes);
  EXPORT("opTraceStart", OpTraceStart);
  EXPORT("opTraceStop", OpTraceStop);
  RegisterDist(env, exports);
  return exports;
}

NODE_API_MODULE(adafilter, Init)
