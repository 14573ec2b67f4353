# SPDX-License-Identifier: Apache-2.0
# goro_set_warnings(target): the warning flags goro's own targets build with. Private to each
# target, so consumers of goro never inherit them.
function(goro_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wnull-dereference)
endfunction()
