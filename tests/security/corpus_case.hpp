// One case of the bad-input corpus (tests/security/corpus/NNN-name.case).
//
// A case file is a small header, a line with three dashes, and the body:
//
//   # What the case is about (comment lines start with '#').
//   expect: 400                        required: the status the host must answer
//   error: bad_call_id                 optional: text the answer's body must contain
//   path: /webhooks/wavoip/{key}       optional (this is the default); the target as sent
//   method: POST                       optional (default POST)
//   header: X-Webhook-Token: {key}     optional, repeatable
//   content-type: text/plain           optional: replaces the default application/json;
//                                      "(none)" sends no Content-Type at all
//   log: record_url of call ssrf-1 refused   optional, repeatable: a line the host's log must
//                                      contain once the corpus has run
//   chunked: yes                       optional: send the body with Transfer-Encoding: chunked
//   body: text | escaped | generate KIND N   optional (default text)
//   ---
//   {"type": ...}
//
// `text` bodies are the bytes after the dashes with one final newline removed (so an empty body
// is a file ending right after "---"). `escaped` bodies also decode \xNN, \n, \r, \t, \0 and a
// doubled backslash (for control characters and invalid UTF-8 that would not survive an
// editor). `generate` bodies are built by the test (the 10 MB body is never committed): see
// generate_body().
// {key}, {key2}, {canary} (127.0.0.1:port of the canary server) and {canary_port} are replaced
// in the path, the headers, the body and the log lines.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace security {

struct CorpusCase {
  std::string name;  // file name without .case
  std::string description;
  int expect = 0;
  std::optional<std::string> error;
  std::string method = "POST";
  std::string path = "/webhooks/wavoip/{key}";
  std::vector<std::string> headers;
  std::optional<std::string> content_type = std::string("application/json");
  std::vector<std::string> logs;
  bool chunked = false;
  std::string body;
};

// Reads and checks one case file; throws std::runtime_error naming the file and the problem.
CorpusCase load_case(const std::filesystem::path& file);

// Every *.case file under `dir`, sorted by name.
std::vector<CorpusCase> load_corpus(const std::filesystem::path& dir);

// Replaces every {name} of `values` in `text`.
std::string substitute(std::string text, const std::map<std::string, std::string>& values);

// Bodies too big or too regular to commit: "pad N" (a valid RECORD event padded to N bytes),
// "nest-arrays N" / "nest-objects N" (a CALL whose extra field nests N levels),
// "open-brackets N" (N '[' and nothing else), "many-keys N" (a RECORD with N extra keys).
std::string generate_body(const std::string& kind, size_t n);

}  // namespace security
