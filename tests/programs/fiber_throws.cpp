// SPDX-License-Identifier: Apache-2.0
// A program for runtime_test's death tests: a fiber lets an exception escape, which must print
// what it was and call std::terminate. argv[1] picks the exception: "std" throws a
// std::runtime_error with a recognisable what(), "int" throws an int; argv[2] says where the
// fiber runs: "runtime" (a goro::runtime with 2 workers, the default) or "default" (goro::go
// from main, on the default runtime). Reaching the end of main is a failure (exit 3).
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "goro/goro.hpp"

namespace {

void throw_it(bool standard) {
  if (standard) throw std::runtime_error("goro-test: the fiber gave up (code 42)");
  throw 42;
}

}  // namespace

int main(int argc, char** argv) {
  const bool standard = argc < 2 || std::strcmp(argv[1], "int") != 0;
  const bool on_default = argc > 2 && std::strcmp(argv[2], "default") == 0;
  goro::wait_group wg;
  wg.add(1);
  if (on_default) {
    goro::go([&wg, standard] {
      throw_it(standard);
      wg.done();
    });
    wg.wait();
  } else {
    goro::runtime rt{goro::options{.workers = 2}};
    rt.go([&wg, standard] {
      throw_it(standard);
      wg.done();
    });
    wg.wait();
  }
  std::puts("the exception did not terminate the process");
  return 3;
}
