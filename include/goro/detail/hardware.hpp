// SPDX-License-Identifier: Apache-2.0
/// @file
/// The hardware sizes goro lays its data out by, named once. A leaf: includes nothing of goro's.
#pragma once

#include <cstddef>

namespace goro::detail {

// The cache line hot shared fields are aligned to, so that two of them written by different
// cores never share one (false sharing). 64 bytes on every x86-64 and on the AArch64 cores goro
// targets; std::hardware_destructive_interference_size says the same there, but GCC warns that
// its value may differ between compilations, so it has no place in an ABI.
inline constexpr std::size_t cache_line_size = 64;

// The smallest page size of the supported platforms. Only layout heuristics use it (which cache
// colour a stack gets); anything that maps or protects memory asks the kernel (sysconf).
inline constexpr std::size_t small_page_size = 4096;

}  // namespace goro::detail
