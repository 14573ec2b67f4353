// SPDX-License-Identifier: Apache-2.0
// Layer: http. May include: http, api, chan, sync, net, park, sched, stack, time, platform.
// Writing messages onto the wire: a response as the server sends it (status line, the
// handler's fields, then Date, Content-Length and Connection, which the server owns) and a
// request as the client sends it. Each appends to one string that goes out in one write.
#pragma once

#include <string>
#include <string_view>

#include "goro/http/message.hpp"

namespace goro::http::detail {

// Appends `res` to `out`, with "Connection: close" unless `keep_alive` ("Connection:
// keep-alive" if it is the answer to an `http10` request that keeps the connection), and without
// the body when `head_only` (the answer to a HEAD request; Content-Length still gives the
// body's size, or the handler's own Content-Length if it gave no body). A status of 100-199
// but 101 goes out as an informational response (none to an `http10` request) followed by a
// 200 (Go's WriteHeader(1xx)); a 101 is final and bodiless.
// REQUIRES: 100 <= res.status <= 999.
void write_response(std::string& out, const response& res, bool keep_alive, bool head_only,
                    bool http10 = false);

// Appends `req` to `out` with `host` ("127.0.0.1:8080") as its one Host field. The framing is
// the body's own, whatever req.headers says (as Go's Request.Write): their Host,
// Content-Length and Transfer-Encoding fields are dropped, the body goes chunk-encoded when one
// of them is "Transfer-Encoding: chunked" and with its Content-Length otherwise (none for an
// empty body but of POST, PUT and PATCH). req.method and req.target must be valid (the client
// checks them).
void write_request(std::string& out, const request& req, std::string_view host);
// Today's date as the Date field writes it (RFC 9110, 5.6.7), recomputed once a second per
// thread.
std::string_view http_date();

}  // namespace goro::http::detail
