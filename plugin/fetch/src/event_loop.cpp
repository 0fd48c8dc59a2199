#include "wavoip/fetch/event_loop.hpp"

namespace wavoip {

// Out of line so the vtable has one home.
EventLoop::~EventLoop() = default;

}  // namespace wavoip
