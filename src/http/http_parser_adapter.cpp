// SPDX-License-Identifier: Apache-2.0
// Layer: http. May include: http, api, chan, sync, net, park, sched, stack, time, platform.
// message_parser (parser.hpp) on Debian's libhttp-parser 2.9.4 (libgoro_http's parser with
// -DGORO_HTTP_PARSER=http_parser; measured beside Beast's by bench/http_parse.cpp): a callback
// parser that keeps no copy of the input. The callbacks append the pieces they are given (a
// field name or value may arrive in parts, split where a read ended) to parsed_message. The
// parser is paused after the header section, to hold the header limit to the byte, and after
// the message, so that it stops at the message's end (pipelining). http-parser's own header
// limit is global to the process, so the per-parser limit is counted here instead.
#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "http/field_names.hpp"
#include "http/parser.hpp"

namespace goro::http::detail {

struct message_parser::impl {
  http_parser parser{};
  http_parser_settings settings{};
  kind what;
  parser_limits limits;
  parsed_message message;
  parse_state state = parse_state::need_more;
  int error = 0;
  bool started = false;
  bool header_done = false;
  bool no_body = false;
  bool last_was_value = false;  // the next field-name piece starts a new field
  std::string name;             // the field being received, until the next one starts
  std::string value;
  std::size_t header_bytes = 0;

  impl(kind k, parser_limits l) : what(k), limits(l) {
    settings.on_message_begin = [](http_parser* p) { return self(p).on_begin(); };
    settings.on_url = [](http_parser* p, const char* at, std::size_t n) {
      self(p).message.target.append(at, n);
      return 0;
    };
    settings.on_header_field = [](http_parser* p, const char* at, std::size_t n) {
      return self(p).on_field(at, n);
    };
    settings.on_header_value = [](http_parser* p, const char* at, std::size_t n) {
      return self(p).on_value(at, n);
    };
    settings.on_headers_complete = [](http_parser* p) { return self(p).on_headers_complete(); };
    settings.on_body = [](http_parser* p, const char* at, std::size_t n) {
      return self(p).on_body(at, n);
    };
    settings.on_message_complete = [](http_parser* p) { return self(p).on_complete(); };
    init();
  }

  static impl& self(http_parser* p) { return *static_cast<impl*>(p->data); }

  void init() {
    http_parser_init(&parser, what == kind::request ? HTTP_REQUEST : HTTP_RESPONSE);
    parser.data = this;
  }

  int on_begin() {
    started = true;
    return 0;
  }

  int on_field(const char* at, std::size_t n) {
    if (last_was_value) flush_field();
    name.append(at, n);
    last_was_value = false;
    return 0;
  }

  int on_value(const char* at, std::size_t n) {
    value.append(at, n);
    last_was_value = true;
    return 0;
  }

  void flush_field() {
    if (!name.empty()) message.headers.add(std::move(name), std::move(value));
    name.clear();
    value.clear();
  }

  int on_headers_complete() {
    flush_field();
    header_done = true;
    if (what == kind::response) message.status = static_cast<int>(parser.status_code);
    if (what == kind::request) {
      message.method = http_method_str(static_cast<http_method>(parser.method));
      const auto expect = message.headers.get("Expect");
      message.expect_continue = expect && is_name(*expect, "100-continue");  // any case
    }
    // RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked cannot be framed;
    // read as bodiless, its body would be taken for the next request (smuggling).
    if (what == kind::request && message.headers.contains("Transfer-Encoding") &&
        (parser.flags & F_CHUNKED) == 0) {
      error = 400;
    }
    const bool has_length = (parser.flags & F_CONTENTLENGTH) != 0;
    if (error == 0 && has_length &&
        parser.content_length != std::numeric_limits<std::uint64_t>::max() &&
        parser.content_length > limits.max_body_bytes) {
      error = 413;
    }
    http_parser_pause(&parser, 1);
    // RFC 9112 6.3: a 1xx, 204 or 304 answer has no body whatever its Content-Length says
    // (http_parser 2.9 would wait for the bytes a 304's Content-Length names).
    const int s = message.status;
    const bool bodiless_status = what == kind::response && (s / 100 == 1 || s == 204 || s == 304);
    return no_body || bodiless_status ? 1 : 0;
  }

  int on_body(const char* at, std::size_t n) {
    if (message.body.size() + n > limits.max_body_bytes) {
      error = 413;
      return 1;
    }
    message.body.append(at, n);
    return 0;
  }

  int on_complete() {
    message.keep_alive = http_should_keep_alive(&parser) != 0;
    message.http10 = parser.http_major == 1 && parser.http_minor == 0;
    state = parse_state::done;
    http_parser_pause(&parser, 1);
    return 0;
  }

  void fail(int status) {
    error = status;
    state = parse_state::failed;
  }

  std::size_t parse(std::string_view in) {
    std::size_t consumed = 0;
    while (state == parse_state::need_more && consumed < in.size()) {
      const bool header_was_done = header_done;
      const std::size_t n =
          http_parser_execute(&parser, &settings, in.data() + consumed, in.size() - consumed);
      consumed += n;
      if (!header_was_done) {
        header_bytes += n;
        if (header_bytes > limits.max_header_bytes + 1) {
          fail(431);
          break;
        }
      }
      if (error != 0) {
        fail(error);
        break;
      }
      const http_errno e = HTTP_PARSER_ERRNO(&parser);
      if (e == HPE_PAUSED) {
        if (state == parse_state::done) break;
        http_parser_pause(&parser, 0);  // after the header section: go on with the body
        continue;
      }
      if (e != HPE_OK) {
        fail(e == HPE_HEADER_OVERFLOW ? 431 : 400);
        break;
      }
      if (n == 0) break;
    }
    return consumed;
  }
};

message_parser::message_parser(kind k, parser_limits limits)
    : impl_(std::make_unique<impl>(k, limits)) {}
message_parser::~message_parser() = default;

std::size_t message_parser::parse(std::string_view in) {
  if (impl_->state != parse_state::need_more) return 0;
  return impl_->parse(in);
}

parse_state message_parser::finish() {
  impl& m = *impl_;
  if (m.state != parse_state::need_more || !m.started) return m.state;
  http_parser_execute(&m.parser, &m.settings, nullptr, 0);
  if (m.state == parse_state::need_more) m.fail(400);
  return m.state;
}

parse_state message_parser::state() const noexcept { return impl_->state; }
bool message_parser::header_done() const noexcept { return impl_->header_done; }
bool message_parser::started() const noexcept { return impl_->started; }
int message_parser::error_status() const noexcept { return impl_->error; }
parsed_message& message_parser::message() noexcept { return impl_->message; }

void message_parser::reset(bool no_body) {
  impl& m = *impl_;
  m.message = parsed_message{};
  m.state = parse_state::need_more;
  m.error = 0;
  m.started = false;
  m.header_done = false;
  m.no_body = no_body;
  m.last_was_value = false;
  m.name.clear();
  m.value.clear();
  m.header_bytes = 0;
  m.init();
}

}  // namespace goro::http::detail
