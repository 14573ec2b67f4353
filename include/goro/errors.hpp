// SPDX-License-Identifier: Apache-2.0
/// @file
/// The exceptions goro throws for misuse that Go would panic on.
#pragma once

#include <stdexcept>
#include <string>

namespace goro {

/// A send on a closed channel, or a close of a closed or nil channel.
class closed_channel_error : public std::logic_error {
 public:
  explicit closed_channel_error(const std::string& what) : std::logic_error(what) {}
};

}  // namespace goro
