// Data-parallel training on libtorch's c10d: a TCPStore rendezvous, a Gloo process group over it,
// the collectives the trainer awaits, and DDP's C++ Reducer (bucketed gradient all-reduce hooked
// into autograd). Nothing here implements a collective; it only hands our tensors to c10d.
//
// Collectives that JS awaits are queued on the process group from the JS thread (so every rank
// issues them in program order, which Gloo requires) and waited for on a libuv worker thread, so a
// hung peer holds a Promise, not the event loop; Gloo's own timeout (the group's) ends the wait.
#include "dist.h"

#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "errors.h"
#include "tensor_handle.h"

#ifdef USE_C10D_GLOO
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/logger.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#endif

namespace {

#ifdef USE_C10D_GLOO

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  // libtorch 1.x: the ProcessGroupGloo itself; 2.x: a ProcessGroup routing CPU tensors to it.
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int rank = 0;
  int size = 1;
  std::string store_address;  // host:port, for messages
  std::chrono::milliseconds timeout{0};

  std::string where(const std::string& what) const {
    return "dist " + what + " on rank " + std::to_string(rank) + " of " + std::to_string(size);
  }
};

struct Ddp {
  std::shared_ptr<Group> group;
  std::shared_ptr<c10d::Reducer> reducer;
  // The Reducer keeps only a weak reference, and 1.13 dereferences it without a check when the
  // set of unused parameters changes between iterations (gated methods skip paths).
  std::shared_ptr<c10d::Logger> logger;
};

// Never destroyed (see tensor_handle.cc); a released entry is reset to null.
std::vector<std::shared_ptr<Group>>& groups = *new std::vector<std::shared_ptr<Group>>();
std::vector<std::shared_ptr<Ddp>>& ddps = *new std::vector<std::shared_ptr<Ddp>>();

// Gloo prefixes its messages with its source location; the reader needs the sentence.
std::string withoutSourceLocation(const std::string& message) {
  static const std::regex location(R"(\[[^\]\s]*\.(cc|cpp|h|hpp):\d+\]\s*)");
  return std::regex_replace(message, location, "");
}

std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const c10::Error& err) {
    return withoutSourceLocation(err.what_without_backtrace());
  } catch (const std::exception& err) {
    return withoutSourceLocation(err.what());
  } catch (...) {
    return "unknown native error";
  }
}

// Runs `run` on a libuv worker thread; the Promise resolves with `result` (on the JS thread) or
// rejects with an Error whose message starts with `what`.
class Job : public Napi::AsyncWorker {
 public:
  using Run = std::function<void()>;
  using Result = std::function<Napi::Value(Napi::Env)>;

  static Napi::Promise Start(Napi::Env env, std::string what, Run run, Result result = nullptr) {
    auto* job = new Job(env, std::move(what), std::move(run), std::move(result));
    Napi::Promise promise = job->deferred_.Promise();
    job->Queue();
    return promise;
  }

 protected:
  void Execute() override {
    try {
      // Broadcasts write into parameters, which autograd forbids for leaves while recording.
      at::NoGradGuard noGrad;
      run_();
    } catch (...) {
      SetError(what_ + ": " + describe(std::current_exception()));
    }
  }
  void OnOK() override { deferred_.Resolve(result_ ? result_(Env()) : Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Job(Napi::Env env, std::string what, Run run, Result result)
      : Napi::AsyncWorker(env, "adafilter:dist"),
        deferred_(Napi::Promise::Deferred::New(env)),
        what_(std::move(what)),
        run_(std::move(run)),
        result_(std::move(result)) {}

  Napi::Promise::Deferred deferred_;
  std::string what_;
  Run run_;
  Result result_;
};

// A Promise rejected with `message`: collectives report every failure the same way.
Napi::Promise rejected(Napi::Env env, const std::string& message) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(Napi::Error::New(env, message).Value());
  return deferred.Promise();
}

Napi::Object optionsFrom(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsObject()) fail(info.Env(), std::string(what) + ": expected an options object");
  return info[i].As<Napi::Object>();
}

int64_t intField(Napi::Object o, const char* key, const char* what, int64_t min, int64_t max) {
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1e300;
  if (d < static_cast<double>(min) || d > static_cast<double>(max) || d != static_cast<double>(static_cast<int64_t>(d))) {
    fail(o.Env(), std::string(what) + ": " + key + " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return static_cast<int64_t>(d);
}

std::string stringField(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
}

int64_t intArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) fail(info.Env(), std::string(what) + ": expected an integer argument");
  return info[i].As<Napi::Number>().Int64Value();
}

