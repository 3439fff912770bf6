-- wrk script: a login storm, each request logging in one of $BENCH_USERS accounts
-- (stormer0, stormer1, ...) in turn, without opening a session, sent with a client address as
-- X-Forwarded-For (which the bench's server trusts from loopback):
-- - by default from one of $BENCH_ADDRS addresses in turn, each in a network of its own
--   (198.18.0.1, 198.18.1.1, ...): sixteen hostile clients;
-- - with BENCH_FRESH=1, every request from an IPv6 /48 never used before (2001:1000:0::1,
--   2001:1000:1::1, ...): a botnet, whose every request comes from a network with its credit.
-- The storm's busy answers (503) are expected with BENCH_FRESH; wrk counts them as Non-2xx.
local n = 0
local users = tonumber(os.getenv("BENCH_USERS"))
local addrs = tonumber(os.getenv("BENCH_ADDRS") or "1")
local fresh = os.getenv("BENCH_FRESH") == "1"
request = function()
  n = n + 1
  local body = string.format(
    '{"action":"authorization","params":{"login":"stormer%d","password":"stormer-password","session":"no"}}',
    n % users)
  local from
  if fresh then
    from = string.format("2001:%x:%x::1", 0x1000 + math.floor(n / 65536) % 0xe000, n % 65536)
  else
    from = string.format("198.18.%d.1", n % addrs)
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-Forwarded-For"] = from}, body)
end
