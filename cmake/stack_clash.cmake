# SPDX-License-Identifier: Apache-2.0
# goro_probe_large_frames(target scope): -fstack-clash-protection, so a frame larger than a
# page (a big local array, an alloca) touches each page it spans as it grows. A fiber's stack
# has one guard page below it and another fiber's stack below that: without the probes, such a
# frame can step over the guard into the neighbour and corrupt it unreported; with them, it
# faults on the guard and goro reports the overflow (README, "Stacks"; docs/scheduler.md,
# "Guard pages against a million fibers"). Debian and Fedora build their packages this way.
# PUBLIC on goro's target: the frames that matter are mostly the user's, compiled against it.
# Only GCC and Clang know the flag; another compiler consuming the installed target gets none.
# GORO_STACK_CLASH_PROTECTION=OFF leaves it out.
option(GORO_STACK_CLASH_PROTECTION "Probe large stack frames (-fstack-clash-protection)" ON)
# On AArch64, GCC assumes a 64 KiB guard and probes that far apart unless told the guard's size
# (2^12 bytes here: one page); Clang probes there only from LLVM 18, and ignores the flag before.
function(goro_probe_large_frames target scope)
  if(GORO_STACK_CLASH_PROTECTION)
    target_compile_options(${target} ${scope}
                           $<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang>:-fstack-clash-protection>)
    if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
      target_compile_options(
        ${target} ${scope}
        $<$<COMPILE_LANG_AND_ID:CXX,GNU>:--param=stack-clash-protection-guard-size=12>)
    endif()
  endif()
endfunction()