std::shared_ptr<Group> groupFrom(const Napi::CallbackInfo& info, const char* what) {
  int64_t id = intArg(info, 0, what);
  if (id < 0 || static_cast<size_t>(id) >= groups.size() || !groups[id]) {
    fail(info.Env(), std::string(what) + ": unknown or destroyed process group");
  }
  return groups[id];
}

std::shared_ptr<Ddp> ddpFrom(const Napi::CallbackInfo& info, const char* what) {
  int64_t id = intArg(info, 0, what);
  if (id < 0 || static_cast<size_t>(id) >= ddps.size() || !ddps[id]) fail(info.Env(), std::string(what) + ": unknown or destroyed DDP reducer");
  return ddps[id];
}

std::vector<at::Tensor> tensorList(Napi::Value v, const char* what) {
  if (!v.IsArray()) fail(v.Env(), std::string(what) + ": expected an array of tensors");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(TensorHandle::From(arr.Get(i), what));
  return out;
}

// A tensor Gloo can reduce in place: dense, on the CPU, contiguous. Checked here so the message
// names our call instead of a Gloo internal.
at::Tensor collectiveTensor(Napi::Value v, const char* what) {
  const at::Tensor& t = TensorHandle::From(v, what);
  if (!t.device().is_cpu()) fail(v.Env(), std::string(what) + ": the Gloo backend takes CPU tensors, got one on " + t.device().str());
  if (t.is_sparse() || !t.is_contiguous()) fail(v.Env(), std::string(what) + ": expected a dense contiguous tensor");
  if (t.numel() == 0) fail(v.Env(), std::string(what) + ": expected a tensor with at least one element");
  return t;
}

c10d::ReduceOp reduceOpFrom(Napi::Value v, const char* what) {
  std::string name = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (name == "sum") return c10d::ReduceOp::SUM;
  if (name == "product") return c10d::ReduceOp::PRODUCT;
  if (name == "min") return c10d::ReduceOp::MIN;
  if (name == "max") return c10d::ReduceOp::MAX;
  fail(v.Env(), std::string(what) + ": reduce op must be 'sum', 'product', 'min' or 'max' (Gloo has no 'avg'; divide a sum)");
}

std::shared_ptr<::gloo::transport::Device> glooDevice(const std::string& iface, const std::string& hostname) {
  if (!iface.empty()) return c10d::ProcessGroupGloo::createDeviceForInterface(iface);
  if (!hostname.empty()) return c10d::ProcessGroupGloo::createDeviceForHostname(hostname);
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

c10::intrusive_ptr<c10d::ProcessGroup> glooGroup(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                 std::chrono::milliseconds timeout, const std::string& iface,
                                                 const std::string& hostname) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(glooDevice(iface, hostname));
  // The constructor is the rendezvous: it connects to every peer or throws at the timeout.
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
#if TORCH_VERSION_MAJOR >= 2
  // From 2.0 Gloo is a Backend; the Reducer and broadcast_coalesced take a ProcessGroup, which
  // dispatches CPU tensors to the backend registered for the CPU.
  auto pgOptions = c10::make_intrusive<c10d::ProcessGroup::Options>("gloo", timeout);
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size, pgOptions);
  pg->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
  return pg;
#else
  return gloo;
#endif
}

// Waits for a queued collective on a worker thread.
Napi::Promise awaitWork(Napi::Env env, const std::shared_ptr<Group>& group, const std::string& what,
                        std::function<c10::intrusive_ptr<c10d::Work>()> issue) {
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = issue();
  } catch (...) {
    return rejected(env, group->where(what) + ": " + describe(std::current_exception()));
  }
  // The group is captured so that destroying it from JS cannot free it under a pending wait.
  return Job::Start(env, group->where(what), [group, work]() { work->wait(); });
}

Napi::Value DistAvailable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), true); }

