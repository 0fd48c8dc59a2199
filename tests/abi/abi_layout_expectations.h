/* abi_layout_expectations.h - the frozen version-1 layout on LP64, as one table for C and C++.
 *
 * abi_layout_c.c (as C99 and as C11) and abi_layout_test.cpp (C++20) turn each row into a
 * compile-time assertion, so a header change that moves a member, changes a size, renumbers an
 * enum or a status breaks the build in both languages. Changing a number here is an ABI break: it
 * needs a new major, not an edit. Rows of structs added by a minor (1.1: metrics, 1.2:
 * hdp.messages/2, 1.3: hdp.messages/3) pin them from the release that first shipped them. */
#ifndef HDP_TESTS_ABI_LAYOUT_EXPECTATIONS_H
#define HDP_TESTS_ABI_LAYOUT_EXPECTATIONS_H

/* X(type, sizeof on LP64) */
#define HDP_ABI_SIZES(X)         \
  X(hdp_version_t, 12)           \
  X(hdp_plugin_entry_t, 80)      \
  X(hdp_host_t, 112)             \
  X(hdp_plugin_t, 56)            \
  X(hdp_host_timers_t, 24)       \
  X(hdp_host_posix_fd_t, 32)     \
  X(hdp_http_header_t, 32)       \
  X(hdp_http_request_t, 128)     \
  X(hdp_http_response_t, 48)     \
  X(hdp_http_route_t, 80)        \
  X(hdp_host_http_t, 32)         \
  X(hdp_call_message_t, 56)      \
  X(hdp_host_messages_t, 24)     \
  X(hdp_attachment_t, 48)        \
  X(hdp_attachment_result_t, 40) \
  X(hdp_host_attachments_t, 16)  \
  X(hdp_metric_family_t, 56)     \
  X(hdp_host_metrics_t, 48)      \
  X(hdp_message_result_t, 24)    \
  X(hdp_host_messages2_t, 24)    \
  X(hdp_host_messages3_t, 24)

