// SPDX-License-Identifier: Apache-2.0
// A program for compact_stack_test: checks on its own which loaded objects bind their PLT calls
// lazily, then constructs a runtime with compact stacks and runs one fiber on it. It prints
// "lazy: NAME" for the first lazily bound object it finds (none if LD_BIND_NOW is non-empty or
// every object is BIND_NOW), "default runtime: ok" once a runtime on ordinary stacks has run a
// fiber, and then either "threw: WHAT" (exit 0) or "compact runtime: ok" (exit 0); any other
// outcome exits 1.
#include <link.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "goro/goro.hpp"

namespace {

// glibc's rule, written out separately from src/platform/eager_binding.cpp so that the test does
// not check the library against itself: an object with PLT relocations binds them lazily unless it
// has DT_BIND_NOW, DF_BIND_NOW or DF_1_NOW. The dynamic linker relocates itself eagerly.
std::string first_lazy_object() {
  const char* env = std::getenv("LD_BIND_NOW");
  if (env != nullptr && *env != '\0') return "";
  std::string lazy;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        if (info->dlpi_addr == _r_debug.r_ldbase) return 0;
        bool plt = false;
        bool now = false;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          if (info->dlpi_phdr[i].p_type != PT_DYNAMIC) continue;
          const auto* d =
              reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
          for (; d->d_tag != DT_NULL; ++d) {
            plt = plt || d->d_tag == DT_JMPREL;
            now = now || d->d_tag == DT_BIND_NOW ||
                  (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_BIND_NOW) != 0) ||
                  (d->d_tag == DT_FLAGS_1 && (d->d_un.d_val & DF_1_NOW) != 0);
          }
        }
        if (!plt || now) return 0;
        *static_cast<std::string*>(data) =
            info->dlpi_name[0] == '\0' ? "the executable" : info->dlpi_name;
        return 1;
      },
      &lazy);
  return lazy;
}

// Runs one fiber on `rt` and waits for it.
bool run_one_fiber(goro::runtime& rt) {
  goro::chan<int> out(1);
  rt.go([out]() mutable { out.send(42); });
  return out.recv() == 42;
}

}  // namespace

int main() {
  const std::string lazy = first_lazy_object();
  if (!lazy.empty()) std::printf("lazy: %s\n", lazy.c_str());
  {
    goro::runtime rt{goro::options{.workers = 1}};
    if (!run_one_fiber(rt)) return 1;
    std::puts("default runtime: ok");
  }
  try {
    goro::runtime rt{goro::options{.workers = 1, .compact_stacks = true}};
    if (!run_one_fiber(rt)) return 1;
    std::puts("compact runtime: ok");
  } catch (const std::invalid_argument& e) {
    std::printf("threw: %s\n", e.what());
  }
  return 0;
}
