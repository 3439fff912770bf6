-- wrk script: a login storm, each request logging in one of $BENCH_USERS accounts
-- (stormer0, stormer1, ...) in turn, without opening a session.
local n = 0
local users = tonumber(os.getenv("BENCH_USERS"))
request = function()
  n = n + 1
  local body = string.format(
    '{"action":"authorization","params":{"login":"stormer%d","password":"stormer-password","session":"no"}}',
    n % users)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
