#include "agent_sessions.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

#include <sodium.h>

namespace hdp::host {
std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  std::string hex(bytes * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  hex.pop_back();
  return hex;
}

std::string session_token_key(std::string_view token) {
  std::array<unsigned char, crypto_generichash_BYTES> out{};
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(token.data()), token.size(),
                     nullptr, 0);
  std::string hex(out.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), out.data(), out.size());
  hex.pop_back();
  return hex;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

AgentSessions::AgentSessions(SessionLimits limits) : limits_(limits) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium cannot start");
}

AgentSessions::Created AgentSessions::create(int64_t agent_id, std::string_view agent_name, int64_t now_ms) {
  std::erase_if(sessions_, [&](const auto& kv) {
    return now_ms - kv.second.last_used_ms >= limits_.idle_ms || now_ms - kv.second.created_ms >= limits_.lifetime_ms;
  });
  while (sessions_.size() >= limits_.max_sessions) {
    const auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
      return a.second.last_used_ms < b.second.last_used_ms;
    });
    sessions_.erase(oldest);
  }
  Created created;
  created.token = random_hex(32);
  created.session = AgentSession{agent_id, std::string(agent_name), random_hex(32), now_ms, now_ms};
  sessions_[session_token_key(created.token)] = created.session;
  return created;
}

std::optional<AgentSession> AgentSessions::find(std::string_view token, int64_t now_ms) {
  if (token.empty()) return std::nullopt;
  const auto it = sessions_.find(session_token_key(token));
  if (it == sessions_.end()) return std::nullopt;
  AgentSession& s = it->second;
  if (now_ms - s.last_used_ms >= limits_.idle_ms || now_ms - s.created_ms >= limits_.lifetime_ms) {
    sessions_.erase(it);
    return std::nullopt;
  }
  s.last_used_ms = std::max(s.last_used_ms, now_ms);
  return s;
}

bool AgentSessions::end(std::string_view token) {
  return sessions_.erase(session_token_key(token)) == 1;
}

}  // namespace hdp::host