// distInit({ rank, worldSize, masterAddr, masterPort, timeoutMs, iface?, hostname?, storeServer?, storePrefix? })
//   -> Promise<group id>
// Rank 0 serves the TCPStore unless storeServer is false (torchrun's agent serves it); every rank
// connects to it, then the Gloo group connects all pairs. Keys live under storePrefix.
Napi::Value DistInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = optionsFrom(info, 0, "distInit");
  int size = static_cast<int>(intField(o, "worldSize", "distInit", 1, 1 << 20));
  int rank = static_cast<int>(intField(o, "rank", "distInit", 0, size - 1));
  auto port = static_cast<uint16_t>(intField(o, "masterPort", "distInit", 1, 65535));
  std::chrono::milliseconds timeout(intField(o, "timeoutMs", "distInit", 1, int64_t(1) << 40));
  std::string host = stringField(o, "masterAddr");
  if (host.empty()) fail(env, "distInit: masterAddr must be a host name or address");
  std::string iface = stringField(o, "iface");
  std::string hostname = stringField(o, "hostname");
  bool storeServer = o.Get("storeServer").IsBoolean() ? o.Get("storeServer").As<Napi::Boolean>().Value() : rank == 0;
  std::string prefix = o.Get("storePrefix").IsString() ? stringField(o, "storePrefix") : "adafilter";

  auto group = std::make_shared<Group>();
  group->rank = rank;
  group->size = size;
  group->store_address = host + ":" + std::to_string(port);
  group->timeout = timeout;
  std::string what = group->where("init") + " (store " + group->store_address + ")";
  return Job::Start(
      env, what,
      [group, host, port, iface, hostname, storeServer, prefix]() {
        c10d::TCPStoreOptions storeOptions;
        storeOptions.port = port;
        storeOptions.isServer = storeServer;
        storeOptions.numWorkers = static_cast<size_t>(group->size);
        storeOptions.waitWorkers = true;
        storeOptions.timeout = group->timeout;
        auto tcp = c10::make_intrusive<c10d::TCPStore>(host, storeOptions);
        group->store = c10::make_intrusive<c10d::PrefixStore>(prefix, tcp);
        group->pg = glooGroup(group->store, group->rank, group->size, group->timeout, iface, hostname);
      },
      [group](Napi::Env env) {
        groups.push_back(group);
        return Napi::Number::New(env, static_cast<double>(groups.size() - 1));
      });
}

// distDestroy(group): releases the group (its threads end); pending collectives keep it alive until they settle.
Napi::Value DistDestroy(const Napi::CallbackInfo& info) {
  int64_t id = intArg(info, 0, "distDestroy");
  if (id >= 0 && static_cast<size_t>(id) < groups.size()) groups[id].reset();
  return info.Env().Undefined();
}

Napi::Value DistBarrier(const Napi::CallbackInfo& info) {
  auto group = groupFrom(info, "distBarrier");
  return awaitWork(info.Env(), group, "barrier", [group]() { return group->pg->barrier(); });
}

// distBroadcast(group, tensor, root) -> Promise: tensor takes root's values on every rank.
Napi::Value DistBroadcast(const Napi::CallbackInfo& info) {
  auto group = groupFrom(info, "distBroadcast");
  at::Tensor t = collectiveTensor(info[1], "distBroadcast");
  int64_t root = intArg(info, 2, "distBroadcast");
  if (root < 0 || root >= group->size) fail(info.Env(), "distBroadcast: root rank " + std::to_string(root) + " is outside the group of " + std::to_string(group->size));
  return awaitWork(info.Env(), group, "broadcast", [group, t, root]() {
    std::vector<at::Tensor> tensors{t};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    return group->pg->broadcast(tensors, opts);
  });
}

// distAllReduce(group, tensor, op) -> Promise: tensor holds the reduction over ranks on every rank.
Napi::Value DistAllReduce(const Napi::CallbackInfo& info) {
  auto group = groupFrom(info, "distAllReduce");
  at::Tensor t = collectiveTensor(info[1], "distAllReduce");
  c10d::ReduceOp op = reduceOpFrom(info[2], "distAllReduce");
  return awaitWork(info.Env(), group, "allReduce", [group, t, op]() {
    std::vector<at::Tensor> tensors{t};
    c10d::AllreduceOptions opts;
    opts.reduceOp = op;
    return group->pg->allreduce(tensors, opts);
  });
}

