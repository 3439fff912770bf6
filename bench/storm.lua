-- wrk script: a login storm, each request logging in one of $BENCH_USERS accounts
-- (stormer0, stormer1, ...) in turn, without opening a session, from one of $BENCH_ADDRS client
-- addresses in turn (198.51.100.1, ...; sent as X-Forwarded-For, which the bench's server trusts
-- from loopback): sixteen hostile clients, each with an address of its own.
local n = 0
local users = tonumber(os.getenv("BENCH_USERS"))
local addrs = tonumber(os.getenv("BENCH_ADDRS") or "1")
request = function()
  n = n + 1
  local body = string.format(
    '{"action":"authorization","params":{"login":"stormer%d","password":"stormer-password","session":"no"}}',
    n % users)
  local from = string.format("198.51.100.%d", n % addrs + 1)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-Forwarded-For"] = from}, body)
end
