-- wrk script for the `webhook` scenarios: POST a fixed 1 KiB body signed like GitHub does.
--   wrk ... -s webhook.lua URL -- RUN_LABEL BODY_FILE SIGNATURE [QUEUES]
-- With QUEUES, request n goes to /webhooks/q<n mod QUEUES> (the fleet scenarios' queue
-- endpoints, spread over a cluster's slots) instead of the URL's path.
-- X-Hub-Signature-256 is an HMAC of the body only, so the one precomputed signature stays
-- valid while X-GitHub-Delivery changes on every request (RUN_LABEL-thread-counter), which
-- keeps roomgate off its redelivery (dedup) path. done() prints the status counts, which
-- run.sh compares with the growth of the Redis stream.
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

accepted, ok, other = 0, 0, 0
local prefix, n, queues = "", 0, nil

function init(args)
  local f = assert(io.open(args[2], "rb"))
  wrk.body = f:read("*a")
  f:close()
  prefix = args[1] .. "-" .. tostring(tid) .. "-"
  queues = tonumber(args[4])
  wrk.method = "POST"
  wrk.headers["X-Hub-Signature-256"] = args[3]
  wrk.headers["X-GitHub-Event"] = "push"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = prefix .. n
  if queues then
    return wrk.format(nil, "/webhooks/q" .. (n % queues))
  end
  return wrk.format()
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  elseif status == 200 then
    ok = ok + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local a, o, x = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted")
    o = o + t:get("ok")
    x = x + t:get("other")
  end
  io.write(string.format("statuses: 202=%d 200=%d other=%d\n", a, o, x))
end
