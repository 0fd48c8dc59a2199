#include "helpdesk_store.hpp"

#include <utility>

#include "pg_helpdesk_store.hpp"
#include "sqlite_helpdesk_store.hpp"

namespace hdp::host {

HelpdeskStore::Batch::Batch(HelpdeskStore& store, bool isolate_writes) : store_(store) {
  store_.begin_batch(isolate_writes);
}

HelpdeskStore::Batch::~Batch() {
  if (!open_) return;
  try {
    store_.rollback_batch();
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing more to undo
  }
}

void HelpdeskStore::Batch::commit() {
  store_.commit_batch();
  open_ = false;
}

std::unique_ptr<HelpdeskStore> open_helpdesk_store(const StoreLocation& location, std::function<int64_t()> now_ms) {
  if (location.is_postgresql()) return std::make_unique<PgHelpdeskStore>(location.postgresql_uri, std::move(now_ms));
  return std::make_unique<SqliteHelpdeskStore>(location.sqlite_file, std::move(now_ms));
}

}  // namespace hdp::host