// distSyncFromRank0(group, tensors, bufferBytes) -> Promise: DDP's start: checks that every rank
// holds tensors of the same count, shapes and dtypes, then copies rank 0's values to all.
Napi::Value DistSyncFromRank0(const Napi::CallbackInfo& info) {
  auto group = groupFrom(info, "distSyncFromRank0");
  std::vector<at::Tensor> tensors = tensorList(info[1], "distSyncFromRank0");
  auto bufferBytes = static_cast<size_t>(intArg(info, 2, "distSyncFromRank0"));
  return Job::Start(info.Env(), group->where("parameter sync"), [group, tensors, bufferBytes]() {
    // verify_params_across_processes assumes every rank holds at least one tensor (1.13 reads the
    // first one's device unchecked): the ranks agree on the count first (max of n and of -n, so
    // every rank learns a mismatch), and an empty list is a no-op.
    auto n = static_cast<int64_t>(tensors.size());
    int64_t dims = 0;
    for (const auto& t : tensors) dims += t.dim();
    at::Tensor range = at::tensor({n, -n, dims, -dims}, at::kLong);
    std::vector<at::Tensor> ranges{range};
    c10d::AllreduceOptions maxOpts;
    maxOpts.reduceOp = c10d::ReduceOp::MAX;
    group->pg->allreduce(ranges, maxOpts)->wait();
    TORCH_CHECK(range[0].item<int64_t>() == n && -range[1].item<int64_t>() == n, "the ranks hold different numbers of tensors to sync (from ",
                -range[1].item<int64_t>(), " to ", range[0].item<int64_t>(), "; this rank ", n, "): are the models the same?");
    TORCH_CHECK(range[2].item<int64_t>() == dims && -range[3].item<int64_t>() == dims,
                "the ranks' tensors to sync differ in their numbers of dimensions: are the models the same?");
    if (n == 0) return;
    c10d::verify_params_across_processes(group->pg, tensors, c10::nullopt);
    c10d::broadcast_coalesced(group->pg, tensors, bufferBytes, 0);
  });
}

// ddpCreate(group, params, { bucketCapBytes, findUnused, names }) -> id. params: the parameters
// that require gradients, in the order they are registered; names for the Reducer's messages.
Napi::Value DdpCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto group = groupFrom(info, "ddpCreate");
  std::vector<at::Tensor> params = tensorList(info[1], "ddpCreate");
  Napi::Object o = optionsFrom(info, 2, "ddpCreate");
  int64_t bucketCap = intField(o, "bucketCapBytes", "ddpCreate", 1, int64_t(1) << 40);
  bool findUnused = o.Get("findUnused").ToBoolean().Value();
  std::unordered_map<size_t, std::string> names;
  if (o.Get("names").IsArray()) {
    Napi::Array arr = o.Get("names").As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length() && i < params.size(); i++) names[i] = arr.Get(i).ToString().Utf8Value();
  }
  if (params.empty()) fail(env, "ddpCreate: no parameter requires gradients, so there is nothing to average");
  for (size_t i = 0; i < params.size(); i++) {
    if (!params[i].requires_grad() || !params[i].is_leaf()) fail(env, "ddpCreate: parameter " + std::to_string(i) + " is not a leaf that requires grad");
  }
  try {
    std::vector<bool> sparse(params.size(), false);
    // As PyTorch's DDP: a small first bucket so communication starts early in backward, buckets
    // listed in reverse so they fill in the order backward produces gradients.
    std::vector<std::vector<size_t>> buckets;
    std::vector<size_t> limits;
    std::tie(buckets, limits) = c10d::compute_bucket_assignment_by_size(
        params, {static_cast<size_t>(c10d::kDefaultFirstBucketBytes), static_cast<size_t>(bucketCap)}, sparse);
    std::reverse(buckets.begin(), buckets.end());
    std::reverse(limits.begin(), limits.end());
    auto ddp = std::make_shared<Ddp>();
    ddp->group = group;
    ddp->reducer = std::make_shared<c10d::Reducer>(params, buckets, limits, group->pg, sparse, bucketCap, findUnused,
                                                   /*gradient_as_bucket_view=*/false, names, c10d::kDefaultFirstBucketBytes);
    ddp->logger = std::make_shared<c10d::Logger>(ddp->reducer);
    ddp->reducer->set_logger(ddp->logger);
    ddp->logger->set_construction_data_and_log("adafilter", {}, -1, /*broadcast_buffers=*/false, /*has_sync_bn=*/false,
                                               /*static_graph=*/false);
    ddps.push_back(ddp);
  } catch (...) {
    fail(env, group->where("DDP setup") + ": " + describe(std::current_exception()));
  }
  return Napi::Number::New(env, static_cast<double>(ddps.size() - 1));
}

// ddpPrepareForward(id): what DDP's forward does first (stats, and rebuilding the buckets in the
// order gradients arrived after the first iteration, agreed with rank 0 by a broadcast).
Napi::Value DdpPrepareForward(const Napi::CallbackInfo& info) {
  auto ddp = ddpFrom(info, "ddpPrepareForward");
  try {
    ddp->logger->set_runtime_stats_and_log();
    ddp->reducer->prepare_for_forward();
    ddp->reducer->rebuild_buckets();
  } catch (...) {
    fail(info.Env(), ddp->group->where("DDP forward") + ": " + describe(std::current_exception()));
  }
  return info.Env().Undefined();
}

