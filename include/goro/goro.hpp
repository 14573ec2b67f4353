// SPDX-License-Identifier: Apache-2.0
/// @file
/// The umbrella header: all of goro's public API.
#pragma once

#include "goro/blocking.hpp"
#include "goro/chan.hpp"
#include "goro/condition_variable.hpp"
#include "goro/errors.hpp"
#include "goro/go.hpp"
#include "goro/group.hpp"
#include "goro/metrics.hpp"
#include "goro/mutex.hpp"
#include "goro/net.hpp"
#include "goro/once.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "goro/semaphore.hpp"
#include "goro/shared_mutex.hpp"
#include "goro/this_fiber.hpp"
#include "goro/timer.hpp"
#include "goro/wait_group.hpp"
