#include "corpus_case.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace security {

namespace {

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.pop_back();
  size_t start = text.find_first_not_of(' ');
  return start == std::string::npos ? std::string() : text.substr(start);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string unescape(const std::string& text, const std::string& file) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    const char next = text[++i];
    switch (next) {
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case '0': out += '\0'; break;
      case '\\': out += '\\'; break;
      case 'x': {
        if (i + 2 >= text.size() || hex_value(text[i + 1]) < 0 || hex_value(text[i + 2]) < 0) {
          throw std::runtime_error(file + ": bad \\x escape");
        }
        out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
        i += 2;
        break;
      }
      default: out += '\\'; out += next;  // JSON's own escapes (\" \u0041 ...) stay as they are
    }
  }
  return out;
}

}  // namespace

std::string substitute(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [name, value] : values) {
    const std::string needle = "{" + name + "}";
    for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + value.size())) {
      text.replace(pos, needle.size(), value);
    }
  }
  return text;
}

std::string generate_body(const std::string& kind, size_t n) {
  if (kind == "pad") {
    const std::string head =
        R"({"type":"RECORD","whatsapp_call_id":"pad-)" + std::to_string(n) + R"(","record_status":"RECORDING","pad":")";
    const std::string tail = "\"}";
    if (n < head.size() + tail.size()) throw std::runtime_error("pad: too small");
    return head + std::string(n - head.size() - tail.size(), 'a') + tail;
  }
  if (kind == "nest-arrays") {
    return R"({"type":"CALL","whatsapp_call_id":"nest-a-)" + std::to_string(n) + R"(","x":)" + std::string(n, '[') +
           std::string(n, ']') + "}";
  }
  if (kind == "nest-objects") {
    std::string body = R"({"type":"CALL","whatsapp_call_id":"nest-o-)" + std::to_string(n) + R"(","x":)";
    for (size_t i = 0; i < n; ++i) body += "{\"a\":";
    body += "1";
    body += std::string(n, '}');
    return body + "}";
  }
  if (kind == "open-brackets") return std::string(n, '[');
  if (kind == "many-keys") {
    std::string body =
        R"({"type":"RECORD","whatsapp_call_id":"many-keys-)" + std::to_string(n) + R"(","record_status":"MIXING")";
    for (size_t i = 0; i < n; ++i) body += ",\"k" + std::to_string(i) + "\":" + std::to_string(i);
    return body + "}";
  }
  throw std::runtime_error("unknown generator " + kind);
}

CorpusCase load_case(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(file.string() + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const std::string name = file.stem().string();

  size_t separator = text.find("\n---\n");
  bool body_present = true;
  if (separator == std::string::npos) {
    // A file may end right after the dashes: an empty body.
    if (text.size() >= 4 && text.compare(text.size() - 4, 4, "\n---") == 0) {
      separator = text.size() - 4;
      body_present = false;
    } else {
      throw std::runtime_error(name + ": no '---' line before the body");
    }
  }
  CorpusCase c;
  c.name = name;
  std::string body_mode = "text";
  std::istringstream header(text.substr(0, separator));
  std::string line;
  while (std::getline(header, line)) {
    line = trim(line);
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (!c.description.empty()) c.description += ' ';
      c.description += trim(line.substr(1));
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos) throw std::runtime_error(name + ": not 'key: value': " + line);
    const std::string key = line.substr(0, colon);
    const std::string value = trim(line.substr(colon + 1));
    if (key == "expect") {
      c.expect = std::stoi(value);
    } else if (key == "error") {
      c.error = value;
    } else if (key == "path") {
      c.path = value;
    } else if (key == "method") {
      c.method = value;
    } else if (key == "header") {
      c.headers.push_back(value);
    } else if (key == "content-type") {
      if (value == "(none)") {
        c.content_type.reset();
      } else {
        c.content_type = value;
      }
    } else if (key == "log") {
      c.logs.push_back(value);
    } else if (key == "chunked") {
      c.chunked = value == "yes";
    } else if (key == "body") {
      body_mode = value;
    } else {
      throw std::runtime_error(name + ": unknown key '" + key + "'");
    }
  }
  if (c.expect < 100 || c.expect > 599) throw std::runtime_error(name + ": 'expect' is missing or not a status");
  if (c.description.empty()) throw std::runtime_error(name + ": say what the case is about in a # comment");

  std::string body = body_present ? text.substr(separator + 5) : std::string();
  if (!body.empty() && body.back() == '\n') body.pop_back();
  if (body_mode == "text") {
    c.body = body;
  } else if (body_mode == "escaped") {
    c.body = unescape(body, name);
  } else if (body_mode.rfind("generate ", 0) == 0) {
    std::istringstream spec(body_mode.substr(9));
    std::string kind;
    size_t n = 0;
    if (!(spec >> kind >> n)) throw std::runtime_error(name + ": 'body: generate KIND N'");
    c.body = generate_body(kind, n);
  } else {
    throw std::runtime_error(name + ": unknown body mode '" + body_mode + "'");
  }
  return c;
}

std::vector<CorpusCase> load_corpus(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".case") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<CorpusCase> cases;
  for (const auto& f : files) cases.push_back(load_case(f));
  return cases;
}

}  // namespace security