// ddpPrepareBackward(id, outputs): arms the gradient hooks for the next backward; with findUnused
// the graph from outputs is searched for parameters this rank did not use.
Napi::Value DdpPrepareBackward(const Napi::CallbackInfo& info) {
  auto ddp = ddpFrom(info, "ddpPrepareBackward");
  std::vector<at::Tensor> outputs = tensorList(info[1], "ddpPrepareBackward");
  try {
    ddp->reducer->prepare_for_backward(outputs);
  } catch (...) {
    fail(info.Env(), ddp->group->where("DDP backward") + ": " + describe(std::current_exception()));
  }
  return info.Env().Undefined();
}

// ddpBuckets(id) -> [{ bytes, parameters }]: the Reducer's gradient buckets in the order they are
// all-reduced (after the first step: as rebuilt from the order its gradients became ready).
Napi::Value DdpBuckets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ddp = ddpFrom(info, "ddpBuckets");
  std::vector<c10d::GradBucket> buckets;
  try {
    buckets = ddp->reducer->get_grad_buckets(/*return_zero_tensors=*/false);
  } catch (...) {
    fail(env, ddp->group->where("DDP buckets") + ": " + describe(std::current_exception()));
  }
  Napi::Array out = Napi::Array::New(env, buckets.size());
  for (size_t i = 0; i < buckets.size(); i++) {
    const at::Tensor& b = buckets[i].getBuffer();
    Napi::Object o = Napi::Object::New(env);
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(b.numel() * b.element_size())));
    o.Set("parameters", Napi::Number::New(env, static_cast<double>(buckets[i].getParameters().size())));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

Napi::Value DdpDestroy(const Napi::CallbackInfo& info) {
  int64_t id = intArg(info, 0, "ddpDestroy");
  if (id >= 0 && static_cast<size_t>(id) < ddps.size() && ddps[id]) {
    auto ddp = std::move(ddps[id]);
    // Logger first: its destructor reads the Reducer (as DDP's Python objects are freed).
    ddp->logger.reset();
    ddp->reducer.reset();
  }
  return info.Env().Undefined();
}

#else  // !USE_C10D_GLOO

Napi::Value unavailable(const Napi::CallbackInfo& info) {
  fail(info.Env(), "multi-process training is not available: the addon was built without Gloo "
                   "(install Debian's libgloo-dev, or use a libtorch with c10d Gloo headers, and rebuild with `npx adafilter setup`)");
}

Napi::Value DistAvailable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), false); }
Napi::Value DistInit(const Napi::CallbackInfo& info) { return unavailable(info); }
Napi::Value DistDestroy(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }
Napi::Value DistBarrier(const Napi::CallbackInfo& info) { return unavailable(info); }
Napi::Value DistBroadcast(const Napi::CallbackInfo& info) { return unavailable(info); }
Napi::Value DistAllReduce(const Napi::CallbackInfo& info) { return unavailable(info); }
Napi::Value DistSyncFromRank0(const Napi::CallbackInfo& info) { return unavailable(info); }
Napi::Value DdpCreate(const Napi::CallbackInfo& info) { return unavailable(info); }
Napi::Value DdpPrepareForward(const Napi::CallbackInfo& info) { return unavailable(info); }
Napi::Value DdpPrepareBackward(const Napi::CallbackInfo& info) { return unavailable(info); }
Napi::Value DdpBuckets(const Napi::CallbackInfo& info) { return unavailable(info); }
Napi::Value DdpDestroy(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

#endif  // USE_C10D_GLOO

}  // namespace

#define EXPORT(jsName, fn) exports.Set(jsName, Napi::Function::New(env, guarded<fn>, jsName))

void RegisterDist(Napi::Env env, Napi::Object exports) {
  EXPORT("distAvailable", DistAvailable);
  EXPORT("distInit", DistInit);
  EXPORT("distDestroy", DistDestroy);
  EXPORT("distBarrier", DistBarrier);
  EXPORT("distBroadcast", DistBroadcast);
  EXPORT("distAllReduce", DistAllReduce);
  EXPORT("distSyncFromRank0", DistSyncFromRank0);
  EXPORT("ddpCreate", DdpCreate);
  EXPORT("ddpPrepareForward", DdpPrepareForward);
  EXPORT("ddpPrepareBackward", DdpPrepareBackward);
  EXPORT("ddpBuckets", DdpBuckets);
  EXPORT("ddpDestroy", DdpDestroy);
}
