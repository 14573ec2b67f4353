// SPDX-License-Identifier: Apache-2.0
// Layer: http. May include: http, api, chan, sync, net, park, sched, stack, time, platform.
// message_parser (parser.hpp) on Boost.Beast's HTTP parser (Boost 1.74): the one libgoro_http
// is built with unless GORO_HTTP_PARSER says otherwise, and one of the two the parser benchmark
// (bench/http_parse.cpp) measures. Beast's parser is one message long, so reset()
// constructs a new one; it collects the fields and body itself (string_body), and they are
// copied out into parsed_message when the message is done.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "http/field_names.hpp"
#include "http/parser.hpp"

namespace goro::http::detail {

namespace bhttp = boost::beast::http;

namespace {

// "Expect: 100-continue", in any case (RFC 9110 10.1.1: the expectation is case-insensitive).
bool expects_continue(boost::beast::string_view value) {
  return is_name(std::string_view(value.data(), value.size()), "100-continue");
}

}  // namespace

struct message_parser::impl {
  kind what;
  parser_limits limits;
  std::variant<std::monostate, bhttp::request_parser<bhttp::string_body>,
               bhttp::response_parser<bhttp::string_body>>
      parser;
  parsed_message message;
  parse_state state = parse_state::need_more;
  int error = 0;
  bool started = false;
  std::size_t header_bytes = 0;  // consumed before the header section was done

  impl(kind k, parser_limits l) : what(k), limits(l) { init(false); }

  void init(bool no_body) {
    auto setup = [&](auto& p) {
      p.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
      p.body_limit(limits.max_body_bytes);
      // Not eager until the header section is done: Beast 1.74's put() goes on past a header
      // it has just refused (body_limit, found in finish_header) when more bytes follow, and a
      // response parser then reserves the whole Content-Length (std::bad_alloc, or the
      // refusal overwritten); stopping after the header also lets parse() count its bytes.
      p.eager(false);
      if (no_body) p.skip(true);
    };
    header_bytes = 0;
    if (what == kind::request) {
      setup(parser.emplace<1>());
    } else {
      setup(parser.emplace<2>());
    }
  }

  void fail(const boost::system::error_code& ec) {
    state = parse_state::failed;
    if (ec == bhttp::error::header_limit) {
      error = 431;
    } else if (ec == bhttp::error::body_limit) {
      error = 413;
    } else {
      error = 400;
    }
  }

  template <class Parser>
  void take(Parser& p) {
    auto& m = p.get();
    if constexpr (Parser::is_request::value) {
      message.method = std::string(m.method_string());
      message.target = std::string(m.target());
      message.expect_continue = expects_continue(m[bhttp::field::expect]);
    } else {
      message.status = static_cast<int>(m.result_int());
    }
    for (const auto& f : m)
      message.headers.add(std::string(f.name_string()), std::string(f.value()));
    message.body = std::move(m.body());
    message.keep_alive = m.keep_alive();
    message.http10 = m.version() == 10;
    state = parse_state::done;
  }

  template <class Parser>
  std::size_t parse(Parser& p, std::string_view in) {
    boost::system::error_code ec;
    std::size_t consumed = 0;
    if (!in.empty()) started = true;
    while (consumed < in.size() && !p.is_done()) {
      const std::size_t n =
          p.put(boost::asio::const_buffer(in.data() + consumed, in.size() - consumed), ec);
      consumed += n;
      // Until the header section is done, put() consumes the start line, the fields or
      // nothing; not eager, it stops at the header section's end. Beast's header_limit covers
      // the fields only, not the start line: hold max_header_bytes (request or status line and
      // fields) to the byte here.
      if (!p.eager()) header_bytes += n;
      if (ec == bhttp::error::need_more) break;
      if (ec) {
        fail(ec);
        return consumed;
      }
      if (!p.eager()) {
        if (p.is_header_done()) {
          if (header_bytes > limits.max_header_bytes) {
            state = parse_state::failed;
            error = 431;
            return consumed;
          }
          // RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked has no
          // length that can be determined; Beast takes it as bodiless, which would answer its
          // body as the next request. 400, and the server closes.
          if constexpr (Parser::is_request::value) {
            if (!p.chunked() && p.get().count(bhttp::field::transfer_encoding) != 0) {
              state = parse_state::failed;
              error = 400;
              return consumed;
            }
          }
          p.eager(true);
        }
      }
    }
    if (p.is_done()) {
      take(p);
    } else if (p.eager() && in.size() - consumed > limits.max_header_bytes) {
      // After the header section Beast takes a chunk's size line (extensions included) and the
      // trailer section only whole, leaving a partial one unconsumed: an endless one grew the
      // caller's buffer with every byte the peer sent, until the read deadline (a client could
      // exhaust the server's memory; EndlessChunkLineOrTrailerIs400). Each is held to the
      // header section's limit; body bytes are always consumed as they come, so nothing else
      // is left over here.
      state = parse_state::failed;
      error = 400;
    }
    return consumed;
  }
};

message_parser::message_parser(kind k, parser_limits limits)
    : impl_(std::make_unique<impl>(k, limits)) {}
message_parser::~message_parser() = default;

std::size_t message_parser::parse(std::string_view in) {
  impl& m = *impl_;
  if (m.state != parse_state::need_more) return 0;
  return std::visit(
      [&](auto& p) -> std::size_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(p)>, std::monostate>) {
          return 0;
        } else {
          return m.parse(p, in);
        }
      },
      m.parser);
}

parse_state message_parser::finish() {
  impl& m = *impl_;
  if (m.state != parse_state::need_more || !m.started) return m.state;
  std::visit(
      [&](auto& p) {
        if constexpr (!std::is_same_v<std::decay_t<decltype(p)>, std::monostate>) {
          boost::system::error_code ec;
          p.put_eof(ec);
          if (!ec && p.is_done()) {
            m.take(p);
          } else {
            m.state = parse_state::failed;
            m.error = 400;
          }
        }
      },
      m.parser);
  return m.state;
}

parse_state message_parser::state() const noexcept { return impl_->state; }

bool message_parser::header_done() const noexcept {
  return std::visit(
      [](const auto& p) {
        if constexpr (std::is_same_v<std::decay_t<decltype(p)>, std::monostate>) {
          return false;
        } else {
          return p.is_header_done();
        }
      },
      impl_->parser);
}

bool message_parser::started() const noexcept { return impl_->started; }
int message_parser::error_status() const noexcept { return impl_->error; }

parsed_message& message_parser::message() noexcept {
  impl& m = *impl_;
  // Before the message is done, the header is still inside Beast's parser: copy what the
  // server asks about (Expect) out of it.
  if (m.state == parse_state::need_more && m.what == kind::request && header_done()) {
    auto& p = std::get<1>(m.parser);
    m.message.expect_continue = expects_continue(p.get()[bhttp::field::expect]);
  }
  return m.message;
}

void message_parser::reset(bool no_body) {
  impl& m = *impl_;
  m.message = parsed_message{};
  m.state = parse_state::need_more;
  m.error = 0;
  m.started = false;
  m.init(no_body);
}

}  // namespace goro::http::detail
