// SPDX-License-Identifier: Apache-2.0
// The umbrella header: all of goro's public API.
#pragma once

#include "goro/chan.hpp"
#include "goro/errors.hpp"
#include "goro/go.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "goro/this_fiber.hpp"
#include "goro/timer.hpp"
#include "goro/wait_group.hpp"
