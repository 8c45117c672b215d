// Why: a training step frees and re-allocates the same activation sizes every iteration. With
// glibc's allocator, Node's main thread lands in an arena whose freed pages come back as fresh
// ones: every multi-MB allocation page-faulted in again (512 faults per 2 MB tensor, measured),
// making elementwise ops up to 10x slower than in PyTorch's process. Keeping freed blocks of
// 64 KiB and more for reuse by exact (rounded) size removes that cost, like PyTorch's CUDA caching
// allocator does on GPUs. Small blocks go straight to malloc. The cache is bounded.
#include "caching_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace {

constexpr size_t kAlign = 64;           // what c10's CPU allocator guarantees (AVX-512 loads)
constexpr size_t kHeader = kAlign;      // keeps the block size in front of the data
constexpr size_t kCacheMin = 64 << 10;  // below this, malloc is fast enough
constexpr size_t kRound = 16 << 10;     // rounding makes near-equal sizes share a bucket

size_t cacheLimit() {
  const char* env = std::getenv("ADAFILTER_CPU_CACHE_MB");
  long mb = env ? std::atol(env) : 2048;
  return static_cast<size_t>(mb < 0 ? 0 : mb) << 20;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    size_t size = n < kCacheMin ? n : (n + kRound - 1) / kRound * kRound;
    void* base = take(size);
    if (base == nullptr) {
      if (posix_memalign(&base, kAlign, size + kHeader) != 0 || base == nullptr) {
        throw c10::Error({__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                         "out of memory allocating " + std::to_string(n) + " bytes for a tensor");
      }
      *static_cast<size_t*>(base) = size;
    }
    void* data = static_cast<char*>(base) + kHeader;
    return {data, data, &Release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Release; }

  static void Release(void* data) {
    if (data == nullptr) return;
    void* base = static_cast<char*>(data) - kHeader;
    instance().give(base, *static_cast<size_t*>(base));
  }

  // Never destroyed: tensors may be freed by other libraries' static destructors at exit.
  static CachingCpuAllocator& instance() {
    static CachingCpuAllocator* a = new CachingCpuAllocator();
    return *a;
  }

  int64_t empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t released = static_cast<int64_t>(cached_);
    for (auto& [size, blocks] : free_) for (void* b : blocks) std::free(b);
    free_.clear();
    cached_ = 0;
    return released;
  }

  int64_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int64_t>(cached_);
  }

 private:
  void* take(size_t size) const {
    if (size < kCacheMin) return nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* b = it->second.back();
    it->second.pop_back();
    cached_ -= size;
    return b;
  }

  void give(void* base, size_t size) {
    if (size >= kCacheMin) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + size <= limit_) {
        free_[size].push_back(base);
        cached_ += size;
        return;
      }
    }
    std::free(base);
  }

  mutable std::mutex mutex_;
  mutable std::unordered_map<size_t, std::vector<void*>> free_;
  mutable size_t cached_ = 0;
  const size_t limit_ = cacheLimit();
};

}  // namespace

void installCachingAllocator() {
  // Priority above the default CPU allocator's (0). Tensors allocated before this keep their own
  // deleter, so nothing is freed by the wrong allocator.
  c10::SetAllocator(c10::DeviceType::CPU, &CachingCpuAllocator::instance(), 1);
}

int64_t emptyCpuCache() { return CachingCpuAllocator::instance().empty(); }

int64_t cachedCpuBytes() { return CachingCpuAllocator::instance().cached(); }
