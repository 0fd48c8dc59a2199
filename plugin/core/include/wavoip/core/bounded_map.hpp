#pragma once
// A map by call id that keeps at most `capacity` entries, forgetting the oldest inserted one at a
// time as new ones come. For caches on the host's loop: clearing a full cache at once frees all
// its entries in one go, a stall of milliseconds at tens of thousands of entries.
//
// An entry erased and inserted again counts as new. Erased entries leave their place in the order
// until it comes up, so the map may hold fewer than `capacity` entries for a while; never more.
//
// Threading: not thread-safe. [main-thread]

#include <cstddef>
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

namespace wavoip {

template <typename V>
class BoundedMap {
 public:
  explicit BoundedMap(std::size_t capacity) : capacity_(capacity) {
    if (capacity_ == 0) throw std::invalid_argument("BoundedMap needs a capacity of at least 1");
  }

  // The entry of `key`, or nullptr.
  V* find(const std::string& key) {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &it->second.value;
  }

  // The entry of `key`, inserted (value-initialized) when missing; may forget the oldest one.
  V& operator[](const std::string& key) {
    auto [it, inserted] = entries_.try_emplace(key);
    if (inserted) {
      it->second.serial = ++serial_;
      order_.emplace_back(key, serial_);
      forget_oldest();  // never the entry just inserted: it is last in the order
    }
    return it->second.value;
  }

  void erase(const std::string& key) { entries_.erase(key); }
  std::size_t size() const { return entries_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  void forget_oldest() {
    while (order_.size() > capacity_) {
      const auto& [key, serial] = order_.front();
      auto it = entries_.find(key);
      if (it != entries_.end() && it->second.serial == serial) entries_.erase(it);
      order_.pop_front();
    }
  }

  struct Entry {
    V value{};
    std::uint64_t serial = 0;  // when it was inserted: a key inserted again is another entry
  };
  std::size_t capacity_;
  std::uint64_t serial_ = 0;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::pair<std::string, std::uint64_t>> order_;  // (key, serial), oldest first
};

}  // namespace wavoip
