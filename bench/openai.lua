-- wrk script: the harness's request as an OpenAI Chat Completion (non-streaming).
--   BENCH_KEY=<tenant key> wrk -t1 -c64 -d10s -s openai.lua http://127.0.0.1:13000/openai/v1/chat/completions
wrk.method = "POST"
wrk.body = os.getenv("BENCH_OPENAI_BODY")
wrk.headers["authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "bench-key")
wrk.headers["content-type"] = "application/json"

function done(summary, latency, requests)
  io.write(string.format('WRK_JSON {"requests": %d, "duration_us": %d, "non2xx": %d, "p50_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status, latency:percentile(50)))
end
