#pragma once
#include <cstdint>

// Installs a size-bucketed caching allocator for CPU tensors (see caching_allocator.cc for why).
void installCachingAllocator();
// Frees every cached block; returns the bytes released.
int64_t emptyCpuCache();
// Bytes held in the cache (not in use by tensors).
int64_t cachedCpuBytes();
