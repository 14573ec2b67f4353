// SPDX-License-Identifier: Apache-2.0
// Layer: http. May include: http, api, chan, sync, net, park, sched, stack, time, platform.
// The adapter between goro::http and the HTTP/1.1 parser it uses: one incremental parser for a
// request or a response, fed whatever bytes the connection has. Two implementations exist, so
// that the choice can change (CMake's GORO_HTTP_PARSER): beast_adapter.cpp (Boost.Beast's
// parser, the default) and http_parser_adapter.cpp (Debian's libhttp-parser 2.9.4). The
// measurement that chose: docs/http.md, "The parser".
//
// Contract, the same for both: parse() consumes a prefix of its input; bytes it did not consume
// must be offered again, with more appended, on the next call. It stops at the end of one
// message, so pipelined messages stay in the caller's buffer. Once state() is done or failed,
// parse() consumes nothing until reset().
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "goro/http/message.hpp"

namespace goro::http::detail {

struct parser_limits {
  std::size_t max_header_bytes = 8 * 1024;  // the request or status line and every field
  std::size_t max_body_bytes = 1024 * 1024;
};

enum class parse_state {
  need_more,  // the message is not complete: read more and call parse() again
  done,       // message() holds a whole message
  failed,     // error_status() says why
};

// What a parse produced. The method and target (requests) or status (responses) and the rest.
struct parsed_message {
  std::string method;
  std::string target;
  int status = 0;
  header_fields headers;
  std::string body;
  bool keep_alive = false;       // HTTP/1.1 without "Connection: close", or 1.0 with keep-alive
  bool http10 = false;           // HTTP/1.0: keep-alive must then be said in the answer
  bool expect_continue = false;  // a request that sent "Expect: 100-continue"
};

class message_parser {
 public:
  enum class kind { request, response };

  message_parser(kind k, parser_limits limits);
  ~message_parser();
  message_parser(const message_parser&) = delete;
  message_parser& operator=(const message_parser&) = delete;

  // Parses from `in`; returns the number of bytes consumed.
  std::size_t parse(std::string_view in);
  // The peer closed its side: a response whose body runs to the end of the stream is done; any
  // other message that had begun fails. Returns state().
  parse_state finish();
  parse_state state() const noexcept;
  // True once the header section is complete (the server answers "Expect: 100-continue" then).
  bool header_done() const noexcept;
  // True once any byte of the message has been consumed.
  bool started() const noexcept;
  // Why parsing failed, as the status the server answers: 400 (malformed), 431 (header section
  // too large) or 413 (body too large).
  int error_status() const noexcept;
  parsed_message& message() noexcept;
  // Readies the parser for the next message. For a response: `no_body` when the request was a
  // HEAD, whose response has headers only.
  void reset(bool no_body = false);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace goro::http::detail
