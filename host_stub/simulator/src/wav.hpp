// Recordings the simulator serves: a few seconds of real audio, 16-bit mono PCM in a WAV
// (RIFF) container, generated in memory. Each call gets its own little melody so two
// recordings never sound (or hash) the same.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace wavoip::sim {

inline constexpr std::uint32_t kSampleRate = 16000;

// A complete WAV file: RIFF/WAVE header, "fmt " chunk (PCM, mono, 16 bit, kSampleRate) and
// a "data" chunk of `seconds` seconds. The melody is picked from a hash of `call_id`.
std::string make_wav(std::string_view call_id, double seconds);

}  // namespace wavoip::sim