/* X(type, member, offsetof on LP64) */
#define HDP_ABI_OFFSETS(X)                          \
  X(hdp_version_t, major, 0)                        \
  X(hdp_version_t, minor, 4)                        \
  X(hdp_version_t, patch, 8)                        \
  X(hdp_plugin_entry_t, abi_version, 0)             \
  X(hdp_plugin_entry_t, struct_size, 12)            \
  X(hdp_plugin_entry_t, id, 16)                     \
  X(hdp_plugin_entry_t, name, 24)                   \
  X(hdp_plugin_entry_t, vendor, 32)                 \
  X(hdp_plugin_entry_t, version, 40)                \
  X(hdp_plugin_entry_t, description, 48)            \
  X(hdp_plugin_entry_t, init, 56)                   \
  X(hdp_plugin_entry_t, deinit, 64)                 \
  X(hdp_plugin_entry_t, create_plugin, 72)          \
  X(hdp_host_t, abi_version, 0)                     \
  X(hdp_host_t, struct_size, 12)                    \
  X(hdp_host_t, name, 16)                           \
  X(hdp_host_t, vendor, 24)                         \
  X(hdp_host_t, version, 32)                        \
  X(hdp_host_t, host_data, 40)                      \
  X(hdp_host_t, get_extension, 48)                  \
  X(hdp_host_t, log, 56)                            \
  X(hdp_host_t, log_enabled, 64)                    \
  X(hdp_host_t, wall_clock_us, 72)                  \
  X(hdp_host_t, monotonic_clock_us, 80)             \
  X(hdp_host_t, request_main_thread_callback, 88)   \
  X(hdp_host_t, get_config, 96)                     \
  X(hdp_host_t, get_data_dir, 104)                  \
  X(hdp_plugin_t, struct_size, 0)                   \
  X(hdp_plugin_t, plugin_data, 8)                   \
  X(hdp_plugin_t, init, 16)                         \
  X(hdp_plugin_t, start, 24)                        \
  X(hdp_plugin_t, stop, 32)                         \
  X(hdp_plugin_t, destroy, 40)                      \
  X(hdp_plugin_t, get_extension, 48)                \
  X(hdp_host_timers_t, struct_size, 0)              \
  X(hdp_host_timers_t, register_timer, 8)           \
  X(hdp_host_timers_t, cancel_timer, 16)            \
  X(hdp_host_posix_fd_t, struct_size, 0)            \
  X(hdp_host_posix_fd_t, register_fd, 8)            \
  X(hdp_host_posix_fd_t, modify_fd, 16)             \
  X(hdp_host_posix_fd_t, unregister_fd, 24)         \
  X(hdp_http_header_t, name, 0)                     \
  X(hdp_http_header_t, name_len, 8)                 \
  X(hdp_http_header_t, value, 16)                   \
  X(hdp_http_header_t, value_len, 24)               \
  X(hdp_http_request_t, struct_size, 0)             \
  X(hdp_http_request_t, request_id, 8)              \
  X(hdp_http_request_t, method, 16)                 \
  X(hdp_http_request_t, method_len, 24)             \
  X(hdp_http_request_t, path, 32)                   \
  X(hdp_http_request_t, path_len, 40)               \
  X(hdp_http_request_t, query, 48)                  \
  X(hdp_http_request_t, query_len, 56)              \
  X(hdp_http_request_t, headers, 64)                \
  X(hdp_http_request_t, header_count, 72)           \
  X(hdp_http_request_t, body, 80)                   \
  X(hdp_http_request_t, body_len, 88)               \
  X(hdp_http_request_t, peer_address, 96)           \
  X(hdp_http_request_t, peer_address_len, 104)      \
  X(hdp_http_request_t, agent_name, 112)            \
  X(hdp_http_request_t, agent_name_len, 120)        \
  X(hdp_http_response_t, struct_size, 0)            \
  X(hdp_http_response_t, status, 4)                 \
  X(hdp_http_response_t, content_type, 8)           \
  X(hdp_http_response_t, headers, 16)               \
  X(hdp_http_response_t, header_count, 24)          \
  X(hdp_http_response_t, body, 32)                  \
  X(hdp_http_response_t, body_len, 40)              \
  X(hdp_http_route_t, struct_size, 0)               \
  X(hdp_http_route_t, method, 8)                    \
  X(hdp_http_route_t, path, 16)                     \
  X(hdp_http_route_t, match, 24)                    \
  X(hdp_http_route_t, max_body_bytes, 32)           \
  X(hdp_http_route_t, deferred_timeout_ms, 40)      \
  X(hdp_http_route_t, on_request, 48)               \
  X(hdp_http_route_t, on_cancel, 56)                \
  X(hdp_http_route_t, user_data, 64)                \
  X(hdp_http_route_t, access, 72)                   \
  X(hdp_http_route_t, reserved, 76)                 \
  X(hdp_host_http_t, struct_size, 0)                \
  X(hdp_host_http_t, register_route, 8)             \
  X(hdp_host_http_t, unregister_route, 16)          \
  X(hdp_host_http_t, respond, 24)                   \
  X(hdp_call_message_t, struct_size, 0)             \
  X(hdp_call_message_t, external_key, 8)            \
  X(hdp_call_message_t, inbox, 16)                  \
  X(hdp_call_message_t, contact, 24)                \
  X(hdp_call_message_t, direction, 32)              \
  X(hdp_call_message_t, call_status, 40)            \
  X(hdp_call_message_t, duration_s, 48)             \
  X(hdp_host_messages_t, struct_size, 0)            \
  X(hdp_host_messages_t, upsert_call_message, 8)    \
  X(hdp_host_messages_t, set_recording_status, 16)  \
  X(hdp_attachment_t, struct_size, 0)               \
  X(hdp_attachment_t, message_id, 8)                \
  X(hdp_attachment_t, file_path, 16)                \
  X(hdp_attachment_t, file_name, 24)                \
  X(hdp_attachment_t, mime_type, 32)                \
  X(hdp_attachment_t, idempotency_key, 40)          \
  X(hdp_attachment_result_t, struct_size, 0)        \
  X(hdp_attachment_result_t, job_id, 8)             \
  X(hdp_attachment_result_t, status, 16)            \
  X(hdp_attachment_result_t, attachment_id, 24)     \
  X(hdp_attachment_result_t, already_attached, 32)  \
  X(hdp_attachment_result_t, reserved, 36)          \
  X(hdp_host_attachments_t, struct_size, 0)         \
  X(hdp_host_attachments_t, attach_file, 8)         \
  X(hdp_metric_family_t, struct_size, 0)            \
  X(hdp_metric_family_t, type, 4)                   \
  X(hdp_metric_family_t, name, 8)                   \
  X(hdp_metric_family_t, help, 16)                  \
  X(hdp_metric_family_t, label_names, 24)           \
  X(hdp_metric_family_t, label_count, 32)           \
  X(hdp_metric_family_t, buckets, 40)               \
  X(hdp_metric_family_t, bucket_count, 48)          \
  X(hdp_host_metrics_t, struct_size, 0)             \
  X(hdp_host_metrics_t, register_metric, 8)         \
  X(hdp_host_metrics_t, counter_add, 16)            \
  X(hdp_host_metrics_t, gauge_set, 24)              \
  X(hdp_host_metrics_t, gauge_add, 32)              \
  X(hdp_host_metrics_t, histogram_observe, 40)      \
  X(hdp_message_result_t, struct_size, 0)           \
  X(hdp_message_result_t, status, 4)                \
  X(hdp_message_result_t, op_id, 8)                 \
  X(hdp_message_result_t, message_id, 16)           \
  X(hdp_host_messages2_t, struct_size, 0)           \
  X(hdp_host_messages2_t, upsert_call_message, 8)   \
  X(hdp_host_messages2_t, set_recording_status, 16) \
  X(hdp_host_messages3_t, struct_size, 0)           \
  X(hdp_host_messages3_t, upsert_call_message, 8)   \
  X(hdp_host_messages3_t, set_recording_status, 16)

