#pragma once
// A minimal `expected`-style result for C++20 (std::expected arrives with C++23).
// The core reports input errors (payloads, configuration) as values, never as exceptions,
// so callers at the plugin boundary cannot forget to handle them.

#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace wavoip {

// Wraps an error so that `Expected<T, E>` can be built from it unambiguously.
template <class E>
struct Unexpected {
  E error;
};

template <class E>
Unexpected(E) -> Unexpected<E>;

// Either a `T` or an `E`. Accessing the wrong alternative throws std::logic_error:
// that is a programming error, not an input error.
template <class T, class E>
class Expected {
 public:
  Expected(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Expected(Unexpected<E> error) : state_(std::in_place_index<1>, std::move(error.error)) {}  // NOLINT

  [[nodiscard]] bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  [[nodiscard]] T& value() & { return std::get<0>(checked(true)); }
  [[nodiscard]] const T& value() const& { return std::get<0>(checked(true)); }
  [[nodiscard]] T&& value() && { return std::get<0>(std::move(checked(true))); }

  [[nodiscard]] const E& error() const& { return std::get<1>(checked(false)); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, E>& checked(bool want_value) {
    if (has_value() != want_value)
      throw std::logic_error(want_value ? "Expected holds an error" : "Expected holds a value");
    return state_;
  }
  const std::variant<T, E>& checked(bool want_value) const {
    if (has_value() != want_value)
      throw std::logic_error(want_value ? "Expected holds an error" : "Expected holds a value");
    return state_;
  }

  std::variant<T, E> state_;
};

}  // namespace wavoip
