-- wrk script: each request is a WaVoIP RECORD delivery (record_status RECORDING, so no
-- download starts) with a call id of its own: <prefix>-<thread>-<counter>.
--   wrk -t2 -c64 -d10s --latency -s bench/webhook.lua http://127.0.0.1:PORT/webhooks/wavoip -- PREFIX
-- done() prints one machine-readable line starting with "WRK ".

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  prefix = (args[1] or "wrk") .. "-" .. tostring(thread_number) .. "-"
  counter = 0
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  counter = counter + 1
  local body = '{"type":"RECORD","action":"UPDATE","whatsapp_call_id":"' .. prefix .. counter ..
               '","id_session":789,"record_status":"RECORDING"}'
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f bad_status=%d socket_errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