/* X(macro or enumerator, value): the version-1 minimum sizes, enumerations, statuses and the
 * version this tree builds. No struct ends in tail padding (hdp_attachment_result_t and
 * hdp_http_route_t have an explicit reserved member for that), so every V1 size equals its
 * struct's sizeof but for the structs a minor grew, whose newest size (V1_2) does. */
#define HDP_ABI_CONSTANTS(X)            \
  X(HDP_PLUGIN_ENTRY_V1_SIZE, 80)       \
  X(HDP_HOST_V1_SIZE, 112)              \
  X(HDP_PLUGIN_V1_SIZE, 56)             \
  X(HDP_HOST_TIMERS_V1_SIZE, 24)        \
  X(HDP_HOST_POSIX_FD_V1_SIZE, 32)      \
  X(HDP_HTTP_REQUEST_V1_SIZE, 112)      \
  X(HDP_HTTP_RESPONSE_V1_SIZE, 48)      \
  X(HDP_HTTP_ROUTE_V1_SIZE, 72)         \
  X(HDP_HOST_HTTP_V1_SIZE, 32)          \
  X(HDP_HTTP_REQUEST_V1_2_SIZE, 128)    \
  X(HDP_HTTP_ROUTE_V1_2_SIZE, 80)       \
  X(HDP_CALL_MESSAGE_V1_SIZE, 56)       \
  X(HDP_HOST_MESSAGES_V1_SIZE, 24)      \
  X(HDP_ATTACHMENT_V1_SIZE, 48)         \
  X(HDP_ATTACHMENT_RESULT_V1_SIZE, 40)  \
  X(HDP_HOST_ATTACHMENTS_V1_SIZE, 16)   \
  X(HDP_METRIC_FAMILY_V1_SIZE, 56)      \
  X(HDP_HOST_METRICS_V1_SIZE, 48)       \
  X(HDP_MESSAGE_RESULT_V1_SIZE, 24)     \
  X(HDP_HOST_MESSAGES2_V1_SIZE, 24)     \
  X(HDP_HOST_MESSAGES3_V1_SIZE, 24)     \
  X(HDP_VERSION_MAJOR, 1)               \
  X(HDP_OK, 0)                          \
  X(HDP_ERR_INVALID_ARGUMENT, -1)       \
  X(HDP_ERR_NOT_FOUND, -10)             \
  X(HDP_ERR_ALREADY_EXISTS, -11)        \
  X(HDP_ERR_BAD_STATE, -20)             \
  X(HDP_ERR_UNSUPPORTED, -30)           \
  X(HDP_ERR_LIMIT, -40)                 \
  X(HDP_ERR_IO, -50)                    \
  X(HDP_ERR_CANCELLED, -60)             \
  X(HDP_ERR_TIMEOUT, -70)               \
  X(HDP_ERR_NO_MEMORY, -80)             \
  X(HDP_ERR_INTERNAL, -100)             \
  X(HDP_LOG_TRACE, 0)                   \
  X(HDP_LOG_DEBUG, 1)                   \
  X(HDP_LOG_INFO, 2)                    \
  X(HDP_LOG_WARNING, 3)                 \
  X(HDP_LOG_ERROR, 4)                   \
  X(HDP_FD_READ, 1)                     \
  X(HDP_FD_WRITE, 2)                    \
  X(HDP_FD_ERROR, 4)                    \
  X(HDP_HTTP_MATCH_EXACT, 0)            \
  X(HDP_HTTP_MATCH_PREFIX, 1)           \
  X(HDP_HTTP_ACCESS_PUBLIC, 0)          \
  X(HDP_HTTP_ACCESS_AGENT, 1)           \
  X(HDP_HTTP_ACCESS_AGENT_OR_PLUGIN, 2) \
  X(HDP_CALL_DIRECTION_UNKNOWN, 0)      \
  X(HDP_CALL_DIRECTION_INCOMING, 1)     \
  X(HDP_CALL_DIRECTION_OUTGOING, 2)     \
  X(HDP_RECORDING_NONE, 0)              \
  X(HDP_RECORDING_WAITING, 1)           \
  X(HDP_RECORDING_DOWNLOADING, 2)       \
  X(HDP_RECORDING_ATTACHED, 3)          \
  X(HDP_RECORDING_FAILED, 4)            \
  X(HDP_RECORDING_DISABLED, 5)          \
  X(HDP_RECORDING_EMPTY, 6)             \
  X(HDP_RECORDING_UNCHANGED, -1)        \
  X(HDP_METRIC_COUNTER, 1)              \
  X(HDP_METRIC_GAUGE, 2)                \
  X(HDP_METRIC_HISTOGRAM, 3)

/* The scalar types that cross the ABI: X(type, size). */
#define HDP_ABI_SCALARS(X) X(hdp_status_t, 4)

#endif /* HDP_TESTS_ABI_LAYOUT_EXPECTATIONS_H */
