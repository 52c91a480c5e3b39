-- wrk script: POST one new service per request, with names unique across
-- threads and runs (s-<run>-<thread>-<n>). Used by bench/api (main.go).
local threads = 0
local run = os.time() % 100000

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
  thread:set("run", run)
end

local n = 0

function init(args)
  -- Added to the -H headers (the token): a headers table given to
  -- wrk.format would replace them.
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local body = string.format(
    '{"metadata":{"name":"s-%d-%d-%d","labels":{"tier":"front"}},' ..
    '"spec":{"image":"nginx:1.27","ports":[{"containerPort":80}],"env":[{"name":"A","value":"1"}]}}',
    run, tid, n)
  return wrk.format("POST", nil, nil, body)
end
