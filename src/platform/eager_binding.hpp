// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// Whether the dynamic linker has bound, or will bind, every call into a shared library before it
// is made: compact stacks (options::compact_stacks) are too small for the lazy-binding resolver,
// so runtime() refuses them otherwise. See docs/scheduler.md, "Compact stacks".
#pragma once

#include <optional>
#include <string>

namespace goro::detail {

// std::nullopt if symbol binding is eager: LD_BIND_NOW was set non-empty when the process
// started, or every loaded object with PLT relocations was linked with BIND_NOW (-z now).
// Otherwise the name of a loaded object whose PLT calls are bound lazily. Objects loaded later
// with dlopen(RTLD_LAZY) are not foreseen.
std::optional<std::string> lazily_bound_object();

}  // namespace goro::detail
