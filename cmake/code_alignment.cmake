# SPDX-License-Identifier: Apache-2.0
# goro_align_code(target): functions on 64-byte boundaries, loops and jump targets on 32, for
# the core library's layers (src/; goro::http, bound by the network, keeps the defaults). Where
# a hot loop or a switch path happened to start moved the workloads by up to 20% between builds
# that differed only in unrelated code (the code-placement bias of Mytkowicz et al., "Producing
# Wrong Data Without Doing Anything Obviously Wrong!", ASPLOS 2009; Linux has
# CONFIG_DEBUG_FORCE_FUNCTION_ALIGN_64B for the same reason). Aligned, less of a build's speed
# is chance, and comparisons between commits mean more (docs/performance.md, "Session 10": 12%
# more text; the workloads as fast or faster, mpmc at PROCS=1 +10%). Private: consumers of goro
# never inherit it.
include(CheckCXXCompilerFlag)
check_cxx_compiler_flag("-falign-functions=64 -falign-loops=32" GORO_HAVE_ALIGN_FLAGS)
check_cxx_compiler_flag("-falign-jumps=32" GORO_HAVE_ALIGN_JUMPS)
function(goro_align_code target)
  if(GORO_HAVE_ALIGN_FLAGS)
    target_compile_options(${target} PRIVATE -falign-functions=64 -falign-loops=32)
  endif()
  if(GORO_HAVE_ALIGN_JUMPS)
    target_compile_options(${target} PRIVATE -falign-jumps=32)
  endif()
endfunction()
