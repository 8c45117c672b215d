#pragma once
// Stand-in for torch/csrc/distributed/autograd/context/context.h, which DDP's reducer.hpp includes
// and Debian's libtorch-dev does not ship (it leaves out the RPC framework's headers). The Reducer
// only names two things from it: the gradient callback type (a static_assert checks it equals the
// Reducer's own) and the context pointer it holds for distributed autograd, which we never use.
// Both are pointer-sized whatever the class holds, so the Reducer's layout is the real one.
// native/build.js copies this file to that path in a folder searched after every other include
// folder (-idirafter), so a libtorch that ships the real header uses its own.
#include <functional>
#include <memory>

#include <ATen/core/Tensor.h>

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};

using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace autograd
}  // namespace distributed
}  // namespace torch
