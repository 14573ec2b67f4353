// SPDX-License-Identifier: Apache-2.0
// Layer: http. May include: http, api, chan, sync, net, park, sched, stack, time, platform.
// A connection's read buffer, shared by the server and the client: bytes are read into its
// end and parsed from its front; what the parser leaves (an incomplete header section, a
// pipelined message) stays for the next parse. It grows only when full of unparsed bytes, which
// the parser's header limit bounds.
#pragma once

#include <cstddef>
#include <cstring>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>

#include "goro/net.hpp"

namespace goro::http::detail {

class conn_buffer {
 public:
  // The bytes read and not yet consumed.
  std::string_view pending() const noexcept { return {buf_.data() + begin_, end_ - begin_}; }
  bool empty() const noexcept { return begin_ == end_; }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Reads once from `c` (honouring `stop` if given), making room first; returns what read()
  // returned: at least one byte, or 0 at end of stream.
  std::size_t fill(net::conn& c, const std::stop_token* stop) {
    if (begin_ > 0 && end_ == buf_.size()) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
    const auto room = std::as_writable_bytes(std::span(buf_.data() + end_, buf_.size() - end_));
    const std::size_t n = stop != nullptr ? c.read(room, *stop) : c.read(room);
    end_ += n;
    return n;
  }

 private:
  std::string buf_ = std::string(16 * 1024, '\0');
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace goro::http::detail
