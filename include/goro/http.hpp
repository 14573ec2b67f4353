// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::http: an HTTP/1.1 server and client on goro's netpoller (the optional component
/// goro::http: `find_package(goro COMPONENTS http)`, target goro::http). Messages:
/// http/message.hpp; the router and server: http/server.hpp; the client: http/client.hpp. The
/// design, limits, timeouts and shutdown protocol: docs/http.md.
#pragma once

#include "goro/http/client.hpp"
#include "goro/http/message.hpp"
#include "goro/http/server.hpp"
