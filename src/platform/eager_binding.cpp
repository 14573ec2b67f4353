// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// The eager-binding check behind options::compact_stacks (eager_binding.hpp): glibc's rules for
// when a call through the PLT runs the dynamic linker's resolver, applied to the objects
// dl_iterate_phdr reports. Why compact stacks need it: docs/scheduler.md, "Compact stacks".
//
// glibc binds an object's PLT slots when it relocates the object, rather than on first call,
// if LD_BIND_NOW is non-empty in the environment the dynamic linker saw at startup, or if the
// object's dynamic section has DT_BIND_NOW, DF_BIND_NOW in DT_FLAGS or DF_1_NOW in DT_FLAGS_1.
// The dynamic linker itself has PLT slots too, but relocates itself eagerly. An object without
// DT_JMPREL has no PLT slots to bind; a static program has no dynamic linker at all.
#include "platform/eager_binding.hpp"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace goro::detail {
namespace {

// Whether LD_BIND_NOW was non-empty when the process started. /proc/self/environ holds the
// environment the dynamic linker read, even after setenv() or unsetenv(); getenv() is the
// fallback where /proc is not mounted.
bool bind_now_in_environment() {
  const int fd = ::open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const char* value = std::getenv("LD_BIND_NOW");
    return value != nullptr && *value != '\0';
  }
  std::string environ_text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    environ_text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  // The dynamic linker reads every entry; the last one decides.
  constexpr std::string_view name = "LD_BIND_NOW=";
  bool bind_now = false;
  for (std::size_t begin = 0; begin < environ_text.size();) {
    std::size_t end = environ_text.find('\0', begin);
    if (end == std::string::npos) end = environ_text.size();
    const std::string_view entry(environ_text.data() + begin, end - begin);
    if (entry.substr(0, name.size()) == name) bind_now = entry.size() > name.size();
    begin = end + 1;
  }
  return bind_now;
}

// Whether the object's PLT calls are bound lazily.
bool binds_lazily(const dl_phdr_info& info) {
  const ElfW(Dyn)* dynamic = nullptr;
  for (ElfW(Half) i = 0; i < info.dlpi_phnum; ++i) {
    if (info.dlpi_phdr[i].p_type == PT_DYNAMIC) {
      dynamic = reinterpret_cast<const ElfW(Dyn)*>(info.dlpi_addr + info.dlpi_phdr[i].p_vaddr);
    }
  }
  if (dynamic == nullptr) return false;
  bool has_plt = false;
  for (const ElfW(Dyn)* d = dynamic; d->d_tag != DT_NULL; ++d) {
    switch (d->d_tag) {
      case DT_JMPREL: has_plt = true; break;
      case DT_BIND_NOW: return false;
      case DT_FLAGS:
        if ((d->d_un.d_val & DF_BIND_NOW) != 0) return false;
        break;
      case DT_FLAGS_1:
        if ((d->d_un.d_val & DF_1_NOW) != 0) return false;
        break;
      default: break;
    }
  }
  return has_plt;
}

struct search {
  std::uintptr_t dynamic_linker_base;
  std::optional<std::string> lazy;
};

}  // namespace

std::optional<std::string> lazily_bound_object() {
  if (bind_now_in_environment()) return std::nullopt;
  // r_ldbase is where the dynamic linker lies (0 in a static program), also when the program
  // was started as `ld.so ./program`, where AT_BASE is 0.
  search found{static_cast<std::uintptr_t>(_r_debug.r_ldbase), std::nullopt};
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        auto& s = *static_cast<search*>(data);
        if (s.dynamic_linker_base != 0 && info->dlpi_addr == s.dynamic_linker_base) return 0;
        if (!binds_lazily(*info)) return 0;
        const bool executable = info->dlpi_name == nullptr || info->dlpi_name[0] == '\0';
        s.lazy = executable ? std::string("the executable") : std::string(info->dlpi_name);
        return 1;
      },
      &found);
  return found.lazy;
}

}  // namespace goro::detail
