#include "wav.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

namespace wavoip::sim {

namespace {

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
}

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

std::string make_wav(std::string_view call_id, double seconds) {
  constexpr std::uint16_t kChannels = 1;
  constexpr std::uint16_t kBits = 16;
  const auto samples = static_cast<std::uint32_t>(std::max(0.1, seconds) * kSampleRate);
  const std::uint32_t data_bytes = samples * kChannels * (kBits / 8);

  std::string out;
  out.reserve(44 + data_bytes);
  out += "RIFF";
  put_u32(out, 36 + data_bytes);
  out += "WAVE";
  out += "fmt ";
  put_u32(out, 16);  // PCM fmt chunk size
  put_u16(out, 1);   // PCM
  put_u16(out, kChannels);
  put_u32(out, kSampleRate);
  put_u32(out, kSampleRate * kChannels * (kBits / 8));  // byte rate
  put_u16(out, kChannels * (kBits / 8));                // block align
  put_u16(out, kBits);
  out += "data";
  put_u32(out, data_bytes);

  // A pentatonic tune: quarter-second notes chosen by the hash, soft attack and release so
  // the notes do not click, a little second harmonic so it sounds less like a test tone.
  static constexpr std::array<double, 8> kScale{261.63, 293.66, 329.63, 392.00, 440.00, 523.25, 587.33, 659.25};
  const std::uint64_t hash = fnv1a(call_id);
  const std::uint32_t note_samples = kSampleRate / 4;
  const std::uint32_t ramp = kSampleRate / 100;  // 10 ms
  for (std::uint32_t i = 0; i < samples; ++i) {
    const std::uint32_t note = i / note_samples;
    const std::uint32_t in_note = i % note_samples;
    const double freq = kScale[(hash >> ((note * 3) % 60)) % kScale.size()];
    const double t = static_cast<double>(i) / kSampleRate;
    double envelope = 1.0;
    if (in_note < ramp) envelope = static_cast<double>(in_note) / ramp;
    if (note_samples - in_note < 4 * ramp) envelope = static_cast<double>(note_samples - in_note) / (4.0 * ramp);
    const double value =
        0.3 * envelope * (std::sin(2 * std::numbers::pi * freq * t) + 0.25 * std::sin(4 * std::numbers::pi * freq * t));
    put_u16(out, static_cast<std::uint16_t>(static_cast<std::int16_t>(std::lround(value * 32767.0 / 1.25))));
  }
  return out;
}

}  // namespace wavoip::sim
